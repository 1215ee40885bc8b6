#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>

#include "tattle/http/client.hpp"
#include "tattle/sinkkit/cloudtrail_link.hpp"
#include "tattle/sinkkit/delivery.hpp"
#include "tattle/sinkkit/json_fields.hpp"
#include "tattle/sinkkit/json_trim.hpp"
#include "tattle/sinkkit/secrets.hpp"
#include "tattle/sinkkit/text.hpp"

namespace sinkkit = tattle::sinkkit;
namespace http = tattle::http;
namespace json = boost::json;

TEST(SinkkitText, CutUtf8KeepsShortTextAndNeverSplitsASequence) {
    EXPECT_EQ(sinkkit::cut_utf8("short", 10), "short");
    // "é" is two bytes: a 6-byte budget holds "a", the ellipsis (3 bytes), not half of "é".
    EXPECT_EQ(sinkkit::cut_utf8("a\xc3\xa9\xc3\xa9\xc3\xa9", 6), "a\xc3\xa9\u2026");
    EXPECT_EQ(sinkkit::cut_utf8("abcdef", 5), "ab\u2026");
    EXPECT_EQ(sinkkit::cut_utf8("abcdef", 2), "");
}

TEST(SinkkitText, PrintableReplacesControlBytesAndCapsLength) {
    EXPECT_EQ(sinkkit::printable("bad\nrequest\t ", 200), "bad request");
    EXPECT_EQ(sinkkit::printable("abcdef", 3), "abc...");
}

TEST(SinkkitJsonFields, ReadsOnlyValuesOfTheRightType) {
    const json::object alert = json::parse(R"({"s": "text", "n": 5, "o": {"k": 1}})").as_object();
    EXPECT_EQ(sinkkit::string_at(alert, "s"), "text");
    EXPECT_EQ(sinkkit::string_at(alert, "n"), "");
    EXPECT_EQ(sinkkit::string_at(alert, "missing"), "");
    EXPECT_NE(sinkkit::object_at(alert, "o"), nullptr);
    EXPECT_EQ(sinkkit::object_at(alert, "s"), nullptr);
    EXPECT_EQ(sinkkit::text_of(alert.at("s")), "text");
    EXPECT_EQ(sinkkit::text_of(alert.at("o")), R"({"k":1})");
    EXPECT_EQ(sinkkit::string_or(alert, "n", "fallback"), "fallback");
    EXPECT_EQ(sinkkit::string_or(alert, "s", "fallback"), "text");
}

TEST(SinkkitJsonTrim, CutsStringsArraysObjectsAndDepth) {
    const json::value value =
        json::parse(R"({"long": "abcdefghij", "list": [1, 2, 3], "deep": {"a": {"b": 1}}})");
    const sinkkit::TrimLevel level{6, 2, 10, 2};
    EXPECT_EQ(json::serialize(sinkkit::trimmed(value, level, 0)),
              "{\"long\":\"abc\u2026\",\"list\":[1,2,\"\u2026 1 more items\"],"
              "\"deep\":{\"a\":\"{\u2026 1 keys}\"}}");
    const sinkkit::TrimLevel few_members{100, 10, 1, 10};
    EXPECT_EQ(json::serialize(sinkkit::trimmed(value, few_members, 0)),
              "{\"long\":\"abcdefghij\",\"\u2026\":\"2 more keys\"}");
}

TEST(SinkkitCloudtrailLink, BuildsTheConsoleUrlOnlyForARegionName) {
    EXPECT_EQ(sinkkit::cloudtrail_console_url("eu-west-1", "a b"),
              "https://eu-west-1.console.aws.amazon.com/cloudtrailv2/home?region=eu-west-1"
              "#/events/a%20b");
    EXPECT_EQ(sinkkit::cloudtrail_console_url("evil.com/", "id"), "");
    EXPECT_EQ(sinkkit::cloudtrail_console_url("us-east-1", ""), "");
    EXPECT_EQ(sinkkit::percent_encoded("a-._~/"), "a-._~%2F");
}

TEST(SinkkitSecrets, RedactsLongestFirstAndIgnoresEmpty) {
    EXPECT_EQ(sinkkit::redact_secrets("key abc123 and abc", {"abc", "abc123", ""}),
              "key <redacted> and <redacted>");
    EXPECT_EQ(sinkkit::redact_secrets("nothing", {}), "nothing");
}

TEST(SinkkitDelivery, MapsTransportFailuresAndHandsResponsesOn) {
    const sinkkit::TransportFailureWording wording{"cannot send: ", "not reached: "};
    const auto never_called = [](int, std::string_view, std::optional<std::chrono::milliseconds>) {
        return tattle::sdk::SendResult::ok();
    };
    const http::Request request;

    const auto invalid = sinkkit::deliver(
        [](const http::Request&) -> http::Response {
            throw http::TransportError(http::TransportError::Kind::InvalidRequest, "bad url");
        },
        request, wording, never_called);
    EXPECT_EQ(invalid.code, tattle::sdk::SendResult::Code::Fail);
    EXPECT_EQ(invalid.message, "cannot send: bad url");

    const auto timeout = sinkkit::deliver(
        [](const http::Request&) -> http::Response {
            throw http::TransportError(http::TransportError::Kind::Timeout, "slow");
        },
        request, wording, never_called);
    EXPECT_EQ(timeout.code, tattle::sdk::SendResult::Code::Retry);
    EXPECT_EQ(timeout.message, "not reached: slow");

    int seen_status = 0;
    const auto answered = sinkkit::deliver(
        [](const http::Request&) {
            http::Response response;
            response.status = 503;
            response.body = "busy";
            return response;
        },
        request, wording,
        [&seen_status](int status, std::string_view body,
                       std::optional<std::chrono::milliseconds>) {
            seen_status = status;
            return tattle::sdk::SendResult::fail(std::string(body));
        });
    EXPECT_EQ(seen_status, 503);
    EXPECT_EQ(answered.message, "busy");
}
