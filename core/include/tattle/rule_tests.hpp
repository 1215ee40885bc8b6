#pragma once

#include <cstddef>
#include <iosfwd>
#include <string>
#include <vector>

#include "tattle/config.hpp"
#include "tattle/diagnostics.hpp"

namespace tattle {

// The outcome of one [[rule.test]] case.
struct RuleTestResult {
    std::string rule;      // the rule's id
    SourceLocation where;  // the test's table
    bool passed = false;
    std::string expected;  // e.g. `match with annotation "x"`, `no match`
    std::string got;       // the same words for what happened, or why the test could not run
};

struct RuleTestReport {
    std::vector<RuleTestResult> results;
    // Rules refused by the filter stage (sandbox, jq syntax): their tests fail too.
    std::vector<Diagnostic> problems;
    // Rules that exceeded the rule budget ([limits] max_rule_cpu_ms, max_rule_memory_bytes)
    // or crashed the rule evaluator on one of their test events.
    std::vector<Diagnostic> stopped;

    std::size_t failed() const noexcept;
};

// Runs every rule's test cases through the real FilterStage, disabled rules
// included (a rule is tested before it is switched on).
RuleTestReport run_rule_tests(const Config& config);

// A table: one line per test (PASS/FAIL, rule, file:line), expected and got under
// each failure, and a total line.
void print_rule_test_table(const RuleTestReport& report, std::ostream& out);

// JUnit XML for CI systems: one testsuite, a testcase per test (classname: the
// rule id, name: file:line), a <failure> with expected and got for each failure.
std::string rule_tests_junit_xml(const RuleTestReport& report);

}  // namespace tattle
