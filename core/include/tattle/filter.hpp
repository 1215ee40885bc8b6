#pragma once

#include <boost/json.hpp>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tattle/diagnostics.hpp"

namespace tattle {

// A rule as the filter stage needs it.
struct FilterRule {
    std::string name;
    std::string jq_program;
    SourceLocation where;  // of the jq program, for messages
};

struct RuleMatch {
    std::size_t rule_index = 0;
    // The first output of the rule when it is neither true nor the event itself.
    std::optional<boost::json::value> annotation;
};

// Returns why a jq program is refused by the sandbox (reads the environment,
// files or other inputs, or writes to stderr), or nullopt if it is allowed.
std::optional<std::string> sandbox_violation(std::string_view jq_program);

// The text FilterStage hands to libjq for a rule: a one-line prelude that
// redefines every builtin the sandbox refuses (and binds $ENV to null), then the
// program itself. A second line of defence behind sandbox_violation; exposed so
// tests can check it holds on its own.
std::string sandboxed_jq_program(std::string_view jq_program);

// How FilterStage evaluates rules. `indexed` (the default) reads each rule's
// condition: events go only to the rules whose conditions their fields meet
// (the rule index), and conditions in the supported subset of jq are decided
// over the parsed event without libjq, which runs only for the other rules,
// for annotations of matches and for errors. libjq 1.6 compiles its builtins
// anew for every program (~35 ms each), so the rules libjq runs are compiled
// into combined programs of many rules each (`combined`: all rules, every
// event); `per_rule` is the one-program-per-rule reference the differential
// tests compare the others with. Results are the same.
// The two-argument constructor reads TATTLE_RULE_COMPILATION
// (indexed | combined | per_rule) so benchmarks can switch.
enum class RuleCompilation { indexed, combined, per_rule };

// What `tattle check --explain` shows for a rule.
struct RuleExplanation {
    bool native = false;     // decided without libjq (libjq may still compute an annotation)
    std::string evaluation;  // "native", or "libjq: <the construct it cannot read, and where>"
    bool indexed = false;
    std::string index;       // "eventName ∈ {A, B}", or "every event: <why>"
};

// The jq filter stage: every rule compiled once (libjq, see RuleCompilation),
// evaluated with tattletail's semantics: the first output decides; null / false / no output =
// no match; true = match without annotation; any other value = match, with that
// value as annotation unless it equals the event.
class FilterStage {
public:
    // Compiles every rule. Problems (sandbox refusals, jq syntax errors) are
    // appended to problems, naming the rule and the jq message; such rules are
    // left out of evaluation.
    FilterStage(std::vector<FilterRule> rules, std::vector<Diagnostic>& problems);
    FilterStage(std::vector<FilterRule> rules, std::vector<Diagnostic>& problems,
                RuleCompilation compilation);
    ~FilterStage();
    FilterStage(FilterStage&&) noexcept;
    FilterStage& operator=(FilterStage&&) noexcept;
    FilterStage(const FilterStage&) = delete;
    FilterStage& operator=(const FilterStage&) = delete;

    // Call at the start of each batch: runtime errors are logged once per rule per batch.
    void begin_batch(std::string_view origin);

    // Evaluates every compiled rule on one event; matches in rule order. A jq
    // runtime error counts against its rule (runtime_errors) and is logged; other
    // rules still run.
    std::vector<RuleMatch> evaluate(const boost::json::object& event);

    const std::vector<FilterRule>& rules() const noexcept;
    bool compiled(std::size_t rule_index) const noexcept;
    std::size_t runtime_errors(std::size_t rule_index) const noexcept;
    RuleExplanation explain(std::size_t rule_index) const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace tattle
