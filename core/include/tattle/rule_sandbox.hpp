#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "tattle/filter.hpp"

namespace tattle {

// Rules are written by many teams, and libjq 1.6 has no way to interrupt a program:
// `def f: f; f` or `[range(1e9)]` would hold a worker thread (and its memory) for good.
// So libjq runs in a child process, the rule evaluator, which the parent watches while
// it waits for answers: a job (one event, the rules libjq must decide on it) that uses
// more CPU time or memory than RuleBudget allows gets the process killed, the rule
// responsible is found, reported and disabled, and a new evaluator carries on with the
// remaining work. Native rules (jq_predicate.hpp) always end and never need it.

// The command-line word that makes the tattle binary a rule evaluator (not for users).
inline constexpr std::string_view kRuleEvaluatorCommand = "__rule-evaluator";

// The program started as the rule evaluator. The tattle binary names itself at start;
// while it is empty (the core library in tests, embedders), libjq runs in-process.
void set_rule_evaluator_program(std::string program);
const std::string& rule_evaluator_program();

// The evaluator's side: reads the rules, then answers jobs from channel_fd until the
// parent closes it. Returns the process exit status.
int run_rule_evaluator(int channel_fd);

class RuleSandbox;

// Whether starting an evaluator waits until it has compiled the rules (libjq 1.6: tens of
// ms per program), or lets the caller go on and waits at the first run.
enum class EvaluatorStart : std::uint8_t { wait_until_ready, ready_at_first_run };

// A sandbox for these rules, started; null when no evaluator program is set or it could
// not start (logged, naming `what` is left to run in-process without a budget). With
// ready_at_first_run, an evaluator that starts but never becomes ready is found by run.
std::unique_ptr<RuleSandbox> start_rule_sandbox(std::vector<FilterRule> rules, RuleCompilation compilation,
                                                RuleBudget budget, std::string_view what,
                                                EvaluatorStart start = EvaluatorStart::wait_until_ready);

// What is logged when the evaluator could not start and libjq runs in this process instead.
void log_rule_evaluator_unavailable(std::string_view why, std::string_view what);

// The evaluator started but did not get ready (the program is no rule evaluator).
struct RuleEvaluatorNotReady : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The parent's side: one evaluator process, restarted after every kill.
class RuleSandbox {
public:
    struct Job {
        const std::string* event_json;         // valid JSON text of one object
        const std::vector<std::size_t>* rules;  // rule indices, ascending
    };

    // Starts the evaluator and (unless told to wait at the first run) waits until it has
    // compiled the rules; throws std::runtime_error if it cannot.
    RuleSandbox(std::vector<FilterRule> rules, RuleCompilation compilation, RuleBudget budget,
                std::string program, EvaluatorStart start = EvaluatorStart::wait_until_ready);
    ~RuleSandbox();
    RuleSandbox(const RuleSandbox&) = delete;
    RuleSandbox& operator=(const RuleSandbox&) = delete;

    // One list of outcomes per job, in job order. A rule that exceeded the budget or
    // crashed the evaluator gets a `stopped` outcome (its reason as message) on the
    // event it was given, and is not run again by this sandbox. Throws
    // RuleEvaluatorNotReady, having run nothing, when an evaluator started with
    // ready_at_first_run never became ready. Not for two threads at once.
    std::vector<std::vector<LibjqOutcome>> run(std::span<const Job> jobs);

    std::size_t restarts() const noexcept { return restarts_; }
    pid_t pid() const noexcept { return pid_; }

private:
    struct Progress {
        std::size_t completed = 0;  // jobs answered
        bool died = false;
        bool before_any_job = false;  // it was gone before the request was sent
        std::string reason;  // why it died, worded to follow "the rule ..."
        StopCause cause = StopCause::crash;
    };

    void start();
    // start in two halves: the process and its rules, then its kReady.
    void spawn();
    void await_ready();
    // Starts the evaluator again if it is gone; false (and why) if it cannot.
    bool running(std::string& why_not);
    void stop() noexcept;
    Progress run_jobs(std::span<const Job> jobs, std::vector<std::vector<LibjqOutcome>>& results);
    std::string death_reason(int status) const;
    long child_cpu_ns() const;
    std::size_t child_rss() const;

    std::vector<FilterRule> rules_;
    RuleCompilation compilation_;
    RuleBudget budget_;
    std::string program_;
    std::vector<bool> stopped_;  // rules that killed an evaluator
    pid_t pid_ = -1;
    int channel_ = -1;
    bool init_sent_ = false;  // the running evaluator was given its rules
    bool ready_ = false;      // and said kReady
    clockid_t cpu_clock_{};
    std::size_t baseline_rss_ = 0;
    std::size_t restarts_ = 0;
    std::string pending_;  // bytes read, not yet a whole frame
};

}  // namespace tattle
