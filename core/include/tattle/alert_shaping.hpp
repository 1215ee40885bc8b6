#pragma once

// Alert shaping: what happens to a rule's match between the filter stage and the
// sinks. A rule's `title` (jq) names the alert; `dedup` lets one alert per key per
// window through and counts the rest; `threshold` holds alerts back until `count`
// matches with one key fall within the window. Windows are measured in event time
// (the event's eventTime), never the wall clock, so that a backtest or a test gives
// the same answer as the live run did.
//
// The pipeline calls, per batch, begin_batch(origin) and then, for each match in
// event order:
//     ShapingDecision decision = shaper.decide(rule_index, event);
//     if (decision.outcome == ShapingOutcome::alert) {
//         alert = make_alert(...);
//         shaper.annotate_alert(alert, rule_index, decision, shaper.title(rule_index, event));
//     }
// A backtest drives it the same way without sinks, counting outcomes and keys.

#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tattle/config.hpp"
#include "tattle/diagnostics.hpp"
#include "tattle/filter.hpp"

namespace tattle {

// An expression of a file with [lists]/[macros], as libjq gets it: the
// definitions it uses (by name, and those they use in turn), then the expression.
struct JqProgramText {
    std::string text;
    int prefix_lines = 0;  // lines the definitions take before the expression's first line
};
JqProgramText with_definitions(std::string_view expression, const JqDefinitions& definitions);

// The FilterStage rules of a config: each rule's jq_match with its definitions.
std::vector<FilterRule> filter_rules_for(const std::vector<RuleSpec>& rules);

// FilterStage reports jq's line numbers in the text it compiled; for rules whose
// definitions took lines before jq_match, puts the user's own line numbers back.
// problems[first...] are the filter stage's.
void correct_filter_line_numbers(std::vector<Diagnostic>& problems, std::size_t first,
                                 const std::vector<RuleSpec>& rules);

// The event's eventTime in seconds since the epoch (ISO 8601, "Z" or an offset,
// fractional seconds ignored); nullopt when it has none or it cannot be read.
std::optional<std::int64_t> event_time_seconds(const boost::json::object& event);

enum class ShapingOutcome {
    alert,            // send it
    deduplicated,     // an alert with the same dedup key went out within the window
    below_threshold,  // fewer than threshold.count matches with this key in the window so far
};

struct ShapingDecision {
    ShapingOutcome outcome = ShapingOutcome::alert;
    // The keys, when the rule has dedup / threshold and they could be evaluated.
    std::optional<std::string> dedup_key;
    std::optional<std::string> threshold_key;
    // alert: matches deduplicated for dedup_key since its previous alert.
    std::uint64_t suppressed = 0;
    // Matches with threshold_key within the window, this one included.
    std::uint64_t threshold_count = 0;
    // Why the rule's dedup/threshold could not be applied to this match (a key's jq
    // error, no eventTime): the alert is sent, and the error counted against the rule.
    std::string problem;
};

// A title or key expression that the rule budget stopped while alerts were being shaped.
// It is off from then on (the rule's alerts go out without it); the pipeline announces it.
struct StoppedExpression {
    std::size_t rule_index = 0;
    std::string part;    // where in the rule it is: "title", "dedup.key" or "threshold.key"
    std::string reason;  // "ran for more than 1000 ms of CPU time on one event"
    std::string origin;  // the batch of the event it was given
    StopCause cause = StopCause::crash;
};

struct ShapingOptions {
    // Keys remembered per rule and per kind; beyond it the least recently seen key
    // is forgotten (its next match starts afresh).
    std::size_t max_keys_per_rule = 10'000;
    // Evaluate titles and keys in a rule evaluator process under this budget, as
    // FilterOptions::isolation does for rules (rule_sandbox.hpp); unset: in-process.
    std::optional<RuleBudget> isolation;
};

class AlertShaper {
public:
    // Compiles every title and key expression of config.rules (indices as there), and
    // checks every [lists]/[macros] set. Problems (sandbox refusals, jq syntax errors,
    // definitions shadowing jq builtins) are appended with their file:line.
    AlertShaper(const Config& config, std::vector<Diagnostic>& problems, ShapingOptions options = {});
    ~AlertShaper();
    AlertShaper(AlertShaper&&) noexcept;
    AlertShaper& operator=(AlertShaper&&) noexcept;
    AlertShaper(const AlertShaper&) = delete;
    AlertShaper& operator=(const AlertShaper&) = delete;

    // Call at the start of each batch: errors are logged once per rule per batch.
    void begin_batch(std::string_view origin);

    // Decides what becomes of a match of rule_index on event, and remembers it:
    // threshold first, then dedup. Matches must come in event order.
    ShapingDecision decide(std::size_t rule_index, const boost::json::object& event);

    // The rule's title for the event: nullopt when the rule has none, or when the
    // expression fails or gives no string (counted against the rule and logged).
    std::optional<std::string> title(std::size_t rule_index, const boost::json::object& event);

    // The rule's dedup key for the event, without remembering anything (rule
    // tests); nullopt with error set when it cannot be evaluated or the rule has no dedup.
    std::optional<std::string> dedup_key(std::size_t rule_index, const boost::json::object& event,
                                         std::string& error);
    // Same for the title, with the reason when there is none.
    std::optional<std::string> title_or_error(std::size_t rule_index, const boost::json::object& event,
                                              std::string& error);

    // Puts what the alert's reader needs into the alert document: "title", and
    // "dedup" {key, window_seconds, suppressed} / "threshold" {key, count,
    // min_count, window_seconds} for rules with them.
    void annotate_alert(boost::json::object& alert, std::size_t rule_index, const ShapingDecision& decision,
                        const std::optional<std::string>& title) const;

    // Forgets every key (rule tests run each sequence from nothing).
    void clear_state();

    // Whether the rule has a title / dedup / threshold at all.
    bool has_title(std::size_t rule_index) const noexcept;
    bool shapes(std::size_t rule_index) const noexcept;
    // Title and key errors (jq errors, non-string titles, events without eventTime).
    std::size_t errors(std::size_t rule_index) const noexcept;
    // Keys forgotten because the rule had max_keys_per_rule of them.
    std::size_t evicted_keys(std::size_t rule_index) const noexcept;

    // Titles and keys stopped by the rule budget (with isolation): where each is, and why.
    std::vector<Diagnostic> stopped_expressions() const;
    // The titles and keys stopped since the last call, each reported once.
    std::vector<StoppedExpression> take_newly_stopped();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace tattle
