#include "tattle/alert.hpp"

#include "tattle/text_safety.hpp"

#include <openssl/evp.h>

#include <array>
#include <stdexcept>

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

std::string sha256_hex_prefix(std::string_view data, std::size_t hex_chars) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int digest_size = 0;
    if (EVP_Digest(data.data(), data.size(), digest.data(), &digest_size, EVP_sha256(), nullptr) != 1) {
        throw std::runtime_error("SHA-256 failed");
    }
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < digest_size && out.size() < hex_chars; ++i) {
        out += kHex[digest[i] >> 4U];
        out += kHex[digest[i] & 0x0fU];
    }
    return out;
}

void put_if_present(boost::json::object& out, std::string_view key, std::string_view value) {
    if (!value.empty()) out[key] = value;
}

}  // namespace

std::string alert_id(std::string_view rule_name, const boost::json::object& event) {
    std::string material(rule_name);
    material += '\n';
    const auto event_id = string_at(event, "eventID");
    if (!event_id.empty()) {
        material += event_id;
    } else {
        material += boost::json::serialize(event);
    }
    return sha256_hex_prefix(material, 32);
}

std::string actor_of(const boost::json::object& event) {
    const auto* identity = object_at(event, "userIdentity");
    if (identity == nullptr) return {};
    if (auto arn = string_at(*identity, "arn"); !arn.empty()) return std::string(arn);
    if (auto user = string_at(*identity, "userName"); !user.empty()) return std::string(user);
    if (auto service = string_at(*identity, "invokedBy"); !service.empty()) return std::string(service);
    if (auto principal = string_at(*identity, "principalId"); !principal.empty()) {
        return std::string(principal);
    }
    return std::string(string_at(*identity, "type"));
}

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
    put_if_present(summary, "actor", actor_of(event));
    put_if_present(summary, "source_ip", string_at(event, "sourceIPAddress"));
    put_if_present(summary, "user_agent", string_at(event, "userAgent"));
    put_if_present(summary, "error_code", string_at(event, "errorCode"));
    put_if_present(summary, "error_message", string_at(event, "errorMessage"));
    after_destination["summary"] = std::move(summary);

    after_destination["origin"] = {{"source", origin.source_id},
                                   {"batch", origin.batch},
                                   {"index", static_cast<std::uint64_t>(origin.index)}};
}

// Appends an object's members as serialize writes them, without the braces: the
// text between '{' and '}'.
void append_members(std::string& out, const boost::json::object& object) {
    const std::string text = boost::json::serialize(object);
    out.append(text, 1, text.size() - 2);
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

AlertText render_alert(const AlertRule& rule, const boost::json::object& event,
                       const std::optional<boost::json::value>& annotation, const EventOrigin& origin) {
    boost::json::object before_destination;
    boost::json::object after_destination;
    alert_fields(rule, event, annotation, origin, before_destination, after_destination);
    AlertText text;
    text.alert_id = std::string(before_destination.at("alert_id").get_string());
    // Object members are joined by ',' with nothing else between them, so the parts
    // of the document can be serialized apart.
    std::string head = "{";
    append_members(head, before_destination);
    head += ",\"destination\":";
    std::string middle = ",";
    append_members(middle, after_destination);
    middle += ",\"event\":";
    text.head = valid_json_text(head);
    text.middle = valid_json_text(middle);
    return text;
}

std::string event_json(const boost::json::object& event) { return valid_json_text(boost::json::serialize(event)); }

std::string alert_json(const AlertText& text, std::string_view destination, std::string_view event_json,
                       const boost::json::object& shaping_fields) {
    const std::string destination_json = valid_json_text(boost::json::serialize(boost::json::string(destination)));
    std::string shaping_json;
    if (!shaping_fields.empty()) {
        append_members(shaping_json, shaping_fields);
        shaping_json = valid_json_text(shaping_json);
    }
    std::string out;
    out.reserve(text.head.size() + destination_json.size() + text.middle.size() + event_json.size() +
                shaping_json.size() + 2);
    out += text.head;
    out += destination_json;
    out += text.middle;
    out += event_json;
    if (!shaping_json.empty()) {
        out += ',';
        out += shaping_json;
    }
    out += '}';
    return out;
}

}  // namespace tattle
