#include "tattle/rule_tests.hpp"

#include <boost/json.hpp>
#include <algorithm>
#include <fstream>
#include <optional>
#include <ostream>
#include <sstream>

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
    if (!test.match) return "no match";
    if (test.annotation) return "match with annotation " + quoted(*test.annotation);
    return "match";
}

// The test's event as a JSON object, or why it cannot be had.
std::optional<boost::json::object> load_event(const RuleTestCase& test, std::string& error) {
    std::string text = test.event_json;
    if (test.event_file) {
        std::ifstream file(*test.event_file, std::ios::binary);
        std::ostringstream content;
        if (file) content << file.rdbuf();
        if (!file || file.bad()) {
            error = "cannot read event_file " + test.event_file->string();
            return std::nullopt;
        }
        text = content.str();
    }
    boost::system::error_code ec;
    boost::json::value parsed = boost::json::parse(text, ec);
    if (ec || !parsed.is_object()) {
        error = (test.event_file ? "event_file " + test.event_file->string() : std::string("event")) +
                " is not a JSON object" + (ec ? " (" + ec.message() + ")" : "");
        return std::nullopt;
    }
    return std::move(parsed.as_object());
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
    std::vector<FilterRule> filter_rules;
    for (const auto& rule : config.rules) filter_rules.push_back({rule.key(), rule.jq_match, rule.jq_match_where});
    FilterStage filter(std::move(filter_rules), report.problems);

    for (std::size_t index = 0; index < config.rules.size(); ++index) {
        const RuleSpec& rule = config.rules[index];
        for (const auto& test : rule.tests) {
            RuleTestResult result;
            result.rule = rule.key();
            result.where = test.where;
            result.expected = describe_expectation(test);
            std::string error;
            const auto event = load_event(test, error);
            if (!filter.compiled(index)) {
                result.got = "the rule's jq_match did not compile (see the problems above)";
            } else if (!event) {
                result.got = error;
            } else {
                filter.begin_batch(test.where.to_string());
                const std::size_t errors_before = filter.runtime_errors(index);
                const auto matches = filter.evaluate(*event);
                const auto match = std::find_if(matches.begin(), matches.end(),
                                                [&](const RuleMatch& m) { return m.rule_index == index; });
                if (filter.runtime_errors(index) != errors_before) {
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
                }
            }
            report.results.push_back(std::move(result));
        }
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
