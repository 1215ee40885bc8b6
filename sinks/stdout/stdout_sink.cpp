#include "stdout_sink.hpp"

#include <boost/json.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace tattle::sinks {

StdoutFormat parse_stdout_format(const std::string& config_json) {
    const auto config = boost::json::parse(config_json).as_object();
    return config.at("format").as_string() == "text" ? StdoutFormat::Text : StdoutFormat::Json;
}

namespace {

std::string field(const boost::json::object& object, std::string_view key) {
    const auto* value = object.if_contains(key);
    if (value == nullptr) return {};
    if (value->is_string()) return std::string(value->get_string());
    return boost::json::serialize(*value);
}

// Event fields are attacker-controlled: keep control characters (terminal
// escapes, newlines) out of a line meant for a terminal.
std::string printable(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte < 0x20 || byte == 0x7f) {
            static constexpr char kHex[] = "0123456789abcdef";
            out += "\\x";
            out += kHex[byte >> 4U];
            out += kHex[byte & 0x0fU];
        } else {
            out += c;
        }
    }
    return out;
}

}  // namespace

std::string render_text_line(std::string_view alert_json) {
    const auto alert = boost::json::parse(alert_json).as_object();
    const auto& summary = alert.at("summary").as_object();
    const auto& rule = alert.at("rule").as_object();
    std::string line = field(summary, "event_time");
    line += " [" + field(rule, "name") + "] ";
    line += field(summary, "actor").empty() ? "-" : field(summary, "actor");
    line += ' ' + field(summary, "event_source") + ' ' + field(summary, "event_name");
    for (const auto& [label, key] : {std::pair{"account", "account_id"}, std::pair{"region", "region"},
                                     std::pair{"ip", "source_ip"}, std::pair{"error", "error_code"}}) {
        if (auto value = field(summary, key); !value.empty()) line += std::string(" ") + label + "=" + value;
    }
    if (const auto* annotation = alert.if_contains("annotation"); annotation != nullptr && !annotation->is_null()) {
        line += " -- ";
        line += annotation->is_string() ? std::string(annotation->get_string()) : boost::json::serialize(*annotation);
    }
    // Alert shaping: the title, the matches dedup held back, the matches that met a threshold.
    if (const auto* title = alert.if_contains("title"); title != nullptr && title->is_string()) {
        line += " title=" + boost::json::serialize(*title);
    }
    if (const auto* dedup = alert.if_contains("dedup"); dedup != nullptr && dedup->is_object()) {
        line += " suppressed=" + field(dedup->get_object(), "suppressed");
    }
    if (const auto* threshold = alert.if_contains("threshold"); threshold != nullptr && threshold->is_object()) {
        line += " threshold_count=" + field(threshold->get_object(), "count");
    }
    return printable(line);
}

std::string StdoutSink::write(std::string_view alert_json) {
    bool written = false;
    if (format_ == StdoutFormat::Json) {
        // Written as it is, without a copy to add the newline to; the stream's lock keeps
        // another sink's line from landing between the two.
        flockfile(out_);
        written = fwrite_unlocked(alert_json.data(), 1, alert_json.size(), out_) == alert_json.size() &&
                  putc_unlocked('\n', out_) != EOF;
        funlockfile(out_);
    } else {
        std::string line = render_text_line(alert_json);
        line += '\n';
        written = std::fwrite(line.data(), 1, line.size(), out_) == line.size();
    }
    if (!written) return std::string("write to stdout failed: ") + std::strerror(errno);
    return {};
}

std::string StdoutSink::flush() {
    if (std::fflush(out_) != 0) return std::string("flush of stdout failed: ") + std::strerror(errno);
    return {};
}

}  // namespace tattle::sinks
