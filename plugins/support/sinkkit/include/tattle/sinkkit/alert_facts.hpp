#pragma once

// The facts a person needs from an alert document — rule, who, what, where, when,
// error, console link — read once so that every sink that shows them (Slack, email, …)
// shows the same ones. Values are raw: each sink escapes them for its own format.

#include <boost/json.hpp>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tattle::sinkkit {

struct AlertFacts {
    std::string alert_id;
    std::string rule_name;
    std::string description;
    std::string severity;          // rule.severity, when the rule has one
    std::vector<std::string> tags; // rule.tags (its strings)
    std::string runbook;           // rule.runbook: a URL
    std::string title;             // the alert's title (the rule's `title` expression), when it has one
    std::string shaping_note;      // shaping_note(alert)
    bool has_annotation = false;
    std::string annotation;        // a string as it is, any other value as compact JSON
    std::string actor;             // ARN, user name, service or principal
    std::string session;           // the role session name of an assumed-role ARN
    std::string event_name;
    std::string event_source;
    std::string event_id;
    std::string account_id;
    std::string region;
    std::string event_time;
    std::string source_ip;
    std::string user_agent;
    std::string error_code;
    std::string error_message;
    std::string console_url;       // empty when region or event id cannot make a safe link
    std::string destination;
    std::string origin;            // "source local · logs/x.json.gz #17"
};

// Reads the facts of an alert document; absent fields stay empty.
AlertFacts facts_of(const boost::json::object& alert);

// One line on the alert's dedup and threshold, for a person; empty when there is
// nothing to say: "3 more matches with dedup key "alice" were suppressed since the
// previous alert (window 1h)", "5 matches with threshold key "192.0.2.1" within 10m
// (threshold 5)".
std::string shaping_note(const boost::json::object& alert);

// 3600 → "1h", 90 → "90s": the largest unit that divides the window.
std::string window_text(std::int64_t seconds);

// "arn:aws:sts::1:assumed-role/Admin/alice" → "alice"; empty for any other ARN.
std::string role_session_name(std::string_view arn);

// Two-space indented JSON: easier for a person to scan than one long line.
std::string pretty_json(const boost::json::value& value);

}  // namespace tattle::sinkkit
