#include "tattle/sinkkit/alert_facts.hpp"

#include "tattle/sinkkit/cloudtrail_link.hpp"
#include "tattle/sinkkit/json_fields.hpp"

namespace tattle::sinkkit {
namespace {

namespace json = boost::json;

void append_indent(std::string& out, std::size_t indent) { out.append(indent, ' '); }

void append_pretty(const json::value& value, std::string& out, std::size_t indent) {
    if (value.is_object() && !value.get_object().empty()) {
        out += "{\n";
        bool first = true;
        for (const auto& member : value.get_object()) {
            if (!first) out += ",\n";
            first = false;
            append_indent(out, indent + 2);
            out += json::serialize(json::string(member.key()));
            out += ": ";
            append_pretty(member.value(), out, indent + 2);
        }
        out += '\n';
        append_indent(out, indent);
        out += '}';
    } else if (value.is_array() && !value.get_array().empty()) {
        out += "[\n";
        bool first = true;
        for (const auto& element : value.get_array()) {
            if (!first) out += ",\n";
            first = false;
            append_indent(out, indent + 2);
            append_pretty(element, out, indent + 2);
        }
        out += '\n';
        append_indent(out, indent);
        out += ']';
    } else {
        out += json::serialize(value);
    }
}

std::string origin_of(const json::object& alert) {
    const auto* origin = object_at(alert, "origin");
    if (origin == nullptr) return {};
    std::string text;
    if (const auto source = string_at(*origin, "source"); !source.empty()) {
        text += "source " + std::string(source);
    }
    if (const auto batch = string_at(*origin, "batch"); !batch.empty()) {
        if (!text.empty()) text += " \u00b7 ";
        text += batch;
        if (const auto* index = origin->if_contains("index"); index != nullptr && index->is_number()) {
            text += " #" + json::serialize(*index);
        }
    }
    return text;
}

}  // namespace

std::string role_session_name(std::string_view arn) {
    // arn:partition:sts::account:assumed-role/RoleName/SessionName
    if (!arn.starts_with("arn:")) return {};
    std::size_t colons = 0;
    std::size_t resource_start = std::string_view::npos;
    for (std::size_t i = 0; i < arn.size(); ++i) {
        if (arn[i] == ':' && ++colons == 5) {
            resource_start = i + 1;
            break;
        }
    }
    if (resource_start == std::string_view::npos) return {};
    const std::string_view resource = arn.substr(resource_start);
    constexpr std::string_view kPrefix = "assumed-role/";
    if (!resource.starts_with(kPrefix)) return {};
    const std::size_t slash = resource.find('/', kPrefix.size());
    if (slash == std::string_view::npos) return {};
    return std::string(resource.substr(slash + 1));
}

std::string pretty_json(const json::value& value) {
    std::string out;
    append_pretty(value, out, 0);
    return out;
}

std::string window_text(std::int64_t seconds) {
    for (const auto& [unit, size] : {std::pair{"d", 86400}, std::pair{"h", 3600}, std::pair{"m", 60}}) {
        if (seconds >= size && seconds % size == 0) return std::to_string(seconds / size) + unit;
    }
    return std::to_string(seconds) + "s";
}

std::string shaping_note(const json::object& alert) {
    auto integer_at = [](const json::object& object, std::string_view key) -> std::int64_t {
        const auto* found = object.if_contains(key);
        if (found == nullptr) return 0;
        if (found->is_int64()) return found->get_int64();
        if (found->is_uint64()) return static_cast<std::int64_t>(found->get_uint64());
        return 0;
    };
    auto key_text = [](const json::object& object) {
        const std::string key(string_at(object, "key"));
        return key.empty() ? std::string() : " with " + json::serialize(json::string(key));
    };
    std::string note;
    if (const auto* threshold = object_at(alert, "threshold")) {
        const auto count = integer_at(*threshold, "count");
        note = std::to_string(count) + (count == 1 ? " match" : " matches") + key_text(*threshold) + " within " +
               window_text(integer_at(*threshold, "window_seconds")) + " (threshold " +
               std::to_string(integer_at(*threshold, "min_count")) + ")";
    }
    if (const auto* dedup = object_at(alert, "dedup")) {
        if (const auto suppressed = integer_at(*dedup, "suppressed"); suppressed > 0) {
            if (!note.empty()) note += "; ";
            note += std::to_string(suppressed) + (suppressed == 1 ? " more match" : " more matches") +
                    key_text(*dedup) + " suppressed since the previous alert (dedup window " +
                    window_text(integer_at(*dedup, "window_seconds")) + ")";
        }
    }
    return note;
}

AlertFacts facts_of(const json::object& alert) {
    static const json::object kNothing;
    const auto* rule_found = object_at(alert, "rule");
    const json::object& rule = rule_found != nullptr ? *rule_found : kNothing;
    const auto* summary_found = object_at(alert, "summary");
    const json::object& summary = summary_found != nullptr ? *summary_found : kNothing;

    AlertFacts facts;
    facts.alert_id = string_at(alert, "alert_id");
    facts.rule_name = string_at(rule, "name");
    facts.description = string_at(rule, "description");
    facts.severity = string_at(rule, "severity");
    if (const auto* tags = rule.if_contains("tags"); tags != nullptr && tags->is_array()) {
        for (const auto& tag : tags->get_array()) {
            if (tag.is_string()) facts.tags.emplace_back(tag.get_string());
        }
    }
    facts.runbook = string_at(rule, "runbook");
    facts.title = string_at(alert, "title");
    facts.shaping_note = shaping_note(alert);
    if (const auto* annotation = alert.if_contains("annotation"); annotation != nullptr && !annotation->is_null()) {
        facts.has_annotation = true;
        facts.annotation = text_of(*annotation);
    }
    facts.actor = string_at(summary, "actor");
    facts.session = role_session_name(facts.actor);
    facts.event_name = string_at(summary, "event_name");
    facts.event_source = string_at(summary, "event_source");
    facts.event_id = string_at(summary, "event_id");
    facts.account_id = string_at(summary, "account_id");
    facts.region = string_at(summary, "region");
    facts.event_time = string_at(summary, "event_time");
    facts.source_ip = string_at(summary, "source_ip");
    facts.user_agent = string_at(summary, "user_agent");
    facts.error_code = string_at(summary, "error_code");
    facts.error_message = string_at(summary, "error_message");
    facts.console_url = cloudtrail_console_url(facts.region, facts.event_id);
    facts.destination = string_at(alert, "destination");
    facts.origin = origin_of(alert);
    return facts;
}

}  // namespace tattle::sinkkit
