#include "ses_message.hpp"

#include <array>
#include <stdexcept>
#include <utility>
#include <vector>

#include "tattle/sinkkit/alert_facts.hpp"
#include "tattle/sinkkit/json_fields.hpp"
#include "tattle/sinkkit/json_trim.hpp"
#include "tattle/sinkkit/text.hpp"

namespace tattle::sinks::ses {
namespace {

namespace json = boost::json;

using sinkkit::AlertFacts;
using sinkkit::TrimLevel;

// How hard to cut the event down, gentlest first; the last one summarises it whole.
constexpr std::array<TrimLevel, 8> kTrimLevels{{
    {4096, 100, 100, 12},
    {1024, 50, 100, 10},
    {512, 30, 60, 8},
    {200, 10, 40, 6},
    {100, 5, 30, 5},
    {40, 2, 20, 3},
    {16, 1, 10, 1},
    {16, 1, 10, 0},
}};

// Bounds for the values of one fact; a person reads the event below for the rest.
constexpr std::size_t kValueBytes = 1000;
constexpr std::size_t kLongTextBytes = 4000;

// Multi-line text (description, annotation, error message): newlines kept, other
// control characters become spaces, bounded.
std::string paragraph(std::string_view text, std::size_t max_bytes) {
    std::string out(text);
    for (char& c : out) {
        const auto byte = static_cast<unsigned char>(c);
        if ((byte < 0x20 && c != '\n') || byte == 0x7f) c = ' ';
    }
    return sinkkit::cut_utf8(out, max_bytes);
}

// HTML of multi-line text: escaped, newlines as <br>.
std::string html_paragraph(std::string_view text, std::size_t max_bytes) {
    std::string out;
    for (const char c : html_escape(paragraph(text, max_bytes))) {
        if (c == '\n') {
            out += "<br>\n";
        } else {
            out += c;
        }
    }
    return out;
}

std::string upper(std::string_view text) {
    std::string out(text);
    for (char& c : out) {
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    }
    return out;
}

std::string title_of(const AlertFacts& facts) {
    std::string title = !facts.title.empty() ? facts.title : facts.rule_name.empty() ? "Alert" : facts.rule_name;
    if (!facts.severity.empty()) title += " \u00b7 " + upper(facts.severity);
    return one_line(title, kValueBytes);
}

// One row of the facts table: a label and its lines, each already one line of raw text.
struct Fact {
    std::string label;
    std::vector<std::string> lines;
};

std::vector<Fact> facts_table(const AlertFacts& facts) {
    std::vector<Fact> table;
    const auto line = [](std::string_view text) { return one_line(text, kValueBytes); };

    // A titled alert's heading is its title: the rule goes in the table.
    if (!facts.title.empty() && !facts.rule_name.empty()) table.push_back({"Rule", {line(facts.rule_name)}});
    if (!facts.shaping_note.empty()) table.push_back({"Repeats", {line(facts.shaping_note)}});
    Fact who{"Who", {facts.actor.empty() ? "unknown" : line(facts.actor)}};
    if (!facts.session.empty()) who.lines.push_back("session " + line(facts.session));
    table.push_back(std::move(who));

    Fact what{"What", {facts.event_name.empty() ? "unknown event" : line(facts.event_name)}};
    if (!facts.event_source.empty()) what.lines.push_back(line(facts.event_source));
    table.push_back(std::move(what));

    std::string where;
    if (!facts.account_id.empty()) where = "account " + facts.account_id;
    if (!facts.region.empty()) where += (where.empty() ? "" : " \u00b7 ") + facts.region;
    if (!where.empty()) table.push_back({"Where", {line(where)}});
    if (!facts.event_time.empty()) table.push_back({"When", {line(facts.event_time)}});
    if (!facts.source_ip.empty()) table.push_back({"Source IP", {line(facts.source_ip)}});
    if (!facts.user_agent.empty()) table.push_back({"User agent", {line(facts.user_agent)}});
    if (!facts.tags.empty()) {
        std::string joined;
        for (const auto& tag : facts.tags) joined += (joined.empty() ? "" : ", ") + tag;
        table.push_back({"Tags", {line(joined)}});
    }
    if (!facts.runbook.empty()) table.push_back({"Runbook", {line(facts.runbook)}});
    if (!facts.error_code.empty() || !facts.error_message.empty()) {
        Fact error{"Error", {}};
        if (!facts.error_code.empty()) error.lines.push_back(line(facts.error_code));
        if (!facts.error_message.empty()) error.lines.push_back(one_line(facts.error_message, kLongTextBytes));
        table.push_back(std::move(error));
    }
    return table;
}

std::string footer_of(const AlertFacts& facts) {
    std::string footer = "tattle";
    if (!facts.alert_id.empty()) footer += " \u00b7 alert " + facts.alert_id;
    if (!facts.destination.empty()) footer += " \u00b7 destination " + facts.destination;
    if (!facts.origin.empty()) footer += " \u00b7 " + facts.origin;
    return one_line(footer, kValueBytes);
}

struct EventView {
    std::string json;
    bool trimmed = false;
    std::size_t full_bytes = 0;
};

std::string text_body(const AlertFacts& facts, const std::vector<Fact>& table, const EventView* event) {
    std::string text = title_of(facts) + "\n";
    if (!facts.description.empty()) text += paragraph(facts.description, kLongTextBytes) + "\n";
    if (facts.has_annotation) text += "Annotation: " + paragraph(facts.annotation, kLongTextBytes) + "\n";
    text += "\n";
    for (const auto& fact : table) {
        std::string label = fact.label + ":";
        label.resize(12, ' ');
        for (std::size_t i = 0; i < fact.lines.size(); ++i) {
            text += (i == 0 ? label : std::string(12, ' ')) + fact.lines[i] + "\n";
        }
    }
    if (!facts.console_url.empty()) text += "\nView this event in the CloudTrail console:\n" + facts.console_url + "\n";
    if (event != nullptr) {
        text += "\nEvent";
        if (event->trimmed) text += " (trimmed; " + std::to_string(event->full_bytes) + " bytes in full)";
        text += ":\n" + event->json + "\n";
    }
    text += "\n-- \n" + footer_of(facts) + "\n";
    return text;
}

std::string html_body(const AlertFacts& facts, const std::vector<Fact>& table, const EventView* event) {
    // Inline styles only: most mail clients drop <style> blocks.
    std::string html =
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + html_escape(title_of(facts)) +
        "</title></head>\n<body style=\"font-family: sans-serif; font-size: 14px;\">\n";
    html += "<h2 style=\"margin: 0 0 8px 0;\">&#x1F6A8; " + html_escape(title_of(facts)) + "</h2>\n";
    if (!facts.description.empty()) html += "<p>" + html_paragraph(facts.description, kLongTextBytes) + "</p>\n";
    if (facts.has_annotation) {
        html += "<p><b>Annotation:</b> " + html_paragraph(facts.annotation, kLongTextBytes) + "</p>\n";
    }
    html += "<table style=\"border-collapse: collapse;\">\n";
    for (const auto& fact : table) {
        html += "<tr><th style=\"text-align: left; vertical-align: top; padding: 2px 12px 2px 0;\">" +
                html_escape(fact.label) + "</th><td style=\"padding: 2px 0;\">";
        for (std::size_t i = 0; i < fact.lines.size(); ++i) {
            if (i > 0) html += "<br>";
            html += html_escape(fact.lines[i]);
        }
        html += "</td></tr>\n";
    }
    html += "</table>\n";
    if (!facts.console_url.empty()) {
        // The URL holds a checked region and a percent-encoded event id; escaped all the same.
        html += "<p>&#x1F50D; <a href=\"" + html_escape(facts.console_url) +
                "\">View this event in the CloudTrail console</a></p>\n";
    }
    if (event != nullptr) {
        html += "<p><b>Event</b>";
        if (event->trimmed) html += " (trimmed; " + std::to_string(event->full_bytes) + " bytes in full)";
        html += "</p>\n<pre style=\"background: #f6f8fa; padding: 8px; white-space: pre-wrap;\">" +
                html_escape(event->json) + "</pre>\n";
    }
    html += "<p style=\"color: #666666; font-size: 12px;\">" + html_escape(footer_of(facts)) + "</p>\n</body></html>\n";
    return html;
}

}  // namespace

std::string html_escape(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (const char c : text) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&#39;"; break;
            default: out += c;
        }
    }
    return out;
}

std::string one_line(std::string_view text, std::size_t max_bytes) {
    std::string out(text);
    for (char& c : out) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte < 0x20 || byte == 0x7f) c = ' ';
    }
    return sinkkit::cut_utf8(out, max_bytes);
}

std::string default_subject(const json::object& alert) {
    const AlertFacts facts = sinkkit::facts_of(alert);
    // A title is written to be the one line a person reads first.
    if (!facts.title.empty()) return facts.title;
    std::string subject = facts.rule_name.empty() ? "tattle alert" : facts.rule_name;
    if (!facts.actor.empty()) subject += " by " + (facts.session.empty() ? facts.actor : facts.session);
    return subject;
}

std::string event_json(const json::value& event, std::size_t max_bytes, bool& trimmed) {
    trimmed = false;
    std::string text = sinkkit::pretty_json(event);
    if (text.size() <= max_bytes) return text;
    trimmed = true;
    for (const auto& level : kTrimLevels) {
        text = sinkkit::pretty_json(sinkkit::trimmed(event, level, 0));
        if (text.size() <= max_bytes) return text;
    }
    return text;  // the last level is one short string
}

Email build_email(const json::object& alert, const std::optional<sinkkit::AlertTemplate>& subject_template) {
    if (sinkkit::object_at(alert, "rule") == nullptr) throw std::invalid_argument("the alert has no rule object");
    const AlertFacts facts = sinkkit::facts_of(alert);
    const std::vector<Fact> table = facts_table(facts);

    EventView view;
    const json::value* event = alert.if_contains("event");
    if (event != nullptr && !event->is_null()) {
        view.json = event_json(*event, kMaxEventBytes, view.trimmed);
        view.full_bytes = json::serialize(*event).size();
    }
    const EventView* shown = event != nullptr && !event->is_null() ? &view : nullptr;

    Email email;
    const std::string subject = subject_template ? subject_template->render(alert) : default_subject(alert);
    email.subject = one_line(subject.empty() ? default_subject(alert) : subject, kMaxSubjectBytes);
    email.text = text_body(facts, table, shown);
    email.html = html_body(facts, table, shown);
    return email;
}

}  // namespace tattle::sinks::ses
