#include "tattle/alert.hpp"

#include "tattle/json_text.hpp"
#include "tattle/sha256.hpp"
#include "tattle/text_safety.hpp"

#include <algorithm>
#include <array>
#include <utility>

namespace tattle {
namespace {

std::string_view string_at(const boost::json::object& object, std::string_view key) {
    const auto* found = object.if_contains(key);
    if (found == nullptr || !found->is_string()) return {};
    const auto& s = found->get_string();
    return {s.data(), s.size()};
}

const boost::json::object* object_at(const boost::json::object& object, std::string_view key) {
    const auto* found = object.if_contains(key);
    return found != nullptr && found->is_object() ? &found->get_object() : nullptr;
}

void put_if_present(boost::json::object& out, std::string_view key, std::string_view value) {
    if (!value.empty()) out[key] = value;
}

}  // namespace

std::string alert_id(std::string_view rule_name, const boost::json::object& event) {
    // SHA-256 of "rule name \n eventID" (or of the event's JSON text without one).
    if (const auto event_id = string_at(event, "eventID"); !event_id.empty()) {
        return sha256_hex({rule_name, "\n", event_id}, 32);
    }
    return sha256_hex({rule_name, "\n", boost::json::serialize(event)}, 32);
}

namespace {

std::string_view actor_text(const boost::json::object& event) {
    const auto* identity = object_at(event, "userIdentity");
    if (identity == nullptr) return {};
    for (const std::string_view key : {"arn", "userName", "invokedBy", "principalId"}) {
        if (auto value = string_at(*identity, key); !value.empty()) return value;
    }
    return string_at(*identity, "type");
}

}  // namespace

std::string actor_of(const boost::json::object& event) { return std::string(actor_text(event)); }

namespace {

// make_alert's fields before "destination" (alert_id, rule) and after it up to the
// event (annotation, summary, origin), in the document's order.
void alert_fields(const AlertRule& rule, const boost::json::object& event,
                  const std::optional<boost::json::value>& annotation, const EventOrigin& origin,
                  boost::json::object& before_destination, boost::json::object& after_destination) {
    before_destination["alert_id"] = alert_id(rule.id.empty() ? rule.name : rule.id, event);
    boost::json::object rule_object{{"name", rule.name}, {"description", rule.description}};
    put_if_present(rule_object, "id", rule.id);
    put_if_present(rule_object, "team", rule.team);
    put_if_present(rule_object, "severity", rule.severity);
    if (!rule.tags.empty()) {
        boost::json::array tags;
        for (const auto& tag : rule.tags) tags.emplace_back(tag);
        rule_object["tags"] = std::move(tags);
    }
    put_if_present(rule_object, "runbook", rule.runbook);
    before_destination["rule"] = std::move(rule_object);
    if (annotation) after_destination["annotation"] = *annotation;

    boost::json::object summary;
    put_if_present(summary, "event_id", string_at(event, "eventID"));
    put_if_present(summary, "event_time", string_at(event, "eventTime"));
    put_if_present(summary, "event_name", string_at(event, "eventName"));
    put_if_present(summary, "event_source", string_at(event, "eventSource"));
    auto account = string_at(event, "recipientAccountId");
    if (account.empty()) {
        if (const auto* identity = object_at(event, "userIdentity")) {
            account = string_at(*identity, "accountId");
        }
    }
    put_if_present(summary, "account_id", account);
    put_if_present(summary, "region", string_at(event, "awsRegion"));
    put_if_present(summary, "actor", actor_text(event));
    put_if_present(summary, "source_ip", string_at(event, "sourceIPAddress"));
    put_if_present(summary, "user_agent", string_at(event, "userAgent"));
    put_if_present(summary, "error_code", string_at(event, "errorCode"));
    put_if_present(summary, "error_message", string_at(event, "errorMessage"));
    after_destination["summary"] = std::move(summary);

    after_destination["origin"] = {{"source", origin.source_id},
                                   {"batch", origin.batch},
                                   {"index", static_cast<std::uint64_t>(origin.index)}};
}

}  // namespace

boost::json::object make_alert(const AlertRule& rule, const boost::json::object& event,
                               const std::optional<boost::json::value>& annotation,
                               const EventOrigin& origin) {
    boost::json::object alert;
    boost::json::object after_destination;
    alert_fields(rule, event, annotation, origin, alert, after_destination);
    alert["destination"] = nullptr;
    for (auto& [key, value] : after_destination) alert[key] = std::move(value);
    alert["event"] = event;
    return alert;
}

namespace {

// ,"key":"value" when value is not empty, as put_if_present and valid_json_text(serialize) give it.
void append_if_present(std::string& out, bool& first, std::string_view key, std::string_view value) {
    if (value.empty()) return;
    if (!first) out += ',';
    first = false;
    out += '"';
    out += key;  // keys here are plain ASCII
    out += "\":";
    append_json_string(out, value);
}

std::string destination_text(std::string_view destination) {
    std::string text;
    append_json_string(text, destination);
    return text;
}

// The fields as valid_json_text(serialize(object)) writes them, without the braces.
std::string shaping_text(const boost::json::object& shaping_fields) {
    std::string text;
    append_json_text(text, shaping_fields);
    return text.substr(1, text.size() - 2);
}

// Whether alert holds the document for this destination as it is: no other
// destination, no fields after the event.
bool written_for(const AlertText& alert, std::string_view destination_json,
                 const boost::json::object& shaping_fields) {
    return shaping_fields.empty() &&
           std::string_view(alert.text).substr(alert.destination_at, alert.destination_end - alert.destination_at) ==
               destination_json;
}

}  // namespace

AlertText render_alert(const AlertRule& rule, const boost::json::object& event,
                       const std::optional<boost::json::value>& annotation, const EventOrigin& origin,
                       std::string_view destination, std::string_view event_text) {
    // Written directly, member for member in make_alert's order: building the objects
    // and serializing them cost more than the rest of an alert's evaluation. The parts
    // are written in buffers a worker keeps, so that the alert is one allocation of
    // its exact size.
    AlertText alert;
    alert.alert_id = alert_id(rule.id.empty() ? rule.name : rule.id, event);
    thread_local std::string head;
    head.clear();
    head += "{\"alert_id\":";
    append_json_string(head, alert.alert_id);
    head += ",\"rule\":{\"name\":";
    append_json_string(head, rule.name);
    head += ",\"description\":";
    append_json_string(head, rule.description);
    bool first = false;
    append_if_present(head, first, "id", rule.id);
    append_if_present(head, first, "team", rule.team);
    append_if_present(head, first, "severity", rule.severity);
    if (!rule.tags.empty()) {
        head += ",\"tags\":[";
        for (std::size_t i = 0; i < rule.tags.size(); ++i) {
            if (i > 0) head += ',';
            append_json_string(head, rule.tags[i]);
        }
        head += ']';
    }
    append_if_present(head, first, "runbook", rule.runbook);
    head += "},\"destination\":";

    thread_local std::string middle;
    middle.clear();
    middle += ',';
    if (annotation) {
        middle += "\"annotation\":";
        append_json_text(middle, *annotation);
        middle += ',';
    }
    middle += "\"summary\":{";
    first = true;
    append_if_present(middle, first, "event_id", string_at(event, "eventID"));
    append_if_present(middle, first, "event_time", string_at(event, "eventTime"));
    append_if_present(middle, first, "event_name", string_at(event, "eventName"));
    append_if_present(middle, first, "event_source", string_at(event, "eventSource"));
    auto account = string_at(event, "recipientAccountId");
    if (account.empty()) {
        if (const auto* identity = object_at(event, "userIdentity")) account = string_at(*identity, "accountId");
    }
    append_if_present(middle, first, "account_id", account);
    append_if_present(middle, first, "region", string_at(event, "awsRegion"));
    append_if_present(middle, first, "actor", actor_text(event));
    append_if_present(middle, first, "source_ip", string_at(event, "sourceIPAddress"));
    append_if_present(middle, first, "user_agent", string_at(event, "userAgent"));
    append_if_present(middle, first, "error_code", string_at(event, "errorCode"));
    append_if_present(middle, first, "error_message", string_at(event, "errorMessage"));
    middle += "},\"origin\":{\"source\":";
    append_json_string(middle, origin.source_id);
    middle += ",\"batch\":";
    append_json_string(middle, origin.batch);
    middle += ",\"index\":";
    middle += std::to_string(static_cast<std::uint64_t>(origin.index));
    middle += "},\"event\":";

    const std::string destination_json = destination_text(destination);
    std::string& text = alert.text;
    text.reserve(head.size() + destination_json.size() + middle.size() + event_text.size() + 1);
    text += head;
    alert.destination_at = text.size();
    text += destination_json;
    alert.destination_end = text.size();
    text += middle;
    alert.event_at = text.size();
    text += event_text;
    text += '}';
    return alert;
}

std::string event_json(const boost::json::object& event) {
    std::string text;
    append_json_text(text, event);
    return text;
}

namespace {

// The alert's text with another destination, or with shaping fields after the event.
std::string rewritten(const AlertText& alert, std::string_view destination_json,
                      const boost::json::object& shaping_fields) {
    const std::string shaping_json = shaping_fields.empty() ? std::string() : shaping_text(shaping_fields);
    const std::string_view text = alert.text;
    const std::string_view after_destination =
        text.substr(alert.destination_end, text.size() - 1 - alert.destination_end);
    std::string out;
    out.reserve(alert.destination_at + destination_json.size() + after_destination.size() + shaping_json.size() + 2);
    out += text.substr(0, alert.destination_at);
    out += destination_json;
    out += after_destination;
    if (!shaping_json.empty()) {
        out += ',';
        out += shaping_json;
    }
    out += '}';
    return out;
}

}  // namespace

std::string alert_json(const AlertText& alert, std::string_view destination,
                       const boost::json::object& shaping_fields) {
    const std::string destination_json = destination_text(destination);
    if (written_for(alert, destination_json, shaping_fields)) return alert.text;
    return rewritten(alert, destination_json, shaping_fields);
}

std::string alert_json(AlertText&& alert, std::string_view destination, const boost::json::object& shaping_fields) {
    const std::string destination_json = destination_text(destination);
    if (written_for(alert, destination_json, shaping_fields)) return std::move(alert.text);
    return rewritten(alert, destination_json, shaping_fields);
}

}  // namespace tattle
