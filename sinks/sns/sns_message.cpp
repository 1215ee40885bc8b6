#include "sns_message.hpp"

#include <array>
#include <stdexcept>

#include "tattle/sinkkit/json_fields.hpp"
#include "tattle/sinkkit/json_trim.hpp"
#include "tattle/sinkkit/text.hpp"

namespace tattle::sinks::sns {
namespace {

namespace json = boost::json;

using sinkkit::object_at;
using sinkkit::string_at;
using sinkkit::TrimLevel;
using sinkkit::trimmed;

// How hard to cut a value down, gentlest first. The last one summarises the whole value.
constexpr std::array<TrimLevel, 10> kTrimLevels{{
    {65536, 1000, 1000, 32},
    {16384, 300, 300, 16},
    {4096, 100, 100, 12},
    {1024, 50, 100, 10},
    {512, 30, 60, 8},
    {200, 10, 40, 6},
    {100, 5, 30, 5},
    {40, 2, 20, 3},
    {16, 1, 10, 1},
    {16, 1, 10, 0},
}};

// Bounds the text of config-controlled members once everything else is cut.
constexpr std::size_t kLastResortTextBytes = 1024;
// Attribute values are filter keys, not content: short, one line.
constexpr std::size_t kMaxAttributeValueBytes = 1024;

std::string attribute_value(std::string_view raw) {
    std::string value(raw);
    for (char& c : value) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
    }
    return sinkkit::cut_utf8(value, kMaxAttributeValueBytes);
}

std::vector<MessageAttribute> attributes_of(const json::object& alert, const json::object& rule) {
    static const json::object kNoSummary;
    const auto* summary_found = object_at(alert, "summary");
    const json::object& summary = summary_found != nullptr ? *summary_found : kNoSummary;
    std::vector<MessageAttribute> attributes;
    // SNS refuses an attribute with an empty value: absent facts are left out.
    const auto add = [&attributes](std::string_view name, std::string_view value) {
        if (!value.empty()) attributes.push_back({std::string(name), attribute_value(value)});
    };
    add("rule", string_at(rule, "name"));
    add("severity", string_at(rule, "severity"));
    add("account", string_at(summary, "account_id"));
    add("event_name", string_at(summary, "event_name"));
    return attributes;
}

// tattletail's document. "match" is the rule's output: the annotation, or true when the
// rule gave no annotation (true, or the event itself).
json::object payload_of(const json::object& alert, const json::object& rule) {
    json::object payload;
    payload["name"] = string_at(rule, "name");
    payload["description"] = string_at(rule, "description");
    const auto* event = alert.if_contains("event");
    payload["record"] = event != nullptr ? *event : json::value(nullptr);
    const auto* annotation = alert.if_contains("annotation");
    payload["match"] = annotation != nullptr && !annotation->is_null() ? *annotation : json::value(true);
    if (const auto id = string_at(alert, "alert_id"); !id.empty()) payload["alert_id"] = id;
    // tattle's rule fields, for whoever reads the message (an email subscription, a queue consumer).
    for (const char* key : {"severity", "tags", "runbook"}) {
        if (const auto* value = rule.if_contains(key); value != nullptr && !value->is_null()) payload[key] = *value;
    }
    // Alert shaping: the title, and the dedup / threshold objects as the alert document has them.
    for (const char* key : {"title", "dedup", "threshold"}) {
        if (const auto* value = alert.if_contains(key); value != nullptr && !value->is_null()) payload[key] = *value;
    }
    return payload;
}

// Cuts the payload down until it fits budget bytes; returns the message.
std::string fitted(json::object payload, std::size_t budget, bool& was_trimmed) {
    std::string message = json::serialize(payload);
    was_trimmed = message.size() > budget;
    if (!was_trimmed) return message;

    const std::size_t full_size = message.size();
    json::array fields;
    const auto mark = [&payload, &fields, full_size](std::string_view field) {
        fields.push_back(json::string(field));
        payload["trimmed"] = {{"fields", fields},
                              {"original_bytes", full_size},
                              {"reason", "cut down to fit SNS's 256 KB message limit"}};
    };

    const json::value record = payload["record"];
    mark("record");
    for (const auto& level : kTrimLevels) {
        payload["record"] = trimmed(record, level, 0);
        message = json::serialize(payload);
        if (message.size() <= budget) return message;
    }
    const json::value match = payload["match"];
    mark("match");
    for (const auto& level : kTrimLevels) {
        payload["match"] = trimmed(match, level, 0);
        message = json::serialize(payload);
        if (message.size() <= budget) return message;
    }
    // Only the rule's own words are left: a description (or name) longer than the
    // limit is a config mistake, but the alert must still go out.
    mark("description");
    const auto& description = payload["description"].as_string();
    payload["description"] = sinkkit::cut_utf8({description.data(), description.size()}, kLastResortTextBytes);
    const auto& name = payload["name"].as_string();
    payload["name"] = sinkkit::cut_utf8({name.data(), name.size()}, kLastResortTextBytes);
    return json::serialize(payload);
}

}  // namespace

TopicArn parse_topic_arn(std::string_view arn) {
    // arn:partition:service:region:account:resource
    std::array<std::string_view, 6> parts{};
    std::size_t start = 0;
    for (std::size_t i = 0; i < parts.size(); ++i) {
        const std::size_t colon = i + 1 < parts.size() ? arn.find(':', start) : std::string_view::npos;
        if (i + 1 < parts.size() && colon == std::string_view::npos) {
            throw std::invalid_argument("not a topic ARN (arn:aws:sns:<region>:<account>:<topic>)");
        }
        parts[i] = arn.substr(start, colon == std::string_view::npos ? arn.npos : colon - start);
        start = colon + 1;
    }
    if (parts[0] != "arn" || parts[1].empty() || parts[2] != "sns" || parts[3].empty() || parts[4].empty() ||
        parts[5].empty() || parts[5].find(':') != std::string_view::npos) {
        throw std::invalid_argument("not a topic ARN (arn:aws:sns:<region>:<account>:<topic>)");
    }
    return {std::string(parts[3]), std::string(parts[5]), parts[5].ends_with(".fifo")};
}

std::string sns_subject(std::string_view text) {
    std::string subject;
    for (const char c : text) {
        if (subject.size() == kMaxSubjectChars) break;
        const auto byte = static_cast<unsigned char>(c);
        if (byte >= 0x80) {
            subject += '?';
        } else if (byte < 0x20 || byte == 0x7f) {
            if (!subject.empty()) subject += ' ';
        } else if (c != ' ' || !subject.empty()) {
            subject += c;
        }
    }
    while (!subject.empty() && subject.back() == ' ') subject.pop_back();
    return subject;
}

std::string fifo_id(std::string_view text) {
    std::string id;
    for (const char c : text) {
        if (id.size() == kMaxFifoIdChars) break;
        const auto byte = static_cast<unsigned char>(c);
        // Letters, digits and punctuation: the printable ASCII range without space.
        id += byte > 0x20 && byte < 0x7f ? c : '_';
    }
    return id.empty() ? "tattle" : id;
}

std::size_t attribute_bytes(const std::vector<MessageAttribute>& attributes) {
    constexpr std::string_view kDataType = "String";
    std::size_t total = 0;
    for (const auto& attribute : attributes) total += attribute.name.size() + kDataType.size() + attribute.value.size();
    return total;
}

Publication build_publication(const json::object& alert, const PublishOptions& options) {
    const auto* rule = object_at(alert, "rule");
    if (rule == nullptr) throw std::invalid_argument("the alert has no rule object");

    Publication publication;
    publication.attributes = attributes_of(alert, *rule);
    const std::size_t budget = kMaxPublishBytes - attribute_bytes(publication.attributes);
    publication.message = fitted(payload_of(alert, *rule), budget, publication.trimmed);
    if (options.subject) {
        publication.subject = sns_subject(options.subject->render(alert));
    } else if (const auto title = string_at(alert, "title"); !title.empty()) {
        // Email subscriptions show the subject first: a titled alert uses its title.
        publication.subject = sns_subject(title);
    }
    if (parse_topic_arn(options.topic_arn).fifo) {
        // One group per rule keeps a rule's alerts in order without holding up the others;
        // the alert id lets SNS drop a redelivered alert within its 5-minute window.
        publication.group_id = fifo_id(string_at(*rule, "name"));
        if (const auto id = string_at(alert, "alert_id"); !id.empty()) publication.deduplication_id = fifo_id(id);
    }
    return publication;
}

std::vector<std::pair<std::string, std::string>> publish_parameters(const Publication& publication,
                                                                    std::string_view topic_arn) {
    std::vector<std::pair<std::string, std::string>> parameters;
    parameters.emplace_back("TopicArn", topic_arn);
    parameters.emplace_back("Message", publication.message);
    if (!publication.subject.empty()) parameters.emplace_back("Subject", publication.subject);
    for (std::size_t i = 0; i < publication.attributes.size(); ++i) {
        const std::string prefix = "MessageAttributes.entry." + std::to_string(i + 1) + ".";
        parameters.emplace_back(prefix + "Name", publication.attributes[i].name);
        parameters.emplace_back(prefix + "Value.DataType", "String");
        parameters.emplace_back(prefix + "Value.StringValue", publication.attributes[i].value);
    }
    if (!publication.group_id.empty()) parameters.emplace_back("MessageGroupId", publication.group_id);
    if (!publication.deduplication_id.empty()) {
        parameters.emplace_back("MessageDeduplicationId", publication.deduplication_id);
    }
    return parameters;
}

}  // namespace tattle::sinks::sns
