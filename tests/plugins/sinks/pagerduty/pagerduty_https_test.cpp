// The real pagerduty plugin, through the host's function table, against a local HTTPS
// server with a throwaway CA (tests/support/https_server.py, make_test_ca.sh). Error body:
// PagerDuty/api-schema (../shared/data/payloads/pagerduty_events_v2/).
#if __has_include("pagerduty_sink.hpp") && __has_include("../../support/http/test_server.hpp")

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>
#include <sstream>
#include <string>

#include "../../support/http/test_server.hpp"
#include "../registered_sink.hpp"
#include "tattle/sdk.hpp"

namespace {

namespace json = boost::json;
using tattle::test::TestCa;
using tattle::test::TestServer;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kRoutingKey = "e93facc04764012d7bfb002500d5d1a6";
constexpr const char* kAlert =
    R"({"alert_id":"6f1c00000000000000000000000000aa","rule":{"name":"Create User","description":"d","severity":"high"},
        "destination":"pager","annotation":"username: user1",
        "summary":{"event_id":"e-1","event_time":"2023-07-10T12:00:00Z","event_name":"CreateUser",
                   "event_source":"iam.amazonaws.com","account_id":"123456789012","region":"us-east-1",
                   "actor":"arn:aws:iam::123456789012:user/alice"},
        "origin":{"source":"local","batch":"x.json","index":0},"event":{"eventName":"CreateUser"}})";

using tattle::sink_tests::Outcome;
using tattle::sink_tests::PluginSink;

std::string error_example() {
    std::ifstream in(std::string(TATTLE_SHARED_DATA_DIR) +
                     "/payloads/pagerduty_events_v2/enqueue_response_error_example.json");
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

TEST(PagerDutyHttps, TriggersAndMapsPagerDutysAnswers) {
    TestServer server({.script = R"([
        {"status": 202, "body": {"status": "success", "message": "Event processed", "dedup_key": "x"}},
        {"status": 429, "headers": {"Retry-After": "30"}, "body": "Request Limit Exceeded"},
        {"status": 503, "body": "unavailable"},
        {"status": 400, "body": )" +
                                 error_example() + "}]"});
    const std::string config =
        json::serialize(json::object{{"routing_key", kRoutingKey},
                                     {"events_url", server.url("/v2/enqueue")},
                                     {"ca_file", TestCa::instance().ca_file()},
                                     {"timeout_ms", 5000}});
    PluginSink sink("pagerduty", config);
    EXPECT_EQ(sink.send(kAlert).rc, TATTLE_RC_OK);
    const Outcome limited = sink.send(kAlert);
    EXPECT_EQ(limited.rc, TATTLE_RC_RETRY);
    EXPECT_EQ(limited.retry_after_ms, 30000);
    EXPECT_EQ(sink.send(kAlert).rc, TATTLE_RC_RETRY);
    const Outcome refused = sink.send(kAlert);
    EXPECT_EQ(refused.rc, TATTLE_RC_FAIL);
    EXPECT_THAT(refused.message, HasSubstr("Event object format is unrecognized"));
    for (const auto* outcome : {&limited, &refused})
        EXPECT_THAT(outcome->message, Not(HasSubstr(kRoutingKey)));

    const auto requests = server.wait_for_requests(4);
    ASSERT_EQ(requests.size(), 4u);
    EXPECT_EQ(requests[0].method, "POST");
    EXPECT_EQ(requests[0].path, "/v2/enqueue");
    EXPECT_EQ(requests[0].header("Content-Type"), "application/json");
    const json::value event = json::parse(requests[0].body);
    EXPECT_EQ(event.at("routing_key").as_string(), kRoutingKey);
    EXPECT_EQ(event.at("event_action").as_string(), "trigger");
    EXPECT_EQ(event.at("dedup_key").as_string(), "6f1c00000000000000000000000000aa");
    EXPECT_EQ(
        event.at("payload").at("summary").as_string(),
        "Create User: username: user1 \u2014 CreateUser by arn:aws:iam::123456789012:user/alice");
    EXPECT_EQ(event.at("payload").at("severity").as_string(), "error");
    EXPECT_EQ(event.at("payload").at("source").as_string(), "aws:123456789012:us-east-1");
    EXPECT_EQ(event.at("payload").at("custom_details").at("event").at("eventName").as_string(),
              "CreateUser");
    // Redeliveries carry the same dedup_key, so PagerDuty folds them into one alert.
    EXPECT_EQ(json::parse(requests[1].body).at("dedup_key"), event.at("dedup_key"));
}

}  // namespace

#endif
