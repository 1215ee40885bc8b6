#pragma once

// A one-line text template over the alert document, for the parts of a message a user
// words themselves (an email subject, an SNS subject):
//
//   "[{{severity}}] {{rule}}: {{event_name}} by {{actor}} in {{account}}"
//
// A placeholder is a short name (the table below) or a path into the alert document
// (keys joined by dots, a number picks an array element: {{event.requestParameters.userName}}).
// A string is inserted as it is, any other value as compact JSON, an absent path or null
// as nothing. Spaces inside the braces are allowed. Rendering does no escaping: the
// caller fits the result to its medium.

#include <boost/json.hpp>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace tattle::sinkkit {

// The short names and the paths they stand for.
struct TemplateName {
    std::string_view name;
    std::string_view path;
};
inline constexpr TemplateName kTemplateNames[] = {
    {"rule", "rule.name"},
    {"description", "rule.description"},
    {"severity", "rule.severity"},
    {"annotation", "annotation"},
    {"alert_id", "alert_id"},
    {"actor", "summary.actor"},
    {"event_name", "summary.event_name"},
    {"event_source", "summary.event_source"},
    {"event_id", "summary.event_id"},
    {"event_time", "summary.event_time"},
    {"account", "summary.account_id"},
    {"region", "summary.region"},
    {"source_ip", "summary.source_ip"},
    {"user_agent", "summary.user_agent"},
    {"error_code", "summary.error_code"},
    {"title", "title"},
    {"suppressed", "dedup.suppressed"},
};

class AlertTemplate {
public:
    // Throws std::invalid_argument saying what is wrong and at which offset (an unclosed
    // "{{", an empty placeholder, a name that is neither a short name nor a path rooted at
    // a key of the alert document).
    static AlertTemplate parse(std::string_view text);

    std::string render(const boost::json::object& alert) const;
    // The same, with every placeholder's text passed through `escape` (the literal text is
    // the user's and left alone): a medium with markup escapes only what an event supplies.
    std::string render(const boost::json::object& alert,
                       const std::function<std::string(std::string_view)>& escape) const;

private:
    struct Piece {
        std::string literal;            // copied as is, when path is empty
        std::vector<std::string> path;  // a placeholder, when not empty
    };
    std::vector<Piece> pieces_;
};

}  // namespace tattle::sinkkit
