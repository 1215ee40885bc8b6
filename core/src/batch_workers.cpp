#include "tattle/batch_workers.hpp"

#include <spdlog/spdlog.h>

#include <exception>

namespace tattle {

BatchEvaluation evaluate_batch(FilterStage& filter, std::span<const std::uint8_t> data, std::string_view origin,
                               const std::vector<bool>& rules_to_run, const InputLimits& limits,
                               const AlertRendering* rendering) {
    BatchEvaluation result;
    const std::size_t rule_count = filter.rules().size();
    std::vector<std::size_t> errors_before(rule_count);
    for (std::size_t i = 0; i < rule_count; ++i) errors_before[i] = filter.runtime_errors(i);

    EventOrigin event_origin;
    if (rendering != nullptr) {
        event_origin.source_id = rendering->source_id;
        event_origin.batch = std::string(origin);
    }
    // With rendering the decoder reuses each event's memory once its callback returns.
    const EventLifetime lifetime = rendering != nullptr ? EventLifetime::callback : EventLifetime::owned;

    // One event's matches into the result, in rule order. event_is_ours: it may be moved from.
    auto add_matches = [&](boost::json::object& event, bool event_is_ours, std::size_t index,
                           PendingEvaluation& evaluation) {
        std::shared_ptr<const boost::json::object> kept;
        std::shared_ptr<const std::string> kept_json;
        for (auto& match : evaluation.matches) {
            if (match.rule_index >= rules_to_run.size() || !rules_to_run[match.rule_index]) continue;
            if (result.matches.size() >= limits.max_alerts_per_batch) {
                throw DecodeLimitError(std::string(origin) + ": more than " +
                                           std::to_string(limits.max_alerts_per_batch) +
                                           " alerts from one batch (limits.max_alerts_per_batch); the batch "
                                           "is failed",
                                       "max_alerts_per_batch");
            }
            EvaluatedMatch evaluated{match.rule_index, index, nullptr, std::nullopt, std::nullopt, nullptr};
            if (rendering == nullptr) {
                if (!kept) kept = std::make_shared<const boost::json::object>(std::move(event));
                evaluated.event = kept;
                evaluated.annotation = std::move(match.annotation);
            } else {
                event_origin.index = index;
                evaluated.alert =
                    render_alert(rendering->rules.at(match.rule_index), event, match.annotation, event_origin);
                if (!kept_json) kept_json = std::make_shared<const std::string>(event_json(event));
                evaluated.event_json = kept_json;
                if (rendering->router_needs_event.at(match.rule_index)) {
                    if (!kept) {
                        kept = event_is_ours ? std::make_shared<const boost::json::object>(std::move(event))
                                             : std::make_shared<const boost::json::object>(event, boost::json::storage_ptr());
                    }
                    evaluated.event = kept;
                }
            }
            result.matches.push_back(std::move(evaluated));
        }
    };

    // Events with rules left for libjq wait here, in order (with the events after them
    // that matched natively), until libjq has decided a group of them: one request to the
    // rule evaluator per group.
    struct Waiting {
        std::size_t index = 0;
        boost::json::object event;  // our own copy or the moved event
    };
    std::vector<Waiting> waiting;
    std::vector<PendingEvaluation> pending;
    std::vector<const boost::json::object*> waiting_events;
    constexpr std::size_t kGroup = 256;
    // The most matches the waiting events can still give: once that could pass
    // max_alerts_per_batch they are decided at once, so the limit fails the batch at the
    // same record as when every event was decided on arrival.
    std::size_t possible_matches = 0;
    auto flush = [&] {
        possible_matches = 0;
        if (waiting.empty()) return;
        waiting_events.clear();
        for (const auto& w : waiting) waiting_events.push_back(&w.event);
        filter.finish(waiting_events, pending);
        // Taken out first: if the alert limit stops this group, none of it is finished twice.
        std::vector<Waiting> group;
        std::vector<PendingEvaluation> evaluations;
        group.swap(waiting);
        evaluations.swap(pending);
        for (std::size_t i = 0; i < group.size(); ++i) add_matches(group[i].event, true, group[i].index, evaluations[i]);
    };
    // The records before a failure keep their alerts.
    auto flush_after_failure = [&] {
        try {
            flush();
        } catch (const DecodeLimitError&) {
            // the batch has failed already; the alerts up to the limit are kept
        }
    };

    filter.begin_batch(origin);
    try {
        result.report = decode_batch(
            data, origin,
            [&](boost::json::object&& event, std::size_t index) {
                ++result.events;
                PendingEvaluation evaluation = filter.evaluate_natively(event);
                if (evaluation.matches.empty() && evaluation.libjq_rules.empty()) return;
                if (waiting.empty() && evaluation.libjq_rules.empty()) {
                    add_matches(event, lifetime == EventLifetime::owned, index, evaluation);
                    return;
                }
                possible_matches += evaluation.matches.size() + evaluation.libjq_rules.size();
                if (lifetime == EventLifetime::callback) {
                    // Native annotations may share the event's reused memory too.
                    // (Assigning would keep the old storage: Boost.JSON values keep theirs.)
                    for (auto& match : evaluation.matches) {
                        if (!match.annotation) continue;
                        boost::json::value own(*match.annotation, boost::json::storage_ptr());
                        match.annotation.reset();
                        match.annotation.emplace(std::move(own));
                    }
                }
                waiting.push_back({index, lifetime == EventLifetime::owned
                                              ? std::move(event)
                                              : boost::json::object(event, boost::json::storage_ptr())});
                pending.push_back(std::move(evaluation));
                if (waiting.size() >= kGroup || result.matches.size() + possible_matches > limits.max_alerts_per_batch) {
                    flush();
                }
            },
            limits, lifetime);
        flush();
        result.limits_hit = result.report.limits_hit;
    } catch (const DecodeLimitError& e) {
        result.decode_error = e.what();
        result.limits_hit.emplace_back(e.limit());
        flush_after_failure();
    } catch (const DecodeError& e) {
        result.decode_error = e.what();
        flush_after_failure();
    }
    result.disabled = filter.take_disabled();
    for (std::size_t i = 0; i < rule_count; ++i) {
        const std::size_t errors = filter.runtime_errors(i) - errors_before[i];
        if (errors > 0) result.rule_errors.emplace_back(i, errors);
    }
    return result;
}

std::size_t resolve_worker_count(std::size_t configured) noexcept {
    if (configured > 0) return configured;
    const unsigned hardware = std::thread::hardware_concurrency();
    return hardware > 0 ? hardware : 1;
}

BatchWorkers::BatchWorkers(FilterStage& first_filter, FilterFactory make_filter, std::size_t workers)
    : first_filter_(first_filter), make_filter_(std::move(make_filter)) {
    const std::size_t count = resolve_worker_count(workers);
    threads_.reserve(count);
    for (std::size_t i = 0; i < count; ++i) threads_.emplace_back([this, i] { work(i); });
}

BatchWorkers::~BatchWorkers() {
    {
        std::lock_guard lock(mutex_);
        closing_ = true;
    }
    wake_.notify_all();
    for (auto& thread : threads_) thread.join();
}

std::future<BatchEvaluation> BatchWorkers::submit(std::span<const std::uint8_t> data, std::string origin,
                                                  const std::vector<bool>* rules_to_run,
                                                  const InputLimits& limits, const AlertRendering* rendering) {
    Job job([data, origin = std::move(origin), rules_to_run, limits, rendering](FilterStage& filter) {
        return evaluate_batch(filter, data, origin, *rules_to_run, limits, rendering);
    });
    auto result = job.get_future();
    {
        std::lock_guard lock(mutex_);
        jobs_.push_back(std::move(job));
    }
    wake_.notify_one();
    return result;
}

void BatchWorkers::work(std::size_t index) {
    std::unique_ptr<FilterStage> own_filter;
    if (index > 0) {
        try {
            own_filter = make_filter_();
        } catch (const std::exception& e) {
            // The other workers still take every job; this one only costs parallelism.
            spdlog::error("batch worker {} could not compile the rules and stops: {}", index, e.what());
            return;
        }
    }
    FilterStage& filter = own_filter ? *own_filter : first_filter_;
    for (;;) {
        Job job;
        {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [this] { return closing_ || !jobs_.empty(); });
            if (jobs_.empty()) return;
            job = std::move(jobs_.front());
            jobs_.pop_front();
        }
        job(filter);  // a packaged_task hands exceptions to the future
    }
}

}  // namespace tattle
