#include "tattle/rule_tests.hpp"

#include <boost/json.hpp>
#include <algorithm>
#include <fstream>
#include <optional>
#include <ostream>
#include <sstream>

#include "tattle/alert_shaping.hpp"
#include "tattle/filter.hpp"

namespace tattle {
namespace {

// An annotation as a person compares it: a string's text, anything else as JSON.
std::string annotation_text(const boost::json::value& annotation) {
    if (annotation.is_string()) return std::string(annotation.get_string());
    return boost::json::serialize(annotation);
}

std::string quoted(const std::string& text) { return boost::json::serialize(boost::json::string(text)); }

std::string describe_expectation(const RuleTestCase& test) {
    if (test.is_sequence()) return std::to_string(*test.alerts) + (*test.alerts == 1 ? " alert" : " alerts");
    if (!test.match) return "no match";
    std::string text = "match";
    if (test.annotation) text += " with annotation " + quoted(*test.annotation);
    if (test.title) text += ", title " + quoted(*test.title);
    if (test.dedup_key) text += ", dedup key " + quoted(*test.dedup_key);
    return text;
}

// An event as a JSON object (inline text, or the file's), or why it cannot be had.
std::optional<boost::json::object> load_event(const std::string& inline_json,
                                              const std::optional<std::filesystem::path>& event_file,
                                              std::string& error) {
    std::string text = inline_json;
    if (event_file) {
        std::ifstream file(*event_file, std::ios::binary);
        std::ostringstream content;
        if (file) content << file.rdbuf();
        if (!file || file.bad()) {
            error = "cannot read event_file " + event_file->string();
            return std::nullopt;
        }
        text = content.str();
    }
    boost::system::error_code ec;
    boost::json::value parsed = boost::json::parse(text, ec);
    if (ec || !parsed.is_object()) {
        error = (event_file ? "event_file " + event_file->string() : std::string("event")) +
                " is not a JSON object" + (ec ? " (" + ec.message() + ")" : "");
        return std::nullopt;
    }
    return std::move(parsed.as_object());
}

std::optional<boost::json::object> load_event(const RuleTestCase& test, std::string& error) {
    return load_event(test.event_json, test.event_file, error);
}

// A sequence test: the events in order through the filter and the rule's shaping,
// from no remembered keys; how many alerts come out.
void run_sequence_test(const RuleTestCase& test, std::size_t index, FilterStage& filter, AlertShaper& shaper,
                       RuleTestResult& result) {
    shaper.clear_state();
    shaper.begin_batch(test.where.to_string());
    const std::size_t count = test.events_json.empty() ? test.event_files.size() : test.events_json.size();
    std::size_t matches = 0, alerts = 0, deduplicated = 0, below_threshold = 0;
    std::string problem;
    for (std::size_t position = 0; position < count; ++position) {
        std::string error;
        const auto event = test.events_json.empty()
                               ? load_event({}, test.event_files[position], error)
                               : load_event(test.events_json[position], std::nullopt, error);
        if (!event) {
            result.got = "event #" + std::to_string(position + 1) + ": " + error;
            return;
        }
        const std::size_t errors_before = filter.runtime_errors(index);
        const auto found = filter.evaluate(*event);
        if (auto stopped = filter.disabled_reason(index)) {
            result.got = "event #" + std::to_string(position + 1) + ": the rule was stopped: it " + *stopped;
            return;
        }
        if (filter.runtime_errors(index) != errors_before) {
            result.got = "event #" + std::to_string(position + 1) + ": a jq runtime error (see the log)";
            return;
        }
        if (std::none_of(found.begin(), found.end(), [&](const RuleMatch& m) { return m.rule_index == index; })) {
            continue;
        }
        ++matches;
        const ShapingDecision decision = shaper.decide(index, *event);
        if (!decision.problem.empty() && problem.empty()) {
            problem = "event #" + std::to_string(position + 1) + ": " + decision.problem;
        }
        switch (decision.outcome) {
            case ShapingOutcome::alert: ++alerts; break;
            case ShapingOutcome::deduplicated: ++deduplicated; break;
            case ShapingOutcome::below_threshold: ++below_threshold; break;
        }
    }
    result.got = std::to_string(alerts) + (alerts == 1 ? " alert" : " alerts") + " (" + std::to_string(count) +
                 " events, " + std::to_string(matches) + " matched, " + std::to_string(deduplicated) +
                 " deduplicated, " + std::to_string(below_threshold) + " below threshold)";
    if (!problem.empty()) result.got += "; " + problem;
    result.passed = alerts == static_cast<std::size_t>(*test.alerts);
}

std::string xml_escaped(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (const char c : text) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&apos;"; break;
            default:
                // XML 1.0 forbids most control characters even as references.
                if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r') {
                    out += "\xEF\xBF\xBD";
                } else {
                    out += c;
                }
        }
    }
    return out;
}

}  // namespace

std::size_t RuleTestReport::failed() const noexcept {
    return static_cast<std::size_t>(
        std::count_if(results.begin(), results.end(), [](const RuleTestResult& r) { return !r.passed; }));
}

RuleTestReport run_rule_tests(const Config& config) {
    RuleTestReport report;
    // Under the budget `run` and `serve` give rules: a rule that never ends fails here
    // first, on its own test events.
    FilterStage filter(filter_rules_for(config.rules), report.problems, filter_options(config.limits));
    correct_filter_line_numbers(report.problems, 0, config.rules);
    ShapingOptions shaping;
    shaping.isolation = filter_options(config.limits).isolation;
    AlertShaper shaper(config, report.problems, shaping);

    for (std::size_t index = 0; index < config.rules.size(); ++index) {
        const RuleSpec& rule = config.rules[index];
        for (const auto& test : rule.tests) {
            RuleTestResult result;
            result.rule = rule.key();
            result.where = test.where;
            result.expected = describe_expectation(test);
            if (test.is_sequence()) {
                if (!filter.compiled(index)) {
                    result.got = "the rule's jq_match did not compile (see the problems above)";
                } else {
                    run_sequence_test(test, index, filter, shaper, result);
                }
                report.results.push_back(std::move(result));
                continue;
            }
            std::string error;
            const auto event = load_event(test, error);
            if (!filter.compiled(index)) {
                result.got = "the rule's jq_match did not compile (see the problems above)";
            } else if (!event) {
                result.got = error;
            } else {
                filter.begin_batch(test.where.to_string());
                shaper.begin_batch(test.where.to_string());
                const std::size_t errors_before = filter.runtime_errors(index);
                const auto matches = filter.evaluate(*event);
                const auto match = std::find_if(matches.begin(), matches.end(),
                                                [&](const RuleMatch& m) { return m.rule_index == index; });
                if (auto stopped = filter.disabled_reason(index)) {
                    result.got = "the rule was stopped: it " + *stopped;
                } else if (filter.runtime_errors(index) != errors_before) {
                    result.got = "a jq runtime error (see the log)";
                } else if (match == matches.end()) {
                    result.got = "no match";
                    result.passed = !test.match;
                } else {
                    result.got = match->annotation ? "match with annotation " + quoted(annotation_text(*match->annotation))
                                                   : "match";
                    result.passed = test.match && (!test.annotation || (match->annotation &&
                                                                        annotation_text(*match->annotation) ==
                                                                            *test.annotation));
                    // The title and dedup key the alert would carry, when the test expects them.
                    if (test.title) {
                        std::string why;
                        const auto title = shaper.title_or_error(index, *event, why);
                        result.got += title ? ", title " + quoted(*title) : ", no title (" + why + ")";
                        result.passed = result.passed && title == test.title;
                    }
                    if (test.dedup_key) {
                        std::string why;
                        const auto key = shaper.dedup_key(index, *event, why);
                        result.got += key ? ", dedup key " + quoted(*key) : ", no dedup key (" + why + ")";
                        result.passed = result.passed && key == test.dedup_key;
                    }
                    // Titles and keys the test does not expect still run, under the rule
                    // budget: one that never ends fails here, not in production.
                    if (!test.title && !test.dedup_key) {
                        std::string why;
                        const bool titled = shaper.title_or_error(index, *event, why).has_value();
                        if (!titled && why.find("was stopped") != std::string::npos) {
                            result.got += ", title stopped (" + why + ")";
                            result.passed = false;
                        }
                        why.clear();
                        const bool keyed = shaper.dedup_key(index, *event, why).has_value();
                        if (!keyed && why.find("was stopped") != std::string::npos) {
                            result.got += ", dedup key stopped (" + why + ")";
                            result.passed = false;
                        }
                    }
                }
            }
            report.results.push_back(std::move(result));
        }
    }
    for (auto& stopped : shaper.stopped_expressions()) report.stopped.push_back(std::move(stopped));
    for (const auto& disabled : filter.take_disabled()) {
        const RuleSpec& rule = config.rules[disabled.rule_index];
        report.stopped.push_back({rule.jq_match_where, "rule \"" + rule.key() + "\" was stopped on its test event (" +
                                                           disabled.origin + "): it " + disabled.reason});
    }
    return report;
}

void print_rule_test_table(const RuleTestReport& report, std::ostream& out) {
    std::size_t rule_width = 4;
    for (const auto& result : report.results) rule_width = std::max(rule_width, result.rule.size());
    out << "RESULT  " << std::string("RULE") << std::string(rule_width - 4 + 2, ' ') << "TEST\n";
    for (const auto& result : report.results) {
        out << (result.passed ? "pass    " : "FAIL    ") << result.rule
            << std::string(rule_width - result.rule.size() + 2, ' ') << result.where.to_string() << '\n';
        if (!result.passed) {
            out << "        expected: " << result.expected << '\n'
                << "        got:      " << result.got << '\n';
        }
    }
    const std::size_t failed = report.failed();
    out << report.results.size() << (report.results.size() == 1 ? " test, " : " tests, ")
        << report.results.size() - failed << " passed, " << failed << " failed\n";
}

std::string rule_tests_junit_xml(const RuleTestReport& report) {
    std::ostringstream xml;
    xml << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        << "<testsuites>\n"
        << "  <testsuite name=\"tattle rule tests\" tests=\"" << report.results.size() << "\" failures=\""
        << report.failed() << "\" errors=\"0\">\n";
    for (const auto& result : report.results) {
        xml << "    <testcase classname=\"" << xml_escaped(result.rule) << "\" name=\""
            << xml_escaped(result.where.to_string()) << "\"";
        if (result.passed) {
            xml << "/>\n";
            continue;
        }
        const std::string message = "expected " + result.expected + ", got " + result.got;
        xml << ">\n      <failure message=\"" << xml_escaped(message) << "\">"
            << xml_escaped("expected: " + result.expected + "\ngot:      " + result.got)
            << "</failure>\n    </testcase>\n";
    }
    xml << "  </testsuite>\n</testsuites>\n";
    return xml.str();
}

}  // namespace tattle
