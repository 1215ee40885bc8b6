#pragma once

// What `tattle serve` shows on /metrics: counters the pipeline feeds while it runs,
// rendered in the Prometheus text exposition format (version 0.0.4). Every method is
// thread-safe: the pipeline writes from its thread, the HTTP server reads from its own.

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tattle/outbox.hpp"

namespace tattle {

enum class AlertOutcome { Delivered, Spooled, Failed, Suppressed };
enum class BatchOutcome { Settled, Released, Unreadable };

// A label value as the exposition format wants it: \ " and newline escaped.
std::string escape_label_value(std::string_view value);

class PipelineMetrics {
public:
    // Upper bounds (seconds) of tattle_batch_duration_seconds' buckets; +Inf comes last.
    static constexpr std::array<double, 13> kBatchDurationBuckets{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                                  1.0,   2.5,  5.0,   10.0, 30.0, 60.0};

    // A run begins: its rules and destinations are shown from now on, at zero when quiet.
    void run_started(const std::vector<std::string>& rules, const std::vector<std::string>& destinations);
    // A run ended: its per-run totals (retries, rule errors) become part of the history.
    void run_finished();

    void event_read() noexcept { events_read_.fetch_add(1, std::memory_order_relaxed); }
    void events_read(std::uint64_t count) noexcept { events_read_.fetch_add(count, std::memory_order_relaxed); }
    void rule_matched(const std::string& rule);
    void alert_settled(const std::string& destination, AlertOutcome outcome);
    void batch_opened(std::uint64_t ticket, SteadyTime at);
    // Settled or released once its alerts are settled; duration since batch_opened.
    void batch_closed(std::uint64_t ticket, BatchOutcome outcome, SteadyTime at);
    void batch_unreadable();
    // A record skipped or a batch failed for going over a [limits] value (its key).
    void input_limit_hit(const std::string& limit);
    // A rule stopped by the rule budget and disabled; reason: cpu, memory or crash.
    void rule_disabled(const std::string& rule, const std::string& reason);
    // Totals of the current run so far (they only grow within a run).
    void set_run_delivery_retries(std::size_t retries);
    void set_run_rule_errors(const std::string& rule, std::size_t errors);
    void config_reloaded(bool ok);
    // Between run_started and run_finished: the sources exist and are being read.
    bool run_in_progress() const noexcept { return run_in_progress_.load(); }

    // The exposition text; tattle_source_lag_seconds is the age, at now, of the oldest
    // batch handed out and not yet acknowledged (0 when none is).
    std::string render(SteadyTime now) const;

private:
    std::atomic<std::uint64_t> events_read_{0};
    std::atomic<bool> run_in_progress_{false};
    mutable std::mutex mutex_;
    std::map<std::string, std::uint64_t> rule_matches_;
    std::map<std::string, std::uint64_t> rule_errors_done_;  // runs that ended
    std::map<std::string, std::uint64_t> rule_errors_run_;   // the current run
    std::map<std::pair<std::string, AlertOutcome>, std::uint64_t> alerts_;
    std::uint64_t retries_done_ = 0;
    std::uint64_t retries_run_ = 0;
    std::array<std::uint64_t, 3> batches_{};  // by BatchOutcome
    std::array<std::uint64_t, kBatchDurationBuckets.size() + 1> duration_buckets_{};  // not cumulative; last +Inf
    double duration_sum_ = 0;
    std::uint64_t duration_count_ = 0;
    std::map<std::uint64_t, SteadyTime> open_batches_;
    std::map<std::string, std::uint64_t> limit_hits_;
    std::map<std::pair<std::string, std::string>, std::uint64_t> rules_disabled_;  // by rule, reason
    std::uint64_t reloads_ok_ = 0;
    std::uint64_t reloads_failed_ = 0;
};

}  // namespace tattle
