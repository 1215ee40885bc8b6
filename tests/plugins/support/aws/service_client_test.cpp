// ServiceClient: how AWS's refusals become ServiceErrors (codes, retryability, Retry-After),
// the retry loop's decisions, and signed Query and JSON calls against moto with signature
// checking on.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "moto_server.hpp"
#include "tattle/aws/service_client.hpp"

namespace {

using namespace std::chrono_literals;
using namespace tattle::aws;
using ::testing::HasSubstr;
using ::testing::Not;

tattle::http::Response answer(int status, std::string body, std::vector<std::pair<std::string, std::string>> headers = {}) {
    tattle::http::Response response;
    response.status = status;
    response.body = std::move(body);
    for (auto& [name, value] : headers) response.headers.emplace(name, value);
    return response;
}

TEST(ErrorFromResponse, S3XmlErrorNamesCodeMessageAndRequest) {
    const auto error = error_from_response(
        answer(404,
               "<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>The specified key does not "
               "exist.</Message><Key>a b</Key></Error>",
               {{"x-amz-request-id", "REQ123"}}),
        "s3:GetObject s3://trail/a b");
    EXPECT_EQ(error.status(), 404);
    EXPECT_EQ(error.code(), "NoSuchKey");
    EXPECT_FALSE(error.retryable());
    EXPECT_STREQ(error.what(),
                 "s3:GetObject s3://trail/a b: NoSuchKey (HTTP 404): The specified key does not exist. [request REQ123]");
}

TEST(ErrorFromResponse, QueryProtocolThrottlingIsRetryable) {
    const auto error = error_from_response(
        answer(400,
               "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>"
               "</Error><RequestId>r-1</RequestId></ErrorResponse>"),
        "sns:Publish");
    EXPECT_EQ(error.code(), "Throttling");
    EXPECT_TRUE(error.retryable());
}

TEST(ErrorFromResponse, JsonProtocolTypeIsShortenedAndQueryCompatibleCodeWins) {
    const auto plain = error_from_response(
        answer(400, R"({"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"The specified queue does not exist."})"),
        "sqs:ReceiveMessage");
    EXPECT_EQ(plain.code(), "QueueDoesNotExist");
    EXPECT_FALSE(plain.retryable());
    EXPECT_THAT(plain.what(), HasSubstr("The specified queue does not exist."));

    const auto compatible = error_from_response(
        answer(400, R"({"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"gone"})",
               {{"x-amzn-query-error", "AWS.SimpleQueueService.NonExistentQueue;Sender"}}),
        "sqs:ReceiveMessage");
    EXPECT_EQ(compatible.code(), "AWS.SimpleQueueService.NonExistentQueue");
}

TEST(ErrorFromResponse, ServerErrorsAnd429AreRetryableWithRetryAfter) {
    const auto unavailable = error_from_response(answer(503, "", {{"retry-after", "3"}}), "ssm:GetParameter");
    EXPECT_TRUE(unavailable.retryable());
    ASSERT_TRUE(unavailable.retry_after());
    EXPECT_EQ(*unavailable.retry_after(), 3000ms);
    EXPECT_STREQ(unavailable.what(), "ssm:GetParameter: HTTP 503");
    EXPECT_TRUE(error_from_response(answer(429, "not json, not xml"), "x").retryable());
    EXPECT_FALSE(error_from_response(answer(403, "<Error><Code>AccessDenied</Code></Error>"), "x").retryable());
}

TEST(ErrorFromResponse, MessagesAreOneBoundedLine) {
    const std::string long_message(2000, 'm');
    const auto error = error_from_response(
        answer(400, "<Error><Code>Bad\nCode</Code><Message>line1\nline2" + long_message + "</Message></Error>"), "x");
    const std::string text = error.what();
    EXPECT_EQ(text.find('\n'), std::string::npos);
    EXPECT_LT(text.size(), 1000U);
}

TEST(ErrorFromTransport, InvalidRequestIsPermanentTimeoutsAreNot) {
    using Kind = tattle::http::TransportError::Kind;
    EXPECT_TRUE(error_from_transport(tattle::http::TransportError(Kind::Timeout, "timed out"), "x").retryable());
    EXPECT_TRUE(error_from_transport(tattle::http::TransportError(Kind::Connect, "refused"), "x").retryable());
    EXPECT_FALSE(error_from_transport(tattle::http::TransportError(Kind::InvalidRequest, "bad"), "x").retryable());
    EXPECT_EQ(error_from_transport(tattle::http::TransportError(Kind::Timeout, "t"), "x").code(), "timeout");
}

TEST(RetryDelay, FullJitterUnderTheCapAndAtLeastRetryAfter) {
    const RetryPolicy policy{6, 100ms, 1000ms};
    for (int i = 0; i < 200; ++i) {
        EXPECT_LE(retry_delay(policy, 1, std::nullopt), 100ms);
        EXPECT_LE(retry_delay(policy, 3, std::nullopt), 400ms);
        EXPECT_LE(retry_delay(policy, 10, std::nullopt), 1000ms);
        EXPECT_GE(retry_delay(policy, 1, 700ms), 700ms);
        EXPECT_LE(retry_delay(policy, 1, 60000ms), 1000ms);  // a server cannot stall a source for a minute
    }
}

TEST(CallWithRetries, RetriesRetryableErrorsThenSucceeds) {
    int calls = 0;
    std::vector<std::chrono::milliseconds> sleeps;
    const int result = call_with_retries(
        [&] {
            if (++calls < 3) throw ServiceError("busy", 503, "", true);
            return 42;
        },
        RetryPolicy{4, 10ms, 100ms}, [&](std::chrono::milliseconds delay) { sleeps.push_back(delay); });
    EXPECT_EQ(result, 42);
    EXPECT_EQ(calls, 3);
    EXPECT_EQ(sleeps.size(), 2U);
}

TEST(CallWithRetries, PermanentErrorsAreNotRetriedAndAttemptsAreBounded) {
    int calls = 0;
    const auto no_sleep = [](std::chrono::milliseconds) {};
    EXPECT_THROW(call_with_retries(
                     [&]() -> int {
                         ++calls;
                         throw ServiceError("denied", 403, "AccessDenied", false);
                     },
                     RetryPolicy{4, 1ms, 1ms}, no_sleep),
                 ServiceError);
    EXPECT_EQ(calls, 1);

    calls = 0;
    try {
        call_with_retries(
            [&]() -> int {
                ++calls;
                throw ServiceError("busy " + std::to_string(calls), 500, "", true);
            },
            RetryPolicy{4, 1ms, 1ms}, no_sleep);
        FAIL() << "no error";
    } catch (const ServiceError& error) {
        EXPECT_STREQ(error.what(), "busy 4");  // the last one
    }
    EXPECT_EQ(calls, 4);
}

TEST(SettingsFromJson, ReadsTheSharedKeys) {
    const auto settings = settings_from_json(boost::json::parse(R"({
        "region": "eu-west-1", "endpoint_url": "http://127.0.0.1:9", "profile": "p", "role_arn": "arn:aws:iam::1:role/r",
        "role_session_name": "alice", "s3_addressing": "path", "ca_file": "/ca.pem",
        "connect_timeout_ms": 1500, "timeout_ms": 9000})")
                                                  .as_object());
    EXPECT_EQ(settings.region, "eu-west-1");
    EXPECT_EQ(settings.endpoint_url, "http://127.0.0.1:9");
    EXPECT_EQ(settings.profile, "p");
    EXPECT_EQ(settings.role_arn, "arn:aws:iam::1:role/r");
    EXPECT_EQ(settings.role_session_name, "alice");
    EXPECT_EQ(settings.s3_addressing, S3AddressingStyle::Path);
    EXPECT_EQ(settings.http.ca_file, "/ca.pem");
    EXPECT_EQ(settings.http.connect_timeout, 1500ms);
    EXPECT_EQ(settings.http.total_timeout, 9000ms);
}

TEST(SettingsSchema, SplicedPropertiesAreValidJson) {
    const auto schema = boost::json::parse(R"json({"type":"object","properties":{)json" TATTLE_AWS_SETTINGS_SCHEMA_PROPERTIES
                                               R"json(}})json");
    const auto& properties = schema.at("properties").as_object();
    EXPECT_TRUE(properties.contains("region"));
    EXPECT_TRUE(properties.contains("role_session_name"));
    EXPECT_TRUE(properties.at("external_id").at("x-secret").as_bool());
}

ServiceSettings moto_settings(const tattle::test::MotoServer& moto, const Credentials& credentials) {
    ServiceSettings settings;
    settings.region = "us-east-1";
    settings.endpoint_url = moto.url();
    settings.http.https_proxy = "";
    settings.http.no_proxy = "";
    settings.environment = fixed_environment({{"HOME", "/nonexistent"}, {"AWS_EC2_METADATA_DISABLED", "true"}});
    settings.credentials = make_static_credentials_provider(credentials);
    return settings;
}

TEST(ServiceClientMoto, SignedQueryAndJsonCallsWorkAndAWrongSecretIsRefused) {
    tattle::test::MotoServer moto(3);
    const Credentials user = tattle::test::create_moto_user(moto);

    ServiceClient sns(service::sns, moto_settings(moto, user));
    const std::string created = sns.query("CreateTopic", "2010-03-31", {{"Name", "alerts"}}, "sns:CreateTopic alerts");
    EXPECT_THAT(created, HasSubstr("arn:aws:sns:us-east-1:"));
    EXPECT_THAT(created, HasSubstr(":alerts"));

    ServiceClient sqs(service::sqs, moto_settings(moto, user));
    boost::json::object create_queue{{"QueueName", "events"}};
    const auto queue = sqs.json_call("AmazonSQS.CreateQueue", create_queue, "sqs:CreateQueue events");
    EXPECT_THAT(std::string(queue.at("QueueUrl").as_string()), HasSubstr("/events"));

    boost::json::object missing_queue{{"QueueUrl", moto.url() + "/123456789012/no-such-queue"}};
    try {
        sqs.json_call("AmazonSQS.ReceiveMessage", missing_queue, "sqs:ReceiveMessage no-such-queue");
        FAIL() << "no error";
    } catch (const ServiceError& error) {
        EXPECT_EQ(error.status(), 400);
        EXPECT_FALSE(error.retryable());
        EXPECT_THAT(error.what(), HasSubstr("sqs:ReceiveMessage no-such-queue: "));
        EXPECT_THAT(error.code(), HasSubstr("NonExistentQueue"));
    }

    Credentials wrong = user;
    wrong.secret_access_key = "wrong-secret-EXAMPLE";
    ServiceClient refused(service::sns, moto_settings(moto, wrong));
    try {
        refused.query("ListTopics", "2010-03-31", {}, "sns:ListTopics");
        FAIL() << "no error";
    } catch (const ServiceError& error) {
        EXPECT_EQ(error.status(), 403);
        EXPECT_EQ(error.code(), "SignatureDoesNotMatch");
        EXPECT_FALSE(error.retryable());
        EXPECT_THAT(error.what(), Not(HasSubstr("wrong-secret-EXAMPLE")));
    }
}

}  // namespace
