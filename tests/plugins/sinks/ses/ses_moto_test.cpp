// The ses sink against moto with signature checking on: what SES stored, and what its
// refusals mean for the core.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>

#include "../aws_sink_fixture.hpp"
#include "../registered_sink.hpp"
#include "ses_sink.hpp"

namespace {

namespace json = boost::json;
namespace aws = tattle::aws;
namespace ses = tattle::sinks::ses;
namespace sink_tests = tattle::sink_tests;
using Code = tattle::sdk::SendResult::Code;
using sink_tests::alert_for;
using sink_tests::kHostileEvent;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kSender = "alerts@example.com";

class SesMoto : public ::testing::Test {
protected:
    SesMoto() : moto_(3), credentials_(tattle::test::create_moto_user(moto_)) {}

    void verify_sender() {
        sink_tests::moto_call(moto_, "ses", credentials_,
                              {{"Action", "VerifyEmailIdentity"}, {"Version", "2010-12-01"}, {"EmailAddress", kSender}});
    }

    ses::SesSink sink_with(const aws::Credentials& credentials, const std::string& extra_config = "") {
        ses::SesSinkConfig config = ses::parse_config(
            R"({"to_emails": ["soc@example.com", "oncall@example.com"], "cc_emails": ["audit@example.com"],
                "from_email": "alerts@example.com")" + extra_config + "}");
        config.aws = sink_tests::moto_settings(moto_, credentials);
        return {config, aws::ServiceClient(aws::service::ses, config.aws)};
    }

    // moto keeps each sent email as {id, source, destinations, subject, body}; body is the
    // HTML part when there is one.
    json::array sent_messages() { return sink_tests::moto_data(moto_).at("ses").at("Message").as_array(); }

    tattle::test::MotoServer moto_;
    aws::Credentials credentials_;
};

TEST_F(SesMoto, SendsTheEmailToEveryRecipient) {
    verify_sender();
    auto sink = sink_with(credentials_);
    const auto result = sink.send(json::serialize(alert_for(kHostileEvent, "Create User", json::value("username: mallory"))));
    ASSERT_EQ(result.code, Code::Ok) << result.message;
    EXPECT_FALSE(sink.last_message_id().empty());

    const json::array sent = sent_messages();
    ASSERT_EQ(sent.size(), 1U);
    const json::object& message = sent[0].as_object();
    EXPECT_EQ(message.at("id"), sink.last_message_id().c_str());
    EXPECT_EQ(message.at("source"), kSender);
    EXPECT_EQ(message.at("subject"), "Create User by alice");
    EXPECT_EQ(message.at("destinations"), json::parse(R"({"ToAddresses": ["soc@example.com", "oncall@example.com"],
                                                          "CcAddresses": ["audit@example.com"]})"));
    const std::string html(message.at("body").as_string());
    EXPECT_THAT(html, HasSubstr("A new IAM user has been created"));
    EXPECT_THAT(html, HasSubstr("username: mallory"));
    EXPECT_THAT(html, HasSubstr("&lt;script&gt;alert(1)&lt;/script&gt;"));
    EXPECT_THAT(html, Not(HasSubstr("<script>")));
}

TEST_F(SesMoto, SubjectTemplateAndConfigurationSetReachSes) {
    verify_sender();
    sink_tests::moto_call(moto_, "ses", credentials_,
                          {{"Action", "CreateConfigurationSet"}, {"Version", "2010-12-01"},
                           {"ConfigurationSet.Name", "alerts"}});
    auto sink = sink_with(credentials_, R"(, "configuration_set": "alerts",
                                           "subject_template": "[tattle] {{rule}}: {{event_name}} in {{account}}")");
    const auto result = sink.send(json::serialize(alert_for(kHostileEvent, "Create User")));
    ASSERT_EQ(result.code, Code::Ok) << result.message;
    const json::array sent = sent_messages();
    ASSERT_EQ(sent.size(), 1U);
    EXPECT_EQ(sent[0].at("subject"), "[tattle] Create User: CreateUser in 123456789012");
}

TEST_F(SesMoto, UnverifiedSenderFailsWithMessageRejectedAndAHint) {
    auto sink = sink_with(credentials_);
    const auto result = sink.send(json::serialize(alert_for(kHostileEvent, "Create User")));
    EXPECT_EQ(result.code, Code::Fail);
    EXPECT_THAT(result.message, HasSubstr("ses:SendEmail from alerts@example.com: MessageRejected (HTTP 400)"));
    EXPECT_THAT(result.message, HasSubstr("verify from_email"));
    EXPECT_TRUE(sent_messages().empty());
}

// A wrong secret is FAIL, not RETRY (see the sns test): the same key is refused every time.
TEST_F(SesMoto, WrongSecretFailsWithoutTheSecretInTheMessage) {
    verify_sender();
    aws::Credentials wrong = credentials_;
    wrong.secret_access_key = "WrongSecretKeyForTattleTests0123456789xyz";
    auto sink = sink_with(wrong);
    const auto result = sink.send(json::serialize(alert_for(kHostileEvent, "Create User")));
    EXPECT_EQ(result.code, Code::Fail) << result.message;
    EXPECT_THAT(result.message, HasSubstr("HTTP 403"));
    EXPECT_THAT(result.message, Not(HasSubstr(wrong.secret_access_key)));
    EXPECT_THAT(result.message, Not(HasSubstr(credentials_.secret_access_key)));
    EXPECT_TRUE(sent_messages().empty());
}

TEST_F(SesMoto, RegisteredPluginSendsWithTheDefaultCredentialsChain) {
    verify_sender();
    const sink_tests::ScopedEnvironment env({{"AWS_ACCESS_KEY_ID", credentials_.access_key_id},
                                             {"AWS_SECRET_ACCESS_KEY", credentials_.secret_access_key},
                                             {"AWS_REGION", "us-east-1"},
                                             {"AWS_CONFIG_FILE", "/nonexistent/tattle-test/config"},
                                             {"AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/tattle-test/credentials"},
                                             {"AWS_EC2_METADATA_DISABLED", "true"}});
    const json::object config{{"to_emails", json::array{"soc@example.com"}},
                              {"from_email", kSender},
                              {"endpoint_url", moto_.url()}};
    sink_tests::PluginSink sink("ses", json::serialize(config));
    const auto outcome = sink.send(json::serialize(alert_for(kHostileEvent, "Create User")));
    EXPECT_EQ(outcome.rc, TATTLE_RC_OK) << outcome.message;
    EXPECT_EQ(sent_messages().size(), 1U);
}

}  // namespace
