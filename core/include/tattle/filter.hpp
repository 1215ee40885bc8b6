#pragma once

#include <boost/json.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <span>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tattle/diagnostics.hpp"
#include "tattle/limits.hpp"

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

// Why the rule evaluator stopped a rule (the metric label of tattle_rules_disabled_total).
enum class StopCause : std::uint8_t { cpu, memory, crash };
const char* stop_cause_label(StopCause cause) noexcept;

// What libjq gave for one rule on one event, wherever it ran (this process or the
// rule evaluator process).
struct LibjqOutcome {
    // stopped: the rule exceeded its budget or crashed the evaluator, and is disabled.
    enum class Kind : std::uint8_t { no_match, match, error, stopped };
    std::size_t rule_index = 0;
    Kind kind = Kind::no_match;
    std::optional<boost::json::value> annotation;  // of a match
    std::string message;                           // of an error; why it was stopped
    StopCause cause = StopCause::crash;            // of a stopped rule
};

// A rule that ran too long, used too much memory or crashed the rule evaluator: it is
// turned off for the rest of the process (or until a reload) and reported once.
struct DisabledRule {
    std::size_t rule_index = 0;
    std::string reason;  // "ran for more than 1000 ms of CPU time on one event"
    std::string origin;  // the batch of the event it was given
    StopCause cause = StopCause::crash;
};

// How much one libjq evaluation (one rule on one event) may take. The budget holds
// only where libjq runs in the rule evaluator process (rule_sandbox.hpp): libjq 1.6
// cannot be interrupted, so a rule that never ends can only be stopped by stopping the
// process it runs in.
struct RuleBudget {
    std::chrono::milliseconds cpu{1000};
    std::size_t memory_bytes = std::size_t{256} << 20;
};

struct FilterOptions {
    RuleCompilation compilation = RuleCompilation::indexed;
    // Run libjq in a child process under this budget (the default for the tattle
    // binary, see rule_sandbox.hpp); unset: in this process, without a budget.
    std::optional<RuleBudget> isolation;
};

// What the tattle binary runs rules with: the compilation TATTLE_RULE_COMPILATION names,
// and libjq in the rule evaluator process under the [limits] rule budget, unless
// TATTLE_RULE_ISOLATION=none (for measuring what isolation costs).
FilterOptions filter_options(const InputLimits& limits);

// An event's evaluation between the native rules and libjq: the native matches, and
// the rules libjq must decide. FilterStage::finish completes many at once, so the rule
// evaluator process is asked once per group of events, not once per event.
struct PendingEvaluation {
    std::vector<RuleMatch> matches;
    std::vector<std::size_t> libjq_rules;
};

// One event of a group for libjq: the parsed event and, when the caller has made it
// already, its JSON text as event_json (alert.hpp) makes it, which is what the rule
// evaluator process is sent.
struct LibjqEvent {
    const boost::json::object* event = nullptr;
    std::shared_ptr<const std::string> json;
};

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
    FilterStage(std::vector<FilterRule> rules, std::vector<Diagnostic>& problems, FilterOptions options);
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

    // evaluate in two steps: the native rules now, libjq for a group of events later.
    // events[i] must be the event pending[i] was made from; finish adds libjq's matches
    // to each and sorts them in rule order.
    PendingEvaluation evaluate_natively(const boost::json::object& event);
    void finish(std::span<const boost::json::object* const> events, std::span<PendingEvaluation> pending);

    // finish in two calls, so that the caller goes on with other events while the rule
    // evaluator process decides a group: start_finish hands the group to a thread of this
    // stage that waits for the evaluator under the rule budget (without an evaluator, libjq
    // runs at once, in this thread); complete_finish waits for the answers and does what
    // finish does with them (runtime errors, disabled rules, matches in rule order), on
    // the caller's thread. One group at a time; the events and pending must stay where
    // they are until complete_finish returns. complete_finish returns whether the group
    // disabled a rule (disabled_reason names it).
    void start_finish(std::span<const LibjqEvent> events, std::span<PendingEvaluation> pending);
    bool finish_ready() const noexcept;  // complete_finish would not wait
    bool complete_finish();
    bool finishing() const noexcept;  // a group was started and not completed

    // libjq alone on the given rules, in this process: what the rule evaluator runs.
    std::vector<LibjqOutcome> run_libjq(const boost::json::object& event, const std::vector<std::size_t>& rule_indices);

    // Another FilterStage for another thread: same rules and options, and the same
    // set of disabled rules (a rule found hostile on one thread is off on all).
    std::unique_ptr<FilterStage> sibling() const;

    // Rules this stage turned off since the last call (each rule is reported by the
    // one stage that found it).
    std::vector<DisabledRule> take_disabled();
    std::optional<std::string> disabled_reason(std::size_t rule_index) const;

    const std::vector<FilterRule>& rules() const noexcept;
    bool compiled(std::size_t rule_index) const noexcept;
    std::size_t runtime_errors(std::size_t rule_index) const noexcept;
    RuleExplanation explain(std::size_t rule_index) const;

private:
    // A sibling: rules that did not compile in the first stage are left out, and with
    // isolation the libjq programs are compiled only if the evaluator cannot start.
    FilterStage(std::vector<FilterRule> rules, FilterOptions options, const std::vector<bool>& compiled_in_first);

    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace tattle
