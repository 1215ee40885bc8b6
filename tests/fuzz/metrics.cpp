// The Prometheus text page over names tattle does not choose (rule and destination ids
// come from configs and bundles). The input is NUL-separated names: rules, then after an
// empty name, destinations. Invariants: escape_label_value round-trips and leaves no raw
// line break; every line of the page is a comment or `name{label="value",...} number`
// whose label values unescape to a name given.

#include <chrono>
#include <set>
#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "tattle/metrics.hpp"

namespace {

using tattle::fuzz::require;

// Reads one escaped label value starting after its opening quote; returns the end (the
// closing quote) and the unescaped text, or npos when the escaping is broken.
std::size_t read_label_value(std::string_view line, std::size_t at, std::string& value) {
    for (; at < line.size(); ++at) {
        const char c = line[at];
        if (c == '"') return at;
        if (c == '\\') {
            if (++at >= line.size()) return std::string_view::npos;
            const char escaped = line[at];
            if (escaped == 'n') value += '\n';
            else if (escaped == '\\' || escaped == '"') value += escaped;
            else return std::string_view::npos;
        } else {
            value += c;
        }
    }
    return std::string_view::npos;
}

bool is_name_char(char c, bool first) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || (!first && c >= '0' && c <= '9');
}

void check_sample_line(std::string_view line, const std::set<std::string>& names) {
    std::size_t at = 0;
    while (at < line.size() && is_name_char(line[at], at == 0)) ++at;
    require(at > 0, "a sample line without a metric name", line);
    if (at < line.size() && line[at] == '{') {
        ++at;
        while (at < line.size() && line[at] != '}') {
            const std::size_t label_start = at;
            while (at < line.size() && is_name_char(line[at], at == label_start)) ++at;
            require(at > label_start && at + 1 < line.size() && line[at] == '=' && line[at + 1] == '"',
                    "a label without name=\"", line);
            std::string value;
            at = read_label_value(line, at + 2, value);
            require(at != std::string_view::npos, "a label value with broken escaping", line);
            const std::string_view label = line.substr(label_start, line.find('=', label_start) - label_start);
            if (label == "rule" || label == "destination") {
                require(names.count(value) == 1, "a label value that is no name given", line);
            }
            ++at;
            if (at < line.size() && line[at] == ',') ++at;
        }
        require(at < line.size(), "labels not closed", line);
        ++at;
    }
    require(at < line.size() && line[at] == ' ' && at + 1 < line.size(), "no value after the sample name", line);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input = tattle::fuzz::as_text(data, size);
    std::vector<std::string> rules;
    std::vector<std::string> destinations;
    bool in_destinations = false;
    for (const std::string_view name : tattle::fuzz::split(input, '\0', 64)) {
        const std::string escaped = tattle::escape_label_value(name);
        require(escaped.find('\n') == std::string::npos, "an escaped label value with a line break", name);
        std::string unescaped;
        require(read_label_value(escaped + '"', 0, unescaped) == escaped.size() && unescaped == name,
                "escape_label_value does not round-trip", name);
        if (name.empty()) {
            in_destinations = true;
            continue;
        }
        (in_destinations ? destinations : rules).emplace_back(name);
    }

    tattle::PipelineMetrics metrics;
    metrics.run_started(rules, destinations);
    metrics.event_read();
    for (const auto& rule : rules) {
        metrics.rule_matched(rule);
        metrics.set_run_rule_errors(rule, 1);
    }
    for (const auto& destination : destinations) metrics.alert_settled(destination, tattle::AlertOutcome::Delivered);
    const auto now = tattle::SteadyTime::clock::now();
    metrics.batch_opened(1, now);
    metrics.batch_closed(1, tattle::BatchOutcome::Settled, now + std::chrono::milliseconds(3));
    metrics.run_finished();

    std::set<std::string> names(rules.begin(), rules.end());
    names.insert(destinations.begin(), destinations.end());
    const std::string page = metrics.render(now);
    std::string_view rest = page;
    while (!rest.empty()) {
        const auto end = rest.find('\n');
        require(end != std::string_view::npos, "the page does not end in a line break", page);
        const std::string_view line = rest.substr(0, end);
        rest.remove_prefix(end + 1);
        if (line.empty() || line[0] == '#') continue;
        check_sample_line(line, names);
    }
    return 0;
}
