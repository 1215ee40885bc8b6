// The real slack_webhook plugin, through the host's function table, against a local
// HTTPS server with a throwaway CA (tests/support/https_server.py, make_test_ca.sh).
#if __has_include("slack_sink.hpp") && __has_include("../../support/http/test_server.hpp")

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>

#include "../../support/http/test_server.hpp"
#include "../registered_sink.hpp"
#include "tattle/sdk.hpp"

namespace {

namespace json = boost::json;
using tattle::test::ServerOptions;
using tattle::test::TestCa;
using tattle::test::TestServer;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kToken = "xoxbSecretWebhookToken0123";
constexpr const char* kAlert =
    R"({"alert_id":"a1b2","rule":{"name":"Create User","description":"A new IAM user has been created"},
        "destination":"slack","annotation":"username: user1",
        "summary":{"event_id":"e-1","event_time":"2023-07-10T12:00:00Z","event_name":"CreateUser",
                   "event_source":"iam.amazonaws.com","account_id":"123456789012","region":"us-east-1",
                   "actor":"arn:aws:iam::123456789012:user/alice","source_ip":"192.0.2.1"},
        "origin":{"source":"local","batch":"x.json","index":0},"event":{"eventName":"CreateUser"}})";

using tattle::sink_tests::Outcome;
using tattle::sink_tests::PluginSink;

std::string config_for(const std::string& url, const std::string& ca_file) {
    return json::serialize(
        json::object{{"webhook_url", url}, {"ca_file", ca_file}, {"timeout_ms", 5000}});
}

TEST(SlackWebhookHttps, DeliversAndMapsSlacksAnswers) {
    TestServer server({.script = R"([
        {"status": 500, "body": "rollup_error"},
        {"status": 200, "body": "ok"},
        {"status": 429, "headers": {"Retry-After": "2"}, "body": {"ok": false}},
        {"status": 410, "body": "channel_is_archived"}])"});
    const std::string path = std::string("/services/T000AAAA/B000BBBB/") + kToken;
    PluginSink sink("slack_webhook", config_for(server.url(path), TestCa::instance().ca_file()));

    const Outcome server_error = sink.send(kAlert);
    EXPECT_EQ(server_error.rc, TATTLE_RC_RETRY);
    EXPECT_EQ(server_error.message, "Slack answered HTTP 500 rollup_error");
    EXPECT_EQ(sink.send(kAlert).rc, TATTLE_RC_OK);
    const Outcome limited = sink.send(kAlert);
    EXPECT_EQ(limited.rc, TATTLE_RC_RETRY);
    EXPECT_EQ(limited.retry_after_ms, 2000);
    const Outcome archived = sink.send(kAlert);
    EXPECT_EQ(archived.rc, TATTLE_RC_FAIL);
    EXPECT_THAT(archived.message, HasSubstr("HTTP 410 channel_is_archived"));

    const auto requests = server.wait_for_requests(4);
    ASSERT_EQ(requests.size(), 4u);
    EXPECT_EQ(requests[0].method, "POST");
    EXPECT_EQ(requests[0].path, path);
    EXPECT_EQ(requests[0].header("Content-Type"), "application/json; charset=utf-8");
    EXPECT_EQ(requests[0].body, requests[1].body);  // a retry sends the same message
    const json::value message = json::parse(requests[0].body);
    EXPECT_EQ(message.at("blocks").at(0).at("text").at("text").as_string(),
              ":rotating_light: Create User");
    EXPECT_EQ(
        message.at("text").as_string(),
        "Create User: username: user1 \u2014 CreateUser by arn:aws:iam::123456789012:user/alice");
    for (const auto* outcome : {&server_error, &limited, &archived}) {
        EXPECT_THAT(outcome->message, Not(HasSubstr(kToken)));
    }
}

TEST(SlackWebhookHttps, AnUntrustedCertificateIsRefusedAndRetried) {
    TestServer server;
    const std::string url = server.url(std::string("/services/T000AAAA/B000BBBB/") + kToken);
    PluginSink sink("slack_webhook", config_for(url, TestCa::instance().other_ca_file()));
    const Outcome refused = sink.send(kAlert);
    EXPECT_EQ(refused.rc, TATTLE_RC_RETRY);
    EXPECT_THAT(refused.message, HasSubstr("Slack webhook not reached"));
    EXPECT_THAT(refused.message, Not(HasSubstr(kToken)));
    EXPECT_THAT(refused.message, Not(HasSubstr("/services/")));
    EXPECT_TRUE(server.requests().empty());
}

}  // namespace

#endif
