#pragma once

#include <boost/json.hpp>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tattle {

// Where an event came from.
struct EventOrigin {
    std::string source_id;  // the [[source]] id
    std::string batch;      // a path, s3://bucket/key, a message id
    std::size_t index = 0;  // position of the event in its batch
};

struct AlertRule {
    std::string name;
    std::string description;
    // tattle's own rule fields; empty ones are left out of the alert document.
    std::string id;  // unique rule id (`team/name` in a bundle); empty: the name
    std::string team;
    std::string severity;
    std::vector<std::string> tags;
    std::string runbook;
};

// The stable id of an alert: a hash of the rule id (its name unless it has one) and the event's eventID
// (or, for events without one, of the event itself), so a redelivered event
// yields the same id.
std::string alert_id(std::string_view rule_name, const boost::json::object& event);

// The one JSON document every sink receives (see README.md, "The alert document"):
//   alert_id, rule {name, description, and when set: id, team, severity, tags,
//   runbook}, destination, annotation (when there is
//   one), summary {event_id, event_time, event_name, event_source, account_id,
//   region, actor, source_ip, user_agent, error_code, error_message},
//   origin {source, batch, index}, event.
// destination is filled per sink by the router.
boost::json::object make_alert(const AlertRule& rule, const boost::json::object& event,
                               const std::optional<boost::json::value>& annotation,
                               const EventOrigin& origin);

// The alert document of make_alert as JSON text (valid_json_text), made whole on a
// batch worker for the rule's first destination, so that the thread that routes
// alerts in read order usually only moves it:
//   text = head + json(destination) + middle + event text + "}"
// is byte for byte valid_json_text(serialize(alert)) with "destination" set. For
// another destination, or with annotate_alert's fields ("title", "dedup",
// "threshold"), alert_json rebuilds it from its parts.
struct AlertText {
    std::string alert_id;
    std::string text;
    std::size_t destination_at = 0;   // json(destination) is text[destination_at, destination_end)
    std::size_t destination_end = 0;
    std::size_t event_at = 0;         // the event's text is text[event_at, text.size() - 1)

    std::string_view event_text() const {
        return std::string_view(text).substr(event_at, text.size() - 1 - event_at);
    }
};
// event_text: event_json(event), made once per event by the caller and copied into
// every alert for it.
AlertText render_alert(const AlertRule& rule, const boost::json::object& event,
                       const std::optional<boost::json::value>& annotation, const EventOrigin& origin,
                       std::string_view destination, std::string_view event_text);

// The event as alerts show it: valid_json_text(serialize(event)).
std::string event_json(const boost::json::object& event);

// The alert for one destination. shaping_fields: an object of the fields that follow
// the event (AlertShaper::annotate_alert's), usually empty. The second form takes the
// text over when it was written for this destination and there are no such fields.
std::string alert_json(const AlertText& alert, std::string_view destination,
                       const boost::json::object& shaping_fields);
std::string alert_json(AlertText&& alert, std::string_view destination, const boost::json::object& shaping_fields);

// Who did it, read from userIdentity: an ARN when there is one, else the best
// name available (user name, principal id, invoking service).
std::string actor_of(const boost::json::object& event);

}  // namespace tattle
