// The email: subject, plain-text and HTML bodies with the Slack message's facts, every
// event-derived value HTML-escaped.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <string>

#include "../aws_sink_fixture.hpp"
#include "ses_message.hpp"
#include "ses_sink.hpp"

namespace {

namespace json = boost::json;
namespace ses = tattle::sinks::ses;
using tattle::sink_tests::alert_for;
using tattle::sink_tests::kHostileEvent;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(SesMessage, DefaultSubjectNamesTheRuleAndTheActor) {
    const auto email = ses::build_email(alert_for(kHostileEvent, "Create User"), std::nullopt);
    EXPECT_EQ(email.subject, "Create User by alice");  // the role session: the person behind the role

    json::object event = json::parse(kHostileEvent).as_object();
    event["userIdentity"] = json::object{{"type", "IAMUser"}, {"arn", "arn:aws:iam::123456789012:user/bob"}};
    EXPECT_EQ(ses::build_email(alert_for(json::serialize(event), "Create User"), std::nullopt).subject,
              "Create User by arn:aws:iam::123456789012:user/bob");
    event.erase("userIdentity");
    EXPECT_EQ(ses::build_email(alert_for(json::serialize(event), "Create User"), std::nullopt).subject, "Create User");
}

TEST(SesMessage, SubjectTemplateIsRenderedOnOneLine) {
    auto alert = alert_for(kHostileEvent, "Create\r\nBcc: evil@example.com");
    alert["rule"].as_object()["severity"] = "high";
    const auto email = ses::build_email(
        alert, tattle::sinkkit::AlertTemplate::parse("[{{severity}}] {{rule}}: {{event_name}} in {{account}}"));
    EXPECT_EQ(email.subject, "[high] Create  Bcc: evil@example.com: CreateUser in 123456789012");
    EXPECT_EQ(email.subject.find('\n'), std::string::npos);

    alert = alert_for(kHostileEvent, std::string(1000, 'r'));
    EXPECT_LE(ses::build_email(alert, std::nullopt).subject.size(), ses::kMaxSubjectBytes);
}

TEST(SesMessage, TextBodyShowsTheFacts) {
    auto alert = alert_for(kHostileEvent, "Create User", json::value("username: mallory"));
    const auto text = ses::build_email(alert, std::nullopt).text;
    EXPECT_THAT(text, HasSubstr("Create User\nA new IAM user has been created\nAnnotation: username: mallory\n"));
    EXPECT_THAT(text, HasSubstr("Who:        arn:aws:sts::123456789012:assumed-role/Admin/alice\n"
                                "            session alice\n"));
    EXPECT_THAT(text, HasSubstr("What:       CreateUser\n            iam.amazonaws.com\n"));
    EXPECT_THAT(text, HasSubstr("Where:      account 123456789012 \u00b7 us-east-1\n"));
    EXPECT_THAT(text, HasSubstr("When:       2023-07-10T12:00:00Z\n"));
    EXPECT_THAT(text, HasSubstr("Source IP:  192.0.2.1\n"));
    EXPECT_THAT(text, HasSubstr("https://us-east-1.console.aws.amazon.com/cloudtrailv2/home?region=us-east-1#/events/"
                                "3b6bd6a1-0000-4e3b-8d2f-5a7f3f0e6c11"));
    EXPECT_THAT(text, HasSubstr("\"eventName\": \"CreateUser\""));
    EXPECT_THAT(text, HasSubstr("alert " + std::string(alert.at("alert_id").as_string())));
    EXPECT_THAT(text, Not(HasSubstr("Error:")));
}

TEST(SesMessage, ErrorCodeAndMessageAreShown) {
    json::object event = json::parse(kHostileEvent).as_object();
    event["errorCode"] = "AccessDenied";
    event["errorMessage"] = "User: alice is not authorized <to>";
    const auto email = ses::build_email(alert_for(json::serialize(event), "Create User"), std::nullopt);
    EXPECT_THAT(email.text, HasSubstr("Error:      AccessDenied\n            User: alice is not authorized <to>\n"));
    EXPECT_THAT(email.html, HasSubstr("AccessDenied<br>User: alice is not authorized &lt;to&gt;"));
}

TEST(SesMessage, HtmlEscapesEveryEventDerivedValue) {
    json::object event = json::parse(kHostileEvent).as_object();
    event["userIdentity"].as_object()["arn"] = "arn:aws:sts::1:assumed-role/R/<b>eve</b>";
    event["errorCode"] = "<script>x</script>";
    event["awsRegion"] = "<i>region</i>";
    const auto alert = alert_for(json::serialize(event), "Rule <em>", json::value("</p><a href=x>click</a>"));
    const std::string html = ses::build_email(alert, std::nullopt).html;

    // No markup from the event survives anywhere in the document: every '<' that is not
    // tattle's own tag is escaped.
    for (const char* hostile : {"<script", "</td></tr><img", "<img", "mallory</pre>", "<b>bold", "<b>eve", "<i>region",
                                "<em>", "</p><a href=x>", "onerror=alert(2)>"}) {
        EXPECT_THAT(html, Not(HasSubstr(hostile))) << hostile;
    }
    EXPECT_THAT(html, HasSubstr("&lt;script&gt;alert(1)&lt;/script&gt;&lt;/td&gt;&lt;/tr&gt;&lt;img src=x "
                                "onerror=alert(2)&gt; &quot;quoted&quot; &amp; &#39;single&#39;"));
    EXPECT_THAT(html, HasSubstr("session &lt;b&gt;eve&lt;/b&gt;"));
    EXPECT_THAT(html, HasSubstr("Rule &lt;em&gt;"));
    EXPECT_THAT(html, HasSubstr("&lt;/p&gt;&lt;a href=x&gt;click&lt;/a&gt;"));
    // The region is not a plausible region name: no console link is built from it.
    EXPECT_THAT(html, Not(HasSubstr("console.aws.amazon.com")));
    // Only tattle's own tags: count the table cells it opened and closed.
    const auto count = [&html](std::string_view needle) {
        std::size_t n = 0;
        for (auto at = html.find(needle); at != std::string::npos; at = html.find(needle, at + 1)) ++n;
        return n;
    };
    EXPECT_EQ(count("<td"), count("</td>"));
    EXPECT_EQ(count("<pre"), 1U);
    EXPECT_EQ(count("</pre>"), 1U);
    EXPECT_EQ(count("<a "), 0U);
}

TEST(SesMessage, HtmlShowsTheFactsAndTheConsoleLink) {
    const auto html = ses::build_email(alert_for(kHostileEvent, "Create User", json::value("username: x")), std::nullopt).html;
    EXPECT_THAT(html, HasSubstr("<th style=\"text-align: left; vertical-align: top; padding: 2px 12px 2px 0;\">Who</th>"
                                "<td style=\"padding: 2px 0;\">arn:aws:sts::123456789012:assumed-role/Admin/alice<br>"
                                "session alice</td>"));
    EXPECT_THAT(html, HasSubstr("<a href=\"https://us-east-1.console.aws.amazon.com/cloudtrailv2/home?region=us-east-1#/"
                                "events/3b6bd6a1-0000-4e3b-8d2f-5a7f3f0e6c11\">"));
    EXPECT_THAT(html, HasSubstr("<b>Annotation:</b> username: x"));
    EXPECT_THAT(html, HasSubstr("&quot;eventName&quot;: &quot;CreateUser&quot;"));
}

TEST(SesMessage, LargeEventIsTrimmedToValidJsonWithANote) {
    json::object event = json::parse(kHostileEvent).as_object();
    json::array items;
    for (int i = 0; i < 3000; ++i) items.push_back(json::string(std::string(60, 'q') + std::to_string(i)));
    event["requestParameters"].as_object()["policies"] = std::move(items);
    bool trimmed = false;
    const std::string shown = ses::event_json(event, ses::kMaxEventBytes, trimmed);
    EXPECT_TRUE(trimmed);
    EXPECT_LE(shown.size(), ses::kMaxEventBytes);
    const json::value reparsed = json::parse(shown);  // throws if the cut broke the JSON
    EXPECT_EQ(reparsed.at("eventName"), "CreateUser");

    const auto email = ses::build_email(alert_for(json::serialize(event), "Create User"), std::nullopt);
    EXPECT_THAT(email.text, HasSubstr("Event (trimmed; "));
    EXPECT_THAT(email.html, HasSubstr("(trimmed; "));
    EXPECT_LT(email.html.size(), 2 * ses::kMaxEventBytes);
}

TEST(SesConfig, AddressesAreChecked) {
    const auto config = ses::parse_config(
        R"({"to_emails": ["a@example.com"], "cc_emails": ["c@example.com"], "from_email": "Alerts <f@example.com>",
            "configuration_set": "alerts", "subject_template": "{{rule}}"})");
    ses::Email email{"s", "t", "h"};
    const auto parameters = ses::send_email_parameters(email, config);
    const auto has = [&](const std::string& key, const std::string& value) {
        return std::find(parameters.begin(), parameters.end(), std::pair{key, value}) != parameters.end();
    };
    EXPECT_TRUE(has("Source", "Alerts <f@example.com>"));
    EXPECT_TRUE(has("Destination.ToAddresses.member.1", "a@example.com"));
    EXPECT_TRUE(has("Destination.CcAddresses.member.1", "c@example.com"));
    EXPECT_TRUE(has("Message.Body.Html.Data", "h"));
    EXPECT_TRUE(has("Message.Body.Text.Charset", "UTF-8"));
    EXPECT_TRUE(has("ConfigurationSetName", "alerts"));

    const auto refused = [](const std::string& text) {
        try {
            ses::parse_config(text);
        } catch (const std::invalid_argument& error) {
            return std::string(error.what());
        }
        return std::string("accepted");
    };
    EXPECT_THAT(refused(R"({"to_emails": ["a@example.com\r\nBcc: x@evil"], "from_email": "f@example.com"})"),
                HasSubstr("to_emails[0]: an address holds a control character"));
    EXPECT_THAT(refused(R"({"to_emails": ["nobody"], "from_email": "f@example.com"})"), HasSubstr("to_emails[0]: an address has no '@'"));
    EXPECT_THAT(refused(R"({"to_emails": ["a@example.com"], "from_email": "f"})"), HasSubstr("from_email:"));
    EXPECT_THAT(refused(R"({"to_emails": ["a@example.com"], "from_email": "f@x", "subject_template": "{{who}}"})"),
                HasSubstr("subject_template: template: unknown placeholder {{who}}"));
    json::array many;
    for (int i = 0; i < 51; ++i) many.push_back(json::string("u" + std::to_string(i) + "@example.com"));
    EXPECT_THAT(refused(json::serialize(json::object{{"to_emails", many}, {"from_email", "f@example.com"}})),
                HasSubstr("at most 50 recipients"));
}

TEST(SesMessage, ShowsTheRulesTagsAndRunbook) {
    json::object alert = alert_for(kHostileEvent, "Create User");
    alert["rule"].as_object()["tags"] = json::array{"T1136.003", "<cis>"};
    alert["rule"].as_object()["runbook"] = "https://wiki.example.com/create-user?a=1&b=2";
    const auto email = ses::build_email(alert, std::nullopt);
    EXPECT_THAT(email.text, HasSubstr("Tags:       T1136.003, <cis>\n"));
    EXPECT_THAT(email.text, HasSubstr("Runbook:    https://wiki.example.com/create-user?a=1&b=2\n"));
    EXPECT_THAT(email.html, HasSubstr("&lt;cis&gt;"));
    EXPECT_THAT(email.html, HasSubstr("https://wiki.example.com/create-user?a=1&amp;b=2"));
    EXPECT_THAT(email.html, Not(HasSubstr("<cis>")));
}

TEST(SesMessage, ATitleIsTheSubjectAndRepeatsAreShown) {
    json::object alert = alert_for(kHostileEvent, "Create User");
    alert["title"] = "alice created user mallory";
    alert["threshold"] = json::object{{"key", "192.0.2.1"}, {"count", 5}, {"min_count", 5}, {"window_seconds", 600}};
    const auto email = ses::build_email(alert, std::nullopt);
    EXPECT_EQ(email.subject, "alice created user mallory");
    EXPECT_THAT(email.text, HasSubstr("Rule:       Create User\n"));
    EXPECT_THAT(email.text, HasSubstr("Repeats:    5 matches with \"192.0.2.1\" within 10m (threshold 5)\n"));
    // A subject template still wins, and may name the title.
    const auto templated = ses::build_email(alert, tattle::sinkkit::AlertTemplate::parse("{{rule}}: {{title}}"));
    EXPECT_EQ(templated.subject, "Create User: alice created user mallory");
}

}  // namespace
