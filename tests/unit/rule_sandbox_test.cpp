// Hostile rules: libjq in the rule evaluator process under a CPU and memory budget.
#include "tattle/rule_sandbox.hpp"

#include "tattle/filter.hpp"

#include "quiet_logs.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <chrono>
#include <iostream>
#include <string>
#include <vector>

namespace {

using tattle::FilterOptions;
using tattle::FilterRule;
using tattle::FilterStage;
using tattle::RuleBudget;
using tattle::RuleCompilation;
using tattle::RuleMatch;
using testing::HasSubstr;

using tattle::test_support::QuietLogs;

boost::json::object event_of(std::string_view json) { return boost::json::parse(json).as_object(); }

std::vector<boost::json::object> some_events() {
    return {
        event_of(R"({"eventName":"CreateUser","eventSource":"iam.amazonaws.com",
                     "requestParameters":{"userName":"mallory"},"userIdentity":{"type":"IAMUser"}})"),
        event_of(R"({"eventName":"ConsoleLogin","eventSource":"signin.amazonaws.com",
                     "additionalEventData":{"MFAUsed":"No"},"responseElements":{"ConsoleLogin":"Success"}})"),
        event_of(R"({"eventName":"DescribeInstances","eventSource":"ec2.amazonaws.com",
                     "errorCode":"AccessDenied","userIdentity":{"type":"Root"}})"),
        event_of(R"({"eventName":"CreateUser","eventSource":"iam.amazonaws.com",
                     "requestParameters":{"userName":"trudy"},"userIdentity":{"type":"Root"}})"),
    };
}

// Rules that must keep their results whatever their neighbour does: a native one, one
// whose annotation needs libjq, one libjq reads entirely (any/2), one with an error.
std::vector<FilterRule> good_rules() {
    return {
        {"native", R"(select(.eventName == "ConsoleLogin"))", {}},
        {"annotated", R"(select(.eventName == "CreateUser") | {user: .requestParameters.userName, by: .userIdentity.type})", {}},
        {"any", R"(select(any(.userIdentity.type; . == "Root")))", {}},
        {"errors", R"(select(.eventName == "DescribeInstances") | .errorCode + 1)", {}},
    };
}

std::string describe(const std::vector<RuleMatch>& matches, const std::vector<FilterRule>& rules) {
    std::string text;
    for (const auto& match : matches) {
        text += rules[match.rule_index].name;
        if (match.annotation) text += "=" + boost::json::serialize(*match.annotation);
        text += ";";
    }
    return text;
}

// What the good rules give alone, in this process: the reference.
std::vector<std::string> reference_results() {
    QuietLogs quiet;
    const auto rules = good_rules();
    std::vector<tattle::Diagnostic> problems;
    FilterStage reference(rules, problems, RuleCompilation::per_rule);
    std::vector<std::string> results;
    for (const auto& event : some_events()) results.push_back(describe(reference.evaluate(event), rules));
    return results;
}

struct HostileOutcome {
    std::vector<std::string> good_results;  // per event, the good rules' matches
    std::optional<std::string> reason;      // why the hostile rule was disabled
    std::vector<tattle::DisabledRule> reported;
    std::chrono::milliseconds took{};
    std::vector<std::size_t> good_errors;
};

// The hostile rule goes first, so every good rule runs after it on each event.
HostileOutcome run_with_hostile_rule(const std::string& hostile, RuleBudget budget) {
    QuietLogs quiet;
    tattle::set_rule_evaluator_program(TATTLE_BINARY);
    std::vector<FilterRule> rules{{"hostile", hostile, {}}};
    for (auto& rule : good_rules()) rules.push_back(rule);
    std::vector<tattle::Diagnostic> problems;
    FilterStage stage(rules, problems, FilterOptions{RuleCompilation::indexed, budget});
    EXPECT_TRUE(problems.empty()) << (problems.empty() ? "" : problems.front().message);
    HostileOutcome outcome;
    const std::vector<FilterRule> good(rules.begin() + 1, rules.end());
    stage.begin_batch("hostile-test");
    const auto started = std::chrono::steady_clock::now();
    for (const auto& event : some_events()) {
        std::vector<RuleMatch> matches;
        for (auto& match : stage.evaluate(event)) {
            EXPECT_NE(match.rule_index, 0U) << "the hostile rule matched";
            if (match.rule_index == 0) continue;
            --match.rule_index;
            matches.push_back(std::move(match));
        }
        outcome.good_results.push_back(describe(matches, good));
    }
    outcome.took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    outcome.reason = stage.disabled_reason(0);
    outcome.reported = stage.take_disabled();
    for (std::size_t i = 1; i < rules.size(); ++i) outcome.good_errors.push_back(stage.runtime_errors(i));
    return outcome;
}

constexpr RuleBudget kTightCpu{std::chrono::milliseconds(200), std::size_t{512} << 20};
constexpr RuleBudget kTightMemory{std::chrono::milliseconds(20'000), std::size_t{64} << 20};

struct HostileCase {
    const char* name;
    const char* program;
    RuleBudget budget;
    const char* reason;
};

class HostileRules : public testing::TestWithParam<HostileCase> {};

TEST_P(HostileRules, AreStoppedDisabledReportedAndTheOthersKeepTheirResults) {
    const HostileCase& hostile = GetParam();
    const HostileOutcome outcome = run_with_hostile_rule(hostile.program, hostile.budget);
    ASSERT_TRUE(outcome.reason.has_value()) << "not stopped";
    EXPECT_THAT(*outcome.reason, HasSubstr(hostile.reason));
    ASSERT_EQ(outcome.reported.size(), 1U);
    EXPECT_EQ(outcome.reported.front().rule_index, 0U);
    EXPECT_EQ(outcome.reported.front().origin, "hostile-test");
    EXPECT_EQ(outcome.good_results, reference_results());
    // Only the jq error of the "errors" rule, which a hostile neighbour must not hide.
    EXPECT_EQ(outcome.good_errors, (std::vector<std::size_t>{0, 0, 0, 1}));
    // Four events; the rule is stopped on the first and never run again, so the whole
    // takes one budget plus the evaluator's restarts, whatever the machine's load.
    EXPECT_LT(outcome.took, hostile.budget.cpu + std::chrono::seconds(20));
    std::cout << "[ measured ] " << hostile.name << ": stopped after " << outcome.took.count()
              << " ms (budget " << hostile.budget.cpu.count() << " ms CPU, " << (hostile.budget.memory_bytes >> 20)
              << " MiB): it " << *outcome.reason << '\n';
}

INSTANTIATE_TEST_SUITE_P(
    Budget, HostileRules,
    testing::Values(
        HostileCase{"NeverEndingRecursion", R"(select(.eventName != null) | def f: f; f)", kTightCpu, "ms of CPU time"},
        HostileCase{"Repeat", R"(select(.eventName != null) | [repeat(.)] | length > 0)", kTightCpu, "more than"},
        HostileCase{"HugeRange", R"(first(range(1e18) | select(. < 0)))", kTightCpu, "ms of CPU time"},
        HostileCase{"CollectsWithoutBound", R"([range(1e9)] | length > 0)", kTightMemory, "of memory"},
        HostileCase{"DeepRecursion", R"(def deep: [deep]; deep)", kTightMemory, "of memory"},
        HostileCase{"HugeString", R"(("x" * 1e9) | length > 0)", kTightMemory, "of memory"},
        // libjq 1.6 compares nested arrays by recursing on the C stack: a million levels
        // overflow it (SIGSEGV; under AddressSanitizer its report and exit). In this
        // process that would have taken tattle down.
        HostileCase{"CrashesLibjq",
                    R"((reduce range(1000000) as $i (0; [.])) == (reduce range(1000000) as $i (0; [.])))",
                    RuleBudget{std::chrono::milliseconds(60'000), std::size_t{2} << 30}, "the rule evaluator"}),
    [](const testing::TestParamInfo<HostileCase>& info) { return std::string(info.param.name); });

TEST(RuleSandbox, ADisabledRuleIsOffInEverySiblingStage) {
    QuietLogs quiet;
    tattle::set_rule_evaluator_program(TATTLE_BINARY);
    const std::vector<FilterRule> rules{{"loops", "def f: f; f", {}}, {"fine", R"(select(.eventName == "CreateUser"))", {}}};
    std::vector<tattle::Diagnostic> problems;
    FilterStage first(rules, problems, FilterOptions{RuleCompilation::indexed, kTightCpu});
    const auto second = first.sibling();
    const auto event = some_events().front();
    EXPECT_EQ(describe(first.evaluate(event), rules), "fine;");
    ASSERT_TRUE(first.disabled_reason(0).has_value());
    EXPECT_TRUE(second->disabled_reason(0).has_value());
    const auto started = std::chrono::steady_clock::now();
    EXPECT_EQ(describe(second->evaluate(event), rules), "fine;");
    // The sibling never gives the rule another budget: it is skipped.
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(150));
    EXPECT_EQ(first.take_disabled().size(), 1U);
    EXPECT_TRUE(second->take_disabled().empty());
}

TEST(RuleSandbox, EveryJobOfARequestIsAnsweredInOrderAfterARestart) {
    QuietLogs quiet;
    std::vector<FilterRule> rules{{"loops", "def f: f; f", {}},
                                  {"user", R"(select(.eventName == "CreateUser") | .requestParameters.userName)", {}}};
    tattle::RuleSandbox sandbox(rules, RuleCompilation::indexed, kTightCpu, TATTLE_BINARY);
    const pid_t first_pid = sandbox.pid();
    std::vector<std::string> texts;
    for (const auto& event : some_events()) texts.push_back(boost::json::serialize(event));
    const std::vector<std::size_t> both{0, 1};
    const std::vector<std::size_t> user_only{1};
    std::vector<tattle::RuleSandbox::Job> jobs;
    for (const auto& text : texts) jobs.push_back({&text, &both});
    jobs.push_back({&texts[3], &user_only});
    const auto results = sandbox.run(jobs);
    ASSERT_EQ(results.size(), jobs.size());
    // The first job finds the culprit by running each rule alone; later jobs skip it.
    ASSERT_EQ(results[0].size(), 2U);
    EXPECT_EQ(results[0][0].kind, tattle::LibjqOutcome::Kind::stopped);
    EXPECT_EQ(results[0][1].kind, tattle::LibjqOutcome::Kind::match);
    EXPECT_EQ(results[0][1].annotation, boost::json::value("mallory"));
    for (std::size_t job = 1; job < 4; ++job) {
        for (const auto& outcome : results[job]) EXPECT_EQ(outcome.rule_index, 1U) << "job " << job;
    }
    EXPECT_EQ(results[3].size(), 1U);
    EXPECT_EQ(results[3][0].annotation, boost::json::value("trudy"));
    EXPECT_EQ(results[4][0].annotation, boost::json::value("trudy"));
    EXPECT_GE(sandbox.restarts(), 1U);
    EXPECT_NE(sandbox.pid(), first_pid);
}

TEST(RuleSandbox, AProgramThatIsNotAnEvaluatorIsRefusedAtStart) {
    EXPECT_THROW(tattle::RuleSandbox({}, RuleCompilation::indexed, kTightCpu, "/bin/false"), std::runtime_error);
}

TEST(RuleSandbox, WithoutAnEvaluatorProgramLibjqRunsInThisProcess) {
    QuietLogs quiet;
    tattle::set_rule_evaluator_program("");
    const std::vector<FilterRule> rules{{"user", R"(select(.eventName == "CreateUser") | .requestParameters.userName)", {}}};
    std::vector<tattle::Diagnostic> problems;
    FilterStage stage(rules, problems, FilterOptions{RuleCompilation::indexed, kTightCpu});
    EXPECT_EQ(describe(stage.evaluate(some_events().front()), rules), "user=\"mallory\";");
    tattle::set_rule_evaluator_program(TATTLE_BINARY);
}

}  // namespace
