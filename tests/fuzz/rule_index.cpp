// The rule index and the native reader of jq conditions against libjq: the same rules over
// the same events give the same results with RuleCompilation::indexed (the reader decides
// what it can read without libjq and routes events by the conditions it reads) as with
// RuleCompilation::combined (every rule through libjq on every event; the combined program
// is itself held to the one-program-per-rule reference by tests/unit/filter_combined_test.cpp,
// and it costs one libjq compilation per input where per_rule costs one per rule, ~35 ms each
// in libjq 1.6). Same compile problems, same rules compiled, same matches in the same order
// with the same annotations, same runtime error count per rule.
//
// Input: up to four jq rules separated by lines "#=rule=", then events, each after a line
// "#=event=" (a JSON object; anything else is skipped). Both markers are jq comments, so a
// mutation that breaks them leaves valid jq behind.
//
// Inputs with a rule that could run without end or allocate without bound in libjq (see
// may_not_terminate) are skipped: stopping such rules is the filter stage's time budget's
// job (hostile rules), not the reader's, and here they would only time out or run out of
// memory. The reader's handling of `def` is covered by the unit tests' rule grammar.

#include <spdlog/spdlog.h>

#include <boost/json.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "tattle/filter.hpp"

namespace {

namespace json = boost::json;
using tattle::FilterRule;
using tattle::FilterStage;
using tattle::RuleCompilation;
using tattle::fuzz::require;

constexpr std::string_view kRuleMarker = "\n#=rule=\n";
constexpr std::string_view kEventMarker = "\n#=event=\n";
constexpr std::size_t kMaxRules = 4;
constexpr std::size_t kMaxEvents = 16;
constexpr std::size_t kMaxRuleLength = 4096;

std::vector<std::string_view> split_on(std::string_view text, std::string_view marker) {
    std::vector<std::string_view> parts;
    for (;;) {
        const auto at = text.find(marker);
        if (at == std::string_view::npos) break;
        parts.push_back(text.substr(0, at));
        text.remove_prefix(at + marker.size());
    }
    parts.push_back(text);
    return parts;
}

// Whether a jq program could loop, or allocate, without bound on a small event in libjq:
// recursion and generators without end (def, range, repeat, while, until, recurse),
// libjq 1.6's endless global matches of an empty regex (gsub, scan, splits, a "g" flag),
// exponential output (combinations), and growth by multiplying strings or objects or by
// assigning far past an array's end ('*', '=' outside string literals, setpath).
bool may_not_terminate(std::string_view program) {
    static constexpr std::array<std::string_view, 11> words{
        "def",  "range", "repeat", "while",   "until",       "recurse",
        "gsub", "scan",  "splits", "setpath", "combinations"};
    for (const auto word : words) {
        if (program.find(word) != std::string_view::npos) return true;
    }
    bool in_string = false;
    for (std::size_t i = 0; i < program.size(); ++i) {
        const char c = program[i];
        if (in_string) {
            if (c == '\\') {
                ++i;
            } else if (c == '"') {
                in_string = false;
            }
            continue;
        }
        if (c == '"') {
            in_string = true;
            // A regex flags argument: '; "..."' of flag letters with a 'g' among them.
            std::size_t back = i;
            while (back > 0 && program[back - 1] == ' ') --back;
            if (back > 0 && program[back - 1] == ';') {
                const auto close = program.find('"', i + 1);
                const auto flags = program.substr(i + 1, close == std::string_view::npos ? 0 : close - i - 1);
                if (flags.find('g') != std::string_view::npos &&
                    flags.find_first_not_of("gimnpslx") == std::string_view::npos) {
                    return true;
                }
            }
            continue;
        }
        if (c == '*') return true;
        if (c == '=') {
            const char before = i > 0 ? program[i - 1] : ' ';
            const char after = i + 1 < program.size() ? program[i + 1] : ' ';
            if (after == '=') {
                ++i;  // '=='
                continue;
            }
            if (before != '!' && before != '<' && before != '>') return true;
        }
    }
    return false;
}

std::string describe(const std::vector<tattle::RuleMatch>& matches) {
    std::string text;
    for (const auto& match : matches) {
        text += std::to_string(match.rule_index);
        // Serialised, so a NaN annotation compares equal to itself.
        if (match.annotation) text += " -> " + json::serialize(*match.annotation);
        text += "; ";
    }
    return text;
}

std::vector<std::string> problem_texts(const std::vector<tattle::Diagnostic>& problems) {
    std::vector<std::string> texts;
    for (const auto& problem : problems) texts.push_back(problem.to_string());
    return texts;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    // Runtime errors of rules are expected here and counted, not read.
    spdlog::set_level(spdlog::level::off);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const int initialised = LLVMFuzzerInitialize(nullptr, nullptr);
    (void)initialised;
    const auto parts = split_on(tattle::fuzz::as_text(data, size), kEventMarker);

    std::vector<FilterRule> rules;
    for (const auto program : split_on(parts[0], kRuleMarker)) {
        if (rules.size() == kMaxRules) break;
        if (program.size() > kMaxRuleLength || may_not_terminate(program)) return 0;
        rules.push_back({"rule-" + std::to_string(rules.size()), std::string(program),
                         tattle::SourceLocation{"fuzz.toml", static_cast<int>(rules.size()) + 1, 0}});
    }
    std::vector<json::object> events;
    for (std::size_t i = 1; i < parts.size() && events.size() < kMaxEvents; ++i) {
        boost::system::error_code error;
        json::value value = json::parse(parts[i], error);
        if (!error && value.is_object()) events.push_back(std::move(value.as_object()));
    }

    std::vector<tattle::Diagnostic> reference_problems;
    FilterStage reference(rules, reference_problems, RuleCompilation::combined);
    std::vector<tattle::Diagnostic> indexed_problems;
    FilterStage indexed(rules, indexed_problems, RuleCompilation::indexed);
    const std::string rule_text(parts[0]);
    require(problem_texts(indexed_problems) == problem_texts(reference_problems),
            "compile problems differ between indexed and combined", rule_text);
    for (std::size_t index = 0; index < rules.size(); ++index) {
        require(indexed.compiled(index) == reference.compiled(index),
                "a rule compiles in one mode only", rules[index].jq_program);
    }

    reference.begin_batch("fuzz");
    indexed.begin_batch("fuzz");
    for (const auto& event : events) {
        const std::string expected = describe(reference.evaluate(event));
        const std::string got = describe(indexed.evaluate(event));
        if (got != expected) {
            tattle::fuzz::finding("indexed and combined disagree on an event",
                                  rule_text + "\nevent: " + json::serialize(event) + "\nindexed: " + got +
                                      "\ncombined: " + expected);
        }
    }
    for (std::size_t index = 0; index < rules.size(); ++index) {
        require(indexed.runtime_errors(index) == reference.runtime_errors(index),
                "runtime error counts differ between indexed and combined", rules[index].jq_program);
    }
    return 0;
}
