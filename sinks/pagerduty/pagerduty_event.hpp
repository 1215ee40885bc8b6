#pragma once

// Turns an alert document into a PagerDuty Events API v2 `trigger` request body.
// Pure functions: no I/O, so the exact request can be tested.

#include <boost/json.hpp>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace tattle::sinks::pagerduty {

// The Events API v2 limits (developer docs, "Send an Alert Event" and "Size Limits").
inline constexpr std::size_t kMaxSummary = 1024;
inline constexpr std::size_t kMaxDedupKey = 255;
// "512 KB": read as 512,000 bytes, the smaller meaning, so either reading holds.
inline constexpr std::size_t kMaxRequestBytes = 512'000;

struct EventOptions {
    std::string routing_key;
    std::string default_severity = "warning";  // critical, error, warning or info
    std::size_t max_request_bytes = kMaxRequestBytes;
};

// A rule's severity word → PagerDuty's: critical → critical; high, error → error;
// medium, moderate, warning → warning; low, info, informational → info. Case does
// not matter. nullopt for any other word.
std::optional<std::string> map_rule_severity(std::string_view rule_severity);

// The trigger request: routing_key, event_action, dedup_key (the alert id, so
// PagerDuty folds redeliveries into one alert), client, payload {summary, source,
// severity, timestamp, component, group, class, custom_details}, links. Throws
// std::invalid_argument when alert is not an alert document.
boost::json::object build_trigger(const boost::json::object& alert, const EventOptions& options);

// build_trigger over the serialized alert, serialized; always within
// options.max_request_bytes (the event in custom_details is cut down to fit).
// Throws std::invalid_argument on bad JSON.
std::string render_trigger(std::string_view alert_json, const EventOptions& options);

}  // namespace tattle::sinks::pagerduty
