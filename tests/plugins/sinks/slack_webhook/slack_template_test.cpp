// The user's Slack message template: placeholders filled from the alert, escaped for Slack,
// cut to Slack's limits, refused at create time when it cannot work; and sent through the
// real plugin to a local HTTPS server.
#if __has_include("slack_template.hpp") && __has_include("../../support/http/test_server.hpp")

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>

#include "../../support/http/test_server.hpp"
#include "../registered_sink.hpp"
#include "slack_sink.hpp"
#include "slack_template.hpp"

namespace {

namespace json = boost::json;
namespace slack = tattle::sinks::slack;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;

json::object alert_with(json::object summary, json::value annotation = "username: user1") {
    json::object alert{{"alert_id", "a1b2"},
                       {"rule", {{"name", "Create User"}, {"description", "A new IAM user has been created"}}},
                       {"destination", "slack"},
                       {"summary", std::move(summary)},
                       {"origin", {{"source", "local"}, {"batch", "x.json"}, {"index", 0}}},
                       {"event", {{"eventName", "CreateUser"}, {"requestParameters", {{"userName", "user1"}}}}}};
    if (!annotation.is_null()) alert["annotation"] = std::move(annotation);
    return alert;
}

json::object plain_alert() {
    return alert_with({{"event_name", "CreateUser"},
                       {"actor", "arn:aws:iam::123456789012:user/alice"},
                       {"account_id", "123456789012"},
                       {"region", "us-east-1"}});
}

std::string refusal(std::string_view text) {
    try {
        slack::MessageTemplate::parse(text);
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "accepted";
}

TEST(SlackTemplate, FillsShortNamesAndPathsInsideTheJsonStructure) {
    const auto message_template = slack::MessageTemplate::parse(R"({
        "text": "{{rule}}: {{annotation}}",
        "blocks": [
          {"type": "header", "text": {"type": "plain_text", "text": "{{ rule }} in {{account}}"}},
          {"type": "section", "text": {"type": "mrkdwn", "text": "*Who* {{actor}}\n*User* {{event.requestParameters.userName}}"},
           "fields": [{"type": "mrkdwn", "text": "{{origin.index}} {{summary.error_code}}|"}]},
          {"type": "divider"}
        ],
        "unfurl_links": false})");
    const json::object message = message_template.render(plain_alert());
    EXPECT_EQ(message.at("text").as_string(), "Create User: username: user1");
    EXPECT_EQ(message.at("blocks").at(0).at("text").at("text").as_string(), "Create User in 123456789012");
    EXPECT_EQ(message.at("blocks").at(0).at("text").at("type").as_string(), "plain_text");
    EXPECT_EQ(message.at("blocks").at(1).at("text").at("text").as_string(),
              "*Who* arn:aws:iam::123456789012:user/alice\n*User* user1");
    // A number as its JSON text, an absent field as nothing.
    EXPECT_EQ(message.at("blocks").at(1).at("fields").at(0).at("text").as_string(), "0 |");
    EXPECT_EQ(message.at("blocks").at(2), json::parse(R"({"type": "divider"})"));
    EXPECT_FALSE(message.at("unfurl_links").as_bool());
}

TEST(SlackTemplate, EventTextCannotMentionLinkOrLeaveItsString) {
    const auto message_template = slack::MessageTemplate::parse(
        R"({"text": "<!here> {{rule}}", "blocks": [{"type": "section", "text": {"type": "mrkdwn",
            "text": "agent {{user_agent}} note {{annotation}}"}}]})");
    const auto alert = alert_with({{"user_agent", "<!channel> <@U0123> <https://evil.example|click here>"}},
                                  "\",\"channel\":\"#general\",\"x\":\"\n& </b>");
    const std::string body = slack::render_templated_message(json::serialize(alert), message_template, {});
    const json::value message = json::parse(body);
    // Only the user's own literal text may mention.
    EXPECT_EQ(message.at("text").as_string(), "<!here> Create User");
    EXPECT_EQ(message.at("blocks").at(0).at("text").at("text").as_string(),
              "agent &lt;!channel&gt; &lt;@U0123&gt; &lt;https://evil.example|click here&gt; note "
              "\",\"channel\":\"#general\",\"x\":\"\n&amp; &lt;/b&gt;");
    EXPECT_THAT(body, Not(HasSubstr("<!channel>")));
    EXPECT_THAT(body, Not(HasSubstr("<https://evil")));
    EXPECT_FALSE(message.as_object().contains("channel"));  // the quote stayed inside its string
    EXPECT_EQ(message.as_object().size(), 2U);
}

TEST(SlackTemplate, EveryStringIsCutToSlacksLimitForItsPlace) {
    const auto message_template = slack::MessageTemplate::parse(R"({
        "text": "{{annotation}}",
        "blocks": [
          {"type": "header", "text": {"type": "plain_text", "text": "{{annotation}}"}},
          {"type": "section", "text": {"type": "mrkdwn", "text": "{{annotation}}"},
           "fields": [{"type": "mrkdwn", "text": "{{annotation}}"}]},
          {"type": "context", "elements": [{"type": "mrkdwn", "text": "x{{annotation}}"}]}]})");
    // Each '&' becomes "&amp;": the cut must land between entities.
    const std::string long_value = "\u00e9" + std::string(60000, '&');
    const json::object message = message_template.render(alert_with({}, json::string(long_value)));
    const auto check = [](const json::value& text, std::size_t limit) {
        const std::string value(text.as_string());
        EXPECT_LE(value.size(), limit);
        EXPECT_GT(value.size(), limit - 8);
        EXPECT_THAT(value, EndsWith("&amp;\u2026"));
    };
    check(message.at("text"), slack::kMaxMessageText);
    check(message.at("blocks").at(0).at("text").at("text"), slack::kMaxHeaderText);
    check(message.at("blocks").at(1).at("text").at("text"), slack::kMaxSectionText);
    check(message.at("blocks").at(1).at("fields").at(0).at("text"), slack::kMaxFieldText);
    check(message.at("blocks").at(2).at("elements").at(0).at("text"), slack::kMaxSectionText);
    // Valid JSON, whatever was cut.
    EXPECT_NO_THROW(json::parse(json::serialize(message)));
}

TEST(SlackTemplate, CutNeverSplitsAnEntityOrACharacter) {
    EXPECT_EQ(slack::cut_escaped("abc", 3), "abc");
    EXPECT_EQ(slack::cut_escaped("ab&amp;cdefgh", 8), "ab\u2026");        // would split "&amp;"
    EXPECT_EQ(slack::cut_escaped("ab&lt;cdefgh", 9), "ab&lt;\u2026");     // the entity fits whole
    EXPECT_EQ(slack::cut_escaped("a\u00e9\u00e9\u00e9\u00e9", 5), "a\u2026");  // no half é
}

TEST(SlackTemplate, ProblemsAreRefusedWithTheirPlace) {
    EXPECT_THAT(refusal(R"({"text": "x",})"), HasSubstr("template is not valid JSON ("));
    EXPECT_THAT(refusal(R"({"text": "x",})"), HasSubstr("at offset 13)"));
    EXPECT_THAT(refusal(R"({"text": "x"} trailing)"), HasSubstr("template is not valid JSON (extra text at offset 1"));
    EXPECT_THAT(refusal(R"({"text": "x")"), HasSubstr("template is not valid JSON ("));
    EXPECT_EQ(refusal(R"(["text"])"), "template must be a JSON object (a Slack message)");
    EXPECT_EQ(refusal(R"({"username": "x"})"), "template needs a \"text\" string or a \"blocks\" array");
    std::string many = R"({"blocks": [)";
    for (int i = 0; i < 51; ++i) many += std::string(i == 0 ? "" : ",") + R"({"type": "divider"})";
    EXPECT_EQ(refusal(many + "]}"), "template has 51 blocks; Slack takes at most 50");
    EXPECT_THAT(refusal(R"({"text": "{{rule}}", "link_names": 1})"), HasSubstr("template sets link_names"));
    EXPECT_THAT(refusal(R"({"text": "ok", "blocks": [{"type": "section", "text": {"type": "mrkdwn",
                           "text": "{{rule}} by {{who}}"}}]})"),
                HasSubstr("template /blocks/0/text/text: unknown placeholder {{who}} at offset 12"));
    EXPECT_THAT(refusal(R"({"text": "{{rule"})"), HasSubstr("template /text: \"{{\" without \"}}\""));
    const std::string long_header = std::string(R"({"blocks": [{"type": "header", "text": {"type": "plain_text", "text": ")") +
                                    std::string(151, 'h') + "\"}}]}";
    EXPECT_EQ(refusal(long_header), "template /blocks/0/text/text: 151 bytes; Slack takes at most 150 here");
    EXPECT_EQ(refusal(R"({"text": "no placeholder is fine"})"), "accepted");
}

TEST(SlackTemplate, ConfigTakesTextOrTableAndOverridesWin) {
    const auto from_text = slack::parse_config(
        R"({"webhook_url": "https://hooks.example/x", "channel": "#sec",
            "template": "{\"text\": \"{{rule}}\", \"channel\": \"#other\", \"username\": \"bot\"}"})");
    ASSERT_TRUE(from_text.message_template.has_value());
    const json::value message = json::parse(slack::render_templated_message(
        json::serialize(plain_alert()), *from_text.message_template, from_text.message));
    EXPECT_EQ(message, json::parse(R"({"text": "Create User", "channel": "#sec", "username": "bot"})"));

    const auto from_table = slack::parse_config(
        R"({"webhook_url": "https://hooks.example/x", "template": {"text": "{{event_name}} by {{actor}}"}})");
    ASSERT_TRUE(from_table.message_template.has_value());
    EXPECT_EQ(from_table.message_template->render(plain_alert()).at("text").as_string(),
              "CreateUser by arn:aws:iam::123456789012:user/alice");

    EXPECT_FALSE(slack::parse_config(R"({"webhook_url": "https://hooks.example/x"})").message_template);
    EXPECT_THROW(slack::parse_config(R"({"webhook_url": "https://hooks.example/x", "template": "{\"text\": \"{{nope}}\"}"})"),
                 std::invalid_argument);
}

TEST(SlackTemplateHttps, ThePluginPostsTheFilledTemplateAndRefusesABadOne) {
    using tattle::test::TestCa;
    using tattle::test::TestServer;
    TestServer server;
    const std::string url = server.url("/services/T000AAAA/B000BBBB/templateTestToken0123");
    const json::object config{
        {"webhook_url", url},
        {"ca_file", TestCa::instance().ca_file()},
        {"template", R"({"text": "{{rule}} by {{actor}}", "blocks": [{"type": "section",
                        "text": {"type": "mrkdwn", "text": "*{{rule}}*: {{annotation}}"}}]})"}};
    tattle::sink_tests::PluginSink sink("slack_webhook", json::serialize(config));
    auto alert = plain_alert();
    alert["annotation"] = "<!channel> look";
    EXPECT_EQ(sink.send(json::serialize(alert)).rc, TATTLE_RC_OK);
    const auto requests = server.wait_for_requests(1);
    ASSERT_EQ(requests.size(), 1U);
    EXPECT_EQ(json::parse(requests[0].body), json::parse(R"({"text": "Create User by arn:aws:iam::123456789012:user/alice",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*Create User*: &lt;!channel&gt; look"}}]})"));

    json::object bad = config;
    bad["template"] = R"({"text": "{{rule}} {{secret_field}}"})";
    try {
        tattle::sink_tests::PluginSink refused("slack_webhook", json::serialize(bad));
        ADD_FAILURE() << "a template naming an unknown field was accepted";
    } catch (const std::runtime_error& e) {
        EXPECT_THAT(std::string(e.what()), HasSubstr("template /text: unknown placeholder {{secret_field}}"));
        EXPECT_THAT(std::string(e.what()), Not(HasSubstr("templateTestToken0123")));
    }
}

}  // namespace

#endif
