#include "tattle/metrics.hpp"

#include "tattle/cpu_time.hpp"
#include "tattle/limits.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace tattle {

namespace {

const char* outcome_label(AlertOutcome outcome) noexcept {
    switch (outcome) {
        case AlertOutcome::Delivered: return "delivered";
        case AlertOutcome::Spooled: return "spooled";
        case AlertOutcome::Failed: return "failed";
        case AlertOutcome::Suppressed: return "suppressed";
    }
    return "unknown";
}

constexpr std::array<AlertOutcome, 4> kAlertOutcomes{AlertOutcome::Delivered, AlertOutcome::Spooled,
                                                     AlertOutcome::Failed, AlertOutcome::Suppressed};
constexpr std::array<const char*, 3> kBatchOutcomeLabels{"settled", "released", "unreadable"};

// Prometheus floats: shortest text that reads back the same, no locale.
std::string number_text(double value) {
    if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
    char buffer[32];
    // Whole numbers without an exponent: le="10", not le="1e+01".
    if (value == std::trunc(value) && std::fabs(value) < 1e15) {
        std::snprintf(buffer, sizeof buffer, "%.0f", value);
        return buffer;
    }
    std::snprintf(buffer, sizeof buffer, "%.17g", value);
    // %.17g can print 0.10000000000000001; try shorter forms first.
    for (int precision = 1; precision < 17; ++precision) {
        char shorter[32];
        std::snprintf(shorter, sizeof shorter, "%.*g", precision, value);
        if (std::strtod(shorter, nullptr) == value) return shorter;
    }
    return buffer;
}

void header(std::string& out, const char* name, const char* type, const char* help) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
}

void sample(std::string& out, std::string_view name, const std::string& labels, const std::string& value) {
    out += name;
    if (!labels.empty()) {
        out += '{';
        out += labels;
        out += '}';
    }
    out += ' ';
    out += value;
    out += '\n';
}

std::string label(std::string_view name, std::string_view value) {
    std::string text(name);
    text += "=\"";
    text += escape_label_value(value);
    text += '"';
    return text;
}

}  // namespace

std::string escape_label_value(std::string_view value) {
    std::string escaped;
    escaped.reserve(value.size());
    for (const char c : value) {
        switch (c) {
            case '\\': escaped += "\\\\"; break;
            case '"': escaped += "\\\""; break;
            case '\n': escaped += "\\n"; break;
            default: escaped += c;
        }
    }
    return escaped;
}

void PipelineMetrics::run_started(const std::vector<std::string>& rules, const std::vector<std::string>& destinations) {
    std::lock_guard lock(mutex_);
    for (const auto& rule : rules) {
        rule_matches_.try_emplace(rule, 0);
        rule_errors_done_.try_emplace(rule, 0);
    }
    for (const auto& destination : destinations) {
        for (const auto outcome : kAlertOutcomes) alerts_.try_emplace({destination, outcome}, 0);
    }
    open_batches_.clear();
    retries_run_ = 0;
    rule_errors_run_.clear();
    run_in_progress_ = true;
}

void PipelineMetrics::run_finished() {
    std::lock_guard lock(mutex_);
    retries_done_ += std::exchange(retries_run_, 0);
    for (const auto& [rule, errors] : rule_errors_run_) rule_errors_done_[rule] += errors;
    rule_errors_run_.clear();
    open_batches_.clear();
    run_in_progress_ = false;
}

void PipelineMetrics::rule_matched(const std::string& rule) {
    std::lock_guard lock(mutex_);
    ++rule_matches_[rule];
}

void PipelineMetrics::alert_settled(const std::string& destination, AlertOutcome outcome) {
    std::lock_guard lock(mutex_);
    ++alerts_[{destination, outcome}];
}

void PipelineMetrics::batch_opened(std::uint64_t ticket, SteadyTime at) {
    std::lock_guard lock(mutex_);
    open_batches_[ticket] = at;
}

void PipelineMetrics::batch_closed(std::uint64_t ticket, BatchOutcome outcome, SteadyTime at) {
    std::lock_guard lock(mutex_);
    ++batches_.at(static_cast<std::size_t>(outcome));
    const auto found = open_batches_.find(ticket);
    if (found == open_batches_.end()) return;
    const double seconds = std::chrono::duration<double>(at - found->second).count();
    open_batches_.erase(found);
    const auto bucket = std::lower_bound(kBatchDurationBuckets.begin(), kBatchDurationBuckets.end(), seconds);
    ++duration_buckets_.at(static_cast<std::size_t>(bucket - kBatchDurationBuckets.begin()));
    duration_sum_ += seconds;
    ++duration_count_;
}

void PipelineMetrics::batch_unreadable() {
    std::lock_guard lock(mutex_);
    ++batches_.at(static_cast<std::size_t>(BatchOutcome::Unreadable));
}

void PipelineMetrics::input_limit_hit(const std::string& limit) {
    std::lock_guard lock(mutex_);
    ++limit_hits_[limit];
}

void PipelineMetrics::rule_disabled(const std::string& rule, const std::string& reason) {
    std::lock_guard lock(mutex_);
    ++rules_disabled_[{rule, reason}];
}

void PipelineMetrics::set_run_delivery_retries(std::size_t retries) {
    std::lock_guard lock(mutex_);
    retries_run_ = retries;
}

void PipelineMetrics::set_run_rule_errors(const std::string& rule, std::size_t errors) {
    std::lock_guard lock(mutex_);
    rule_errors_run_[rule] = errors;
}

void PipelineMetrics::config_reloaded(bool ok) {
    std::lock_guard lock(mutex_);
    ++(ok ? reloads_ok_ : reloads_failed_);
}

std::string PipelineMetrics::render(SteadyTime now) const {
    std::string out;
    header(out, "tattle_events_read_total", "counter", "CloudTrail events decoded from the sources' batches.");
    sample(out, "tattle_events_read_total", {}, std::to_string(events_read_.load(std::memory_order_relaxed)));
    const CpuByRole cpu = cpu_time_by_role();
    const std::chrono::duration<double> process_cpu = process_cpu_time();
    header(out, "tattle_cpu_seconds_total", "counter",
           "CPU time (user + system) by kind of thread: batch_workers (decoding, filtering, rendering alerts), "
           "delivery (the destinations' workers and their sinks), pipeline (reading the sources, routing "
           "alerts). When pipeline or delivery grows by about a second per second, more workers cannot help.");
    for (const auto& [threads, seconds] : {std::pair{"batch_workers", cpu.batch_workers},
                                           std::pair{"delivery", cpu.delivery}, std::pair{"pipeline", cpu.pipeline}}) {
        sample(out, "tattle_cpu_seconds_total", label("threads", threads),
               number_text(std::chrono::duration<double>(seconds).count()));
    }
    header(out, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
    sample(out, "process_cpu_seconds_total", {}, number_text(process_cpu.count()));

    std::lock_guard lock(mutex_);
    header(out, "tattle_rule_matches_total", "counter", "Events a rule matched.");
    for (const auto& [rule, count] : rule_matches_) {
        sample(out, "tattle_rule_matches_total", label("rule", rule), std::to_string(count));
    }
    header(out, "tattle_rule_errors_total", "counter", "jq runtime errors while evaluating a rule.");
    std::map<std::string, std::uint64_t> rule_errors = rule_errors_done_;
    for (const auto& [rule, errors] : rule_errors_run_) rule_errors[rule] += errors;
    for (const auto& [rule, count] : rule_errors) {
        sample(out, "tattle_rule_errors_total", label("rule", rule), std::to_string(count));
    }
    header(out, "tattle_alerts_total", "counter",
           "Alerts settled per destination: delivered, spooled (given up, parked), failed (neither), "
           "suppressed (delivered before).");
    for (const auto& [key, count] : alerts_) {
        sample(out, "tattle_alerts_total",
               label("destination", key.first) + ',' + label("outcome", outcome_label(key.second)),
               std::to_string(count));
    }
    header(out, "tattle_delivery_retries_total", "counter", "Sends tried again after a temporary failure.");
    sample(out, "tattle_delivery_retries_total", {}, std::to_string(retries_done_ + retries_run_));
    header(out, "tattle_batches_total", "counter",
           "Batches by outcome: settled (acknowledged), released (handed back), unreadable.");
    for (std::size_t i = 0; i < batches_.size(); ++i) {
        sample(out, "tattle_batches_total", label("outcome", kBatchOutcomeLabels.at(i)), std::to_string(batches_.at(i)));
    }
    header(out, "tattle_batch_duration_seconds", "histogram",
           "From a batch handed out by its source to its acknowledgement.");
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < duration_buckets_.size(); ++i) {
        cumulative += duration_buckets_.at(i);
        const double bound = i < kBatchDurationBuckets.size() ? kBatchDurationBuckets.at(i) : HUGE_VAL;
        sample(out, "tattle_batch_duration_seconds_bucket", label("le", number_text(bound)), std::to_string(cumulative));
    }
    sample(out, "tattle_batch_duration_seconds_sum", {}, number_text(duration_sum_));
    sample(out, "tattle_batch_duration_seconds_count", {}, std::to_string(duration_count_));
    header(out, "tattle_source_lag_seconds", "gauge", "Age of the oldest batch handed out and not yet acknowledged.");
    double lag = 0;
    if (!open_batches_.empty()) {
        SteadyTime oldest = open_batches_.begin()->second;
        for (const auto& [ticket, opened] : open_batches_) oldest = std::min(oldest, opened);
        lag = std::max(0.0, std::chrono::duration<double>(now - oldest).count());
    }
    sample(out, "tattle_source_lag_seconds", {}, number_text(lag));
    header(out, "tattle_input_limit_hits_total", "counter",
           "Records skipped and batches failed for going over a [limits] value, by limit.");
    for (const auto& key : input_limit_keys()) {
        const auto found = limit_hits_.find(key);
        sample(out, "tattle_input_limit_hits_total", label("limit", key),
               std::to_string(found == limit_hits_.end() ? 0 : found->second));
    }
    header(out, "tattle_rules_disabled_total", "counter",
           "Rules stopped and disabled for exceeding the rule budget or crashing the rule evaluator, by rule "
           "and reason (cpu, memory, crash).");
    for (const auto& [key, count] : rules_disabled_) {
        sample(out, "tattle_rules_disabled_total", label("rule", key.first) + "," + label("reason", key.second),
               std::to_string(count));
    }
    header(out, "tattle_config_reloads_total", "counter", "Config reloads (SIGHUP, POST /-/reload) by result.");
    sample(out, "tattle_config_reloads_total", label("result", "ok"), std::to_string(reloads_ok_));
    sample(out, "tattle_config_reloads_total", label("result", "failed"), std::to_string(reloads_failed_));
    return out;
}

}  // namespace tattle
