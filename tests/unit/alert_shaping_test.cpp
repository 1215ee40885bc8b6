// Alert shaping (alert_shaping.cpp): rule titles, dedup, threshold, [lists] and
// [macros]; their config keys (config.cpp) and their rule tests (rule_tests.cpp).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tattle/alert_shaping.hpp"
#include "tattle/config.hpp"
#include "tattle/rule_sandbox.hpp"
#include "tattle/rule_tests.hpp"

namespace tattle {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// The problems of parsing a root config, as "line: message".
std::vector<std::string> config_problems(const std::string& toml) {
    try {
        parse_config(toml, "root.toml");
    } catch (const ConfigError& error) {
        std::vector<std::string> lines;
        for (const auto& problem : error.problems()) {
            lines.push_back(std::to_string(problem.where.line) + ": " + problem.message);
        }
        return lines;
    }
    return {"parsed without problems"};
}

std::vector<std::string> messages(const std::vector<Diagnostic>& problems) {
    std::vector<std::string> lines;
    for (const auto& problem : problems) {
        lines.push_back(fs::path(problem.where.file).filename().string() + ":" + std::to_string(problem.where.line) +
                        ": " + problem.message);
    }
    return lines;
}

boost::json::object event_at(const std::string& time, const std::string& ip = "192.0.2.1",
                             const std::string& user = "alice") {
    return boost::json::object{{"eventTime", time},
                               {"eventName", "ConsoleLogin"},
                               {"eventType", "AwsConsoleSignIn"},
                               {"sourceIPAddress", ip},
                               {"userIdentity", {{"type", "IAMUser"},
                                                 {"userName", user},
                                                 {"arn", "arn:aws:iam::123456789012:user/" + user}}},
                               {"responseElements", {{"ConsoleLogin", "Failure"}}}};
}

// "2024-05-01T10:MM:SSZ" for a number of seconds after 10:00.
std::string at_seconds(int seconds) {
    char text[32];
    std::snprintf(text, sizeof text, "2024-05-01T%02d:%02d:%02dZ", 10 + seconds / 3600, (seconds / 60) % 60,
                  seconds % 60);
    return text;
}

struct Shaped {
    Config config;
    std::vector<Diagnostic> problems;
    std::unique_ptr<AlertShaper> shaper;
};

Shaped shaped(const std::string& toml) {
    Shaped out;
    out.config = parse_config(toml, "root.toml");
    out.shaper = std::make_unique<AlertShaper>(out.config, out.problems);
    return out;
}

const char* const kFailedLogins = R"T(
[[rule]]
name = "Failed console logins"
jq_match = 'select(.eventName == "ConsoleLogin" and .responseElements.ConsoleLogin == "Failure")'
title = '"\(.userIdentity.userName) failed to sign in from \(.sourceIPAddress)"'
threshold = { key = ".sourceIPAddress", count = 5, window = "10m" }
)T";

// ---- config ------------------------------------------------------------------

TEST(ShapingConfig, ReadsTitleDedupThresholdAndWindows) {
    const Config config = parse_config(R"T(
[[rule]]
name = "a"
jq_match = "true"
title = '"x"'
dedup = { key = ".userIdentity.arn", window = "1h" }
threshold = { key = ".sourceIPAddress", count = 5, window = 600 }

[[rule]]
name = "b"
jq_match = "true"
dedup = { window = "1d" }
)T",
                                       "root.toml");
    ASSERT_THAT(config.rules, SizeIs(2));
    const RuleSpec& a = config.rules[0];
    EXPECT_EQ(a.title, "\"x\"");
    EXPECT_EQ(a.title_where.line, 5);
    ASSERT_TRUE(a.dedup && a.threshold);
    EXPECT_EQ(a.dedup->key, ".userIdentity.arn");
    EXPECT_EQ(a.dedup->window_seconds, 3600);
    EXPECT_EQ(a.threshold->count, 5);
    EXPECT_EQ(a.threshold->window_seconds, 600);
    EXPECT_EQ(a.threshold->key_where.line, 7);
    ASSERT_TRUE(config.rules[1].dedup);
    EXPECT_EQ(config.rules[1].dedup->key, "");  // one key for all the rule's matches
    EXPECT_EQ(config.rules[1].dedup->window_seconds, 86400);
}

TEST(ShapingConfig, WindowsAreDurationsOrSeconds) {
    EXPECT_EQ(parse_window_seconds("30s"), 30);
    EXPECT_EQ(parse_window_seconds("10m"), 600);
    EXPECT_EQ(parse_window_seconds("1h"), 3600);
    EXPECT_EQ(parse_window_seconds("2d"), 172800);
    EXPECT_EQ(parse_window_seconds("45"), 45);
    for (const char* bad : {"", "0s", "m", "10 m", "1w", "-5m", "1.5h", "h1"}) {
        EXPECT_EQ(parse_window_seconds(bad), std::nullopt) << bad;
    }
}

TEST(ShapingConfig, EveryBadValueIsReportedWithItsLine) {
    EXPECT_THAT(config_problems(R"T([[rule]]
name = "a"
jq_match = "true"
title = 5
dedup = { key = ".a", windw = "1h" }
threshold = { key = "", count = 0, window = "10x" }

[[rule]]
name = "b"
jq_match = "true"
dedup = "1h"
threshold = { window = "400d" }
)T"),
                ElementsAre(HasSubstr("4: rule \"a\": title must be a jq expression giving a string"),
                            HasSubstr("5: rule \"a\": dedup needs a window"),
                            AllOf(HasSubstr("5: rule \"a\": dedup: unknown key \"windw\""),
                                  HasSubstr("did you mean \"window\"")),
                            HasSubstr("6: rule \"a\": threshold.key must be a jq expression"),
                            HasSubstr("6: rule \"a\": threshold.count must be an integer from 1 to 1000000"),
                            HasSubstr("6: rule \"a\": threshold.window must be a duration such as \"30s\""),
                            HasSubstr("11: rule \"b\": dedup must be a table, e.g. dedup = {"),
                            HasSubstr("12: rule \"b\": threshold needs a count"),
                            HasSubstr("12: rule \"b\": threshold.window must be a duration")));
}

TEST(ShapingConfig, ListsAndMacrosNamesAreChecked) {
    EXPECT_THAT(config_problems(R"T([lists]
admins = ["alice", "bob"]
2bad = [1]
env = ["x"]
single = "alice"

[macros]
admins = '.a'
is_console = ''
ok = '.eventType == "AwsConsoleSignIn"'
)T"),
                ElementsAre(HasSubstr("3: lists.2bad: a list name must be a jq identifier"),
                            HasSubstr("4: lists.env: \"env\" is a jq keyword or a builtin rules may not use"),
                            HasSubstr("5: lists.single: a list must be an array"),
                            HasSubstr("8: macros.admins: \"admins\" is already defined at line 2"),
                            HasSubstr("9: macros.is_console: a macro must be a non-empty string")));
}

TEST(ShapingConfig, SequenceTestsAreChecked) {
    EXPECT_THAT(config_problems(R"T([[rule]]
name = "a"
jq_match = "true"

[[rule.test]]
events = ['{"eventTime": "2024-05-01T10:00:00Z"}', 'not json']
alerts = 1

[[rule.test]]
event_files = ["a.json"]
match = true

[[rule.test]]
event = '{}'
match = false
title = "x"
)T"),
                ElementsAre(HasSubstr("6: rule \"a\", test #1: events[1] must be a string holding a JSON object"),
                            HasSubstr("9: rule \"a\", test #2: a sequence test needs alerts"),
                            HasSubstr("11: rule \"a\", test #2: match belongs to a single-event test"),
                            HasSubstr("13: rule \"a\", test #3: title and dedup_key are expectations of a match")));
}

TEST(ShapingConfig, EventTimeIsReadFromIso8601) {
    EXPECT_EQ(event_time_seconds({{"eventTime", "1970-01-01T00:01:00Z"}}), 60);
    EXPECT_EQ(event_time_seconds({{"eventTime", "2024-05-01T10:00:00Z"}}), 1714557600);
    EXPECT_EQ(event_time_seconds({{"eventTime", "2024-05-01T10:00:00.789Z"}}), 1714557600);
    EXPECT_EQ(event_time_seconds({{"eventTime", "2024-05-01T12:00:00+02:00"}}), 1714557600);
    EXPECT_EQ(event_time_seconds({{"eventTime", "2024-02-30T10:00:00Z"}}), std::nullopt);
    EXPECT_EQ(event_time_seconds({{"eventTime", "yesterday"}}), std::nullopt);
    EXPECT_EQ(event_time_seconds({{"eventTime", 5}}), std::nullopt);
    EXPECT_EQ(event_time_seconds({}), std::nullopt);
}

// ---- titles --------------------------------------------------------------------

TEST(AlertShaper, TitleIsTheFirstOutputAndMustBeAString) {
    auto s = shaped(R"T(
[[rule]]
name = "key"
jq_match = "true"
title = '"\(.userIdentity.arn) created an access key"'

[[rule]]
name = "number"
jq_match = "true"
title = '.userIdentity | length'

[[rule]]
name = "fails"
jq_match = "true"
title = '.userIdentity.arn | error("no title for \(.)")'

[[rule]]
name = "none"
jq_match = "true"
)T");
    ASSERT_THAT(s.problems, IsEmpty());
    const auto event = event_at("2024-05-01T10:00:00Z");
    s.shaper->begin_batch("test");
    EXPECT_EQ(s.shaper->title(0, event), "arn:aws:iam::123456789012:user/alice created an access key");
    EXPECT_EQ(s.shaper->errors(0), 0U);
    EXPECT_EQ(s.shaper->title(1, event), std::nullopt);
    EXPECT_EQ(s.shaper->errors(1), 1U);
    std::string why;
    EXPECT_EQ(s.shaper->title_or_error(1, event, why), std::nullopt);
    EXPECT_EQ(why, "the title is a number, not a string");
    EXPECT_EQ(s.shaper->title(2, event), std::nullopt);
    EXPECT_EQ(s.shaper->errors(2), 1U);
    EXPECT_EQ(s.shaper->title_or_error(2, event, why), std::nullopt);
    EXPECT_THAT(why, HasSubstr("no title for arn:aws:iam::123456789012:user/alice"));
    EXPECT_FALSE(s.shaper->has_title(3));
    EXPECT_EQ(s.shaper->title(3, event), std::nullopt);
    EXPECT_EQ(s.shaper->errors(3), 0U);

    boost::json::object alert;
    s.shaper->annotate_alert(alert, 0, s.shaper->decide(0, event), s.shaper->title(0, event));
    EXPECT_EQ(alert.at("title"), "arn:aws:iam::123456789012:user/alice created an access key");
    EXPECT_FALSE(alert.contains("dedup"));
}

TEST(AlertShaper, BadExpressionsAreConfigProblemsAtTheirLines) {
    Config config = parse_config(R"T([[rule]]
name = "a"
jq_match = "true"
title = '"unclosed'
dedup = { key = 'env.HOME', window = "1h" }
threshold = { key = '.a | __tattle_expr_0', count = 2, window = "1h" }
)T",
                                 "root.toml");
    std::vector<Diagnostic> problems;
    AlertShaper shaper(config, problems);
    EXPECT_THAT(messages(problems),
                ElementsAre(HasSubstr("root.toml:5: rule \"a\": dedup.key: uses \"env\""),
                            HasSubstr("root.toml:6: rule \"a\": threshold.key: names starting with __tattle"),
                            AllOf(HasSubstr("root.toml:4: rule \"a\": title: jq: "), HasSubstr("line 1"))));
}

// ---- dedup ---------------------------------------------------------------------

TEST(AlertShaper, DedupLetsOneAlertPerKeyPerWindowAndCountsTheRest) {
    auto s = shaped(R"T(
[[rule]]
name = "logins"
jq_match = "true"
dedup = { key = ".userIdentity.userName", window = "1h" }
)T");
    ASSERT_THAT(s.problems, IsEmpty());
    AlertShaper& shaper = *s.shaper;
    shaper.begin_batch("test");
    ShapingDecision first = shaper.decide(0, event_at(at_seconds(0)));
    EXPECT_EQ(first.outcome, ShapingOutcome::alert);
    EXPECT_EQ(first.dedup_key, "alice");
    EXPECT_EQ(first.suppressed, 0U);
    for (int minutes : {10, 30, 59}) {
        const ShapingDecision later = shaper.decide(0, event_at(at_seconds(minutes * 60)));
        EXPECT_EQ(later.outcome, ShapingOutcome::deduplicated) << minutes;
    }
    // Another key has a window of its own.
    EXPECT_EQ(shaper.decide(0, event_at(at_seconds(20 * 60), "192.0.2.9", "bob")).outcome, ShapingOutcome::alert);
    // The window is over: an alert, carrying what was held back.
    const ShapingDecision next = shaper.decide(0, event_at(at_seconds(60 * 60)));
    EXPECT_EQ(next.outcome, ShapingOutcome::alert);
    EXPECT_EQ(next.suppressed, 3U);
    boost::json::object alert;
    shaper.annotate_alert(alert, 0, next, std::nullopt);
    EXPECT_EQ(boost::json::serialize(alert.at("dedup")), R"T({"key":"alice","window_seconds":3600,"suppressed":3})T");
    // A new window from that alert on; its count starts at nothing.
    EXPECT_EQ(shaper.decide(0, event_at(at_seconds(90 * 60))).outcome, ShapingOutcome::deduplicated);
    EXPECT_EQ(shaper.decide(0, event_at(at_seconds(121 * 60))).suppressed, 1U);
    EXPECT_EQ(shaper.errors(0), 0U);
}

TEST(AlertShaper, AKeyThatCannotBeHadNeverSuppresses) {
    auto s = shaped(R"T(
[[rule]]
name = "logins"
jq_match = "true"
dedup = { key = ".userIdentity.userName | ascii_downcase", window = "1h" }
)T");
    ASSERT_THAT(s.problems, IsEmpty());
    s.shaper->begin_batch("test");
    auto no_user = event_at(at_seconds(0));
    no_user["userIdentity"] = boost::json::object{{"type", "AWSService"}};
    for (int i = 0; i < 2; ++i) {
        const ShapingDecision decision = s.shaper->decide(0, no_user);
        EXPECT_EQ(decision.outcome, ShapingOutcome::alert);
        EXPECT_THAT(decision.problem, HasSubstr("dedup.key: jq error"));
    }
    auto no_time = event_at(at_seconds(0));
    no_time.erase("eventTime");
    EXPECT_THAT(s.shaper->decide(0, no_time).problem, HasSubstr("no eventTime"));
    EXPECT_EQ(s.shaper->errors(0), 3U);
}

// ---- threshold -----------------------------------------------------------------

// Failed console logins from one address, `count` of them `spacing` seconds apart.
std::vector<ShapingOutcome> failed_logins(AlertShaper& shaper, int count, int spacing) {
    std::vector<ShapingOutcome> outcomes;
    shaper.clear_state();
    shaper.begin_batch("test");
    for (int i = 0; i < count; ++i) outcomes.push_back(shaper.decide(0, event_at(at_seconds(i * spacing))).outcome);
    return outcomes;
}

TEST(AlertShaper, ThresholdAlertsOnTheNthMatchWithinTheWindow) {
    auto s = shaped(kFailedLogins);
    ASSERT_THAT(s.problems, IsEmpty());
    constexpr auto below = ShapingOutcome::below_threshold;
    constexpr auto alert = ShapingOutcome::alert;
    // Five in ten minutes: the fifth alerts.
    EXPECT_THAT(failed_logins(*s.shaper, 5, 150), ElementsAre(below, below, below, below, alert));
    // Four: nothing.
    EXPECT_THAT(failed_logins(*s.shaper, 4, 150), ElementsAre(below, below, below, below));
    // Five spread over eleven minutes: the first has left the window when the fifth comes.
    EXPECT_THAT(failed_logins(*s.shaper, 5, 165), ElementsAre(below, below, below, below, below));
    // Exactly ten minutes between the first and the fifth still counts; a second more does not.
    EXPECT_EQ(failed_logins(*s.shaper, 5, 150).back(), alert);
    s.shaper->clear_state();
    for (const int seconds : {0, 151, 301, 451}) s.shaper->decide(0, event_at(at_seconds(seconds)));
    EXPECT_EQ(s.shaper->decide(0, event_at(at_seconds(601))).outcome, below);

    s.shaper->clear_state();
    s.shaper->begin_batch("test");
    ShapingDecision decision;
    for (int i = 0; i < 5; ++i) decision = s.shaper->decide(0, event_at(at_seconds(i * 60)));
    EXPECT_EQ(decision.threshold_count, 5U);
    EXPECT_EQ(decision.threshold_key, "192.0.2.1");
    boost::json::object document;
    s.shaper->annotate_alert(document, 0, decision, s.shaper->title(0, event_at(at_seconds(240))));
    EXPECT_EQ(boost::json::serialize(document.at("threshold")),
              R"T({"key":"192.0.2.1","count":5,"min_count":5,"window_seconds":600})T");
    EXPECT_EQ(document.at("title"), "alice failed to sign in from 192.0.2.1");
    // The count starts again after an alert.
    EXPECT_EQ(s.shaper->decide(0, event_at(at_seconds(300))).outcome, ShapingOutcome::below_threshold);
}

TEST(AlertShaper, ThresholdCountsEachKeyApart) {
    auto s = shaped(kFailedLogins);
    s.shaper->begin_batch("test");
    std::vector<ShapingOutcome> outcomes;
    for (int i = 0; i < 8; ++i) {
        // Alternating addresses: four each, never five for one.
        outcomes.push_back(s.shaper->decide(0, event_at(at_seconds(i * 30), i % 2 == 0 ? "192.0.2.1" : "192.0.2.2"))
                               .outcome);
    }
    EXPECT_THAT(outcomes, ::testing::Each(ShapingOutcome::below_threshold));
    EXPECT_EQ(s.shaper->decide(0, event_at(at_seconds(300), "192.0.2.2")).outcome, ShapingOutcome::alert);
}

TEST(AlertShaper, KeysAreBoundedPerRule) {
    Config config = parse_config(R"T([[rule]]
name = "a"
jq_match = "true"
dedup = { key = ".sourceIPAddress", window = "1h" }
)T",
                                 "root.toml");
    std::vector<Diagnostic> problems;
    ShapingOptions options;
    options.max_keys_per_rule = 2;
    AlertShaper shaper(config, problems, options);
    shaper.begin_batch("test");
    for (const char* ip : {"192.0.2.1", "192.0.2.2", "192.0.2.3"}) {
        EXPECT_EQ(shaper.decide(0, event_at(at_seconds(0), ip)).outcome, ShapingOutcome::alert);
    }
    EXPECT_EQ(shaper.evicted_keys(0), 1U);
    // The least recently seen key was forgotten: its next match alerts again.
    EXPECT_EQ(shaper.decide(0, event_at(at_seconds(60), "192.0.2.1")).outcome, ShapingOutcome::alert);
    EXPECT_EQ(shaper.decide(0, event_at(at_seconds(60), "192.0.2.3")).outcome, ShapingOutcome::deduplicated);
}

TEST(AlertShaper, ThresholdThenDedup) {
    auto s = shaped(R"T(
[[rule]]
name = "a"
jq_match = "true"
threshold = { key = ".sourceIPAddress", count = 2, window = "10m" }
dedup = { key = ".sourceIPAddress", window = "1h" }
)T");
    s.shaper->begin_batch("test");
    std::vector<ShapingOutcome> outcomes;
    for (int i = 0; i < 6; ++i) outcomes.push_back(s.shaper->decide(0, event_at(at_seconds(i * 60))).outcome);
    EXPECT_THAT(outcomes, ElementsAre(ShapingOutcome::below_threshold, ShapingOutcome::alert,
                                      ShapingOutcome::below_threshold, ShapingOutcome::deduplicated,
                                      ShapingOutcome::below_threshold, ShapingOutcome::deduplicated));
}

// ---- the rule budget -------------------------------------------------------------

// Titles and keys run in the rule evaluator under the budget: one that never ends is
// stopped on the first event, reported once (for the pipeline's alert) with the part it
// is and why, and skipped from then on; the rule's alerts go out without it.
TEST(AlertShaper, StoppedTitlesAndKeysAreReportedOnceEachWithTheirPart) {
    set_rule_evaluator_program(TATTLE_BINARY);
    const Config config = parse_config(R"T(
[[rule]]
name = "loops in title"
jq_match = "true"
title = 'def f: f; f'

[[rule]]
name = "loops in dedup key"
jq_match = "true"
dedup = { key = 'def f: f; f', window = "1h" }

[[rule]]
name = "loops in threshold key"
jq_match = "true"
threshold = { key = '.sourceIPAddress | def f: f; f', count = 2, window = "1h" }

[[rule]]
name = "fine"
jq_match = "true"
title = '"sign-in from \(.sourceIPAddress)"'
)T",
                                       "root.toml");
    std::vector<Diagnostic> problems;
    ShapingOptions options;
    options.isolation = RuleBudget{std::chrono::milliseconds(200), std::size_t{512} << 20};
    AlertShaper shaper(config, problems, options);
    ASSERT_THAT(problems, IsEmpty());

    shaper.begin_batch("s3://trail/first.json.gz");
    const auto first = event_at(at_seconds(0));
    EXPECT_EQ(shaper.title(0, first), std::nullopt);
    EXPECT_EQ(shaper.decide(1, first).outcome, ShapingOutcome::alert);
    EXPECT_EQ(shaper.decide(2, first).outcome, ShapingOutcome::alert);  // would be below the threshold
    EXPECT_EQ(shaper.title(3, first), "sign-in from 192.0.2.1");
    const auto stopped = shaper.take_newly_stopped();
    ASSERT_THAT(stopped, SizeIs(3));
    const std::vector<std::pair<std::size_t, std::string>> parts{{0, "title"}, {1, "dedup.key"}, {2, "threshold.key"}};
    for (std::size_t i = 0; i < stopped.size(); ++i) {
        EXPECT_EQ(stopped[i].rule_index, parts[i].first);
        EXPECT_EQ(stopped[i].part, parts[i].second);
        EXPECT_THAT(stopped[i].reason, HasSubstr("ran for more than 200 ms of CPU time"));
        EXPECT_EQ(stopped[i].origin, "s3://trail/first.json.gz");
        EXPECT_EQ(stopped[i].cause, StopCause::cpu);
    }

    // Later events: skipped at once, counted as the rules' errors, never reported again.
    shaper.begin_batch("s3://trail/second.json.gz");
    const auto started = std::chrono::steady_clock::now();
    const auto second = event_at(at_seconds(60));
    EXPECT_EQ(shaper.title(0, second), std::nullopt);
    EXPECT_EQ(shaper.decide(1, second).outcome, ShapingOutcome::alert);
    EXPECT_EQ(shaper.decide(2, second).outcome, ShapingOutcome::alert);
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(200));
    EXPECT_EQ(shaper.title(3, second), "sign-in from 192.0.2.1");
    EXPECT_THAT(shaper.take_newly_stopped(), IsEmpty());
    for (std::size_t rule = 0; rule < 3; ++rule) EXPECT_EQ(shaper.errors(rule), 2U) << rule;
    EXPECT_EQ(shaper.errors(3), 0U);
    set_rule_evaluator_program("");
}

// ---- lists and macros ----------------------------------------------------------

class ShapingBundles : public ::testing::Test {
protected:
    void SetUp() override {
        std::random_device random;
        dir_ = fs::temp_directory_path() / ("tattle_shaping_" + std::to_string(random()));
        fs::create_directories(dir_ / "teams");
    }
    void TearDown() override { fs::remove_all(dir_); }
    void write(const std::string& name, const std::string& text) {
        std::ofstream(dir_ / name, std::ios::binary) << text;
    }
    fs::path dir_;
};

TEST_F(ShapingBundles, ListsAndMacrosBelongToTheirBundle) {
    write("root.toml", "bundles = [\"teams/*.toml\"]\n");
    write("teams/a.toml", R"T(team = "a"

[lists]
admin_users = ["alice", "bob"]

[macros]
is_console = '.eventType == "AwsConsoleSignIn"'
is_admin = '.userIdentity.userName as $u | admin_users | index($u) != null'

[[rule]]
name = "admin console"
jq_match = 'is_console and is_admin'
title = '"admin \(.userIdentity.userName) signed in" + (if is_admin then "" else "?" end)'
dedup = { key = 'if is_admin then "admin" else "other" end', window = "1h" }
)T");
    write("teams/b.toml", R"T(team = "b"

[lists]
admin_users = ["carol"]

[[rule]]
name = "admin"
jq_match = '.userIdentity.userName as $u | admin_users | index($u) != null'
)T");
    const Config config = load_config(dir_ / "root.toml");
    ASSERT_THAT(config.rules, SizeIs(2));
    ASSERT_THAT(config.definition_sets, SizeIs(2));
    std::vector<Diagnostic> problems;
    FilterStage filter(filter_rules_for(config.rules), problems);
    AlertShaper shaper(config, problems);
    ASSERT_THAT(messages(problems), IsEmpty());

    auto rule_ids = [&](const boost::json::object& event) {
        std::vector<std::string> ids;
        for (const auto& match : filter.evaluate(event)) ids.push_back(config.rules[match.rule_index].id);
        return ids;
    };
    EXPECT_THAT(rule_ids(event_at(at_seconds(0), "192.0.2.1", "alice")), ElementsAre("a/admin console"));
    EXPECT_THAT(rule_ids(event_at(at_seconds(0), "192.0.2.1", "carol")), ElementsAre("b/admin"));
    EXPECT_THAT(rule_ids(event_at(at_seconds(0), "192.0.2.1", "dave")), IsEmpty());
    shaper.begin_batch("test");
    // Rules are in file-name order: a's first.
    EXPECT_EQ(shaper.title(0, event_at(at_seconds(0), "192.0.2.1", "bob")), "admin bob signed in");
    std::string error;
    EXPECT_EQ(shaper.dedup_key(0, event_at(at_seconds(0), "192.0.2.1", "bob"), error), "admin");
}

TEST_F(ShapingBundles, AMacroOfOneBundleIsUnknownInAnother) {
    write("root.toml", "bundles = [\"teams/*.toml\"]\n");
    write("teams/a.toml", R"T(team = "a"
[macros]
is_console = '.eventType == "AwsConsoleSignIn"'
)T");
    write("teams/b.toml", R"T(team = "b"
[[rule]]
name = "console"
jq_match = 'is_console'
title = '"\(is_console)"'
)T");
    const Config config = load_config(dir_ / "root.toml");
    std::vector<Diagnostic> problems;
    FilterStage filter(filter_rules_for(config.rules), problems);
    AlertShaper shaper(config, problems);
    EXPECT_THAT(messages(problems),
                ElementsAre(AllOf(HasSubstr("b.toml:4: rule \"b/console\": jq: is_console/0 is not defined")),
                            AllOf(HasSubstr("b.toml:5: rule \"b/console\": title: jq: "),
                                  HasSubstr("is_console/0 is not defined"))));
}

TEST_F(ShapingBundles, BrokenDefinitionsAreReportedWhereTheyAre) {
    write("root.toml", "bundles = [\"teams/*.toml\"]\n");
    write("teams/a.toml", R"T(team = "a"

[lists]
names = ["x"]

[macros]
fine = '.a == 1'
broken = '.a == '
nosy = '$ENV.HOME'
length = '1'
)T");
    const Config config = load_config(dir_ / "root.toml");
    std::vector<Diagnostic> problems;
    AlertShaper shaper(config, problems);
    EXPECT_THAT(messages(problems),
                ElementsAre(HasSubstr("a.toml:9: macros.nosy: uses \"$ENV\""),
                            HasSubstr("a.toml:10: macros.length: length is a jq builtin")));
    // Without the refused ones, the syntax error is found and placed.
    write("teams/a.toml", R"T(team = "a"

[macros]
fine = '.a == 1'
broken = '.a == '
)T");
    problems.clear();
    AlertShaper again(load_config(dir_ / "root.toml"), problems);
    EXPECT_THAT(messages(problems), ElementsAre(AllOf(HasSubstr("a.toml:5: macros.broken: jq: syntax error"))));
}

TEST_F(ShapingBundles, JqLineNumbersStayTheRulesOwn) {
    write("root.toml", "bundles = [\"teams/*.toml\"]\n");
    write("teams/a.toml", R"T(team = "a"

[macros]
multi = """
.a
# a comment
== 1"""

[[rule]]
name = "r"
jq_match = """
multi and
  (.b | ]
"""
)T");
    const Config config = load_config(dir_ / "root.toml");
    std::vector<Diagnostic> problems;
    FilterStage filter(filter_rules_for(config.rules), problems);
    correct_filter_line_numbers(problems, 0, config.rules);
    ASSERT_THAT(problems, SizeIs(1));
    EXPECT_THAT(problems[0].message, HasSubstr("line 2"));
    EXPECT_EQ(with_definitions("multi and .x", config.rules[0].definitions).prefix_lines, 5);
    // A rule that uses no definition gets none.
    EXPECT_EQ(with_definitions(".a == 1", config.rules[0].definitions).text, ".a == 1");
}

// ---- rule tests ----------------------------------------------------------------

TEST_F(ShapingBundles, RuleTestsCheckTitlesKeysAndSequences) {
    auto login = [](int seconds, const std::string& ip) {
        return "'" + boost::json::serialize(event_at(at_seconds(seconds), ip)) + "'";
    };
    std::string five, four, spread;
    for (int i = 0; i < 5; ++i) five += (i ? ", " : "") + login(i * 150, "192.0.2.1");
    for (int i = 0; i < 4; ++i) four += (i ? ", " : "") + login(i * 150, "192.0.2.1");
    for (int i = 0; i < 5; ++i) spread += (i ? ", " : "") + login(i * 165, "192.0.2.1");
    write("root.toml", std::string(kFailedLogins) + R"T(dedup = { key = ".userIdentity.userName", window = "1h" }

[[rule.test]]
event = )T" + login(0, "192.0.2.1") + R"T(
match = true
title = "alice failed to sign in from 192.0.2.1"
dedup_key = "alice"

[[rule.test]]
events = [)T" + five + R"T(]
alerts = 1

[[rule.test]]
events = [)T" + four + R"T(]
alerts = 0

[[rule.test]]
events = [)T" + spread + R"T(]
alerts = 0

[[rule.test]]
events = [)T" + five + ", " + five + R"T(]
alerts = 2

[[rule.test]]
event = )T" + login(0, "192.0.2.1") + R"T(
match = true
title = "bob failed"
dedup_key = "bob"
)T");
    const RuleTestReport report = run_rule_tests(load_config(dir_ / "root.toml"));
    ASSERT_THAT(report.problems, IsEmpty());
    ASSERT_THAT(report.results, SizeIs(6));
    for (std::size_t i = 0; i < 4; ++i) {
        EXPECT_TRUE(report.results[i].passed) << i << ": " << report.results[i].got;
    }
    // Five and five again: the second five are within the dedup window of the first alert.
    EXPECT_FALSE(report.results[4].passed);
    EXPECT_EQ(report.results[4].expected, "2 alerts");
    EXPECT_EQ(report.results[4].got, "1 alert (10 events, 10 matched, 1 deduplicated, 8 below threshold)");
    EXPECT_FALSE(report.results[5].passed);
    EXPECT_EQ(report.results[5].expected, "match, title \"bob failed\", dedup key \"bob\"");
    EXPECT_EQ(report.results[5].got,
              "match, title \"alice failed to sign in from 192.0.2.1\", dedup key \"alice\"");

    std::ostringstream table;
    print_rule_test_table(report, table);
    EXPECT_THAT(table.str(), AllOf(HasSubstr("expected: 2 alerts"), HasSubstr("6 tests, 4 passed, 2 failed")));
    EXPECT_THAT(rule_tests_junit_xml(report), HasSubstr("expected: match, title &quot;bob failed&quot;"));
}

}  // namespace
}  // namespace tattle
