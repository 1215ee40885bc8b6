#include "tattle/config.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <string>
#include <vector>

namespace tattle {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

// The problems a config produces, as "line:col: message", or one line saying it loaded.
std::vector<std::string> problems_of(const std::string& toml_text) {
    try {
        parse_config(toml_text, "test.toml");
    } catch (const ConfigError& error) {
        std::vector<std::string> lines;
        for (const auto& problem : error.problems()) {
            EXPECT_EQ(problem.where.file, "test.toml");
            lines.push_back(std::to_string(problem.where.line) + ":" +
                            std::to_string(problem.where.column) + ": " + problem.message);
        }
        return lines;
    }
    return {"loaded without problems"};
}

std::string error_text_of(const std::string& toml_text) {
    try {
        parse_config(toml_text, "test.toml");
    } catch (const ConfigError& error) {
        return error.what();
    }
    return {};
}

TEST(ConfigTest, LoadsTheTattletailExampleUnchanged) {
    const std::filesystem::path path =
        std::filesystem::path(TATTLE_SHARED_DATA_DIR) / "tattletail/example.tattletail.toml";
    const Config config = load_config(path);

    EXPECT_EQ(config.path, path);
    ASSERT_THAT(config.rules, SizeIs(2));
    const RuleSpec& create_user = config.rules[0];
    EXPECT_EQ(create_user.name, "Create User");
    EXPECT_EQ(
        create_user.jq_match,
        R"jq(select(.eventName == "CreateUser") | "username: \(.responseElements.user.userName)")jq");
    EXPECT_EQ(create_user.description, "A new IAM user has been created");
    EXPECT_THAT(create_user.destinations, ElementsAre("Default SNS", "Slack Warnings", "Email"));
    EXPECT_EQ(create_user.where.file, path.string());
    EXPECT_EQ(create_user.where.line, 1);
    EXPECT_EQ(create_user.where.column, 1);
    EXPECT_EQ(create_user.jq_match_where.line, 3);
    EXPECT_EQ(create_user.jq_match_where.column, 12);

    const RuleSpec& create_key = config.rules[1];
    EXPECT_EQ(create_key.name, "Create AccessKey");
    EXPECT_EQ(create_key.jq_match, R"jq(select(.eventName == "CreateAccessKey"))jq");
    EXPECT_EQ(create_key.description, "A new Access Key has been created");
    EXPECT_EQ(create_key.where.line, 7);

    ASSERT_THAT(config.destinations, SizeIs(3));
    EXPECT_EQ(config.destinations[0].id, "Default SNS");
    EXPECT_EQ(config.destinations[0].type, "sns");
    EXPECT_EQ(
        config.destinations[0].settings,
        (boost::json::object{{"sns_arn", "arn:aws:sns:us-east-1:1234567890:cloudtail_alert"}}));
    EXPECT_EQ(config.destinations[0].where.line, 13);

    EXPECT_EQ(config.destinations[1].id, "Slack Warnings");
    EXPECT_EQ(config.destinations[1].type, "slack_webhook");
    EXPECT_EQ(config.destinations[1].settings,
              (boost::json::object{{"webhook_url", "https://foo.slack.com/some/webhook/url"}}));

    const PluginInstanceSpec& email = config.destinations[2];
    EXPECT_EQ(email.id, "Email");
    EXPECT_EQ(email.type, "ses");
    EXPECT_EQ(email.settings.at("to_emails"),
              (boost::json::array{"foo@example.com", "bar@example.com"}));
    EXPECT_EQ(email.settings.at("from_email"), "cloudtrail_alerts@example.com");
    EXPECT_THAT(email.settings, SizeIs(2));  // id and type are not settings
    EXPECT_EQ(email.locate("/to_emails/1").line, 26);
    EXPECT_EQ(email.locate("/from_email").line, 27);

    EXPECT_THAT(config.sources, IsEmpty());
    EXPECT_THAT(config.plugin_dirs, IsEmpty());
}

TEST(ConfigTest, ReportsEveryProblemTogetherWithItsPosition) {
    const std::string text = R"toml(plugin_dirz = ["x"]

[[rule]]
name = "A"
jq_macth = "select(true)"
destinations = "Email"

[[rule]]
name = "A"
jq_match = "."
destinations = ["Emial"]

[[destination]]
id = "Email"
type = "ses"

[[destination]]
id = "Email"
type = 42
)toml";
    EXPECT_THAT(
        problems_of(text),
        ElementsAre(R"(1:1: unknown top-level key "plugin_dirz" (did you mean "plugin_dirs"?))",
                    R"(3:1: rule "A": missing required key "jq_match")",
                    R"(5:1: rule "A": unknown key "jq_macth" (did you mean "jq_match"?))",
                    R"(6:16: rule "A": destinations must be an array of strings)",
                    R"(9:8: duplicate rule name "A" (first defined at line 4))",
                    R"(11:17: rule "A": unknown destination "Emial" (did you mean "Email"?))",
                    R"(18:6: duplicate destination id "Email" (first defined at line 14))",
                    R"(19:8: destination "Email": type must be a string)"));
}

TEST(ConfigTest, TheExceptionTextListsEveryProblemWithFileLineAndColumn) {
    const std::string text = "[[rule]]\nname = \"x\"\n\n[[destination]]\ntype = \"ses\"\n";
    const std::string message = error_text_of(text);
    EXPECT_THAT(message, HasSubstr(R"(test.toml:1:1: rule "x": missing required key "jq_match")"));
    EXPECT_THAT(message, HasSubstr(R"(test.toml:4:1: destination #1: missing required key "id")"));
}

TEST(ConfigTest, TomlSyntaxErrorIsReportedWithItsLineAndDescription) {
    const std::vector<std::string> problems =
        problems_of("[[rule]]\nname = \"x\"\njq_match = = \".\"\n");
    ASSERT_THAT(problems, SizeIs(1));
    EXPECT_THAT(problems[0], ::testing::StartsWith("3:"));
    EXPECT_THAT(problems[0], HasSubstr("invalid TOML: "));
    EXPECT_THAT(problems[0], HasSubstr("parsing value"));  // toml++'s own words
}

TEST(ConfigTest, RuleWrittenAsATableInsteadOfAnArrayOfTablesIsRefused) {
    const std::string text = "[rule]\nname = \"x\"\njq_match = \".\"\n";
    EXPECT_THAT(
        problems_of(text),
        ElementsAre(R"(1:1: "rule" must be an array of tables: write [[rule]], not [rule])"));
}

TEST(ConfigTest, ProblemsInsideAMisdeclaredTableAreStillReported) {
    const std::string text = "[destination]\nid = \"\"\ntype = \"ses\"\n";
    EXPECT_THAT(
        problems_of(text),
        ElementsAre(
            R"(1:1: "destination" must be an array of tables: write [[destination]], not [destination])",
            R"(2:6: destination #1: id must not be empty)"));
}

TEST(ConfigTest, TopLevelKeysOfTheWrongShapeAreRefused) {
    EXPECT_THAT(problems_of("rule = \"x\"\n"),
                ElementsAre(R"(1:8: "rule" must be an array of tables ([[rule]]))"));
    EXPECT_THAT(problems_of("source = [1]\n"), ElementsAre("1:11: source #1 must be a table"));
    EXPECT_THAT(problems_of("plugin_dirs = \"x\"\n"),
                ElementsAre("1:15: plugin_dirs must be an array of strings"));
    EXPECT_THAT(problems_of("plugin_dirs = [\"x\", 3]\n"),
                ElementsAre("1:21: plugin_dirs must be an array of strings"));
}

TEST(ConfigTest, RuleKeysAreTypeChecked) {
    const std::string text = R"toml([[rule]]
name = 1
jq_match = ["x"]
description = false
destinations = ["a", 2]
)toml";
    EXPECT_THAT(
        problems_of(text),
        ElementsAre("2:8: rule #1: name must be a string",
                    "3:12: rule #1: jq_match must be a string",
                    "4:15: rule #1: description must be a string",
                    R"(5:17: rule #1: unknown destination "a" (no [[destination]] is defined))",
                    "5:22: rule #1: destinations must be an array of strings"));
}

TEST(ConfigTest, EmptyNamesAndIdsAreRefused) {
    const std::string text = R"toml([[rule]]
name = ""
jq_match = "  "

[[source]]
id = "in"
type = ""
)toml";
    EXPECT_THAT(problems_of(text), ElementsAre("2:8: rule #1: name must not be empty",
                                               "3:12: rule #1: jq_match must not be empty",
                                               R"(7:8: source "in": type must not be empty)"));
}

TEST(ConfigTest, DuplicateSourceIdsAreRefusedButMayReuseADestinationId) {
    const std::string text = R"toml([[source]]
id = "logs"
type = "file"

[[source]]
id = "logs"
type = "sqs"

[[destination]]
id = "logs"
type = "stdout"
)toml";
    EXPECT_THAT(problems_of(text),
                ElementsAre(R"(6:6: duplicate source id "logs" (first defined at line 2))"));
}

TEST(ConfigTest, UnknownDestinationWithoutACloseMatchHasNoHint) {
    const std::string text = R"toml([[rule]]
name = "r"
jq_match = "."
destinations = ["Slack", "Slack", "PagerDuty"]

[[destination]]
id = "Slack"
type = "slack_webhook"
)toml";
    EXPECT_THAT(problems_of(text),
                ElementsAre(R"(4:26: rule "r": destination "Slack" is listed twice)",
                            R"(4:35: rule "r": unknown destination "PagerDuty")"));
}

TEST(ConfigTest, RulesNeedNoDescriptionOrDestinations) {
    const Config config = parse_config(
        "[[rule]]\nname = \"r\"\njq_match = \".\"\n\n[[rule]]\nname = \"s\"\n"
        "jq_match = \"true\"\ndestinations = []\n",
        "test.toml");
    ASSERT_THAT(config.rules, SizeIs(2));
    EXPECT_EQ(config.rules[0].description, "");
    EXPECT_THAT(config.rules[0].destinations, IsEmpty());
    EXPECT_THAT(config.rules[1].destinations, IsEmpty());
    EXPECT_EQ(config.rules[1].where.line, 5);
    EXPECT_EQ(config.rules[1].jq_match_where.line, 7);
}

TEST(ConfigTest, SettingsBecomeJsonWithEveryTomlType) {
    const std::string text = R"toml([[destination]]
id = "d"
type = "webhook"
count = 3
ratio = 0.5
enabled = true
day = 2024-02-29
at = 07:30:15
when = 2024-02-29T07:30:15Z
local_when = 2024-02-29T07:30:15.250
nested = { list = [1, "two", { three = 3 }] }
)toml";
    const Config config = parse_config(text, "test.toml");
    ASSERT_THAT(config.destinations, SizeIs(1));
    const boost::json::value expected = boost::json::parse(R"({
        "count": 3, "ratio": 0.5, "enabled": true,
        "day": "2024-02-29", "at": "07:30:15", "when": "2024-02-29T07:30:15Z",
        "local_when": "2024-02-29T07:30:15.25",
        "nested": {"list": [1, "two", {"three": 3}]}
    })");
    EXPECT_EQ(boost::json::value(config.destinations[0].settings), expected);
}

TEST(ConfigTest, ValueLocationsCoverNestedValuesWithEscapedPointers) {
    const std::string text = R"toml([[destination]]
id = "hook"
type = "webhook"
urls = ["https://a", "https://b"]
retry = { attempts = 3, codes = [429, 503] }
"a/b" = 1
"t~x" = 2

[destination.headers]
Authorization = "token"
)toml";
    const Config config = parse_config(text, "test.toml");
    ASSERT_THAT(config.destinations, SizeIs(1));
    const PluginInstanceSpec& hook = config.destinations[0];
    const auto line_col = [&](const std::string& pointer) {
        const auto found = hook.value_locations.find(pointer);
        if (found == hook.value_locations.end()) return std::string("absent");
        return std::to_string(found->second.line) + ":" + std::to_string(found->second.column);
    };
    EXPECT_EQ(line_col("/urls"), "4:8");
    EXPECT_EQ(line_col("/urls/0"), "4:9");
    EXPECT_EQ(line_col("/urls/1"), "4:22");
    EXPECT_EQ(line_col("/retry"), "5:9");
    EXPECT_EQ(line_col("/retry/attempts"), "5:22");
    EXPECT_EQ(line_col("/retry/codes/1"), "5:39");
    EXPECT_EQ(line_col("/a~1b"), "6:9");
    EXPECT_EQ(line_col("/t~0x"), "7:9");
    EXPECT_EQ(line_col("/headers"), "9:1");
    EXPECT_EQ(line_col("/headers/Authorization"), "10:17");
    EXPECT_EQ(line_col("/id"), "absent");
    EXPECT_EQ(hook.value_locations.at("/urls/1").file, "test.toml");
}

TEST(ConfigTest, LocateFallsBackToTheNearestAncestorThenTheTable) {
    const Config config = parse_config(
        "[[destination]]\nid = \"d\"\ntype = \"t\"\nretry = { attempts = 3 }\n", "test.toml");
    const PluginInstanceSpec& destination = config.destinations.at(0);
    EXPECT_EQ(destination.locate("/retry/attempts").column, 22);
    EXPECT_EQ(destination.locate("/retry/backoff").column, 9);  // absent key: its parent
    EXPECT_EQ(destination.locate("/retry/backoff/0").column, 9);
    EXPECT_EQ(destination.locate("/missing").line, 1);  // nothing known: the table
    EXPECT_EQ(destination.locate("").line, 1);
    EXPECT_EQ(destination.locate("not a pointer").line, 1);
}

TEST(ConfigTest, PluginDirsAreResolvedRelativeToTheConfigFile) {
    const Config config =
        parse_config(R"(plugin_dirs = ["plugins", "/opt/tattle/plugins", "../lib/extra"])",
                     "/etc/tattle/tattle.toml");
    EXPECT_THAT(config.plugin_dirs, ElementsAre(std::filesystem::path("/etc/tattle/plugins"),
                                                std::filesystem::path("/opt/tattle/plugins"),
                                                std::filesystem::path("/etc/lib/extra")));
}

TEST(ConfigTest, PluginKeysAreLeftForThePluginSchema) {
    // A misspelt plugin key is the plugin schema's business, not the loader's.
    const Config config = parse_config(
        "[[destination]]\nid = \"s\"\ntype = \"slack_webhook\"\nwebhok_url = \"x\"\n", "test.toml");
    EXPECT_TRUE(config.destinations.at(0).settings.contains("webhok_url"));
}

TEST(ConfigTest, DestinationValuesNeverAppearInMessages) {
    const std::string secret = "https://hooks.slack.com/services/T000/B000/XXXXSECRET";
    const std::string text =
        "[[destination]]\nid = \"Slack\"\ntype = \"slack_webhook\"\nwebhook_url = \"" + secret +
        "\"\n\n[[destination]]\nid = \"Slack\"\ntype = \"slack_webhook\"\nwebhook_url = \"" +
        secret + "\"\nthreshold = nan\n";
    const std::string message = error_text_of(text);
    EXPECT_THAT(message, HasSubstr(R"(duplicate destination id "Slack")"));
    EXPECT_THAT(
        message,
        HasSubstr(R"(destination "Slack": the value at "/threshold" must be a finite number)"));
    EXPECT_THAT(message, Not(HasSubstr(secret)));
    EXPECT_THAT(message, Not(HasSubstr("XXXXSECRET")));
}

TEST(ConfigTest, MissingFileIsAConfigErrorNamingTheFile) {
    try {
        load_config("/nonexistent/tattle.toml");
        FAIL() << "expected ConfigError";
    } catch (const ConfigError& error) {
        ASSERT_THAT(error.problems(), SizeIs(1));
        EXPECT_EQ(error.problems()[0].where.file, "/nonexistent/tattle.toml");
    }
}

TEST(ConfigTest, EmptyConfigLoads) {
    const Config config = parse_config("", "empty.toml");
    EXPECT_THAT(config.rules, IsEmpty());
    EXPECT_THAT(config.destinations, IsEmpty());
    EXPECT_EQ(config.path, std::filesystem::path("empty.toml"));
}

}  // namespace
}  // namespace tattle
