#pragma once

// Turns an alert document into the JSON body of a Slack incoming-webhook post: a
// fallback `text` for notifications plus Block Kit blocks a person reads at a glance.
// Pure functions: no I/O, so every byte Slack would receive can be tested.

#include <boost/json.hpp>
#include <cstddef>
#include <string>
#include <string_view>

#include "tattle/sinkkit/cloudtrail_link.hpp"

namespace tattle::sinks::slack {

// Slack's published Block Kit limits. They count characters; we count bytes, which
// is never fewer, so staying under them in bytes is always safe.
inline constexpr std::size_t kMaxHeaderText = 150;
inline constexpr std::size_t kMaxSectionText = 3000;
inline constexpr std::size_t kMaxFieldText = 2000;
inline constexpr std::size_t kMaxFields = 10;
inline constexpr std::size_t kMaxContextText = 3000;
inline constexpr std::size_t kMaxBlocks = 50;
// The fallback text is what notifications and screen readers show: one short line.
inline constexpr std::size_t kMaxFallbackText = 500;
// A message's top-level text; Slack truncates longer ones.
inline constexpr std::size_t kMaxMessageText = 40000;

struct MessageOptions {
    // Legacy webhook overrides; Slack apps created since 2019 ignore them.
    std::string channel;
    std::string username;
    std::string icon_emoji;
};

// Slack's escaping: &, < and > become entities, so event text can neither mention
// (<!channel>, <@U123>) nor disguise a link (<https://evil|click>).
std::string escape_mrkdwn(std::string_view text);

// A value from an event for any Slack text: escape_mrkdwn, and control characters other
// than line breaks as spaces.
std::string escape_event_text(std::string_view text);

// Slack text that is already escaped, cut to at most max_bytes (ellipsis included) on a
// UTF-8 boundary and never inside an &amp;, &lt; or &gt; entity.
std::string cut_escaped(std::string_view text, std::size_t max_bytes);

// Breaks every run of backticks with zero-width spaces, so text inside a code
// block cannot close it (```) and continue as formatted text.
std::string neutralise_code_fences(std::string_view text);

// "arn:aws:sts::1:assumed-role/Admin/alice" → "alice"; empty for any other ARN.
std::string role_session_name(std::string_view arn);

// https://<region>.console.aws.amazon.com/cloudtrailv2/home?region=<region>#/events/<id>,
// or empty when the region is not a plausible region name (it becomes a host name)
// or the event id is missing. The event id is percent-encoded.
using sinkkit::cloudtrail_console_url;

// The whole webhook body. Throws std::invalid_argument when alert is not an alert
// document (not an object, or no rule).
boost::json::object build_message(const boost::json::object& alert, const MessageOptions& options);

// Sets the channel, username and icon_emoji overrides that are not empty.
void apply_overrides(boost::json::object& message, const MessageOptions& options);

// build_message over the serialized alert; throws std::invalid_argument on bad JSON.
std::string render_message(std::string_view alert_json, const MessageOptions& options);

}  // namespace tattle::sinks::slack
