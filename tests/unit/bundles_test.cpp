// Team bundles (config.cpp), tattle's own rule fields, and rule tests (rule_tests.cpp).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tattle/config.hpp"
#include "tattle/rule_tests.hpp"

namespace tattle {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

class BundlesTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::random_device random;
        dir_ = fs::temp_directory_path() / ("tattle_bundles_" + std::to_string(random()));
        fs::create_directories(dir_ / "teams");
    }
    void TearDown() override { fs::remove_all(dir_); }

    fs::path write(const std::string& name, const std::string& text) {
        const fs::path file = dir_ / name;
        std::ofstream(file, std::ios::binary) << text;
        return file;
    }

    // The problems of loading root.toml, as "file-name:line: message".
    std::vector<std::string> problems() {
        try {
            load_config(dir_ / "root.toml");
        } catch (const ConfigError& error) {
            std::vector<std::string> lines;
            for (const auto& problem : error.problems()) lines.push_back(located(problem));
            return lines;
        }
        return {"loaded without problems"};
    }

    static std::string located(const Diagnostic& problem) {
        return fs::path(problem.where.file).filename().string() + ":" + std::to_string(problem.where.line) +
               ": " + problem.message;
    }

    fs::path dir_;
};

// A root config with a destination shared with payments only, one shared with
// every team, one kept private, and two sources, one granted to payments only.
const char* const kRoot = R"(bundles = ["teams/*.toml"]

[[source]]
id = "billing-logs"
type = "file"
paths = ["billing"]
teams = ["payments"]

[[source]]
id = "all-logs"
type = "file"
paths = ["all"]

[[destination]]
id = "security"
type = "stdout"

[[destination]]
id = "pager"
type = "stdout"
share_with = ["payments"]

[[destination]]
id = "everyone"
type = "stdout"
share_with = ["*"]
)";

const char* const kPayments = R"(team = "payments"

[defaults]
severity = "high"
destinations = ["slack"]

[[destination]]
id = "slack"
type = "stdout"

[[rule]]
name = "Access key created"
id = "access-key"
jq_match = 'select(.eventName == "CreateAccessKey")'
tags = ["T1098.001", "CIS 1.4"]
runbook = "https://runbooks.example/access-key"

[[rule]]
name = "Root login"
jq_match = 'select(.userIdentity.type == "Root")'
severity = "critical"
destinations = ["payments/slack", "pager", "everyone"]
enabled = false
)";

const char* const kData = R"(team = "data"

[[destination]]
id = "slack"
type = "stdout"

[[rule]]
name = "Bucket policy"
jq_match = 'select(.eventName == "PutBucketPolicy")'
destinations = ["slack", "everyone"]
)";

TEST_F(BundlesTest, RulesAndDestinationsAreTeamScopedWithDefaults) {
    write("root.toml", kRoot);
    write("teams/payments.toml", kPayments);
    write("teams/data.toml", kData);
    const Config config = load_config(dir_ / "root.toml");

    std::vector<std::string> destination_ids;
    for (const auto& destination : config.destinations) destination_ids.push_back(destination.id);
    EXPECT_THAT(destination_ids, ElementsAre("security", "pager", "everyone", "data/slack", "payments/slack"));
    ASSERT_THAT(config.rules, SizeIs(3));
    const RuleSpec& bucket = config.rules[0];  // bundles load in file-name order
    EXPECT_EQ(bucket.id, "data/Bucket policy");
    EXPECT_THAT(bucket.destinations, ElementsAre("data/slack", "everyone"));
    EXPECT_EQ(bucket.severity, "");

    const RuleSpec& key = config.rules[1];
    EXPECT_EQ(key.id, "payments/access-key");
    EXPECT_EQ(key.name, "Access key created");
    EXPECT_EQ(key.team, "payments");
    EXPECT_EQ(key.severity, "high");  // from [defaults]
    EXPECT_THAT(key.destinations, ElementsAre("payments/slack"));
    EXPECT_THAT(key.tags, ElementsAre("T1098.001", "CIS 1.4"));
    EXPECT_EQ(key.runbook, "https://runbooks.example/access-key");
    EXPECT_TRUE(key.enabled);

    const RuleSpec& root_login = config.rules[2];
    EXPECT_EQ(root_login.severity, "critical");
    EXPECT_FALSE(root_login.enabled);
    EXPECT_THAT(root_login.destinations, ElementsAre("payments/slack", "pager", "everyone"));

    // The source granted to payments runs payments' enabled rules only.
    const PluginInstanceSpec& billing = config.sources[0];
    const PluginInstanceSpec& all = config.sources[1];
    EXPECT_TRUE(rule_runs_on(key, billing));
    EXPECT_FALSE(rule_runs_on(bucket, billing));
    EXPECT_TRUE(rule_runs_on(bucket, all));
    EXPECT_FALSE(rule_runs_on(root_login, all));  // disabled
    // The core's keys are not plugin settings.
    EXPECT_EQ(billing.settings.if_contains("teams"), nullptr);
    EXPECT_EQ(config.destinations[1].settings.if_contains("share_with"), nullptr);
}

TEST_F(BundlesTest, NamingAnotherTeamsDestinationNamesBothTeamsAtFileLine) {
    write("root.toml", kRoot);
    write("teams/payments.toml", R"(team = "payments"
[[rule]]
name = "Sneaky"
jq_match = 'true'
destinations = ["data/slack"]
)");
    write("teams/data.toml", kData);
    EXPECT_THAT(problems(),
                ElementsAre(R"(payments.toml:5: rule "payments/Sneaky" of team "payments" may not name )"
                            R"(destination "data/slack" of team "data" (a team's rules use its own )"
                            R"(destinations and root destinations shared with it))"));
}

TEST_F(BundlesTest, RootDestinationNotSharedWithTheTeamIsRefused) {
    write("root.toml", kRoot);
    write("teams/payments.toml", kPayments);
    write("teams/data.toml", R"(team = "data"
[[rule]]
name = "Wants the pager"
jq_match = 'true'
destinations = ["pager", "security"]
)");
    EXPECT_THAT(problems(),
                ElementsAre(HasSubstr(R"(data.toml:5: rule "data/Wants the pager" of team "data" may not )"
                                      R"(name destination "pager" of the root config: it is not shared )"
                                      R"(with team "data")"),
                            HasSubstr(R"(destination "security" of the root config: it is not shared)")));
}

TEST_F(BundlesTest, UnknownKeysInBundlesGetDidYouMean) {
    write("root.toml", kRoot);
    write("teams/payments.toml", R"(team = "payments"
[defaults]
severty = "high"
[[rule]]
name = "A"
jq_match = 'true'
runbok = "https://x.example"
[[rule.test]]
event = '{}'
match = false
expect = 1
[[sources]]
id = "x"
)");
    const auto found = problems();
    EXPECT_THAT(found, ElementsAre(HasSubstr(R"(payments.toml:3: defaults: unknown key "severty")"),
                                   AllOf(HasSubstr(R"(payments.toml:7: rule "payments/A": unknown key "runbok")"),
                                         HasSubstr(R"(did you mean "runbook"?)")),
                                   HasSubstr(R"(payments.toml:11: rule "payments/A", test #1: unknown key "expect")"),
                                   HasSubstr(R"(payments.toml:12: unknown key "sources" in a bundle)")));
    EXPECT_THAT(found[0], HasSubstr(R"("severity")"));
}

TEST_F(BundlesTest, RuleFieldsAreChecked) {
    write("root.toml", R"([[destination]]
id = "out"
type = "stdout"

[[rule]]
name = "A"
jq_match = 'true'
severity = "hihg"
tags = ["ok", 3]
runbook = "wiki page"
enabled = "yes"
id = "a/b"
)");
    EXPECT_THAT(problems(), ElementsAre(HasSubstr(R"(root.toml:8: rule "A": severity must be one of)"),
                                        HasSubstr(R"(root.toml:9: rule "A": tags must be an array)"),
                                        HasSubstr(R"(root.toml:10: rule "A": runbook must be a URL)"),
                                        HasSubstr(R"(root.toml:11: rule "A": enabled must be true or false)"),
                                        HasSubstr(R"(root.toml:12: rule "A": id must not contain '/')")));
}

TEST_F(BundlesTest, BundleWithoutTeamAndTeamKeysInBundlesAreRefused) {
    write("root.toml", "bundles = [\"teams\"]\n");
    write("teams/a.toml", R"([[rule]]
name = "A"
jq_match = 'true'
)");
    write("teams/b.toml", R"(team = "b"
[[destination]]
id = "x"
type = "stdout"
share_with = ["*"]
)");
    EXPECT_THAT(problems(),
                ElementsAre(HasSubstr(R"(a.toml:1: a bundle must declare its team)"),
                            HasSubstr(R"(b.toml:5: destination "b/x": share_with may only be set in the root config)")));
}

TEST_F(BundlesTest, BrokenBundleFailsTheConfigByDefault) {
    write("root.toml", kRoot);
    write("teams/payments.toml", kPayments);
    write("teams/data.toml", "team = \"data\"\n[[rule]]\nname = \"x\"\njq_match = 'true'\n[[rule]]\nname = \"x\"\n");
    EXPECT_THAT(problems(), ElementsAre(R"(data.toml:5: rule "data/x": missing required key "jq_match")",
                                        R"(data.toml:6: duplicate rule name "data/x" (first defined at line 3))"));
}

TEST_F(BundlesTest, BrokenBundleIsSkippedAndReportedWithSkip) {
    write("root.toml", std::string("on_bundle_error = \"skip\"\n") + kRoot);
    write("teams/payments.toml", kPayments);
    write("teams/data.toml", "team = \"data\"\n[[rule]]\nname = \"x\"\njq_match = \n");
    const Config config = load_config(dir_ / "root.toml");
    ASSERT_THAT(config.skipped_bundles, SizeIs(1));
    EXPECT_THAT(located(config.skipped_bundles[0]), HasSubstr("data.toml:4: invalid TOML"));
    ASSERT_THAT(config.rules, SizeIs(2));
    EXPECT_EQ(config.rules[0].id, "payments/access-key");
}

TEST_F(BundlesTest, GrantsAndSharesMustNameADeclaredTeam) {
    write("root.toml", R"(bundles = ["teams"]
on_bundle_error = "sometimes"
[[source]]
id = "logs"
type = "file"
teams = ["paymnets"]
[[destination]]
id = "out"
type = "stdout"
share_with = ["nobody"]
)");
    write("teams/payments.toml", "team = \"payments\"\n");
    EXPECT_THAT(problems(),
                ElementsAre(R"(root.toml:2: on_bundle_error must be "skip" or "fail")",
                            AllOf(HasSubstr(R"(root.toml:6: source "logs": teams names team "paymnets", )"
                                            R"(which no bundle declares)"),
                                  HasSubstr(R"(did you mean "payments"?)")),
                            HasSubstr(R"(root.toml:10: destination "out": share_with names team "nobody")")));
}

TEST_F(BundlesTest, PatternMatchingNothingAndDuplicateIdsAcrossBundles) {
    write("root.toml", "bundles = [\"teams/*.toml\", \"missing/*.toml\"]\n");
    write("teams/a.toml", "team = \"t\"\n[[rule]]\nname = \"x\"\njq_match = 'true'\n");
    write("teams/b.toml", "team = \"t\"\n\n[[rule]]\nname = \"x\"\njq_match = 'true'\n");
    EXPECT_THAT(problems(),
                ElementsAre(R"(root.toml:1: bundles: "missing/*.toml" matches no file)",
                            R"(b.toml:4: duplicate rule name "t/x" (already defined by an earlier bundle))"));
}

TEST_F(BundlesTest, ExistingConfigsLoadUnchanged) {
    const fs::path source_dir = TATTLE_SOURCE_DIR;
    const fs::path shared_data = TATTLE_SHARED_DATA_DIR;
    for (const auto& file : {source_dir / "configs" / "demo.toml", source_dir / "configs" / "teams" / "root.toml",
                             shared_data / "tattletail" / "example.tattletail.toml"}) {
        SCOPED_TRACE(file.string());
        EXPECT_NO_THROW(load_config(file));
    }
}

TEST_F(BundlesTest, RuleTestsRunThroughTheFilterStage) {
    write("event.json", R"({"eventName": "CreateAccessKey", "userIdentity": {"userName": "alice"}})");
    write("root.toml", R"toml([[rule]]
name = "Key"
jq_match = 'select(.eventName == "CreateAccessKey") | "key for \(.userIdentity.userName)"'

[[rule.test]]
event_file = "event.json"
match = true
annotation = "key for alice"

[[rule.test]]
event = '{"eventName": "CreateAccessKey", "userIdentity": {"userName": "bob"}}'
match = true
annotation = "key for <alice> & co"

[[rule.test]]
event = '{"eventName": "DeleteAccessKey"}'
match = false

[[rule.test]]
event = '{"eventName": "DeleteAccessKey"}'
match = true

[[rule.test]]
event_file = "missing.json"
match = true
)toml");
    const RuleTestReport report = run_rule_tests(load_config(dir_ / "root.toml"));
    ASSERT_THAT(report.results, SizeIs(5));
    EXPECT_THAT(report.problems, IsEmpty());
    EXPECT_TRUE(report.results[0].passed);
    EXPECT_FALSE(report.results[1].passed);
    EXPECT_EQ(report.results[1].expected, R"(match with annotation "key for <alice> & co")");
    EXPECT_EQ(report.results[1].got, R"(match with annotation "key for bob")");
    EXPECT_TRUE(report.results[2].passed);
    EXPECT_FALSE(report.results[3].passed);
    EXPECT_EQ(report.results[3].got, "no match");
    EXPECT_FALSE(report.results[4].passed);
    EXPECT_THAT(report.results[4].got, HasSubstr("cannot read event_file"));
    EXPECT_EQ(report.failed(), 3U);

    std::ostringstream table;
    print_rule_test_table(report, table);
    EXPECT_THAT(table.str(), HasSubstr("FAIL    Key   " + (dir_ / "root.toml").string() + ":10:1\n"
                                       "        expected: match with annotation \"key for <alice> & co\"\n"
                                       "        got:      match with annotation \"key for bob\"\n"));
    EXPECT_THAT(table.str(), HasSubstr("5 tests, 2 passed, 3 failed"));

    const std::string xml = rule_tests_junit_xml(report);
    EXPECT_THAT(xml, HasSubstr(R"(<testsuite name="tattle rule tests" tests="5" failures="3")"));
    EXPECT_THAT(xml, HasSubstr("&quot;key for &lt;alice&gt; &amp; co&quot;"));
    EXPECT_THAT(xml, Not(HasSubstr("<alice>")));
}

TEST_F(BundlesTest, RuleTestCasesAreCheckedWhenLoading) {
    write("root.toml", R"([[rule]]
name = "Key"
jq_match = 'true'
[[rule.test]]
event = '{"eventName": '
match = true
[[rule.test]]
event = '{}'
event_file = "x.json"
match = true
[[rule.test]]
event = '[]'
)");
    EXPECT_THAT(problems(),
                ElementsAre(HasSubstr(R"(root.toml:5: rule "Key", test #1: event must be a string holding a JSON object)"),
                            HasSubstr(R"(root.toml:7: rule "Key", test #2: give exactly one of event)"),
                            HasSubstr(R"(root.toml:11: rule "Key", test #3: missing required key "match")"),
                            HasSubstr(R"(root.toml:12: rule "Key", test #3: event must be a string holding a JSON object)")));
}

}  // namespace
}  // namespace tattle
