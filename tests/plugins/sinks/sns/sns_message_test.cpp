// The SNS message: tattletail's document, filter-policy attributes, FIFO ids, the 256 KB limit.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <string>

#include "../aws_sink_fixture.hpp"
#include "sns_message.hpp"
#include "sns_sink.hpp"
#include "tattle/aws/sigv4.hpp"

namespace {

namespace json = boost::json;
namespace sns = tattle::sinks::sns;
using tattle::sink_tests::alert_for;
using tattle::sink_tests::kHostileEvent;
using ::testing::HasSubstr;

constexpr const char* kTopic = "arn:aws:sns:us-east-1:123456789012:alerts";

std::string attribute(const sns::Publication& publication, const std::string& name) {
    for (const auto& entry : publication.attributes) {
        if (entry.name == name) return entry.value;
    }
    return "<absent>";
}

TEST(SnsMessage, CarriesTattletailsDocumentWithTheAnnotationAsMatch) {
    const auto alert = alert_for(kHostileEvent, "Create User", json::value("username: mallory"));
    const auto publication = sns::build_publication(alert, {kTopic, std::nullopt});
    const json::object message = json::parse(publication.message).as_object();

    EXPECT_EQ(message.at("name"), "Create User");
    EXPECT_EQ(message.at("description"), "A new IAM user has been created");
    EXPECT_EQ(message.at("match"), "username: mallory");
    EXPECT_EQ(message.at("record"), json::parse(kHostileEvent));
    EXPECT_EQ(message.at("alert_id"), alert.at("alert_id"));
    EXPECT_FALSE(message.contains("trimmed"));
    EXPECT_FALSE(publication.trimmed);
    EXPECT_TRUE(publication.subject.empty());
    EXPECT_TRUE(publication.group_id.empty());
    EXPECT_TRUE(publication.deduplication_id.empty());
}

TEST(SnsMessage, MatchIsTrueWhenTheRuleGaveNoAnnotation) {
    const auto publication = sns::build_publication(alert_for(kHostileEvent, "Create User"), {kTopic, std::nullopt});
    EXPECT_EQ(json::parse(publication.message).at("match"), true);
}

TEST(SnsMessage, AttributesForFilterPoliciesAndNoEmptyOnes) {
    auto alert = alert_for(kHostileEvent, "Create User");
    auto publication = sns::build_publication(alert, {kTopic, std::nullopt});
    EXPECT_EQ(attribute(publication, "rule"), "Create User");
    EXPECT_EQ(attribute(publication, "account"), "123456789012");
    EXPECT_EQ(attribute(publication, "event_name"), "CreateUser");
    EXPECT_EQ(attribute(publication, "severity"), "<absent>");  // SNS refuses empty values

    alert["rule"].as_object()["severity"] = "high";
    publication = sns::build_publication(alert, {kTopic, std::nullopt});
    EXPECT_EQ(attribute(publication, "severity"), "high");

    const auto parameters = sns::publish_parameters(publication, kTopic);
    const auto has = [&](const std::string& key, const std::string& value) {
        return std::find(parameters.begin(), parameters.end(), std::pair{key, value}) != parameters.end();
    };
    EXPECT_TRUE(has("TopicArn", kTopic));
    EXPECT_TRUE(has("MessageAttributes.entry.1.Name", "rule"));
    EXPECT_TRUE(has("MessageAttributes.entry.1.Value.DataType", "String"));
    EXPECT_TRUE(has("MessageAttributes.entry.1.Value.StringValue", "Create User"));
    EXPECT_TRUE(has("MessageAttributes.entry.2.Name", "severity"));
}

TEST(SnsMessage, FifoTopicsGetTheRuleAsGroupAndTheAlertIdForDeduplication) {
    const auto alert = alert_for(kHostileEvent, "Create User");
    const auto publication =
        sns::build_publication(alert, {"arn:aws:sns:eu-west-1:123456789012:alerts.fifo", std::nullopt});
    EXPECT_EQ(publication.group_id, "Create_User");  // SNS takes no spaces in a group id
    EXPECT_EQ(publication.deduplication_id, std::string(alert.at("alert_id").as_string()));
    EXPECT_EQ(sns::fifo_id(std::string(300, 'x')).size(), sns::kMaxFifoIdChars);
    EXPECT_EQ(sns::fifo_id("r\u00e9gle"), "r__gle");
}

TEST(SnsMessage, SubjectTemplateIsRenderedAndFittedToSnsRules) {
    const auto alert = alert_for(kHostileEvent, "Cr\u00e9ate\nUser");
    const auto publication = sns::build_publication(
        alert, {kTopic, tattle::sinkkit::AlertTemplate::parse("{{rule}} by {{actor}} in {{account}}")});
    EXPECT_EQ(publication.subject,
              "Cr??ate User by arn:aws:sts::123456789012:assumed-role/Admin/alice in 123456789012");
    EXPECT_EQ(sns::sns_subject(std::string(500, 'a')).size(), sns::kMaxSubjectChars);
    EXPECT_EQ(sns::sns_subject("  \n leading"), "leading");
}

TEST(SnsMessage, OversizedEventIsTrimmedToValidJsonWithAMarker) {
    json::object event = json::parse(kHostileEvent).as_object();
    json::array items;
    for (int i = 0; i < 4000; ++i) items.push_back(json::string(std::string(100, 'a') + "\u00e9" + std::to_string(i)));
    event["requestParameters"].as_object()["policies"] = std::move(items);
    const std::string event_json = json::serialize(event);
    ASSERT_GT(event_json.size(), sns::kMaxPublishBytes);

    const auto alert = alert_for(event_json, "Create User", json::value("username: mallory"));
    const auto publication = sns::build_publication(alert, {kTopic, std::nullopt});
    EXPECT_TRUE(publication.trimmed);
    EXPECT_LE(publication.message.size() + sns::attribute_bytes(publication.attributes), sns::kMaxPublishBytes);

    const json::object message = json::parse(publication.message).as_object();  // throws if not JSON
    const auto& marker = message.at("trimmed").as_object();
    EXPECT_EQ(marker.at("fields"), json::parse(R"(["record"])"));
    EXPECT_GT(marker.at("original_bytes").to_number<std::size_t>(), sns::kMaxPublishBytes);
    // The event is cut, not dropped: its small fields survive as they were.
    EXPECT_EQ(message.at("record").at("eventName"), "CreateUser");
    EXPECT_EQ(message.at("record").at("userIdentity").at("arn"), "arn:aws:sts::123456789012:assumed-role/Admin/alice");
    EXPECT_EQ(message.at("match"), "username: mallory");
    EXPECT_EQ(message.at("name"), "Create User");
}

TEST(SnsMessage, AHugeAnnotationIsCutAfterTheEvent) {
    const auto alert = alert_for(kHostileEvent, "Create User", json::value(std::string(300000, 'z')));
    const auto publication = sns::build_publication(alert, {kTopic, std::nullopt});
    EXPECT_LE(publication.message.size() + sns::attribute_bytes(publication.attributes), sns::kMaxPublishBytes);
    const json::object message = json::parse(publication.message).as_object();
    EXPECT_EQ(message.at("trimmed").at("fields"), json::parse(R"(["record","match"])"));
    EXPECT_TRUE(message.at("match").as_string().starts_with("zzz"));
}

TEST(SnsMessage, AttributesCountAgainstTheLimit) {
    // A message that fits alone but not with its attributes must be trimmed.
    auto alert = alert_for(kHostileEvent, "Create User");
    const std::size_t bare = sns::build_publication(alert, {kTopic, std::nullopt}).message.size();
    json::object event = json::parse(kHostileEvent).as_object();
    // ,"padding":"…" adds 13 bytes around its value: the message alone is 10 bytes under the limit.
    event["padding"] = std::string(sns::kMaxPublishBytes - bare - 13 - 10, 'p');
    alert = alert_for(json::serialize(event), "Create User");
    const auto publication = sns::build_publication(alert, {kTopic, std::nullopt});
    ASSERT_GT(sns::attribute_bytes(publication.attributes), 0U);
    EXPECT_TRUE(publication.trimmed);
    EXPECT_LE(publication.message.size() + sns::attribute_bytes(publication.attributes), sns::kMaxPublishBytes);
}

TEST(SnsMessage, NotAnAlertDocumentIsRefused) {
    EXPECT_THROW(sns::build_publication(json::object{{"event", 1}}, {kTopic, std::nullopt}), std::invalid_argument);
}

TEST(SnsConfig, TopicArnIsCheckedAndGivesTheRegion) {
    const auto config = sns::parse_config(R"({"sns_arn": "arn:aws:sns:eu-west-3:123456789012:alerts"})");
    EXPECT_EQ(config.aws.region, "eu-west-3");
    const auto explicit_region =
        sns::parse_config(R"({"sns_arn": "arn:aws:sns:eu-west-3:123456789012:alerts", "region": "us-east-2"})");
    EXPECT_EQ(explicit_region.aws.region, "us-east-2");
    // tattletail's example ARN (10-digit account) keeps working.
    EXPECT_NO_THROW(sns::parse_config(R"({"sns_arn": "arn:aws:sns:us-east-1:1234567890:cloudtail_alert"})"));

    for (const char* bad : {"alerts", "arn:aws:sqs:us-east-1:1:q", "arn:aws:sns::1:t", "arn:aws:sns:us-east-1:1:"}) {
        try {
            sns::parse_config(std::string(R"({"sns_arn": ")") + bad + "\"}");
            ADD_FAILURE() << bad;
        } catch (const std::invalid_argument& error) {
            EXPECT_THAT(error.what(), HasSubstr("sns_arn:")) << bad;
        }
    }
    try {
        sns::parse_config(R"({"sns_arn": "arn:aws:sns:us-east-1:1:t", "subject": "{{rule"})");
        ADD_FAILURE();
    } catch (const std::invalid_argument& error) {
        EXPECT_THAT(error.what(), HasSubstr("subject: template: \"{{\" without \"}}\" at offset 0"));
    }
}

}  // namespace

namespace {

TEST(SnsMessage, PublishBodyIsFormEncodedAsTheSdksWriteIt) {
    // Rule names and messages have spaces: '+' in the body, as botocore sends (and moto
    // re-encodes to check the signature); '+' itself and '/' are percent-encoded.
    EXPECT_EQ(tattle::aws::form_body_encode({{"Action", "Publish"}, {"Message", "a b+c/d=e&f~"}}),
              "Action=Publish&Message=a+b%2Bc%2Fd%3De%26f~");
}

TEST(SnsMessage, CarriesTheRulesSeverityTagsAndRunbook) {
    auto alert = alert_for(kHostileEvent, "Create User");
    auto message = json::parse(sns::build_publication(alert, {kTopic, std::nullopt}).message).as_object();
    EXPECT_FALSE(message.contains("tags"));
    alert["rule"].as_object()["severity"] = "critical";
    alert["rule"].as_object()["tags"] = json::array{"T1136.003"};
    alert["rule"].as_object()["runbook"] = "https://wiki.example.com/create-user";
    message = json::parse(sns::build_publication(alert, {kTopic, std::nullopt}).message).as_object();
    EXPECT_EQ(message.at("severity"), "critical");
    EXPECT_EQ(message.at("tags"), (json::array{"T1136.003"}));
    EXPECT_EQ(message.at("runbook"), "https://wiki.example.com/create-user");
}

TEST(SnsMessage, ATitleIsTheSubjectAndShapingIsInTheMessage) {
    auto alert = alert_for(kHostileEvent, "Create User");
    EXPECT_EQ(sns::build_publication(alert, {kTopic, std::nullopt}).subject, "");
    alert["title"] = "alice created user mallory";
    alert["dedup"] = json::object{{"key", "alice"}, {"window_seconds", 3600}, {"suppressed", 2}};
    const auto publication = sns::build_publication(alert, {kTopic, std::nullopt});
    EXPECT_EQ(publication.subject, "alice created user mallory");
    const auto message = json::parse(publication.message).as_object();
    EXPECT_EQ(message.at("title"), "alice created user mallory");
    EXPECT_EQ(message.at("dedup").at("suppressed"), 2);
}

}  // namespace
