#include "tattle/batch_workers.hpp"

#include "tattle/cpu_time.hpp"
#include "tattle/json_text.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>
#include <exception>
#include <utility>

namespace tattle {

MatchStream::MatchStream(std::size_t max_parts_waiting) noexcept
    : max_parts_waiting_(std::max<std::size_t>(max_parts_waiting, 1)) {}

void MatchStream::put(std::vector<EvaluatedMatch>&& part) {
    std::unique_lock lock(mutex_);
    if (!abandoned_ && parts_.size() >= max_parts_waiting_) {
        ++waits_;
        changed_.wait(lock, [this] { return abandoned_ || parts_.size() < max_parts_waiting_; });
    }
    if (abandoned_) return;
    parts_.push_back(std::move(part));
    most_parts_waiting_ = std::max(most_parts_waiting_, parts_.size());
    lock.unlock();
    changed_.notify_all();
}

void MatchStream::finish(BatchEvaluation&& evaluation) {
    {
        std::lock_guard lock(mutex_);
        if (abandoned_) return;
        end_.emplace(std::move(evaluation));
    }
    changed_.notify_all();
}

void MatchStream::fail(std::exception_ptr error) {
    {
        std::lock_guard lock(mutex_);
        error_ = std::move(error);
    }
    changed_.notify_all();
}

MatchStream::Piece MatchStream::read() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return !parts_.empty() || end_ || error_; });
    Piece piece;
    if (!parts_.empty()) {
        piece.matches = std::move(parts_.front());
        parts_.pop_front();
        lock.unlock();
        changed_.notify_all();  // the worker may wait for room
        return piece;
    }
    if (error_) std::rethrow_exception(error_);
    piece.end = std::move(end_);
    end_.reset();
    return piece;
}

bool MatchStream::ready() {
    std::lock_guard lock(mutex_);
    return !parts_.empty() || end_ || error_;
}

void MatchStream::abandon() noexcept {
    {
        std::lock_guard lock(mutex_);
        abandoned_ = true;
        parts_.clear();
        end_.reset();
    }
    changed_.notify_all();
}

std::size_t MatchStream::waits() {
    std::lock_guard lock(mutex_);
    return waits_;
}

std::size_t MatchStream::most_parts_waiting() {
    std::lock_guard lock(mutex_);
    return most_parts_waiting_;
}

BatchEvaluation evaluate_batch(FilterStage& filter, std::span<const std::uint8_t> data, std::string_view origin,
                               const std::vector<bool>& rules_to_run, const InputLimits& limits,
                               const AlertRendering* rendering, MatchStream* stream) {
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
    auto runs = [&](std::size_t rule_index) { return rule_index < rules_to_run.size() && rules_to_run[rule_index]; };
    std::size_t matches_handed_over = 0;  // to the stream, before result.matches
    auto matches_so_far = [&] { return matches_handed_over + result.matches.size(); };
    std::size_t part_bytes = 0;    // of the alerts in result.matches
    std::size_t bytes_counted = 0;  // of its first matches
    auto hand_over_part = [&] {
        if (stream == nullptr) return;
        for (; bytes_counted < result.matches.size(); ++bytes_counted) {
            if (const auto& alert = result.matches[bytes_counted].alert) part_bytes += alert->text.size();
        }
        if (result.matches.size() < MatchStream::kMatchesPerPart && part_bytes < MatchStream::kPartBytes) return;
        matches_handed_over += result.matches.size();
        stream->put(std::exchange(result.matches, {}));
        result.matches.reserve(MatchStream::kMatchesPerPart);
        part_bytes = 0;
        bytes_counted = 0;
    };
    auto check_alert_limit = [&] {
        if (matches_so_far() >= limits.max_alerts_per_batch) {
            throw DecodeLimitError(std::string(origin) + ": more than " + std::to_string(limits.max_alerts_per_batch) +
                                       " alerts from one batch (limits.max_alerts_per_batch); the batch is failed",
                                   "max_alerts_per_batch");
        }
    };

    // One event's matches (of the rules to run) as results, in rule order. event_is_ours:
    // it may be moved from. kept_json: the event's text when made already.
    // straight_to_result: each is checked against the alert limit and added at once.
    auto render_matches = [&](std::vector<EvaluatedMatch>& out, boost::json::object& event, bool event_is_ours,
                              std::size_t index, std::vector<RuleMatch>& matches,
                              std::shared_ptr<const std::string> kept_json, bool straight_to_result) {
        std::shared_ptr<const boost::json::object> kept;
        // The event's text, made for its first alert and copied into the others.
        std::string_view event_text;
        if (kept_json) event_text = *kept_json;
        thread_local std::string made_text;
        for (auto& match : matches) {
            if (!runs(match.rule_index)) continue;
            if (straight_to_result) check_alert_limit();
            EvaluatedMatch evaluated{match.rule_index, index, nullptr, std::nullopt, std::nullopt};
            if (rendering == nullptr) {
                if (!kept) kept = std::make_shared<const boost::json::object>(std::move(event));
                evaluated.event = kept;
                evaluated.annotation = std::move(match.annotation);
            } else {
                event_origin.index = index;
                // Once an earlier rule's match has taken the event over, it is read there.
                const boost::json::object& current = kept ? *kept : event;
                if (event_text.data() == nullptr) {
                    made_text.clear();
                    append_json_text(made_text, current);  // as event_json, in memory the worker keeps
                    event_text = made_text;
                }
                evaluated.alert = render_alert(rendering->rules.at(match.rule_index), current, match.annotation,
                                               event_origin, rendering->destinations.at(match.rule_index), event_text);
                if (rendering->router_needs_event.at(match.rule_index)) {
                    if (!kept) {
                        kept = event_is_ours ? std::make_shared<const boost::json::object>(std::move(event))
                                             : std::make_shared<const boost::json::object>(event, boost::json::storage_ptr());
                    }
                    evaluated.event = kept;
                }
            }
            out.push_back(std::move(evaluated));
        }
    };

    // Events with rules left for libjq, gathered into groups: one request to the rule
    // evaluator per group, and while it decides one group the next is gathered. The
    // matched events after the first of them wait in `held`, in order, until every event
    // before them is decided: those whose matches need no libjq as finished results (no
    // copy of the event), the others as a copy in their group.
    struct Group {
        std::deque<boost::json::object> events;  // our copies (libjq_events point into it)
        std::vector<LibjqEvent> libjq_events;
        std::vector<PendingEvaluation> evaluations;
        std::size_t possible_matches = 0;  // the most matches its events can give
        bool decided = false;
    };
    struct Held {
        std::size_t index = 0;
        std::vector<EvaluatedMatch> ready;  // without group: the event's results
        std::shared_ptr<Group> group;       // or its event in this group, at slot
        std::size_t slot = 0;
    };
    std::deque<Held> held;
    std::size_t held_ready_matches = 0;  // in held entries without a group
    std::shared_ptr<Group> gathering;
    std::shared_ptr<Group> asked;  // the group the evaluator decides
    // Groups of at most kGroup events; at most kHeld matched events wait, so what a batch
    // holds stays bounded whatever its size (as the 256 events waiting before did).
    constexpr std::size_t kGroup = 256;
    constexpr std::size_t kHeld = 256;
    auto undecided_matches = [&] {
        return held_ready_matches + (gathering ? gathering->possible_matches : 0) +
               (asked ? asked->possible_matches : 0);
    };

    // Held entries that are decided, from the front, into the result.
    auto release_decided = [&] {
        try {
            while (!held.empty() && (!held.front().group || held.front().group->decided)) {
                Held& front = held.front();
                if (front.group) {
                    Group& group = *front.group;
                    std::vector<EvaluatedMatch> evaluated;
                    render_matches(evaluated, group.events[front.slot], true, front.index,
                                   group.evaluations[front.slot].matches, group.libjq_events[front.slot].json, false);
                    for (auto& match : evaluated) {
                        check_alert_limit();
                        result.matches.push_back(std::move(match));
                    }
                } else {
                    held_ready_matches -= front.ready.size();
                    for (auto& match : front.ready) {
                        check_alert_limit();
                        result.matches.push_back(std::move(match));
                    }
                }
                held.pop_front();
            }
        } catch (const DecodeLimitError&) {
            // The batch fails here: nothing after this record is kept.
            held.clear();
            held_ready_matches = 0;
            gathering.reset();
            throw;
        }
    };
    // Matches of rules the group just decided got disabled: not for the events after it,
    // which the rules were evaluated on natively before that was known.
    auto drop_disabled_after = [&](const Group& decided) {
        std::vector<bool> disabled(rule_count, false);
        for (std::size_t i = 0; i < rule_count; ++i) disabled[i] = filter.disabled_reason(i).has_value();
        auto is_disabled = [&](std::size_t rule) { return rule < disabled.size() && disabled[rule]; };
        std::size_t first_after = 0;
        for (std::size_t i = 0; i < held.size(); ++i) {
            if (held[i].group.get() == &decided) first_after = i + 1;
        }
        for (std::size_t i = first_after; i < held.size(); ++i) {
            Held& entry = held[i];
            if (entry.group) {
                std::erase_if(entry.group->evaluations[entry.slot].matches,
                              [&](const RuleMatch& match) { return is_disabled(match.rule_index); });
            } else {
                const std::size_t before = entry.ready.size();
                std::erase_if(entry.ready, [&](const EvaluatedMatch& match) { return is_disabled(match.rule_index); });
                held_ready_matches -= before - entry.ready.size();
            }
        }
    };
    // The asked group's answers, if there (or, with wait, when there); then the gathered
    // group is asked.
    auto advance = [&](bool wait) {
        if (asked && (wait || filter.finish_ready())) {
            std::shared_ptr<Group> decided = std::move(asked);
            const bool disabled_some = filter.complete_finish();
            decided->decided = true;
            if (disabled_some) drop_disabled_after(*decided);
            release_decided();
        }
        if (!asked && gathering) {
            asked = std::move(gathering);
            filter.start_finish(asked->libjq_events, asked->evaluations);
        }
    };
    auto decide_all = [&] {
        while (asked || gathering) advance(true);
        release_decided();
    };
    // The records before a failure keep their alerts.
    auto decide_after_failure = [&] {
        try {
            decide_all();
        } catch (const DecodeLimitError&) {
            // the batch has failed already; the alerts up to the limit are kept
        }
    };
    // Whatever ends this call, the evaluator's thread is done with our groups first.
    struct AnswersAwaited {
        FilterStage& filter;
        ~AnswersAwaited() {
            if (!filter.finishing()) return;
            try {
                filter.complete_finish();
            } catch (...) {
                // already failing; the batch's other error is the one reported
            }
        }
    } answers_awaited{filter};

    filter.begin_batch(origin);
    try {
        auto on_event = [&](boost::json::object& event, std::size_t index) {
            ++result.events;
            PendingEvaluation evaluation = filter.evaluate_natively(event);
            if (evaluation.matches.empty() && evaluation.libjq_rules.empty()) return;
            const bool event_is_ours = lifetime == EventLifetime::owned;
            if (evaluation.libjq_rules.empty()) {
                if (held.empty()) {
                    render_matches(result.matches, event, event_is_ours, index, evaluation.matches, nullptr, true);
                    return;
                }
                Held entry{index, {}, nullptr, 0};
                render_matches(entry.ready, event, event_is_ours, index, evaluation.matches, nullptr, false);
                if (entry.ready.empty()) return;
                held_ready_matches += entry.ready.size();
                held.push_back(std::move(entry));
            } else {
                if (!gathering) gathering = std::make_shared<Group>();
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
                Group& group = *gathering;
                group.possible_matches += evaluation.matches.size() + evaluation.libjq_rules.size();
                group.events.push_back(event_is_ours ? std::move(event)
                                                     : boost::json::object(event, boost::json::storage_ptr()));
                // The evaluator is sent the text the alerts show: made once, for both.
                group.libjq_events.push_back(LibjqEvent{
                    &group.events.back(),
                    rendering != nullptr ? std::make_shared<const std::string>(event_json(group.events.back()))
                                         : nullptr});
                group.evaluations.push_back(std::move(evaluation));
                held.push_back(Held{index, {}, gathering, group.events.size() - 1});
            }
            // The alert limit fails the batch at the record it failed at when every
            // event was decided on arrival: once the waiting events could pass it,
            // they are decided now.
            if (matches_so_far() + undecided_matches() > limits.max_alerts_per_batch) {
                decide_all();
                return;
            }
            // The evaluator gets the gathered events whenever it is idle.
            advance(held.size() >= kHeld || (gathering && gathering->events.size() >= kGroup));
        };
        result.report = decode_batch(
            data, origin,
            [&](boost::json::object&& event, std::size_t index) {
                on_event(event, index);
                hand_over_part();
            },
            limits, lifetime);
        decide_all();
        result.limits_hit = result.report.limits_hit;
    } catch (const DecodeLimitError& e) {
        result.decode_error = e.what();
        result.limits_hit.emplace_back(e.limit());
        decide_after_failure();
    } catch (const DecodeError& e) {
        result.decode_error = e.what();
        decide_after_failure();
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

std::shared_ptr<MatchStream> BatchWorkers::stream(std::span<const std::uint8_t> data, std::string origin,
                                                  const std::vector<bool>* rules_to_run,
                                                  const InputLimits& limits, const AlertRendering* rendering) {
    auto matches = std::make_shared<MatchStream>();
    enqueue(Job([matches, data, origin = std::move(origin), rules_to_run, limits, rendering](FilterStage& filter) {
        try {
            matches->finish(evaluate_batch(filter, data, origin, *rules_to_run, limits, rendering, matches.get()));
        } catch (...) {
            matches->fail(std::current_exception());
        }
    }));
    return matches;
}

void BatchWorkers::enqueue(Job job) {
    {
        std::lock_guard lock(mutex_);
        jobs_.push_back(std::move(job));
    }
    wake_.notify_one();
}

void BatchWorkers::work(std::size_t index) {
    const CountedThread counted(ThreadRole::batch_worker);
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
        job(filter);  // each job hands its exceptions on itself
    }
}

}  // namespace tattle
