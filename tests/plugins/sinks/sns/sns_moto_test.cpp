// The sns sink against moto with signature checking on: what SNS stored, and what its
// refusals mean for the core.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>

#include "../aws_sink_fixture.hpp"
#include "../registered_sink.hpp"
#include "sns_sink.hpp"
#include "tattle/aws/xml.hpp"

namespace {

namespace json = boost::json;
namespace aws = tattle::aws;
namespace sns = tattle::sinks::sns;
namespace sink_tests = tattle::sink_tests;
using Code = tattle::sdk::SendResult::Code;
using sink_tests::alert_for;
using sink_tests::kHostileEvent;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kVersion = "2010-03-31";

class SnsMoto : public ::testing::Test {
protected:
    SnsMoto() : moto_(3), credentials_(tattle::test::create_moto_user(moto_)) {}

    std::string create_topic(const std::string& name, bool fifo = false) {
        std::vector<std::pair<std::string, std::string>> form = {
            {"Action", "CreateTopic"}, {"Version", kVersion}, {"Name", name}};
        if (fifo) {
            form.insert(form.end(), {{"Attributes.entry.1.key", "FifoTopic"}, {"Attributes.entry.1.value", "true"}});
        }
        const std::string answer = sink_tests::moto_call(moto_, "sns", credentials_, form);
        return aws::xml_text(answer, "TopicArn").value_or("");
    }

    sns::SnsSink sink_for(const std::string& topic_arn, const aws::Credentials& credentials,
                          const std::string& subject = {}) {
        json::object config{{"sns_arn", topic_arn}};
        if (!subject.empty()) config["subject"] = subject;
        sns::SnsSinkConfig parsed = sns::parse_config(json::serialize(config));
        parsed.aws = sink_tests::moto_settings(moto_, credentials);
        return {parsed, aws::ServiceClient(aws::service::sns, parsed.aws)};
    }

    // What moto keeps of each notification published to the topic:
    // [message id, message, subject, attributes, group id].
    json::array notifications(const std::string& topic_arn) {
        const json::object data = sink_tests::moto_data(moto_);
        for (const auto& topic : data.at("sns").at("Topic").as_array()) {
            if (topic.at("arn") == topic_arn.c_str()) return topic.at("sent_notifications").as_array();
        }
        throw std::runtime_error("moto has no topic " + topic_arn);
    }

    tattle::test::MotoServer moto_;
    aws::Credentials credentials_;
};

TEST_F(SnsMoto, PublishesTattletailsMessageWithAttributesAndSubject) {
    const std::string topic = create_topic("alerts");
    auto sink = sink_for(topic, credentials_, "{{rule}} by {{actor}}");
    auto alert = alert_for(kHostileEvent, "Create User", json::value("username: mallory"));
    alert["rule"].as_object()["severity"] = "high";

    const auto result = sink.send(json::serialize(alert));
    ASSERT_EQ(result.code, Code::Ok) << result.message;
    EXPECT_FALSE(sink.last_message_id().empty());

    const json::array sent = notifications(topic);
    ASSERT_EQ(sent.size(), 1U);
    const json::array& notification = sent[0].as_array();
    EXPECT_EQ(notification[0], sink.last_message_id().c_str());
    const json::object message = json::parse(notification[1].as_string()).as_object();
    EXPECT_EQ(message.at("name"), "Create User");
    EXPECT_EQ(message.at("description"), "A new IAM user has been created");
    EXPECT_EQ(message.at("match"), "username: mallory");
    EXPECT_EQ(message.at("record"), json::parse(kHostileEvent));
    EXPECT_EQ(notification[2], "Create User by arn:aws:sts::123456789012:assumed-role/Admin/alice");
    EXPECT_EQ(notification[3], json::parse(R"({
        "rule": {"Type": "String", "Value": "Create User"},
        "severity": {"Type": "String", "Value": "high"},
        "account": {"Type": "String", "Value": "123456789012"},
        "event_name": {"Type": "String", "Value": "CreateUser"}})"));
}

TEST_F(SnsMoto, FifoTopicGetsGroupAndDeduplicationIds) {
    const std::string topic = create_topic("alerts.fifo", true);
    auto sink = sink_for(topic, credentials_);
    const auto result = sink.send(json::serialize(alert_for(kHostileEvent, "Create User")));
    ASSERT_EQ(result.code, Code::Ok) << result.message;  // moto refuses a FIFO publish without a group id
    const json::array sent = notifications(topic);
    ASSERT_EQ(sent.size(), 1U);
    EXPECT_EQ(sent[0].as_array()[4], "Create_User");
}

TEST_F(SnsMoto, OversizedEventIsAcceptedTrimmed) {
    const std::string topic = create_topic("alerts");
    auto sink = sink_for(topic, credentials_);
    json::object event = json::parse(kHostileEvent).as_object();
    event["requestParameters"].as_object()["blob"] = std::string(400000, 'b');
    const auto result = sink.send(json::serialize(alert_for(json::serialize(event), "Create User")));
    ASSERT_EQ(result.code, Code::Ok) << result.message;  // moto refuses messages over 256 KB
    const json::array sent = notifications(topic);
    ASSERT_EQ(sent.size(), 1U);
    const json::object message = json::parse(sent[0].as_array()[1].as_string()).as_object();
    EXPECT_EQ(message.at("trimmed").at("fields"), json::parse(R"(["record"])"));
    EXPECT_EQ(message.at("record").at("eventName"), "CreateUser");
}

TEST_F(SnsMoto, UnknownTopicFailsWithAwsCodeAndAHint) {
    auto sink = sink_for("arn:aws:sns:us-east-1:123456789012:nobody-here", credentials_);
    const auto result = sink.send(json::serialize(alert_for(kHostileEvent, "Create User")));
    EXPECT_EQ(result.code, Code::Fail);
    EXPECT_THAT(result.message, HasSubstr("sns:Publish arn:aws:sns:us-east-1:123456789012:nobody-here"));
    EXPECT_THAT(result.message, HasSubstr("NotFound (HTTP 404)"));
    EXPECT_THAT(result.message, HasSubstr("check sns_arn"));
}

// A wrong secret is FAIL, not RETRY: the same key will be refused on every attempt, so
// the alert goes straight to the dead-letter spool (and `tattle spool replay` sends it
// once the key is fixed) instead of using up the retry budget.
TEST_F(SnsMoto, WrongSecretFailsWithoutTheSecretInTheMessage) {
    const std::string topic = create_topic("alerts");
    aws::Credentials wrong = credentials_;
    wrong.secret_access_key = "WrongSecretKeyForTattleTests0123456789xyz";
    auto sink = sink_for(topic, wrong);
    const auto result = sink.send(json::serialize(alert_for(kHostileEvent, "Create User")));
    EXPECT_EQ(result.code, Code::Fail) << result.message;
    EXPECT_THAT(result.message, HasSubstr("HTTP 403"));
    EXPECT_THAT(result.message, Not(HasSubstr(wrong.secret_access_key)));
    EXPECT_THAT(result.message, Not(HasSubstr(credentials_.secret_access_key)));
    EXPECT_TRUE(notifications(topic).empty());
}

TEST_F(SnsMoto, UnreachableEndpointIsRetried) {
    auto settings = sink_tests::moto_settings(moto_, credentials_);
    settings.endpoint_url = "http://127.0.0.1:9";  // discard port: nothing listens
    sns::SnsSinkConfig config = sns::parse_config(R"({"sns_arn": "arn:aws:sns:us-east-1:123456789012:alerts"})");
    sns::SnsSink sink(config, aws::ServiceClient(aws::service::sns, settings));
    const auto result = sink.send(json::serialize(alert_for(kHostileEvent, "Create User")));
    EXPECT_EQ(result.code, Code::Retry) << result.message;
}

TEST_F(SnsMoto, RegisteredPluginPublishesWithTheDefaultCredentialsChain) {
    const std::string topic = create_topic("alerts");
    const sink_tests::ScopedEnvironment env({{"AWS_ACCESS_KEY_ID", credentials_.access_key_id},
                                             {"AWS_SECRET_ACCESS_KEY", credentials_.secret_access_key},
                                             {"AWS_CONFIG_FILE", "/nonexistent/tattle-test/config"},
                                             {"AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/tattle-test/credentials"},
                                             {"AWS_EC2_METADATA_DISABLED", "true"}});
    const json::object config{{"sns_arn", topic}, {"endpoint_url", moto_.url()}};
    sink_tests::PluginSink sink("sns", json::serialize(config));
    const auto outcome = sink.send(json::serialize(alert_for(kHostileEvent, "Create User")));
    EXPECT_EQ(outcome.rc, TATTLE_RC_OK) << outcome.message;
    EXPECT_EQ(notifications(topic).size(), 1U);
}

}  // namespace
