#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tattle/config.hpp"
#include "tattle/plugin_catalog.hpp"

namespace tattle {

class DedupStore;
class Spool;

using SteadyTime = std::chrono::steady_clock::time_point;
using WallTime = std::chrono::system_clock::time_point;

// How the core delivers to one destination, every field set.
struct DeliverySettings {
    double rate_per_second = 0;  // 0: no rate limit
    unsigned burst = 1;
    unsigned concurrency = 1;
    std::size_t queue_size = 1000;
    unsigned max_attempts = 10;
    std::chrono::milliseconds max_retry_time{std::chrono::minutes(5)};
    std::chrono::milliseconds initial_backoff{500};
    std::chrono::milliseconds max_backoff{std::chrono::seconds(60)};
};

// Reads a plugin's suggested delivery settings: the "x-tattle-delivery" object at the
// top of its config schema (same keys as the delivery table). Returns its problems.
std::vector<DeliveryProblem> plugin_delivery_suggestion(const boost::json::value& config_schema,
                                                        DeliveryOverrides& out);
// The core's defaults, overridden by the plugin's suggestion, overridden by the
// config. A problem (max_backoff_ms below initial_backoff_ms once merged) is appended.
DeliverySettings resolve_delivery_settings(const DeliveryOverrides& plugin_suggestion,
                                           const DeliveryOverrides& configured,
                                           std::vector<std::string>& problems);
// One line for `tattle check`: "1/s burst 5, 1 worker, queue 1000, 10 attempts within 300 s, ...".
std::string describe(const DeliverySettings& settings);

// Time as the outbox sees it. Every wait goes through the clock so that tests run
// minutes of backoff and rate limiting in simulated time.
class Clock {
public:
    virtual ~Clock() = default;
    virtual SteadyTime now() = 0;
    virtual WallTime wall_now() = 0;
    // Waits on cv (lock held by the caller) until notified or until deadline.
    // others_working: another thread is busy (a send) and will notify when done; a
    // simulated clock lets time pass only when nobody is.
    virtual void wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                            SteadyTime deadline, bool others_working) = 0;
};

// The real clocks.
Clock& real_clock();

// Discrete-event time: it stands still while anyone works and jumps to the next
// deadline when every waiter is waiting for time. Deterministic for tests.
class SimulatedClock final : public Clock {
public:
    SimulatedClock();
    SteadyTime now() override;
    WallTime wall_now() override;
    void wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                    SteadyTime deadline, bool others_working) override;
    void advance(std::chrono::nanoseconds by);
    // Simulated time since construction.
    std::chrono::nanoseconds elapsed();

private:
    SteadyTime start_;
    WallTime wall_start_;
    std::atomic<std::int64_t> elapsed_ns_{0};
};

// The upper bound of the delay before retry number failed_attempts (1 after the
// first failure): min(max_backoff, initial_backoff * 2^(failed_attempts - 1)).
std::chrono::milliseconds backoff_ceiling(const DeliverySettings& settings,
                                          unsigned failed_attempts);
// "Full jitter": uniform in [0, backoff_ceiling], so that senders that failed
// together do not retry together.
std::chrono::milliseconds jittered_backoff(const DeliverySettings& settings,
                                           unsigned failed_attempts, std::mt19937_64& random);

// Token bucket: `burst` tokens, refilled at `rate` per second; rate 0 = unlimited.
class TokenBucket {
public:
    TokenBucket(double rate_per_second, unsigned burst, SteadyTime now);
    // When the next token is there (now if it already is).
    SteadyTime next_token_at(SteadyTime now) const;
    // Takes a token; call only when next_token_at(now) <= now.
    void take(SteadyTime now);

private:
    double tokens_at(SteadyTime now) const;
    double rate_;
    double burst_;
    double tokens_;
    SteadyTime updated_;
};

// One alert for one destination.
struct DeliveryItem {
    std::string alert_json;
    std::string alert_id;
    std::string rule;
    std::uint64_t ticket = 0;        // the caller's, handed back with the completion
    unsigned previous_attempts = 0;  // made before (a spooled alert being replayed)
    std::optional<WallTime> first_attempt;
};

enum class DeliveryStatus {
    Delivered,  // the sink said OK and its flush succeeded
    Duplicate,  // delivered before (duplicate suppression): not sent
    Spooled,    // given up on, parked durably in the spool
    Lost,       // given up on and the spool could not be written: its batch must be released
};

const char* status_name(DeliveryStatus status) noexcept;

struct DeliveryCompletion {
    std::uint64_t ticket = 0;
    DeliveryStatus status = DeliveryStatus::Delivered;
    std::string destination;
    std::string alert_id;
    std::string rule;
    unsigned attempts = 0;  // all attempts, previous runs included
    std::string error;      // why it was spooled or lost (redacted)
    std::string spool_id;   // Spooled
};

struct OutboxServices {
    Clock* clock = nullptr;        // required
    const Spool* spool = nullptr;  // required
    DedupStore* dedup = nullptr;   // optional: skip keys delivered before, record new ones
    // Called from the worker threads once per enqueued item; must not block for long.
    std::function<void(DeliveryCompletion&&)> on_complete;
    std::optional<std::uint64_t> random_seed;  // fixed jitter for tests
    // Alerts not delivered by this time are given up on (spooled, else lost) instead of
    // waiting for a token or a retry: a Lambda invocation must answer before its deadline.
    std::optional<SteadyTime> give_up_at;
};

// Delivers alerts to one destination: a bounded queue, `concurrency` workers each with
// its own sink instance (a sink is never called from two threads at once), a token
// bucket, retries with exponential backoff and full jitter (never sooner than a
// Retry-After the sink gave), a retry budget of attempts and time, then the spool.
// A FAIL from the sink goes to the spool at once. An OK is recorded for duplicate
// suppression at once and completes (settles its batch) once the sink's flush
// succeeded; sends are flushed when a worker runs out of ready work, or every 64
// alerts. A failed flush takes the keys back and sends those alerts again.
class Outbox {
public:
    using SinkFactory = std::function<std::unique_ptr<SinkInstance>()>;

    // Creates the sink instances here, so that a sink that cannot be created fails
    // the caller, then starts the workers.
    Outbox(std::string destination, DeliverySettings settings, const SinkFactory& make_sink,
           OutboxServices services);
    // Stops the workers after their current send; alerts still queued are abandoned
    // (their batches are never acknowledged, so a source hands them out again).
    ~Outbox();
    Outbox(const Outbox&) = delete;
    Outbox& operator=(const Outbox&) = delete;

    // Queues an alert. Blocks while queue_size alerts are held (queued, waiting for a
    // retry, or being sent): backpressure on the pipeline when a destination is slow.
    // With defer_wake the workers are woken only every 64 alerts, when the queue is
    // full, or at wake(): a producer of many alerts then costs a thread handoff per
    // batch instead of one per alert.
    void enqueue(DeliveryItem item, bool defer_wake = false);
    // Queues alerts in their order as enqueue does each, under one lock for as many as
    // there is room for: a producer with many alerts at once takes the lock per group
    // rather than per alert, so the workers sending them find it free.
    void enqueue_all(std::vector<DeliveryItem> items, bool defer_wake = false);
    // Wakes the workers for alerts queued with defer_wake.
    void wake();
    // Waits until every queued alert is settled, then stops the workers.
    void close();
    // From `at` on, alerts not delivered are given up on (as with OutboxServices::give_up_at,
    // which stays when earlier): a daemon that is asked to stop settles within its grace period.
    void give_up_from(SteadyTime at);

    const std::string& destination() const noexcept { return destination_; }
    const DeliverySettings& settings() const noexcept { return settings_; }
    std::size_t retries() const noexcept { return retries_.load(); }
    std::size_t held() const;

private:
    struct Pending {
        DeliveryItem item;
        std::string key;  // delivery_key(destination, alert_id), with deduplication
        unsigned attempts_this_run = 0;
        SteadyTime first_attempt_steady{};
        WallTime first_attempt_wall{};
        WallTime last_attempt_wall{};
        std::string last_error;
    };
    using ReadyKey = std::pair<SteadyTime, std::uint64_t>;  // not before, then arrival order
    using ReadyQueue = std::map<ReadyKey, Pending>;

    void work(std::size_t worker_index);
    // Both called without the lock.
    void handle_failure(Pending pending, const SendOutcome& outcome);
    void flush_delivered(SinkInstance& sink, std::vector<Pending>& unflushed);
    void give_up(Pending pending, const std::string& reason);
    // Each takes the alert's id and rule over into its completion.
    void complete(Pending&& pending, DeliveryStatus status, std::string error, std::string spool_id);
    void complete_delivered(std::vector<Pending>& delivered);
    // Hands the completion on; called without the lock.
    void report(Pending& pending, DeliveryStatus status, std::string error, std::string spool_id);
    // The pending alerts are settled (no longer held or in flight): one lock for all.
    void release_settled(const Pending* settled, std::size_t count);
    // Map nodes for arriving alerts: spare ones first, so that alerts coming and going
    // do not allocate a node on the producer's thread and free it on a worker's.
    std::vector<ReadyQueue::node_type> nodes_for(std::size_t count);
    void keep_spare(ReadyQueue::node_type&& node);

    std::string destination_;
    DeliverySettings settings_;
    OutboxServices services_;
    Clock& clock_;

    mutable std::mutex mutex_;
    std::condition_variable work_ready_;  // workers wait here
    std::condition_variable space_free_;  // enqueue waits here
    ReadyQueue ready_;                    // new alerts and alerts waiting for a retry
    std::vector<ReadyQueue::node_type> spare_nodes_;
    std::uint64_t arrivals_ = 0;
    std::size_t unannounced_ = 0;  // queued with defer_wake since the last wake-up
    std::size_t held_ = 0;         // enqueued and not completed
    std::unordered_map<std::string, unsigned> held_keys_;  // their delivery keys (with deduplication)
    std::size_t in_flight_ = 0;  // taken by a worker and not completed or put back
    bool closing_ = false;
    bool abandoning_ = false;
    bool failing_ = false;  // for one warning per outage, not one per alert
    TokenBucket bucket_;
    std::mt19937_64 random_;
    std::atomic<std::size_t> retries_{0};

    std::vector<std::unique_ptr<SinkInstance>> sinks_;
    std::vector<std::thread> workers_;
};

}  // namespace tattle
