#include "tattle/outbox.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <sstream>
#include <stdexcept>

#include "tattle/cpu_time.hpp"
#include "tattle/dedup.hpp"
#include "tattle/secrets.hpp"
#include "tattle/spool.hpp"

namespace tattle {

namespace {

// Delivered alerts are flushed in groups: one fsync of a file sink covers many.
constexpr std::size_t kMaxUnflushed = 64;
// Deferred wake-ups still come at least this often, so a long batch keeps the workers busy.
constexpr std::size_t kWakeEvery = 64;
// Map nodes of sent alerts kept for the next arrivals: a queue's worth in steady flow.
constexpr std::size_t kSpareNodes = 256;

std::string seconds_text(std::chrono::milliseconds duration) {
    std::ostringstream out;
    out << static_cast<double>(duration.count()) / 1000.0 << " s";
    return out.str();
}

std::string duration_text(std::chrono::milliseconds duration) {
    if (duration < std::chrono::seconds(1)) return std::to_string(duration.count()) + " ms";
    return seconds_text(duration);
}

class RealClock final : public Clock {
public:
    SteadyTime now() override { return std::chrono::steady_clock::now(); }
    WallTime wall_now() override { return std::chrono::system_clock::now(); }
    void wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                    SteadyTime deadline, bool /*others_working*/) override {
        cv.wait_until(lock, deadline);
    }
};

}  // namespace

// ---- settings ------------------------------------------------------------------

std::vector<DeliveryProblem> plugin_delivery_suggestion(const boost::json::value& config_schema,
                                                        DeliveryOverrides& out) {
    const auto* schema = config_schema.if_object();
    const auto* suggestion = schema != nullptr ? schema->if_contains("x-tattle-delivery") : nullptr;
    if (suggestion == nullptr) return {};
    if (!suggestion->is_object()) return {{"", "x-tattle-delivery must be an object"}};
    return read_delivery_overrides(suggestion->get_object(), out);
}

DeliverySettings resolve_delivery_settings(const DeliveryOverrides& plugin_suggestion,
                                           const DeliveryOverrides& configured,
                                           std::vector<std::string>& problems) {
    auto pick = [](const auto& suggested, const auto& given) { return given ? given : suggested; };
    DeliverySettings settings;
    if (auto value = pick(plugin_suggestion.rate_per_second, configured.rate_per_second)) {
        settings.rate_per_second = *value;
    }
    if (auto value = pick(plugin_suggestion.burst, configured.burst))
        settings.burst = static_cast<unsigned>(*value);
    if (auto value = pick(plugin_suggestion.concurrency, configured.concurrency)) {
        settings.concurrency = static_cast<unsigned>(*value);
    }
    if (auto value = pick(plugin_suggestion.queue_size, configured.queue_size)) {
        settings.queue_size = static_cast<std::size_t>(*value);
    }
    if (auto value = pick(plugin_suggestion.max_attempts, configured.max_attempts)) {
        settings.max_attempts = static_cast<unsigned>(*value);
    }
    if (auto value = pick(plugin_suggestion.max_retry_seconds, configured.max_retry_seconds)) {
        settings.max_retry_time =
            std::chrono::milliseconds(static_cast<std::int64_t>(*value * 1000.0));
    }
    if (auto value = pick(plugin_suggestion.initial_backoff_ms, configured.initial_backoff_ms)) {
        settings.initial_backoff = std::chrono::milliseconds(*value);
    }
    if (auto value = pick(plugin_suggestion.max_backoff_ms, configured.max_backoff_ms)) {
        settings.max_backoff = std::chrono::milliseconds(*value);
    }
    if (settings.max_backoff < settings.initial_backoff) {
        problems.push_back("delivery.max_backoff_ms (" +
                           std::to_string(settings.max_backoff.count()) +
                           ") is less than delivery.initial_backoff_ms (" +
                           std::to_string(settings.initial_backoff.count()) + ")");
    }
    return settings;
}

std::string describe(const DeliverySettings& settings) {
    std::ostringstream out;
    if (settings.rate_per_second > 0) {
        out << settings.rate_per_second << "/s burst " << settings.burst;
    } else {
        out << "no rate limit";
    }
    out << ", " << settings.concurrency << (settings.concurrency == 1 ? " worker" : " workers")
        << ", queue " << settings.queue_size << ", up to " << settings.max_attempts
        << " attempts within " << seconds_text(settings.max_retry_time) << ", backoff "
        << duration_text(settings.initial_backoff) << " to " << duration_text(settings.max_backoff)
        << " with full jitter";
    return out.str();
}

const char* status_name(DeliveryStatus status) noexcept {
    switch (status) {
        case DeliveryStatus::Delivered:
            return "delivered";
        case DeliveryStatus::Duplicate:
            return "duplicate";
        case DeliveryStatus::Spooled:
            return "spooled";
        case DeliveryStatus::Lost:
            return "lost";
    }
    return "unknown";
}

// ---- time ------------------------------------------------------------------------

Clock& real_clock() {
    static RealClock clock;
    return clock;
}

SimulatedClock::SimulatedClock()
    : start_(std::chrono::steady_clock::now()), wall_start_(std::chrono::system_clock::now()) {}

SteadyTime SimulatedClock::now() { return start_ + std::chrono::nanoseconds(elapsed_ns_.load()); }

WallTime SimulatedClock::wall_now() {
    return wall_start_ + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                             std::chrono::nanoseconds(elapsed_ns_.load()));
}

void SimulatedClock::wait_until(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                                SteadyTime deadline, bool others_working) {
    if (others_working) {
        cv.wait(lock);  // their result may change what we wait for; time stands still meanwhile
        return;
    }
    const std::int64_t target =
        std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - start_).count();
    std::int64_t current = elapsed_ns_.load();
    while (current < target && !elapsed_ns_.compare_exchange_weak(current, target)) {
    }
    cv.notify_all();  // other waiters of the same outbox see the new time
}

void SimulatedClock::advance(std::chrono::nanoseconds by) { elapsed_ns_ += by.count(); }

std::chrono::nanoseconds SimulatedClock::elapsed() {
    return std::chrono::nanoseconds(elapsed_ns_.load());
}

std::chrono::milliseconds backoff_ceiling(const DeliverySettings& settings,
                                          unsigned failed_attempts) {
    std::chrono::milliseconds ceiling = settings.initial_backoff;
    for (unsigned i = 1; i < failed_attempts && ceiling < settings.max_backoff; ++i) ceiling *= 2;
    return std::min(ceiling, settings.max_backoff);
}

std::chrono::milliseconds jittered_backoff(const DeliverySettings& settings,
                                           unsigned failed_attempts, std::mt19937_64& random) {
    const auto ceiling = backoff_ceiling(settings, failed_attempts);
    std::uniform_int_distribution<std::int64_t> pick(0, ceiling.count());
    return std::chrono::milliseconds(pick(random));
}

TokenBucket::TokenBucket(double rate_per_second, unsigned burst, SteadyTime now)
    : rate_(rate_per_second), burst_(std::max(1U, burst)), tokens_(burst_), updated_(now) {}

double TokenBucket::tokens_at(SteadyTime now) const {
    if (rate_ <= 0) return burst_;
    const double elapsed = std::max(0.0, std::chrono::duration<double>(now - updated_).count());
    return std::min(burst_, tokens_ + elapsed * rate_);
}

SteadyTime TokenBucket::next_token_at(SteadyTime now) const {
    if (rate_ <= 0) return now;
    const double tokens = tokens_at(now);
    // Tolerance for the rounding of the refill arithmetic: waiting until the computed
    // instant must be enough.
    if (tokens >= 1.0 - 1e-9) return now;
    return now + std::chrono::ceil<std::chrono::nanoseconds>(
                     std::chrono::duration<double>((1.0 - tokens) / rate_));
}

void TokenBucket::take(SteadyTime now) {
    if (rate_ <= 0) return;
    tokens_ = std::max(0.0, tokens_at(now) - 1.0);
    updated_ = now;
}

// ---- outbox ------------------------------------------------------------------------

Outbox::Outbox(std::string destination, DeliverySettings settings, const SinkFactory& make_sink,
               OutboxServices services)
    : destination_(std::move(destination)),
      settings_(settings),
      services_(std::move(services)),
      clock_(services_.clock != nullptr ? *services_.clock : real_clock()),
      bucket_(settings_.rate_per_second, settings_.burst, clock_.now()),
      random_(services_.random_seed.value_or(std::random_device{}())) {
    if (services_.spool == nullptr) throw std::invalid_argument("an outbox needs a spool");
    settings_.concurrency = std::max(1U, settings_.concurrency);
    settings_.queue_size = std::max<std::size_t>(1, settings_.queue_size);
    settings_.max_attempts = std::max(1U, settings_.max_attempts);
    for (unsigned i = 0; i < settings_.concurrency; ++i) sinks_.push_back(make_sink());
    for (std::size_t i = 0; i < sinks_.size(); ++i) workers_.emplace_back([this, i] { work(i); });
}

Outbox::~Outbox() {
    {
        std::lock_guard lock(mutex_);
        abandoning_ = true;
    }
    work_ready_.notify_all();
    space_free_.notify_all();
    for (auto& worker : workers_) worker.join();
}

void Outbox::enqueue(DeliveryItem item, bool defer_wake) {
    std::vector<DeliveryItem> items;
    items.push_back(std::move(item));
    enqueue_all(std::move(items), defer_wake);
}

std::vector<Outbox::ReadyQueue::node_type> Outbox::nodes_for(std::size_t count) {
    std::vector<ReadyQueue::node_type> nodes;
    nodes.reserve(count);
    {
        std::lock_guard lock(mutex_);
        while (nodes.size() < count && !spare_nodes_.empty()) {
            nodes.push_back(std::move(spare_nodes_.back()));
            spare_nodes_.pop_back();
        }
    }
    ReadyQueue fresh;
    while (nodes.size() < count) {
        fresh.emplace(ReadyKey{}, Pending{});
        nodes.push_back(fresh.extract(fresh.begin()));
    }
    return nodes;
}

void Outbox::keep_spare(ReadyQueue::node_type&& node) {
    if (spare_nodes_.size() < kSpareNodes) spare_nodes_.push_back(std::move(node));
}

void Outbox::enqueue_all(std::vector<DeliveryItem> items, bool defer_wake) {
    std::vector<ReadyQueue::node_type> arriving = nodes_for(items.size());
    for (std::size_t i = 0; i < items.size(); ++i) {
        Pending& pending = arriving[i].mapped();
        pending = Pending{};
        // Only deduplication asks for the key (a SHA-256 per alert).
        if (services_.dedup != nullptr) pending.key = delivery_key(destination_, items[i].alert_id);
        pending.item = std::move(items[i]);
    }
    std::vector<Pending*> duplicates;
    {
        std::unique_lock lock(mutex_);
        for (auto& node : arriving) {
            Pending& pending = node.mapped();
            // The same alert is already here (a batch redelivered while its first copy is on
            // its way): that copy will be delivered or spooled, or its own batch released.
            if (services_.dedup != nullptr && held_keys_.count(pending.key) != 0) {
                duplicates.push_back(&pending);
                continue;
            }
            if (held_ >= settings_.queue_size && unannounced_ > 0) {
                // Waiting for room: the workers must know about everything queued so far.
                unannounced_ = 0;
                work_ready_.notify_all();
            }
            space_free_.wait(lock, [&] { return held_ < settings_.queue_size || abandoning_; });
            if (closing_ || abandoning_)
                throw std::logic_error("outbox of \"" + destination_ + "\" is closed");
            ++held_;
            if (services_.dedup != nullptr) ++held_keys_[pending.key];
            node.key() = ReadyKey{clock_.now(), arrivals_++};
            ready_.insert(std::move(node));
            if (!defer_wake || ++unannounced_ >= kWakeEvery || held_ >= settings_.queue_size) {
                unannounced_ = 0;
                work_ready_.notify_all();
            }
        }
    }
    for (Pending* duplicate : duplicates) report(*duplicate, DeliveryStatus::Duplicate, {}, {});
}

void Outbox::wake() {
    {
        std::lock_guard lock(mutex_);
        if (unannounced_ == 0) return;
        unannounced_ = 0;
    }
    work_ready_.notify_all();
}

void Outbox::close() {
    {
        std::lock_guard lock(mutex_);
        closing_ = true;
    }
    work_ready_.notify_all();
    for (auto& worker : workers_) worker.join();
    workers_.clear();
}

void Outbox::give_up_from(SteadyTime at) {
    {
        std::lock_guard lock(mutex_);
        if (!services_.give_up_at || at < *services_.give_up_at) services_.give_up_at = at;
    }
    work_ready_.notify_all();
}

std::size_t Outbox::held() const {
    std::lock_guard lock(mutex_);
    return held_;
}

void Outbox::work(std::size_t worker_index) {
    const CountedThread counted(ThreadRole::delivery);
    SinkInstance& sink = *sinks_[worker_index];
    std::vector<Pending> unflushed;
    unflushed.reserve(kMaxUnflushed);
    std::unique_lock lock(mutex_);
    while (!abandoning_) {
        const SteadyTime now = clock_.now();
        std::optional<SteadyTime> next_at;
        if (!ready_.empty())
            next_at = std::max(ready_.begin()->first.first, bucket_.next_token_at(now));
        if (services_.give_up_at && now >= *services_.give_up_at && !ready_.empty()) {
            // Out of time: whatever still waits (for a token, for its retry) is given up on now.
            auto node = ready_.extract(ready_.begin());
            Pending late = std::move(node.mapped());
            keep_spare(std::move(node));
            ++in_flight_;
            lock.unlock();
            std::string reason = "the deadline came before it was delivered";
            if (!late.last_error.empty()) reason += "; last error: " + late.last_error;
            give_up(std::move(late), reason);
            lock.lock();
            continue;
        }
        if (next_at && services_.give_up_at) next_at = std::min(*next_at, *services_.give_up_at);
        const bool can_take = next_at && *next_at <= now && (!services_.give_up_at || now < *services_.give_up_at);
        // Flush before any wait, so nothing delivered sits unacknowledged while we sleep,
        // and promptly when the pipeline waits for room in the queue.
        if (!unflushed.empty() &&
            (!can_take || unflushed.size() >= kMaxUnflushed || held_ >= settings_.queue_size)) {
            lock.unlock();
            flush_delivered(sink, unflushed);
            lock.lock();
            continue;
        }
        if (!can_take) {
            if (!next_at) {
                if (closing_ && in_flight_ == 0) break;
                work_ready_.wait(lock);
            } else {
                clock_.wait_until(lock, work_ready_, *next_at, in_flight_ > 0);
            }
            continue;
        }
        auto node = ready_.extract(ready_.begin());
        Pending pending = std::move(node.mapped());
        keep_spare(std::move(node));
        ++in_flight_;
        // Checked at send time too: the alert may have been delivered since it was
        // queued (a replay racing a run). Not for our own retries: their key may have
        // been recorded before a flush failed.
        if (services_.dedup != nullptr && pending.attempts_this_run == 0 &&
            services_.dedup->contains(pending.key, clock_.wall_now())) {
            lock.unlock();
            complete(std::move(pending), DeliveryStatus::Duplicate, {}, {});
            lock.lock();
            continue;
        }
        bucket_.take(now);
        pending.last_attempt_wall = clock_.wall_now();
        if (pending.attempts_this_run == 0) {
            pending.first_attempt_steady = now;
            pending.first_attempt_wall = pending.item.first_attempt.value_or(pending.last_attempt_wall);
        }
        ++pending.attempts_this_run;
        lock.unlock();

        SendOutcome outcome = sink.send(pending.item.alert_json);
        if (outcome.code == SendOutcome::Code::Ok) {
            // Remembered at once, not at the flush: a crash from here on must not send it
            // again, and a busy worker flushes only every kMaxUnflushed alerts.
            if (services_.dedup != nullptr)
                services_.dedup->record({pending.key}, clock_.wall_now());
            unflushed.push_back(std::move(pending));
            lock.lock();
            if (failing_) {
                failing_ = false;
                spdlog::info("destination \"{}\" accepts alerts again", destination_);
            }
            continue;
        }
        handle_failure(std::move(pending), outcome);
        lock.lock();
    }
    lock.unlock();
    work_ready_.notify_all();
}

void Outbox::handle_failure(Pending pending, const SendOutcome& outcome) {
    const std::string message =
        redact(outcome.message.empty() ? "no reason given" : outcome.message);
    pending.last_error = message;
    const unsigned total_attempts = pending.item.previous_attempts + pending.attempts_this_run;
    if (outcome.code == SendOutcome::Code::Fail) {
        give_up(std::move(pending), "refused by the destination: " + message);
        return;
    }
    std::unique_lock lock(mutex_);
    const SteadyTime now = clock_.now();
    auto delay = jittered_backoff(settings_, pending.attempts_this_run, random_);
    const bool server_asked = outcome.retry_after && *outcome.retry_after > delay;
    if (server_asked) delay = *outcome.retry_after;
    std::string reason;
    if (pending.attempts_this_run >= settings_.max_attempts) {
        reason = "gave up after " + std::to_string(pending.attempts_this_run) + " attempts";
    } else if (services_.give_up_at && now + delay >= *services_.give_up_at) {
        reason = "the deadline comes before the next attempt (" + std::to_string(pending.attempts_this_run) +
                 " attempts made)";
    } else if (now + delay - pending.first_attempt_steady > settings_.max_retry_time) {
        reason = "retry budget of " + seconds_text(settings_.max_retry_time) + " used up after " +
                 std::to_string(pending.attempts_this_run) + " attempts";
        if (server_asked) reason += " (the destination asked to wait " + duration_text(delay) + ")";
    }
    if (!reason.empty()) {
        lock.unlock();
        give_up(std::move(pending), reason + "; last error: " + message);
        return;
    }
    if (!failing_) {
        failing_ = true;
        spdlog::warn(
            "destination \"{}\" is failing ({}); alerts are kept and retried with backoff, up to "
            "{} "
            "attempts within {}, then spooled",
            destination_, message, settings_.max_attempts, seconds_text(settings_.max_retry_time));
    }
    spdlog::debug("alert {} for \"{}\": attempt {} failed ({}); next in {}", pending.item.alert_id,
                  destination_, total_attempts, message, duration_text(delay));
    ++retries_;
    ready_.emplace(ReadyKey{now + delay, arrivals_++}, std::move(pending));
    --in_flight_;
    lock.unlock();
    work_ready_.notify_all();
}

void Outbox::flush_delivered(SinkInstance& sink, std::vector<Pending>& unflushed) {
    if (const std::string error = sink.flush(); !error.empty()) {
        // What was sent may not be durable: send it again (at least once, never lost).
        if (services_.dedup != nullptr) {
            std::vector<std::string> keys;
            for (const auto& pending : unflushed) keys.push_back(pending.key);
            services_.dedup->forget(keys, clock_.wall_now());
        }
        SendOutcome outcome;
        outcome.code = SendOutcome::Code::Retry;
        outcome.message = "flush failed: " + error;
        for (auto& pending : unflushed) handle_failure(std::move(pending), outcome);
        unflushed.clear();
        return;
    }
    complete_delivered(unflushed);
    unflushed.clear();
}

void Outbox::give_up(Pending pending, const std::string& reason) {
    SpoolRecord record;
    record.destination = destination_;
    record.alert_id = pending.item.alert_id;
    record.rule = pending.item.rule;
    record.attempts = pending.item.previous_attempts + pending.attempts_this_run;
    record.first_attempt = pending.first_attempt_wall;
    record.last_attempt = pending.last_attempt_wall;
    record.spooled_at = clock_.wall_now();
    record.last_error = reason;
    record.alert_json = pending.item.alert_json;
    try {
        const std::string id = services_.spool->put(record);
        spdlog::error(
            "alert {} (rule \"{}\") for \"{}\" spooled as {} after {} attempt(s): {}; "
            "`tattle spool replay` sends it again",
            pending.item.alert_id, pending.item.rule, destination_, id.substr(0, 12),
            record.attempts, reason);
        complete(std::move(pending), DeliveryStatus::Spooled, reason, id);
    } catch (const std::exception& e) {
        spdlog::error(
            "alert {} (rule \"{}\") for \"{}\" was not delivered ({}) and could not be spooled: "
            "{}; "
            "its batch is released, not acknowledged",
            pending.item.alert_id, pending.item.rule, destination_, reason, e.what());
        complete(std::move(pending), DeliveryStatus::Lost, reason + "; not spooled: " + e.what(), {});
    }
}

void Outbox::complete(Pending&& pending, DeliveryStatus status, std::string error, std::string spool_id) {
    report(pending, status, std::move(error), std::move(spool_id));
    release_settled(&pending, 1);
}

void Outbox::complete_delivered(std::vector<Pending>& delivered) {
    for (auto& pending : delivered) report(pending, DeliveryStatus::Delivered, {}, {});
    release_settled(delivered.data(), delivered.size());
}

void Outbox::report(Pending& pending, DeliveryStatus status, std::string error, std::string spool_id) {
    if (!services_.on_complete) return;
    DeliveryCompletion completion;
    completion.ticket = pending.item.ticket;
    completion.status = status;
    completion.destination = destination_;
    completion.alert_id = std::move(pending.item.alert_id);
    completion.rule = std::move(pending.item.rule);
    completion.attempts = pending.item.previous_attempts + pending.attempts_this_run;
    completion.error = std::move(error);
    completion.spool_id = std::move(spool_id);
    services_.on_complete(std::move(completion));
}

void Outbox::release_settled(const Pending* settled, std::size_t count) {
    {
        std::lock_guard lock(mutex_);
        in_flight_ -= count;
        held_ -= count;
        for (std::size_t i = 0; i < count && services_.dedup != nullptr; ++i) {
            if (auto found = held_keys_.find(settled[i].key); found != held_keys_.end() && --found->second == 0) {
                held_keys_.erase(found);
            }
        }
    }
    work_ready_.notify_all();
    space_free_.notify_all();
}

}  // namespace tattle
