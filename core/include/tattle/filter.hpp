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

// How FilterStage hands rules to libjq. libjq 1.6 compiles its builtins anew
// for every program (~35 ms each), so `combined` compiles all rules into one
// program, evaluated once per event; `per_rule` is the one-program-per-rule
// reference the differential tests compare it with. Results are the same.
enum class RuleCompilation { combined, per_rule };

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

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace tattle
