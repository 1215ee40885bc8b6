// The Slack message, field by field, from a real CloudTrail event.
// Event: invictus-ir/aws_dataset (MIT), ../shared/data/cloudtrail/invictus-ir_aws_dataset.
#if __has_include("slack_message.hpp")  // the plugin is built only once tattle::http exists

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>
#include <sstream>
#include <string>

#include "slack_message.hpp"
#include "tattle/alert.hpp"

namespace {

namespace json = boost::json;
namespace slack = tattle::sinks::slack;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr const char* kLogFile =
    "/cloudtrail/invictus-ir_aws_dataset/CloudTrail/"
    "218007301253_CloudTrail_us-east-1_20230710T1200Z_iLj9fb7yyUG9X4Bf.json";
constexpr const char* kAssumedRoleEventId = "fbd91225-39aa-4c00-822c-9f0b96e7758f";

json::object real_event(std::string_view event_id) {
    std::ifstream in(std::string(TATTLE_SHARED_DATA_DIR) + kLogFile);
    std::stringstream text;
    text << in.rdbuf();
    const json::value log = json::parse(text.str());
    for (const auto& record : log.at("Records").as_array()) {
        if (record.at("eventID").as_string() == event_id) return record.as_object();
    }
    ADD_FAILURE() << "event " << event_id << " not in " << kLogFile;
    return {};
}

// The alert document as the core builds it (README, "The alert document").
json::object alert_for(const json::object& event,
                       std::optional<json::value> annotation = std::nullopt) {
    json::object alert = tattle::make_alert(
        {"EC2 password data", "Someone asked for an instance's Windows password"}, event,
        annotation, {"local", "logs/x.json", 17});
    alert["destination"] = "slack";
    return alert;
}

json::object message_for(const json::object& alert) { return slack::build_message(alert, {}); }

// Undoes Slack escaping and our fence breaking, to read a code block back as JSON.
std::string unescaped(std::string text) {
    const auto replace_all = [&text](std::string_view from, std::string_view to) {
        for (auto at = text.find(from); at != std::string::npos;
             at = text.find(from, at + to.size())) {
            text.replace(at, from.size(), to);
        }
    };
    replace_all("\u200b", "");
    replace_all("&lt;", "<");
    replace_all("&gt;", ">");
    replace_all("&amp;", "&");
    return text;
}

// Every string that Slack renders as text, with where it is.
void collect_texts(const json::value& value, std::vector<std::string>& out) {
    if (value.is_object()) {
        for (const auto& member : value.get_object()) {
            if (member.key() == "text" && member.value().is_string())
                out.emplace_back(member.value().get_string());
            collect_texts(member.value(), out);
        }
    } else if (value.is_array()) {
        for (const auto& element : value.get_array()) collect_texts(element, out);
    }
}

const json::object* block_whose_text_starts_with(const json::object& message,
                                                 std::string_view prefix) {
    for (const auto& block : message.at("blocks").as_array()) {
        const auto* text = block.as_object().if_contains("text");
        if (text != nullptr && text->at("text").as_string().starts_with(prefix))
            return &block.as_object();
    }
    return nullptr;
}

std::string code_block_of(const json::object& message) {
    const auto* event_block = block_whose_text_starts_with(message, "*Event*");
    if (event_block == nullptr) return {};
    const std::string text(event_block->at("text").at("text").as_string());
    const auto open = text.find("```\n");
    const auto close = text.rfind("\n```");
    if (open == std::string::npos || close == std::string::npos || close < open + 4) return {};
    return unescaped(text.substr(open + 4, close - open - 4));
}

// Slack's limits, checked over a whole message.
void expect_within_slack_limits(const json::object& message) {
    const auto& blocks = message.at("blocks").as_array();
    EXPECT_LE(blocks.size(), slack::kMaxBlocks);
    EXPECT_LE(message.at("text").as_string().size(), slack::kMaxFallbackText);
    for (const auto& block_value : blocks) {
        const auto& block = block_value.as_object();
        const std::string type(block.at("type").as_string());
        if (type == "header")
            EXPECT_LE(block.at("text").at("text").as_string().size(), slack::kMaxHeaderText);
        if (type == "section" && block.contains("text")) {
            EXPECT_LE(block.at("text").at("text").as_string().size(), slack::kMaxSectionText);
        }
        if (type == "section" && block.contains("fields")) {
            EXPECT_LE(block.at("fields").as_array().size(), slack::kMaxFields);
            for (const auto& field : block.at("fields").as_array()) {
                EXPECT_LE(field.at("text").as_string().size(), slack::kMaxFieldText);
            }
        }
        if (type == "context") {
            for (const auto& element : block.at("elements").as_array()) {
                EXPECT_LE(element.at("text").as_string().size(), slack::kMaxContextText);
            }
        }
    }
    // Far below Slack's message ceilings (40,000 characters of text).
    EXPECT_LT(json::serialize(message).size(), 16u * 1024u);
}

TEST(SlackMessage, ShowsARealAssumedRoleEventFieldByField) {
    const json::object event = real_event(kAssumedRoleEventId);
    json::object alert = alert_for(event, json::value("instance i-durz4ux740gjqvcm"));
    alert["rule"].as_object()["severity"] = "high";
    const json::object message = message_for(alert);

    EXPECT_EQ(message.at("text").as_string(),
              "[HIGH] EC2 password data: instance i-durz4ux740gjqvcm \u2014 GetPasswordData by "
              "arn:aws:sts::123837392027:assumed-role/stratus-red-team-ec2-get-password-data-role/"
              "aws-go-sdk-1688990082523310002");
    EXPECT_FALSE(message.contains("channel"));
    EXPECT_FALSE(message.contains("username"));

    const auto& blocks = message.at("blocks").as_array();
    ASSERT_EQ(blocks.size(), 7u);
    EXPECT_EQ(
        json::serialize(blocks[0]),
        R"({"type":"header","text":{"type":"plain_text","text":":rotating_light: EC2 password data · HIGH","emoji":true}})");

    EXPECT_EQ(blocks[1].at("text").at("text").as_string(),
              "Someone asked for an instance's Windows password\n*Annotation:* instance "
              "i-durz4ux740gjqvcm");
    EXPECT_EQ(blocks[1].at("text").at("type").as_string(), "mrkdwn");
    EXPECT_TRUE(blocks[1].at("text").at("verbatim").as_bool());

    const auto& fields = blocks[2].at("fields").as_array();
    ASSERT_EQ(fields.size(), 6u);
    EXPECT_EQ(
        fields[0].at("text").as_string(),
        "*Who*\narn:aws:sts::123837392027:assumed-role/stratus-red-team-ec2-get-password-data-role/"
        "aws-go-sdk-1688990082523310002\nsession aws-go-sdk-1688990082523310002");
    EXPECT_EQ(fields[1].at("text").as_string(), "*What*\nGetPasswordData\nec2.amazonaws.com");
    EXPECT_EQ(fields[2].at("text").as_string(), "*Where*\naccount 123837392027 \u00b7 us-east-1");
    EXPECT_EQ(fields[3].at("text").as_string(), "*When*\n2023-07-10T11:54:48Z");
    EXPECT_EQ(fields[4].at("text").as_string(), "*Source IP*\n192.168.10.20");
    EXPECT_EQ(fields[5].at("text").as_string(),
              "*User agent*\nstratus-red-team_39f95f43-cd2f-4beb-b69e-be60b6fe1f57");

    const std::string error(blocks[3].at("text").at("text").as_string());
    EXPECT_THAT(
        error,
        StartsWith(
            ":x: *Error* Client.UnauthorizedOperation\nYou are not authorized to perform this "
            "operation. Encoded authorization failure message: 1Qju1r-MUd3Ls"));

    EXPECT_EQ(
        blocks[4].at("text").at("text").as_string(),
        ":mag: "
        "<https://us-east-1.console.aws.amazon.com/cloudtrailv2/home?region=us-east-1#/events/"
        "fbd91225-39aa-4c00-822c-9f0b96e7758f|View this event in the CloudTrail console>");

    // The whole event, readable and intact.
    EXPECT_THAT(std::string(blocks[5].at("text").at("text").as_string()),
                StartsWith("*Event*\n```\n{\n  \"eventVersion\""));
    EXPECT_EQ(json::parse(code_block_of(message)), json::value(event));

    EXPECT_EQ(blocks[6].at("type").as_string(), "context");
    EXPECT_EQ(blocks[6].at("elements").at(0).at("text").as_string(),
              "tattle \u00b7 alert " + std::string(alert.at("alert_id").as_string()) +
                  " \u00b7 destination slack \u00b7 source local \u00b7 logs/x.json #17");
    expect_within_slack_limits(message);
}

TEST(SlackMessage, LeavesOutWhatTheAlertDoesNotHave) {
    json::object event = real_event(kAssumedRoleEventId);
    event.erase("errorCode");
    event.erase("errorMessage");
    event.erase("userAgent");
    event["awsRegion"] = "not a region/../";
    const json::object message = message_for(alert_for(event));
    const auto& blocks = message.at("blocks").as_array();
    // header, description, facts, event, context: no error block, no link with a bad region.
    ASSERT_EQ(blocks.size(), 5u);
    EXPECT_EQ(blocks[0].at("text").at("text").as_string(), ":rotating_light: EC2 password data");
    EXPECT_EQ(blocks[1].at("text").at("text").as_string(),
              "Someone asked for an instance's Windows password");
    EXPECT_EQ(blocks[2].at("fields").as_array().size(), 5u);
    EXPECT_THAT(json::serialize(message), Not(HasSubstr("console.aws.amazon.com")));
    EXPECT_THAT(std::string(message.at("text").as_string()),
                StartsWith("EC2 password data \u2014 GetPasswordData by"));
}

TEST(SlackMessage, AddsTheLegacyOverridesWhenConfigured) {
    const json::object message = slack::build_message(alert_for(real_event(kAssumedRoleEventId)),
                                                      {"#security", "tattle", ":shield:"});
    EXPECT_EQ(message.at("channel").as_string(), "#security");
    EXPECT_EQ(message.at("username").as_string(), "tattle");
    EXPECT_EQ(message.at("icon_emoji").as_string(), ":shield:");
}

TEST(SlackMessage, EventTextCannotMentionOrDisguiseLinks) {
    const std::string attack =
        "<!channel> <!here|here> <@U123> <#C024BE7LR> <https://evil.example|click me> & done";
    json::object event = real_event(kAssumedRoleEventId);
    event["userAgent"] = attack;
    event["errorMessage"] = attack;
    event["sourceIPAddress"] = attack;
    event["userIdentity"].as_object()["arn"] = "arn:aws:sts::1:assumed-role/r/" + attack;
    event["requestParameters"] = json::object{{"note", attack}};
    const json::object message = message_for(alert_for(event, json::value(attack)));

    std::vector<std::string> texts;
    collect_texts(message, texts);
    ASSERT_FALSE(texts.empty());
    for (const auto& text : texts) {
        // The only '<' Slack sees opens our own console link.
        for (auto at = text.find('<'); at != std::string::npos; at = text.find('<', at + 1)) {
            EXPECT_EQ(text.compare(at, 9, "<https://"), 0) << text;
            EXPECT_THAT(text.substr(at), StartsWith("<https://us-east-1.console.aws.amazon.com/"))
                << text;
        }
        EXPECT_THAT(text, Not(HasSubstr("<!channel>")));
        EXPECT_THAT(text, Not(HasSubstr("<@U123>")));
        EXPECT_THAT(text, Not(HasSubstr("|click me>")));
    }
    const std::string all = json::serialize(message);
    EXPECT_THAT(all, HasSubstr("&lt;!channel&gt; &lt;!here|here&gt; &lt;@U123&gt;"));
    EXPECT_THAT(all, HasSubstr("&lt;https://evil.example|click me&gt; &amp; done"));
    // Newlines from the event cannot start a line of their own in a one-line field.
    event["userAgent"] = "curl\n*Who*\nroot";
    const json::object again = message_for(alert_for(event));
    EXPECT_THAT(json::serialize(again), HasSubstr("*User agent*\\ncurl *Who* root"));
}

TEST(SlackMessage, CodeFencesInTheEventCannotCloseTheCodeBlock) {
    json::object event = real_event(kAssumedRoleEventId);
    event["userAgent"] = "a```\n*bold* <!channel>\n```b````c";
    const json::object message = message_for(alert_for(event));
    const auto* event_block = block_whose_text_starts_with(message, "*Event*");
    ASSERT_NE(event_block, nullptr);
    const std::string text(event_block->at("text").at("text").as_string());
    EXPECT_THAT(text, StartsWith("*Event*\n```\n"));
    EXPECT_THAT(text, Not(HasSubstr("<!channel>")));
    // Exactly two fences: ours.
    std::size_t fences = 0;
    for (auto at = text.find("```"); at != std::string::npos; at = text.find("```", at + 3))
        ++fences;
    EXPECT_EQ(fences, 2u);
    EXPECT_EQ(json::parse(code_block_of(message)).at("userAgent").as_string(),
              "a```\n*bold* <!channel>\n```b````c");
}

json::object huge_event(std::size_t target_bytes) {
    json::object event = real_event(kAssumedRoleEventId);
    json::array instances;
    std::size_t size = 0;
    for (int i = 0; size < target_bytes; ++i) {
        json::object item{
            {"instanceId", "i-" + std::to_string(i)},
            {"tags",
             json::array{json::object{{"key", "owner"}, {"value", std::string(300, 'x') + "é"}}}},
            {"nested", json::object{{"a", json::object{{"b", json::object{{"c", "deep"}}}}}}}};
        size += json::serialize(item).size();
        instances.push_back(std::move(item));
    }
    event["responseElements"] =
        json::object{{"instancesSet", json::object{{"items", std::move(instances)}}}};
    event["requestParameters"] = json::object{{"policyDocument", std::string(20000, 'p')}};
    return event;
}

TEST(SlackMessage, A200KilobyteEventIsTrimmedToValidJsonWithinLimits) {
    const json::object event = huge_event(200 * 1024);
    ASSERT_GT(json::serialize(event).size(), 200u * 1024u);
    const json::object message = message_for(alert_for(event));
    expect_within_slack_limits(message);

    const auto* event_block = block_whose_text_starts_with(message, "*Event*");
    ASSERT_NE(event_block, nullptr);
    EXPECT_THAT(std::string(event_block->at("text").at("text").as_string()),
                HasSubstr("trimmed to fit Slack; " + std::to_string(json::serialize(event).size()) +
                          " bytes in full"));
    // Trimming works on the value, so what is shown is still JSON, and keeps the facts.
    boost::system::error_code error;
    const json::value shown = json::parse(code_block_of(message), error);
    ASSERT_FALSE(error) << code_block_of(message);
    EXPECT_EQ(shown.at("eventName").as_string(), "GetPasswordData");
    EXPECT_EQ(shown.at("eventID").as_string(), kAssumedRoleEventId);
    // The serialized payload is valid JSON Slack can read (valid UTF-8 included).
    EXPECT_NO_THROW(json::parse(json::serialize(message)));
}

TEST(SlackMessage, LongTextFromEventsOrRulesIsCutToSlackLimits) {
    json::object event = real_event(kAssumedRoleEventId);
    event["userAgent"] = std::string(5000, '<');
    event["errorMessage"] = std::string(9000, '&');
    json::object alert = alert_for(event, json::value(std::string(20000, '>')));
    alert["rule"].as_object()["name"] = std::string(400, 'N') + "\u00e9\u00e9\u00e9";
    alert["rule"].as_object()["description"] = std::string(5000, 'd');
    const json::object message = message_for(alert);
    expect_within_slack_limits(message);
    // Cutting never leaves half an entity behind.
    const std::string all = json::serialize(message);
    EXPECT_THAT(all, Not(HasSubstr("&l\u2026")));
    EXPECT_THAT(all, Not(HasSubstr("&am\u2026")));
    EXPECT_THAT(std::string(message.at("blocks").at(0).at("text").at("text").as_string()),
                HasSubstr("NNN\u2026"));
}

TEST(SlackMessage, NonStringAnnotationsAreShownAsJson) {
    const json::object message = message_for(
        alert_for(real_event(kAssumedRoleEventId), json::parse(R"({"user":"bob","admin":true})")));
    EXPECT_THAT(std::string(message.at("blocks").at(1).at("text").at("text").as_string()),
                HasSubstr(R"(*Annotation:* {"user":"bob","admin":true})"));
}

TEST(SlackMessage, RefusesWhatIsNotAnAlert) {
    EXPECT_THROW(slack::render_message("not json", {}), std::invalid_argument);
    EXPECT_THROW(slack::render_message("[1]", {}), std::invalid_argument);
    EXPECT_THROW(slack::render_message(R"({"summary":{}})", {}), std::invalid_argument);
    EXPECT_NO_THROW(slack::render_message(R"({"rule":{"name":"r"}})", {}));
}

TEST(SlackMessage, RoleSessionNameComesFromAssumedRoleArnsOnly) {
    EXPECT_EQ(slack::role_session_name("arn:aws:sts::123:assumed-role/Admin/alice@example.com"),
              "alice@example.com");
    EXPECT_EQ(slack::role_session_name("arn:aws-us-gov:sts::123:assumed-role/Admin/i-0abc"),
              "i-0abc");
    EXPECT_EQ(slack::role_session_name("arn:aws:iam::123:user/alice"), "");
    EXPECT_EQ(slack::role_session_name("arn:aws:sts::123:assumed-role/NoSession"), "");
    EXPECT_EQ(slack::role_session_name("assumed-role/Admin/alice"), "");
    EXPECT_EQ(slack::role_session_name(""), "");
}

TEST(SlackMessage, ConsoleLinksOnlyForPlausibleRegionsAndEncodeTheEventId) {
    EXPECT_EQ(
        slack::cloudtrail_console_url("eu-west-1", "a-b"),
        "https://eu-west-1.console.aws.amazon.com/cloudtrailv2/home?region=eu-west-1#/events/a-b");
    EXPECT_EQ(slack::cloudtrail_console_url("us-east-1", "x|y>z <!channel>"),
              "https://us-east-1.console.aws.amazon.com/cloudtrailv2/home?region=us-east-1#/events/"
              "x%7Cy%3Ez%20%3C%21channel%3E");
    EXPECT_EQ(slack::cloudtrail_console_url("evil.com/", "id"), "");
    EXPECT_EQ(slack::cloudtrail_console_url("US-EAST-1", "id"), "");
    EXPECT_EQ(slack::cloudtrail_console_url("us-east-1", ""), "");
}

// Found by fuzzing (tests/fuzz/corpus/alert_render/regression-long-event-id): an event id
// of 1,200 backticks percent-encodes to 3,600 bytes, and the console link's section went
// over Slack's 3,000, so Slack would have refused the whole message.
TEST(SlackMessage, AnEventIdTooLongForALinkLeavesTheLinkOut) {
    json::object event{{"eventID", std::string(1200, '`')}, {"awsRegion", "us-east-1"}, {"eventName", "x"}};
    const json::object message = message_for(alert_for(event));
    for (const auto& block : message.at("blocks").as_array()) {
        if (const auto* text = block.as_object().if_contains("text")) {
            EXPECT_LE(text->at("text").as_string().size(), slack::kMaxSectionText);
            EXPECT_EQ(std::string_view(text->at("text").as_string()).find("console.aws.amazon.com"),
                      std::string_view::npos);
        }
    }
    // A normal id keeps its link.
    event["eventID"] = "a-b";
    EXPECT_NE(json::serialize(message_for(alert_for(event))).find("console.aws.amazon.com"), std::string::npos);
}

TEST(SlackMessage, EscapingFollowsSlackRules) {
    EXPECT_EQ(slack::escape_mrkdwn("a & b < c > d *e* _f_"), "a &amp; b &lt; c &gt; d *e* _f_");
    EXPECT_EQ(slack::neutralise_code_fences("``` `` `"), "`\u200b`\u200b` `\u200b` `");
}

TEST(SlackMessage, ShowsTheRulesTagsAndRunbook) {
    const json::object event = real_event(kAssumedRoleEventId);
    json::object alert = tattle::make_alert(
        {"EC2 password data", "", "ec2/password-data", "platform", "high", {"T1552.005", "<b>&"},
         "https://wiki.example.com/runbooks/ec2-password"},
        event, std::nullopt, {"local", "logs/x.json", 17});
    const std::string text = json::serialize(message_for(alert));
    EXPECT_THAT(text, HasSubstr("*Tags*: T1552.005, &lt;b&gt;&amp;"));
    EXPECT_THAT(text, HasSubstr(":book: <https://wiki.example.com/runbooks/ec2-password|Runbook>"));

    // A URL that could end Slack's link early is shown as text, not linked.
    alert["rule"].as_object()["runbook"] = "https://x.example/a|<!channel>";
    EXPECT_THAT(json::serialize(message_for(alert)), HasSubstr("Runbook: https://x.example/a|&lt;!channel&gt;"));
    // Without tags or runbook there is no such section.
    EXPECT_THAT(json::serialize(message_for(alert_for(event))), Not(HasSubstr("Runbook")));
}

TEST(SlackMessage, ATitledAlertLeadsWithItsTitleAndSaysWhatWasHeldBack) {
    json::object alert = alert_for(real_event(kAssumedRoleEventId));
    alert["rule"].as_object()["severity"] = "high";
    alert["title"] = "alice <created> an access key";
    alert["dedup"] = json::object{{"key", "alice"}, {"window_seconds", 3600}, {"suppressed", 3}};
    const json::object message = message_for(alert);
    // The title holds event data: escaped like any other.
    EXPECT_EQ(message.at("text"), "[HIGH] alice &lt;created&gt; an access key");
    const auto& blocks = message.at("blocks").as_array();
    EXPECT_EQ(blocks[0].at("text").at("text"), ":rotating_light: alice &lt;created&gt; an access key \u00b7 HIGH");
    const std::string intro(blocks[1].at("text").at("text").as_string());
    EXPECT_THAT(intro, HasSubstr("*Rule:* "));
    EXPECT_THAT(intro, HasSubstr(":repeat: 3 more matches with \"alice\" suppressed since the previous alert "
                                 "(dedup window 1h)"));
    // Without a title the rule's name is the header, as before.
    alert.erase("title");
    EXPECT_THAT(std::string(message_for(alert).at("blocks").at(0).at("text").at("text").as_string()),
                Not(HasSubstr("access key")));
}

}  // namespace

#endif
