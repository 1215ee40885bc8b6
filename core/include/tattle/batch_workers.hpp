#pragma once

#include <boost/json.hpp>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
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

// A batch's matches on their way from its worker to the thread that routes them,
// handed over in parts while the batch is still being decoded: what a batch with many
// alerts holds stays a few parts, whatever its size (a 1 GB log file that matches often
// must fit a 128 MB Lambda function). The worker waits while the reader is behind.
class MatchStream {
public:
    // A part ends at this many matches, or once its alerts' text reaches kPartBytes
    // (CloudTrail events reach hundreds of KiB).
    static constexpr std::size_t kMatchesPerPart = 256;
    static constexpr std::size_t kPartBytes = std::size_t{1} << 20;
    static constexpr std::size_t kDefaultPartsWaiting = 4;

    explicit MatchStream(std::size_t max_parts_waiting = kDefaultPartsWaiting) noexcept;
    MatchStream(const MatchStream&) = delete;
    MatchStream& operator=(const MatchStream&) = delete;

    // Worker side. put waits while max_parts_waiting parts are unread; once the reader
    // has gone (abandon), what it is given is dropped.
    void put(std::vector<EvaluatedMatch>&& part);
    // The batch's end: its evaluation, whose matches are those after the last part.
    void finish(BatchEvaluation&& evaluation);
    void fail(std::exception_ptr error);

    // Reader side (one thread). The next part, in order, or (with `end` set) the
    // evaluation after the last one; waits for it, and rethrows what the worker failed with.
    struct Piece {
        std::vector<EvaluatedMatch> matches;
        std::optional<BatchEvaluation> end;
    };
    Piece read();
    // Whether read() would return without waiting.
    bool ready();
    // The reader stops reading: the worker no longer waits for it.
    void abandon() noexcept;

    // How often put() waited for the reader, and the most parts that were unread at once.
    std::size_t waits();
    std::size_t most_parts_waiting();

private:
    std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<std::vector<EvaluatedMatch>> parts_;
    std::optional<BatchEvaluation> end_;
    std::exception_ptr error_;
    bool abandoned_ = false;
    const std::size_t max_parts_waiting_;
    std::size_t waits_ = 0;
    std::size_t most_parts_waiting_ = 0;
};

// Streamed batches (BatchWorkers::stream) whose matches are taken in the order the
// batches were read, whichever worker finishes first: the oldest batch's as they come,
// the others' once it is done (their workers wait after a few parts). Info is what the
// taker keeps about a batch.
template <typename Info>
class StreamedBatches {
public:
    struct Handlers {
        std::function<void(Info&)> begin;                                // before the batch's first match
        std::function<void(Info&, std::vector<EvaluatedMatch>&)> part;  // a part, in order
        std::function<void(Info&, BatchEvaluation&)> end;               // then the rest, once done
    };

    explicit StreamedBatches(Handlers handlers) : handlers_(std::move(handlers)) {}
    StreamedBatches(const StreamedBatches&) = delete;
    StreamedBatches& operator=(const StreamedBatches&) = delete;
    // Leaving early (an exception), the workers must not wait for parts nobody reads.
    ~StreamedBatches() {
        for (auto& batch : batches_) batch.matches->abandon();
    }

    void push(Info info, std::shared_ptr<MatchStream> matches) {
        batches_.push_back({std::move(info), std::move(matches), false});
    }
    std::size_t size() const noexcept { return batches_.size(); }
    bool empty() const noexcept { return batches_.empty(); }

    // Takes what the oldest batch has given so far (with wait: all of it, waiting for
    // its worker). True once that batch is done and gone.
    bool take_from_oldest(bool wait) {
        Batch& oldest = batches_.front();
        while (wait || oldest.matches->ready()) {
            MatchStream::Piece piece = oldest.matches->read();
            if (!oldest.begun) {
                oldest.begun = true;
                handlers_.begin(oldest.info);
            }
            if (!piece.end) {
                handlers_.part(oldest.info, piece.matches);
                continue;
            }
            Info info = std::move(oldest.info);
            batches_.pop_front();
            handlers_.end(info, *piece.end);
            return true;
        }
        return false;
    }
    // What is ready, batch after batch; with max_waiting, all of the oldest batches
    // first until fewer than that many are left.
    void take_ready(std::size_t max_waiting) {
        while (!batches_.empty() && take_from_oldest(batches_.size() >= max_waiting)) {
        }
    }
    void take_all() {
        while (!batches_.empty()) take_from_oldest(true);
    }

private:
    struct Batch {
        Info info;
        std::shared_ptr<MatchStream> matches;
        bool begun = false;
    };
    Handlers handlers_;
    std::deque<Batch> batches_;
};

// Decodes one batch and runs the rules on each event. Rules whose rules_to_run entry
// is false (disabled, or their team is not granted the source) are evaluated by the
// combined program like the others but their matches are left out. More matches than
// limits.max_alerts_per_batch fail the batch (an alert storm: a rule gone wrong, a flood
// of hostile records); the matches before it are kept. With rendering, every match's
// alert is made here (EvaluatedMatch::alert). With a stream, the matches go there in
// parts (MatchStream::kMatchesPerPart, kPartBytes) as they are decided, and the
// evaluation returned holds those after the last part.
BatchEvaluation evaluate_batch(FilterStage& filter, std::span<const std::uint8_t> data, std::string_view origin,
                               const std::vector<bool>& rules_to_run, const InputLimits& limits = {},
                               const AlertRendering* rendering = nullptr, MatchStream* stream = nullptr);

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

    // Queues a batch for evaluate_batch on the next free worker, with its matches read
    // from the stream while it is decoded. data, *rules_to_run and *rendering must stay
    // valid until the stream has ended.
    std::shared_ptr<MatchStream> stream(std::span<const std::uint8_t> data, std::string origin,
                                        const std::vector<bool>* rules_to_run, const InputLimits& limits = {},
                                        const AlertRendering* rendering = nullptr);

private:
    using Job = std::packaged_task<void(FilterStage&)>;
    void enqueue(Job job);
    void work(std::size_t index);

    FilterStage& first_filter_;
    FilterFactory make_filter_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<Job> jobs_;
    bool closing_ = false;
    std::vector<std::thread> threads_;
};

}  // namespace tattle
