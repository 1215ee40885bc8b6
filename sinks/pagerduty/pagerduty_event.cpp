#include "pagerduty_event.hpp"

#include <array>
#include <stdexcept>
#include <utility>

#include "tattle/sinkkit/alert_facts.hpp"
#include "tattle/sinkkit/cloudtrail_link.hpp"
#include "tattle/sinkkit/json_fields.hpp"
#include "tattle/sinkkit/json_trim.hpp"
#include "tattle/sinkkit/text.hpp"

namespace tattle::sinks::pagerduty {
namespace {

namespace json = boost::json;

// Cut without splitting UTF-8: PagerDuty refuses a body that is not valid UTF-8 with
// a 400, and the alert is lost.
using sinkkit::cut_utf8;
using sinkkit::object_at;
using sinkkit::string_at;
using sinkkit::text_of;
using sinkkit::TrimLevel;
using sinkkit::trimmed;

// One line for PagerDuty's title: control characters (newlines included) become spaces.
std::string single_line(std::string_view text) {
    std::string out(text);
    for (char& c : out) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte < 0x20 || byte == 0x7f) c = ' ';
    }
    return out;
}

std::string lower(std::string_view text) {
    std::string out(text);
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// 2023-07-10T11:54:48Z, with optional fraction and offset: what PagerDuty accepts as
// payload.timestamp. Anything else is left out rather than risking a 400.
bool is_iso8601(std::string_view text) {
    constexpr std::string_view kShape = "dddd-dd-ddTdd:dd:dd";
    if (text.size() < kShape.size() || text.size() > 40) return false;
    for (std::size_t i = 0; i < kShape.size(); ++i) {
        if (kShape[i] == 'd' ? !is_digit(text[i]) : text[i] != kShape[i]) return false;
    }
    std::size_t at = kShape.size();
    if (at < text.size() && text[at] == '.') {
        const std::size_t start = ++at;
        while (at < text.size() && is_digit(text[at])) ++at;
        if (at == start) return false;
    }
    const std::string_view zone = text.substr(at);
    if (zone == "Z" || zone.empty()) return true;
    if (zone.size() != 6 && zone.size() != 5) return false;
    if (zone[0] != '+' && zone[0] != '-') return false;
    for (std::size_t i = 1; i < zone.size(); ++i) {
        if (!(is_digit(zone[i]) || (zone.size() == 6 && i == 3 && zone[i] == ':'))) return false;
    }
    return true;
}

// PagerDuty also refuses an event id over 200 bytes in a link.
std::string cloudtrail_console_url(std::string_view region, std::string_view event_id) {
    if (event_id.size() > 200) return {};
    return sinkkit::cloudtrail_console_url(region, event_id);
}

// ---- fitting custom_details under the size limit --------------------------------

// Depth 0 is custom_details itself; the event is at 1.
constexpr std::array<TrimLevel, 6> kTrimLevels{{
    {32768, 1000, 1000, 40},
    {8192, 200, 300, 20},
    {2048, 50, 100, 12},
    {512, 20, 50, 8},
    {128, 5, 30, 5},
    {64, 3, 30, 3},
}};


// ---- the fields ------------------------------------------------------------------

std::string summary_of(const json::object& alert, std::string_view rule_name,
                       const json::object& summary) {
    // A title is the alert's one line, written by the rule's author.
    if (const auto title = string_at(alert, "title"); !title.empty()) return cut_utf8(single_line(title), kMaxSummary);
    std::string line(rule_name.empty() ? "tattle alert" : rule_name);
    if (const auto* annotation = alert.if_contains("annotation");
        annotation != nullptr && !annotation->is_null()) {
        // Leave room for who did it: a 5 KB annotation must not push the actor out.
        line += ": " + cut_utf8(text_of(*annotation), 600);
    }
    const auto name = string_at(summary, "event_name");
    const auto actor = string_at(summary, "actor");
    if (!name.empty() || !actor.empty()) line += " \u2014";
    if (!name.empty()) line += " " + std::string(name);
    if (!actor.empty()) line += " by " + std::string(actor);
    return cut_utf8(single_line(line), kMaxSummary);
}

std::string source_of(const json::object& summary) {
    const auto account = string_at(summary, "account_id");
    const auto region = string_at(summary, "region");
    if (!account.empty()) {
        std::string source = "aws:" + std::string(account);
        if (!region.empty()) source += ":" + std::string(region);
        return cut_utf8(single_line(source), 255);
    }
    if (const auto event_source = string_at(summary, "event_source"); !event_source.empty()) {
        return cut_utf8(single_line(event_source), 255);
    }
    return "cloudtrail";
}

json::object custom_details_of(const json::object& alert, const json::object& rule,
                               const json::object& summary) {
    json::object details;
    details["rule"] = string_at(rule, "name");
    if (const auto description = string_at(rule, "description"); !description.empty()) {
        details["description"] = description;
    }
    if (const auto* severity = rule.if_contains("severity"); severity != nullptr)
        details["rule_severity"] = *severity;
    if (const auto* tags = rule.if_contains("tags"); tags != nullptr) details["rule_tags"] = *tags;
    if (const auto* annotation = alert.if_contains("annotation");
        annotation != nullptr && !annotation->is_null()) {
        details["annotation"] = *annotation;
    }
    for (const char* key : {"title", "dedup", "threshold"}) {
        if (const auto* value = alert.if_contains(key); value != nullptr && !value->is_null()) details[key] = *value;
    }
    if (const auto note = sinkkit::shaping_note(alert); !note.empty()) details["repeats"] = note;
    for (const auto& member : summary) details[member.key()] = member.value();
    if (const auto id = string_at(alert, "alert_id"); !id.empty()) details["alert_id"] = id;
    if (const auto* origin = alert.if_contains("origin"); origin != nullptr)
        details["origin"] = *origin;
    if (const auto* event = alert.if_contains("event"); event != nullptr) details["event"] = *event;
    return details;
}

}  // namespace

std::optional<std::string> map_rule_severity(std::string_view rule_severity) {
    const std::string word = lower(rule_severity);
    if (word == "critical") return "critical";
    if (word == "high" || word == "error") return "error";
    if (word == "medium" || word == "moderate" || word == "warning") return "warning";
    if (word == "low" || word == "info" || word == "informational") return "info";
    return std::nullopt;
}

json::object build_trigger(const json::object& alert, const EventOptions& options) {
    const auto* rule = object_at(alert, "rule");
    if (rule == nullptr) throw std::invalid_argument("the alert has no rule object");
    static const json::object kNoSummary;
    const auto* summary_found = object_at(alert, "summary");
    const json::object& summary = summary_found != nullptr ? *summary_found : kNoSummary;

    json::object payload;
    payload["summary"] = summary_of(alert, string_at(*rule, "name"), summary);
    payload["source"] = source_of(summary);
    payload["severity"] =
        map_rule_severity(string_at(*rule, "severity")).value_or(options.default_severity);
    if (const auto time = string_at(summary, "event_time"); is_iso8601(time))
        payload["timestamp"] = time;
    if (const auto source = string_at(summary, "event_source"); !source.empty()) {
        payload["component"] = cut_utf8(single_line(source), 255);
    }
    if (const auto account = string_at(summary, "account_id"); !account.empty()) {
        payload["group"] = cut_utf8(single_line(account), 255);
    }
    if (const auto name = string_at(summary, "event_name"); !name.empty()) {
        payload["class"] = cut_utf8(single_line(name), 255);
    }

    json::object request;
    request["routing_key"] = options.routing_key;
    request["event_action"] = "trigger";
    if (const auto id = string_at(alert, "alert_id"); !id.empty())
        request["dedup_key"] = cut_utf8(id, kMaxDedupKey);
    request["client"] = "tattle";
    request["payload"] = std::move(payload);
    json::array links;
    if (const auto url =
            cloudtrail_console_url(string_at(summary, "region"), string_at(summary, "event_id"));
        !url.empty()) {
        links.push_back(json::object{{"href", url}, {"text", "Event in the CloudTrail console"}});
    }
    // The responder's first click: the rule's runbook.
    if (const auto runbook = string_at(*rule, "runbook"); !runbook.empty()) {
        links.push_back(json::object{{"href", runbook}, {"text", "Runbook"}});
    }
    if (!links.empty()) request["links"] = std::move(links);

    // custom_details goes last and is the only part that can be large: cut it down
    // level by level, as a value, so it stays valid JSON, until the request fits.
    const json::object details = custom_details_of(alert, *rule, summary);
    auto& payload_in_request = request["payload"].as_object();
    payload_in_request["custom_details"] = details;
    if (json::serialize(request).size() <= options.max_request_bytes) return request;
    const std::size_t full_size = json::serialize(details).size();
    for (const auto& level : kTrimLevels) {
        json::value candidate = trimmed(details, level, 0);
        candidate.as_object()["trimmed"] = "custom_details cut to fit PagerDuty's size limit (" +
                                           std::to_string(full_size) + " bytes in full)";
        payload_in_request["custom_details"] = std::move(candidate);
        if (json::serialize(request).size() <= options.max_request_bytes) return request;
    }
    payload_in_request["custom_details"] =
        json::object{{"alert_id", string_at(alert, "alert_id")},
                     {"trimmed", "the event is too large for PagerDuty (" +
                                     std::to_string(full_size) + " bytes)"}};
    return request;
}

std::string render_trigger(std::string_view alert_json, const EventOptions& options) {
    boost::system::error_code error;
    const json::value alert = json::parse(alert_json, error);
    if (error) throw std::invalid_argument("the alert is not valid JSON: " + error.message());
    if (!alert.is_object()) throw std::invalid_argument("the alert is not a JSON object");
    return json::serialize(build_trigger(alert.get_object(), options));
}

}  // namespace tattle::sinks::pagerduty
