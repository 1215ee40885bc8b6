#include "slack_template.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace tattle::sinks::slack {
namespace {

namespace json = boost::json;

constexpr std::string_view kPlaceholderStart = "{{";

std::string pointer_token(std::string_view key) {
    std::string out;
    for (const char c : key) {
        if (c == '~') {
            out += "~0";
        } else if (c == '/') {
            out += "~1";
        } else {
            out += c;
        }
    }
    return out;
}

bool is_header_block(const json::object& object) {
    const auto* type = object.if_contains("type");
    return type != nullptr && type->is_string() && type->get_string() == "header";
}

// Calls visit(string, pointer, max_bytes) for every string value, in document order, with
// Slack's limit for that place: the message's own text, a header's text, a field, or any
// other text (section, context, …). Object keys are not visited: they are Slack's names.
template <class Visit>
void for_each_string(json::value& value, const std::string& pointer, std::size_t max_bytes, Visit& visit) {
    if (value.is_string()) {
        visit(value.get_string(), pointer, max_bytes);
    } else if (value.is_array()) {
        std::size_t index = 0;
        for (auto& item : value.get_array()) {
            for_each_string(item, pointer + "/" + std::to_string(index++), max_bytes, visit);
        }
    } else if (value.is_object()) {
        json::object& object = value.get_object();
        const bool top_level = pointer.empty();
        const std::size_t limit = is_header_block(object) ? std::min(max_bytes, kMaxHeaderText) : max_bytes;
        for (auto& member : object) {
            std::size_t member_limit = limit;
            if (top_level) member_limit = member.key() == "text" ? kMaxMessageText : kMaxSectionText;
            if (member.key() == "fields") member_limit = std::min(member_limit, kMaxFieldText);
            for_each_string(member.value(), pointer + "/" + pointer_token(member.key()), member_limit, visit);
        }
    }
}

bool has_placeholder(std::string_view text) { return text.find(kPlaceholderStart) != std::string_view::npos; }

bool truthy(const json::value& value) {
    if (value.is_bool()) return value.get_bool();
    if (value.is_number()) return value.to_number<double>() != 0;
    if (value.is_string()) return !value.get_string().empty() && value.get_string() != "false";
    return !value.is_null();
}

// "template: unknown placeholder …" from AlertTemplate, said once.
std::string without_prefix(std::string message) {
    constexpr std::string_view kPrefix = "template: ";
    if (message.starts_with(kPrefix)) message.erase(0, kPrefix.size());
    return message;
}

}  // namespace

MessageTemplate MessageTemplate::parse(std::string_view json_text) {
    json::parser parser;
    boost::system::error_code error;
    const std::size_t consumed = parser.write_some(json_text.data(), json_text.size(), error);
    // json::parser takes one whole text: an unfinished one is an error, what follows a
    // finished one is left unconsumed.
    if (error) {
        throw std::invalid_argument("template is not valid JSON (" + error.message() + " at offset " +
                                    std::to_string(consumed) + ")");
    }
    if (json_text.substr(consumed).find_first_not_of(" \t\r\n") != std::string_view::npos) {
        throw std::invalid_argument("template is not valid JSON (extra text at offset " + std::to_string(consumed) +
                                    ")");
    }
    return from_json(parser.release());
}

MessageTemplate MessageTemplate::from_json(const json::value& document) {
    if (!document.is_object()) throw std::invalid_argument("template must be a JSON object (a Slack message)");
    MessageTemplate parsed;
    parsed.skeleton_ = document.get_object();
    const json::object& message = parsed.skeleton_;
    const auto* text = message.if_contains("text");
    const auto* blocks = message.if_contains("blocks");
    if ((text == nullptr || !text->is_string()) && (blocks == nullptr || !blocks->is_array())) {
        throw std::invalid_argument("template needs a \"text\" string or a \"blocks\" array");
    }
    if (blocks != nullptr && blocks->is_array() && blocks->get_array().size() > kMaxBlocks) {
        throw std::invalid_argument("template has " + std::to_string(blocks->get_array().size()) +
                                    " blocks; Slack takes at most " + std::to_string(kMaxBlocks));
    }
    if (const auto* link_names = message.if_contains("link_names"); link_names != nullptr && truthy(*link_names)) {
        throw std::invalid_argument(
            "template sets link_names, which would let an event's text (\"@channel\") notify people; remove it");
    }
    json::value walked = parsed.skeleton_;
    auto collect = [&parsed](json::string& string, const std::string& pointer, std::size_t max_bytes) {
        if (!has_placeholder(string)) {
            if (string.size() > max_bytes) {
                throw std::invalid_argument("template " + pointer + ": " + std::to_string(string.size()) +
                                            " bytes; Slack takes at most " + std::to_string(max_bytes) + " here");
            }
            return;
        }
        try {
            parsed.slots_.push_back({sinkkit::AlertTemplate::parse(string), max_bytes});
        } catch (const std::invalid_argument& e) {
            throw std::invalid_argument("template " + pointer + ": " + without_prefix(e.what()));
        }
    };
    for_each_string(walked, "", kMaxSectionText, collect);
    return parsed;
}

json::object MessageTemplate::render(const json::object& alert) const {
    json::value message = skeleton_;
    std::size_t next = 0;
    auto fill = [&](json::string& string, const std::string&, std::size_t) {
        if (!has_placeholder(string)) return;
        const Slot& slot = slots_.at(next++);
        string = cut_escaped(slot.text.render(alert, escape_event_text), slot.max_bytes);
    };
    for_each_string(message, "", kMaxSectionText, fill);
    return std::move(message.get_object());
}

std::string render_templated_message(std::string_view alert_json, const MessageTemplate& message_template,
                                     const MessageOptions& options) {
    boost::system::error_code error;
    const json::value alert = json::parse(alert_json, error);
    if (error) throw std::invalid_argument("the alert is not valid JSON: " + error.message());
    if (!alert.is_object()) throw std::invalid_argument("the alert is not a JSON object");
    json::object message = message_template.render(alert.get_object());
    apply_overrides(message, options);
    return json::serialize(message);
}

}  // namespace tattle::sinks::slack
