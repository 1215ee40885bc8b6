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
    filter.begin_batch(origin);
    try {
        result.report = decode_batch(
            data, origin,
            [&](boost::json::object&& event, std::size_t index) {
                ++result.events;
                auto matches = filter.evaluate(event);
                std::shared_ptr<const boost::json::object> kept;
                std::shared_ptr<const std::string> kept_json;
                for (auto& match : matches) {
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
                        evaluated.alert = render_alert(rendering->rules.at(match.rule_index), event,
                                                       match.annotation, event_origin);
                        if (!kept_json) kept_json = std::make_shared<const std::string>(event_json(event));
                        evaluated.event_json = kept_json;
                        // The decoder reuses the event's memory: kept as a copy of our own.
                        if (rendering->router_needs_event.at(match.rule_index)) {
                            if (!kept) {
                                kept = std::make_shared<const boost::json::object>(event, boost::json::storage_ptr());
                            }
                            evaluated.event = kept;
                        }
                    }
                    result.matches.push_back(std::move(evaluated));
                }
            },
            limits, rendering != nullptr ? EventLifetime::callback : EventLifetime::owned);
        result.limits_hit = result.report.limits_hit;
    } catch (const DecodeLimitError& e) {
        result.decode_error = e.what();
        result.limits_hit.emplace_back(e.limit());
    } catch (const DecodeError& e) {
        result.decode_error = e.what();
    }
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
