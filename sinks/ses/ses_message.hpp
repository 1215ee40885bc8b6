#pragma once

// Turns an alert document into an email: a subject naming the rule and the actor, a
// plain-text body and an HTML body with the facts the Slack message shows (rule,
// description, annotation, who, what, where, when, error, console link, the event).
// Pure functions: every byte SES would receive can be tested.

#include <boost/json.hpp>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "tattle/sinkkit/alert_template.hpp"

namespace tattle::sinks::ses {

// The event as shown in a body: indented JSON up to this size, then cut down as a value.
inline constexpr std::size_t kMaxEventBytes = 64 * 1024;
// A subject is one line; mail clients show far less than this.
inline constexpr std::size_t kMaxSubjectBytes = 250;

struct Email {
    std::string subject;
    std::string text;
    std::string html;
};

// & < > " ' as entities: safe in element content and in quoted attribute values.
std::string html_escape(std::string_view text);

// One line of at most max_bytes: control characters (CR, LF included) become spaces,
// cut on a UTF-8 boundary with an ellipsis.
std::string one_line(std::string_view text, std::size_t max_bytes);

// "<rule> by <actor>", or "<rule>" when the event names no actor.
std::string default_subject(const boost::json::object& alert);

// The event as indented JSON, cut down as a value in steps until it fits max_bytes
// (always complete, valid JSON); `trimmed` says whether it was cut.
std::string event_json(const boost::json::value& event, std::size_t max_bytes, bool& trimmed);

// The whole email; subject_template unset: default_subject. Throws std::invalid_argument
// when the alert is not an alert document (no rule object).
Email build_email(const boost::json::object& alert, const std::optional<sinkkit::AlertTemplate>& subject_template);

}  // namespace tattle::sinks::ses
