// What an AWS answer means for a sink: throttling and server trouble are retried (with
// Retry-After), everything else fails with AWS's code and message.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "tattle/sinkkit/aws_delivery.hpp"

namespace {

namespace aws = tattle::aws;
namespace http = tattle::http;
using Code = tattle::sdk::SendResult::Code;
using ::testing::HasSubstr;

http::Response query_error(int status, const std::string& code, const std::string& message,
                           std::multimap<std::string, std::string> headers = {}) {
    http::Response response;
    response.status = status;
    response.headers = std::move(headers);  // names lower-cased, as the client stores them
    response.body = "<ErrorResponse><Error><Type>Sender</Type><Code>" + code + "</Code><Message>" + message +
                    "</Message></Error><RequestId>r-1</RequestId></ErrorResponse>";
    return response;
}

tattle::sdk::SendResult outcome_of(const http::Response& response) {
    return tattle::sinkkit::deliver_aws_call(
        [&] { throw aws::error_from_response(response, "sns:Publish arn:aws:sns:us-east-1:1:t"); },
        [](std::string_view code) -> std::string_view { return code == "NotFound" ? "check sns_arn" : ""; });
}

TEST(AwsDelivery, ReturningCallIsOk) {
    EXPECT_EQ(tattle::sinkkit::deliver_aws_call([] {}).code, Code::Ok);
}

TEST(AwsDelivery, ThrottlingAndServerErrorsAreRetriedWithRetryAfter) {
    const auto throttled = outcome_of(query_error(400, "Throttling", "Rate exceeded", {{"retry-after", "7"}}));
    EXPECT_EQ(throttled.code, Code::Retry);
    EXPECT_EQ(throttled.retry_after, std::chrono::milliseconds(7000));
    EXPECT_THAT(throttled.message, HasSubstr("Throttling (HTTP 400): Rate exceeded"));
    EXPECT_EQ(outcome_of(query_error(500, "InternalError", "oops")).code, Code::Retry);
    EXPECT_EQ(outcome_of(query_error(503, "ServiceUnavailable", "later")).code, Code::Retry);
    EXPECT_EQ(outcome_of(query_error(429, "TooManyRequestsException", "slow down")).code, Code::Retry);
}

TEST(AwsDelivery, ValidationAndAuthorizationErrorsFailWithCodeMessageAndHint) {
    const auto missing = outcome_of(query_error(404, "NotFound", "Topic does not exist"));
    EXPECT_EQ(missing.code, Code::Fail);
    EXPECT_THAT(missing.message, HasSubstr("NotFound (HTTP 404): Topic does not exist"));
    EXPECT_THAT(missing.message, HasSubstr("; check sns_arn"));
    EXPECT_EQ(outcome_of(query_error(400, "InvalidParameter", "Invalid parameter: Message too long")).code, Code::Fail);
    EXPECT_EQ(outcome_of(query_error(403, "AuthorizationError", "not authorized")).code, Code::Fail);
    EXPECT_EQ(outcome_of(query_error(400, "MessageRejected", "Email address not verified")).code, Code::Fail);
}

TEST(AwsDelivery, TransportFailuresAreRetried) {
    const auto result = tattle::sinkkit::deliver_aws_call([] {
        throw aws::error_from_transport(http::TransportError(http::TransportError::Kind::Connect, "refused"), "ses:SendEmail");
    });
    EXPECT_EQ(result.code, Code::Retry);
}

}  // namespace
