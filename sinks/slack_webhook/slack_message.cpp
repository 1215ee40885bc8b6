#include "slack_message.hpp"

#include <algorithm>
#include <array>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "tattle/sinkkit/alert_facts.hpp"
#include "tattle/sinkkit/cloudtrail_link.hpp"
#include "tattle/sinkkit/json_fields.hpp"
#include "tattle/sinkkit/json_trim.hpp"
#include "tattle/sinkkit/text.hpp"

namespace tattle::sinks::slack {
namespace {

namespace json = boost::json;

using sinkkit::kEllipsis;
constexpr std::string_view kZeroWidthSpace = "\u200b";

using sinkkit::object_at;
using sinkkit::string_at;
using sinkkit::text_of;
using sinkkit::TrimLevel;
using sinkkit::trimmed;
using sinkkit::utf8_sequence_length;

enum class Lines { Single, Multiple };

// Escapes text for mrkdwn and plain_text and fits it in max_bytes without splitting
// an entity or a UTF-8 sequence. Control characters become spaces (newlines too for
// single-line values): an event must not be able to start a fake "*Who*" line.
std::string escaped_within(std::string_view raw, std::size_t max_bytes, Lines lines) {
    std::vector<std::string_view> pieces;
    pieces.reserve(raw.size());
    std::size_t total = 0;
    for (std::size_t at = 0; at < raw.size();) {
        const auto byte = static_cast<unsigned char>(raw[at]);
        std::size_t length = std::min(utf8_sequence_length(byte), raw.size() - at);
        std::string_view piece = raw.substr(at, length);
        if (byte == '&') {
            piece = "&amp;";
        } else if (byte == '<') {
            piece = "&lt;";
        } else if (byte == '>') {
            piece = "&gt;";
        } else if (byte == '\n' && lines == Lines::Multiple) {
            piece = "\n";
        } else if (byte < 0x20 || byte == 0x7f) {
            piece = " ";
        }
        pieces.push_back(piece);
        total += piece.size();
        at += length;
    }
    std::string out;
    if (total <= max_bytes) {
        out.reserve(total);
        for (const auto piece : pieces) out += piece;
        return out;
    }
    if (max_bytes < kEllipsis.size()) return {};
    const std::size_t budget = max_bytes - kEllipsis.size();
    for (const auto piece : pieces) {
        if (out.size() + piece.size() > budget) break;
        out += piece;
    }
    out += kEllipsis;
    return out;
}

std::string one_line(std::string_view raw, std::size_t max_bytes) {
    return escaped_within(raw, max_bytes, Lines::Single);
}

std::string upper(std::string_view text) {
    std::string out(text);
    for (char& c : out) {
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    }
    return out;
}

json::object mrkdwn(std::string text) {
    // verbatim: Slack does not auto-link URLs or channel names found in event text.
    return {{"type", "mrkdwn"}, {"text", std::move(text)}, {"verbatim", true}};
}

json::object section(std::string text) {
    return {{"type", "section"}, {"text", mrkdwn(std::move(text))}};
}

// ---- the event in a code block -------------------------------------------------

// How hard to cut the event down. Applied in order until the code block fits.
constexpr std::array<TrimLevel, 7> kTrimLevels{{
    {512, 30, 60, 8},
    {200, 10, 40, 6},
    {100, 5, 30, 5},
    {60, 3, 25, 4},
    {40, 2, 20, 3},
    {24, 1, 15, 2},
    {16, 1, 10, 1},
}};

std::string code_block(std::string_view code) {
    return "```\n" + escape_mrkdwn(neutralise_code_fences(code)) + "\n```";
}

// The event section: pretty when it fits, compact when only that fits, then cut
// down level by level. Cutting works on the JSON value, not on its text, so what
// Slack shows is always complete, valid JSON.
std::string event_section_text(const json::value& event) {
    const std::string full_size = std::to_string(json::serialize(event).size());
    for (std::size_t step = 0; step <= kTrimLevels.size(); ++step) {
        const json::value candidate = step == 0 ? event : trimmed(event, kTrimLevels[step - 1], 0);
        const std::string label =
            step == 0 ? "*Event*\n"
                      : "*Event* (trimmed to fit Slack; " + full_size + " bytes in full)\n";
        for (const bool indented : {true, false}) {
            std::string text =
                label + code_block(indented ? sinkkit::pretty_json(candidate) : json::serialize(candidate));
            if (text.size() <= kMaxSectionText) return text;
        }
    }
    return "*Event*: too large to show here (" + full_size + " bytes)";
}

// ---- the rest of the message ---------------------------------------------------

std::string header_text(std::string_view rule_name, std::string_view severity) {
    std::string raw(rule_name.empty() ? "Alert" : rule_name);
    if (!severity.empty()) raw += " \u00b7 " + upper(severity);
    const std::string_view marker = ":rotating_light: ";
    return std::string(marker) + one_line(raw, kMaxHeaderText - marker.size());
}

std::string fallback_text(const json::object& alert, std::string_view rule_name,
                          std::string_view severity, const json::object& summary) {
    std::string raw;
    if (!severity.empty()) raw += "[" + upper(severity) + "] ";
    // The title says it all in one line; the notification shows nothing else.
    if (const auto title = string_at(alert, "title"); !title.empty()) {
        return one_line(raw + std::string(title), kMaxFallbackText);
    }
    raw += rule_name;
    if (const auto* annotation = alert.if_contains("annotation");
        annotation != nullptr && !annotation->is_null()) {
        raw += ": " + text_of(*annotation);
    }
    if (const auto name = string_at(summary, "event_name"); !name.empty()) {
        raw += " \u2014 ";
        raw += name;
        if (const auto actor = string_at(summary, "actor"); !actor.empty()) {
            raw += " by ";
            raw += actor;
        }
    }
    return one_line(raw, kMaxFallbackText);
}

// Rule description and annotation: why this alert exists.
std::string intro_text(const json::object& alert, const json::object& rule) {
    std::string text;
    // With a title in the header, the rule's name comes first here.
    if (!string_at(alert, "title").empty()) {
        if (const auto name = string_at(rule, "name"); !name.empty()) {
            text += "*Rule:* " + escaped_within(name, 500, Lines::Single);
        }
    }
    if (const auto note = sinkkit::shaping_note(alert); !note.empty()) {
        text += std::string(text.empty() ? "" : "\n") + ":repeat: " + escaped_within(note, 1000, Lines::Single);
    }
    if (const auto description = string_at(rule, "description"); !description.empty()) {
        if (!text.empty()) text += '\n';
        text += escaped_within(description, 1000, Lines::Multiple);
    }
    if (const auto* annotation = alert.if_contains("annotation");
        annotation != nullptr && !annotation->is_null()) {
        if (!text.empty()) text += '\n';
        const std::string label = "*Annotation:* ";
        text +=
            label + escaped_within(text_of(*annotation),
                                   kMaxSectionText - text.size() - label.size(), Lines::Multiple);
    }
    return text;
}

json::object fact_fields(const json::object& summary) {
    const auto field = [](std::string_view label, const std::string& value) {
        return mrkdwn("*" + std::string(label) + "*\n" + value);
    };
    constexpr std::size_t kValueBytes = 600;  // keeps every field far below kMaxFieldText
    json::array fields;

    const auto actor = string_at(summary, "actor");
    std::string who = actor.empty() ? "unknown" : one_line(actor, kValueBytes);
    if (const auto session = role_session_name(actor); !session.empty()) {
        who += "\nsession " + one_line(session, 200);
    }
    fields.push_back(field("Who", who));

    const auto name = string_at(summary, "event_name");
    const auto source = string_at(summary, "event_source");
    std::string what = one_line(name.empty() ? "unknown event" : name, 200);
    if (!source.empty()) what += "\n" + one_line(source, 200);
    fields.push_back(field("What", what));

    std::vector<std::string> where;
    if (const auto account = string_at(summary, "account_id"); !account.empty()) {
        where.push_back("account " + one_line(account, 100));
    }
    if (const auto region = string_at(summary, "region"); !region.empty())
        where.push_back(one_line(region, 100));
    if (!where.empty()) {
        std::string joined = where.front();
        for (std::size_t i = 1; i < where.size(); ++i) joined += " \u00b7 " + where[i];
        fields.push_back(field("Where", joined));
    }
    if (const auto time = string_at(summary, "event_time"); !time.empty()) {
        fields.push_back(field("When", one_line(time, 100)));
    }
    if (const auto ip = string_at(summary, "source_ip"); !ip.empty()) {
        fields.push_back(field("Source IP", one_line(ip, 200)));
    }
    if (const auto agent = string_at(summary, "user_agent"); !agent.empty()) {
        fields.push_back(field("User agent", one_line(agent, kValueBytes)));
    }
    return {{"type", "section"}, {"fields", std::move(fields)}};
}

std::string error_text(const json::object& summary) {
    const auto code = string_at(summary, "error_code");
    const auto message = string_at(summary, "error_message");
    if (code.empty() && message.empty()) return {};
    std::string text = ":x: *Error*";
    if (!code.empty()) text += " " + one_line(code, 200);
    if (!message.empty()) text += "\n" + escaped_within(message, 1500, Lines::Multiple);
    return text;
}

// The rule's tags and runbook, for whoever picks the alert up; empty when it has neither.
std::string playbook_text(const json::object& rule) {
    std::string text;
    if (const auto* tags = rule.if_contains("tags"); tags != nullptr && tags->is_array()) {
        std::string joined;
        for (const auto& tag : tags->get_array()) {
            if (!tag.is_string()) continue;
            joined += (joined.empty() ? "" : ", ") + std::string(tag.get_string());
        }
        if (!joined.empty()) text += "*Tags*: " + one_line(joined, 500);
    }
    if (const auto runbook = string_at(rule, "runbook"); !runbook.empty()) {
        // A link only when nothing in the URL can end Slack's <url|label> early.
        const bool linkable = (runbook.rfind("https://", 0) == 0 || runbook.rfind("http://", 0) == 0) &&
                              runbook.find_first_of("|<> \t\n") == std::string_view::npos &&
                              runbook.size() <= 1000;
        text += std::string(text.empty() ? "" : "\n") + ":book: " +
                (linkable ? "<" + std::string(runbook) + "|Runbook>" : "Runbook: " + one_line(runbook, 1000));
    }
    return text;
}

std::string origin_text(const json::object& alert) {
    std::string raw = "tattle";
    if (const auto id = string_at(alert, "alert_id"); !id.empty())
        raw += " \u00b7 alert " + std::string(id);
    if (const auto destination = string_at(alert, "destination"); !destination.empty()) {
        raw += " \u00b7 destination " + std::string(destination);
    }
    if (const auto* origin = object_at(alert, "origin")) {
        if (const auto source = string_at(*origin, "source"); !source.empty())
            raw += " \u00b7 source " + std::string(source);
        if (const auto batch = string_at(*origin, "batch"); !batch.empty()) {
            raw += " \u00b7 " + std::string(batch);
            if (const auto* index = origin->if_contains("index");
                index != nullptr && index->is_number()) {
                raw += " #" + json::serialize(*index);
            }
        }
    }
    return one_line(raw, 1000);
}

}  // namespace

std::string escape_mrkdwn(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (const char c : text) {
        switch (c) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            default:
                out += c;
        }
    }
    return out;
}

std::string escape_event_text(std::string_view text) {
    return escaped_within(text, text.size() * 5, Lines::Multiple);  // "&amp;" is the longest escape
}

std::string cut_escaped(std::string_view text, std::size_t max_bytes) {
    if (text.size() <= max_bytes) return std::string(text);
    if (max_bytes < kEllipsis.size()) return {};
    std::size_t cut = max_bytes - kEllipsis.size();
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0U) == 0x80U) --cut;
    // "&amp;" is the longest entity we write: an '&' within 4 bytes of the cut with no ';'
    // after it starts one that the cut would split.
    const std::size_t window = std::min<std::size_t>(cut, 4);
    const std::string_view tail = text.substr(cut - window, window);
    if (const auto amp = tail.rfind('&'); amp != std::string_view::npos &&
                                           tail.find(';', amp) == std::string_view::npos) {
        cut -= window - amp;
    }
    return std::string(text.substr(0, cut)) + std::string(kEllipsis);
}

std::string neutralise_code_fences(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '`' && i > 0 && text[i - 1] == '`') out += kZeroWidthSpace;
        out += text[i];
    }
    return out;
}

std::string role_session_name(std::string_view arn) { return sinkkit::role_session_name(arn); }

json::object build_message(const json::object& alert, const MessageOptions& options) {
    const auto* rule = object_at(alert, "rule");
    if (rule == nullptr) throw std::invalid_argument("the alert has no rule object");
    static const json::object kNoSummary;
    const auto* summary_found = object_at(alert, "summary");
    const json::object& summary = summary_found != nullptr ? *summary_found : kNoSummary;
    const auto rule_name = string_at(*rule, "name");
    const auto severity = string_at(*rule, "severity");

    json::array blocks;
    blocks.push_back(
        {{"type", "header"},
         {"text",
          {{"type", "plain_text"},
           {"text", header_text(string_at(alert, "title").empty() ? rule_name : string_at(alert, "title"), severity)},
           {"emoji", true}}}});
    if (auto intro = intro_text(alert, *rule); !intro.empty())
        blocks.push_back(section(std::move(intro)));
    blocks.push_back(fact_fields(summary));
    if (auto error = error_text(summary); !error.empty())
        blocks.push_back(section(std::move(error)));
    if (const auto url =
            cloudtrail_console_url(string_at(summary, "region"), string_at(summary, "event_id"));
        !url.empty()) {
        // The URL holds a checked region and a percent-encoded id: no '|' or '>' can end the link
        // early. The id is the event's and encoding can triple it: a link too long for a section
        // (Slack would refuse the whole message) is left out; the event below still shows the id.
        std::string link = ":mag: <" + url + "|View this event in the CloudTrail console>";
        if (link.size() <= kMaxSectionText) blocks.push_back(section(std::move(link)));
    }
    if (auto playbook = playbook_text(*rule); !playbook.empty()) blocks.push_back(section(std::move(playbook)));
    if (const auto* event = alert.if_contains("event"); event != nullptr && !event->is_null()) {
        blocks.push_back(section(event_section_text(*event)));
    }
    blocks.push_back({{"type", "context"}, {"elements", json::array{mrkdwn(origin_text(alert))}}});

    json::object message;
    message["text"] = fallback_text(alert, rule_name, severity, summary);
    message["blocks"] = std::move(blocks);
    apply_overrides(message, options);
    return message;
}

void apply_overrides(json::object& message, const MessageOptions& options) {
    if (!options.channel.empty()) message["channel"] = options.channel;
    if (!options.username.empty()) message["username"] = options.username;
    if (!options.icon_emoji.empty()) message["icon_emoji"] = options.icon_emoji;
}

std::string render_message(std::string_view alert_json, const MessageOptions& options) {
    boost::system::error_code error;
    const json::value alert = json::parse(alert_json, error);
    if (error) throw std::invalid_argument("the alert is not valid JSON: " + error.message());
    if (!alert.is_object()) throw std::invalid_argument("the alert is not a JSON object");
    return json::serialize(build_message(alert.get_object(), options));
}

}  // namespace tattle::sinks::slack
