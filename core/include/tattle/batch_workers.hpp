#pragma once

#include <boost/json.hpp>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "tattle/alert.hpp"
#include "tattle/decoder.hpp"
#include "tattle/filter.hpp"
#include "tattle/limits.hpp"

namespace tattle {

// What a batch worker needs to write the alerts of a run (pipeline): with it, each
// match's alert document is made on the worker, and the thread that routes alerts
// in read order only joins ready text.
struct AlertRendering {
    std::string source_id;         // EventOrigin::source_id of the batches
    std::vector<AlertRule> rules;  // by rule index
    // The destination each rule's alerts are written for (its first): the router
    // rewrites them only for the others.
    std::vector<std::string> destinations;
    // Rules whose matches the router needs the event of (dedup, threshold, title).
    std::vector<bool> router_needs_event;
};

// One rule's match on one event of a batch.
struct EvaluatedMatch {
    std::size_t rule_index = 0;
    std::size_t event_index = 0;  // position of the event in its batch
    // Shared by every rule that matched the same event: only matched events are kept.
    // With AlertRendering, only for rules the router needs it for.
    std::shared_ptr<const boost::json::object> event;
    std::optional<boost::json::value> annotation;  // without AlertRendering
    // With AlertRendering: the alert document, for the rule's destination in
    // AlertRendering::destinations and without shaping fields.
    std::optional<AlertText> alert;
};

// What decoding and filtering one batch gave.
struct BatchEvaluation {
    std::size_t events = 0;
    std::vector<EvaluatedMatch> matches;  // in event order, then rule order
    DecodeReport report;
    std::optional<std::string> decode_error;  // the batch as a whole could not be decoded
    // The [limits] keys hit: by skipped records, and the one that failed the batch.
    std::vector<std::string> limits_hit;
    // jq runtime errors of this batch, per rule index (only rules that had some).
    std::vector<std::pair<std::size_t, std::size_t>> rule_errors;
    // Rules this batch's events got stopped and disabled (rule_sandbox.hpp).
    std::vector<DisabledRule> disabled;
};

// Decodes one batch and runs the rules on each event. Rules whose rules_to_run entry
// is false (disabled, or their team is not granted the source) are evaluated by the
// combined program like the others but their matches are left out. More matches than
// limits.max_alerts_per_batch fail the batch (an alert storm: a rule gone wrong, a flood
// of hostile records); the matches before it are kept. With rendering, every match's
// alert is made here (EvaluatedMatch::alert).
BatchEvaluation evaluate_batch(FilterStage& filter, std::span<const std::uint8_t> data, std::string_view origin,
                               const std::vector<bool>& rules_to_run, const InputLimits& limits = {},
                               const AlertRendering* rendering = nullptr);

// The worker count `workers = 0` (or unset) stands for: one per hardware thread.
std::size_t resolve_worker_count(std::size_t configured) noexcept;

// Decodes and filters batches on a fixed set of threads. libjq state cannot be shared
// between threads, so every worker has a FilterStage of its own: the first uses the
// one it is given (already compiled), the others build theirs with make_filter on their
// own thread, so their compilation overlaps the first worker's work.
class BatchWorkers {
public:
    using FilterFactory = std::function<std::unique_ptr<FilterStage>()>;

    BatchWorkers(FilterStage& first_filter, FilterFactory make_filter, std::size_t workers);
    ~BatchWorkers();
    BatchWorkers(const BatchWorkers&) = delete;
    BatchWorkers& operator=(const BatchWorkers&) = delete;

    std::size_t size() const noexcept { return threads_.size(); }

    // data, *rules_to_run and *rendering must stay valid until the result is ready.
    std::future<BatchEvaluation> submit(std::span<const std::uint8_t> data, std::string origin,
                                        const std::vector<bool>* rules_to_run, const InputLimits& limits = {},
                                        const AlertRendering* rendering = nullptr);

private:
    void work(std::size_t index);

    using Job = std::packaged_task<BatchEvaluation(FilterStage&)>;
    FilterStage& first_filter_;
    FilterFactory make_filter_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<Job> jobs_;
    bool closing_ = false;
    std::vector<std::thread> threads_;
};

}  // namespace tattle
