// The one-line alert template (email and SNS subjects) and the shared alert facts.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "tattle/sinkkit/alert_facts.hpp"
#include "tattle/sinkkit/alert_template.hpp"

namespace {

namespace json = boost::json;
using tattle::sinkkit::AlertTemplate;
using ::testing::HasSubstr;

const json::object kAlert = json::parse(R"({
  "alert_id": "a1", "rule": {"name": "Create User", "description": "d", "severity": "high"},
  "destination": "mail", "annotation": {"user": "bob"},
  "summary": {"event_id": "e-1", "event_name": "CreateUser", "account_id": "123456789012", "region": "us-east-1",
              "actor": "arn:aws:sts::123456789012:assumed-role/Admin/alice", "event_time": "2023-07-10T12:00:00Z"},
  "origin": {"source": "local", "batch": "logs/x.json", "index": 3},
  "event": {"resources": [{"ARN": "arn:first"}, {"ARN": "arn:second"}], "readOnly": false}
})").as_object();

TEST(AlertTemplate, ShortNamesAndPathsAreRendered) {
    EXPECT_EQ(AlertTemplate::parse("[{{severity}}] {{rule}}: {{event_name}} by {{ actor }} in {{account}}/{{region}}")
                  .render(kAlert),
              "[high] Create User: CreateUser by arn:aws:sts::123456789012:assumed-role/Admin/alice in "
              "123456789012/us-east-1");
    EXPECT_EQ(AlertTemplate::parse("{{event.resources.1.ARN}} {{event.readOnly}} {{annotation}}").render(kAlert),
              "arn:second false {\"user\":\"bob\"}");
    // Absent paths and out-of-range indexes render as nothing.
    EXPECT_EQ(AlertTemplate::parse("<{{error_code}}|{{event.resources.9.ARN}}|{{event.nope.deeper}}>").render(kAlert),
              "<||>");
    EXPECT_EQ(AlertTemplate::parse("no placeholders").render(kAlert), "no placeholders");
}

TEST(AlertTemplate, MistakesAreRefusedWithTheirOffset) {
    const auto refused = [](const char* text) {
        try {
            AlertTemplate::parse(text);
        } catch (const std::invalid_argument& error) {
            return std::string(error.what());
        }
        return std::string("accepted");
    };
    EXPECT_THAT(refused("x {{rule"), HasSubstr("\"{{\" without \"}}\" at offset 2"));
    EXPECT_THAT(refused("{{  }}"), HasSubstr("empty placeholder at offset 0"));
    EXPECT_THAT(refused("ab {{user}}"), HasSubstr("unknown placeholder {{user}} at offset 3"));
    EXPECT_THAT(refused("ab {{user}}"), HasSubstr("use one of rule, description"));
    EXPECT_THAT(refused("{{event..x}}"), HasSubstr("empty key"));
}

TEST(AlertFacts, ReadsTheSummaryAndBuildsTheConsoleLink) {
    const auto facts = tattle::sinkkit::facts_of(kAlert);
    EXPECT_EQ(facts.rule_name, "Create User");
    EXPECT_EQ(facts.severity, "high");
    EXPECT_TRUE(facts.has_annotation);
    EXPECT_EQ(facts.annotation, "{\"user\":\"bob\"}");
    EXPECT_EQ(facts.session, "alice");
    EXPECT_EQ(facts.console_url, "https://us-east-1.console.aws.amazon.com/cloudtrailv2/home?region=us-east-1#/events/e-1");
    EXPECT_EQ(facts.origin, "source local \u00b7 logs/x.json #3");
    EXPECT_EQ(tattle::sinkkit::role_session_name("arn:aws:iam::1:user/bob"), "");
    EXPECT_EQ(tattle::sinkkit::pretty_json(json::parse(R"({"a":[1,{}],"b":"x"})")),
              "{\n  \"a\": [\n    1,\n    {}\n  ],\n  \"b\": \"x\"\n}");
}

}  // namespace
