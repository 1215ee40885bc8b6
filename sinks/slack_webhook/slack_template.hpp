#pragma once

// A Slack message the user words themselves: the webhook body as JSON (a `text`, Block
// Kit `blocks`, or both, as Slack's Block Kit Builder exports them) with {{placeholders}}
// inside its strings, filled from each alert:
//
//   {"text": "{{rule}}: {{annotation}}",
//    "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*{{rule}}* by `{{actor}}`"}}]}
//
// Placeholders are sinkkit::AlertTemplate's: a short name ({{rule}}, {{actor}},
// {{event_name}}, {{account}}, …) or a path into the alert document
// ({{event.requestParameters.userName}}). Filling works on the parsed JSON, never on its
// text, so a value cannot break out of its string; each value is escaped for Slack (&, <,
// > as entities: an event's "<!channel>" shows as text and notifies nobody), and each
// string is cut to Slack's limit for its place.

#include <boost/json.hpp>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "slack_message.hpp"
#include "tattle/sinkkit/alert_template.hpp"

namespace tattle::sinks::slack {

class MessageTemplate {
public:
    // The template as JSON text, or as a table of the config (already JSON). Throws
    // std::invalid_argument naming the problem and where it is (offset in the text, or
    // the JSON pointer of the string): not JSON, not an object, neither text nor blocks,
    // more than 50 blocks, link_names (it would turn an event's "@channel" into a
    // mention), a placeholder that names nothing, a fixed string over Slack's limit.
    static MessageTemplate parse(std::string_view json_text);
    static MessageTemplate from_json(const boost::json::value& document);

    // The webhook body for one alert.
    boost::json::object render(const boost::json::object& alert) const;

private:
    struct Slot {
        sinkkit::AlertTemplate text;
        std::size_t max_bytes;
    };
    boost::json::object skeleton_;
    std::vector<Slot> slots_;  // in the order a walk of skeleton_ meets their strings
};

// The whole body for one alert: the template's message with the config's overrides.
// Throws std::invalid_argument when alert_json is not a JSON object.
std::string render_templated_message(std::string_view alert_json, const MessageTemplate& message_template,
                                     const MessageOptions& options);

}  // namespace tattle::sinks::slack
