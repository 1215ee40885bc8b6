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

// The alert document of make_alert as JSON text (valid_json_text), in parts so that
// the expensive ones are made once on a batch worker and the router only joins them:
//   head + json(destination) + middle + event_json + shaping fields + "}"
// is byte for byte valid_json_text(serialize(alert)) with "destination" set and
// annotate_alert's fields ("title", "dedup", "threshold") added, see alert_json.
struct AlertText {
    std::string alert_id;
    std::string head;    // from '{' up to the destination's value
    std::string middle;  // after the destination up to and including "event":
};
AlertText render_alert(const AlertRule& rule, const boost::json::object& event,
                       const std::optional<boost::json::value>& annotation, const EventOrigin& origin);

// The event as alert_json wants it: valid_json_text(serialize(event)), made once per
// event and shared by every alert for it.
std::string event_json(const boost::json::object& event);

// The alert for one destination. shaping_fields: an object of the fields that follow
// the event (AlertShaper::annotate_alert's), usually empty.
std::string alert_json(const AlertText& text, std::string_view destination, std::string_view event_json,
                       const boost::json::object& shaping_fields);

// Who did it, read from userIdentity: an ARN when there is one, else the best
// name available (user name, principal id, invoking service).
std::string actor_of(const boost::json::object& event);

}  // namespace tattle
