// The PagerDuty Events API v2 trigger built from a real CloudTrail event, its limits,
// and what PagerDuty's answers mean. Event: invictus-ir/aws_dataset (MIT); error body:
// PagerDuty/api-schema (../shared/data/payloads/pagerduty_events_v2/).
#if __has_include("pagerduty_sink.hpp")  // the plugin is built only once tattle::http exists

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "pagerduty_event.hpp"
#include "pagerduty_sink.hpp"
#include "tattle/alert.hpp"
#include "tattle/sdk.hpp"

namespace {

namespace json = boost::json;
namespace pagerduty = tattle::sinks::pagerduty;
namespace http = tattle::http;
using Code = tattle::sdk::SendResult::Code;
using std::chrono::milliseconds;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr const char* kRoutingKey = "R0UT1NGKEYe93facc04764012d7bfb00";
constexpr const char* kLogFile =
    "/cloudtrail/invictus-ir_aws_dataset/CloudTrail/"
    "218007301253_CloudTrail_us-east-1_20230710T1200Z_iLj9fb7yyUG9X4Bf.json";
constexpr const char* kAssumedRoleEventId = "fbd91225-39aa-4c00-822c-9f0b96e7758f";

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

json::object real_event() {
    const json::value log = json::parse(read_file(std::string(TATTLE_SHARED_DATA_DIR) + kLogFile));
    for (const auto& record : log.at("Records").as_array()) {
        if (record.at("eventID").as_string() == kAssumedRoleEventId) return record.as_object();
    }
    ADD_FAILURE() << "event not found";
    return {};
}

// The alert document as the core builds it (README, "The alert document").
json::object alert_for(const json::object& event,
                       std::optional<json::value> annotation = std::nullopt) {
    json::object alert = tattle::make_alert(
        {"EC2 password data", "Someone asked for an instance's Windows password"}, event,
        annotation, {"local", "logs/x.json", 17});
    alert["destination"] = "pager";
    return alert;
}

pagerduty::EventOptions options() {
    pagerduty::EventOptions options;
    options.routing_key = kRoutingKey;
    return options;
}

TEST(PagerDutyEvent, TriggersFromARealEventFieldByField) {
    const json::object event = real_event();
    json::object alert = alert_for(event, json::value("instance i-durz4ux740gjqvcm"));
    alert["rule"].as_object()["severity"] = "critical";
    const json::object request = pagerduty::build_trigger(alert, options());

    EXPECT_EQ(request.at("routing_key").as_string(), kRoutingKey);
    EXPECT_EQ(request.at("event_action").as_string(), "trigger");
    EXPECT_EQ(request.at("dedup_key").as_string(), alert.at("alert_id").as_string());
    EXPECT_EQ(request.at("client").as_string(), "tattle");

    const auto& payload = request.at("payload").as_object();
    EXPECT_EQ(payload.at("summary").as_string(),
              "EC2 password data: instance i-durz4ux740gjqvcm \u2014 GetPasswordData by "
              "arn:aws:sts::123837392027:assumed-role/stratus-red-team-ec2-get-password-data-role/"
              "aws-go-sdk-1688990082523310002");
    EXPECT_EQ(payload.at("source").as_string(), "aws:123837392027:us-east-1");
    EXPECT_EQ(payload.at("severity").as_string(), "critical");
    EXPECT_EQ(payload.at("timestamp").as_string(), "2023-07-10T11:54:48Z");
    EXPECT_EQ(payload.at("component").as_string(), "ec2.amazonaws.com");
    EXPECT_EQ(payload.at("group").as_string(), "123837392027");
    EXPECT_EQ(payload.at("class").as_string(), "GetPasswordData");

    const auto& details = payload.at("custom_details").as_object();
    EXPECT_EQ(details.at("rule").as_string(), "EC2 password data");
    EXPECT_EQ(details.at("description").as_string(),
              "Someone asked for an instance's Windows password");
    EXPECT_EQ(details.at("rule_severity").as_string(), "critical");
    EXPECT_EQ(details.at("annotation").as_string(), "instance i-durz4ux740gjqvcm");
    EXPECT_EQ(details.at("actor"), alert.at("summary").at("actor"));
    EXPECT_EQ(details.at("source_ip").as_string(), "192.168.10.20");
    EXPECT_EQ(details.at("error_code").as_string(), "Client.UnauthorizedOperation");
    EXPECT_EQ(details.at("alert_id"), alert.at("alert_id"));
    EXPECT_EQ(details.at("event"), json::value(event));
    EXPECT_FALSE(details.contains("trimmed"));

    EXPECT_EQ(
        json::serialize(request.at("links")),
        R"([{"href":"https://us-east-1.console.aws.amazon.com/cloudtrailv2/home?region=us-east-1#/events/)"
        R"(fbd91225-39aa-4c00-822c-9f0b96e7758f","text":"Event in the CloudTrail console"}])");
    // Required by the API, always present.
    for (const char* key : {"summary", "source", "severity"})
        EXPECT_FALSE(payload.at(key).as_string().empty());
}

TEST(PagerDutyEvent, MapsRuleSeverityAndFallsBackToTheDefault) {
    const std::vector<std::pair<std::string, std::string>> table = {
        {"critical", "critical"},  {"CRITICAL", "critical"}, {"high", "error"},
        {"error", "error"},        {"medium", "warning"},    {"Moderate", "warning"},
        {"warning", "warning"},    {"low", "info"},          {"info", "info"},
        {"informational", "info"},
    };
    for (const auto& [word, expected] : table) {
        EXPECT_EQ(pagerduty::map_rule_severity(word), expected) << word;
        json::object alert = alert_for(real_event());
        alert["rule"].as_object()["severity"] = word;
        EXPECT_EQ(
            pagerduty::build_trigger(alert, options()).at("payload").at("severity").as_string(),
            expected);
    }
    EXPECT_EQ(pagerduty::map_rule_severity("urgent"), std::nullopt);
    EXPECT_EQ(pagerduty::map_rule_severity(""), std::nullopt);

    auto quiet = options();
    quiet.default_severity = "info";
    json::object unknown = alert_for(real_event());
    unknown["rule"].as_object()["severity"] = "urgent";
    EXPECT_EQ(pagerduty::build_trigger(unknown, quiet).at("payload").at("severity").as_string(),
              "info");
    EXPECT_EQ(pagerduty::build_trigger(alert_for(real_event()), options())
                  .at("payload")
                  .at("severity")
                  .as_string(),
              "warning");
}

TEST(PagerDutyEvent, SummaryStaysWithin1024CharactersAndOneLine) {
    json::object event = real_event();
    event["userIdentity"].as_object()["arn"] = "arn:aws:iam::1:user/" + std::string(3000, 'u');
    std::string annotation;
    for (int i = 0; i < 2000; ++i) annotation += "\u00e9\n";
    const json::object request =
        pagerduty::build_trigger(alert_for(event, json::value(annotation)), options());
    const std::string summary(request.at("payload").at("summary").as_string());
    EXPECT_LE(summary.size(), pagerduty::kMaxSummary);
    EXPECT_GT(summary.size(), 1000u);
    EXPECT_THAT(summary, StartsWith("EC2 password data: \u00e9 \u00e9 "));
    EXPECT_THAT(summary, HasSubstr("\u2014 GetPasswordData by arn:aws:iam::1:user/uuu"));
    EXPECT_THAT(summary, Not(HasSubstr("\n")));
    // Cut on a character boundary: the request is still valid UTF-8 JSON.
    EXPECT_NO_THROW(json::parse(json::serialize(request)));
}

json::object huge_event(std::size_t target_bytes) {
    json::object event = real_event();
    json::array items;
    std::size_t size = 0;
    for (int i = 0; size < target_bytes; ++i) {
        json::object item{{"instanceId", "i-" + std::to_string(i)},
                          {"userData", std::string(2000, 'x') + "\u00e9"}};
        size += json::serialize(item).size();
        items.push_back(std::move(item));
    }
    event["responseElements"] =
        json::object{{"instancesSet", json::object{{"items", std::move(items)}}}};
    return event;
}

TEST(PagerDutyEvent, A200KilobyteEventFitsWhole) {
    const json::object event = huge_event(200 * 1024);
    const json::object request = pagerduty::build_trigger(alert_for(event), options());
    EXPECT_LE(json::serialize(request).size(), pagerduty::kMaxRequestBytes);
    EXPECT_EQ(request.at("payload").at("custom_details").at("event"), json::value(event));
}

TEST(PagerDutyEvent, ALargerEventIsTrimmedUnder512KilobytesAsValidJson) {
    const json::object event = huge_event(2 * 1024 * 1024);
    const std::string body =
        pagerduty::render_trigger(json::serialize(alert_for(event)), options());
    EXPECT_LE(body.size(), pagerduty::kMaxRequestBytes);
    EXPECT_GT(body.size(), pagerduty::kMaxRequestBytes / 4);  // trimmed, not emptied
    const json::value request = json::parse(body);
    const auto& details = request.at("payload").at("custom_details").as_object();
    EXPECT_THAT(std::string(details.at("trimmed").as_string()),
                HasSubstr("cut to fit PagerDuty's size limit"));
    EXPECT_EQ(details.at("event").at("eventName").as_string(), "GetPasswordData");
    EXPECT_EQ(details.at("rule").as_string(), "EC2 password data");
    EXPECT_EQ(request.at("dedup_key"), request.at("payload").at("custom_details").at("alert_id"));
}

TEST(PagerDutyEvent, EveryLimitHoldsEvenWhenTiny) {
    const json::object alert =
        alert_for(huge_event(300 * 1024), json::value(std::string(100000, 'a')));
    for (const std::size_t limit : {200000u, 50000u, 8000u, 3000u}) {
        auto small = options();
        small.max_request_bytes = limit;
        const std::string body = pagerduty::render_trigger(json::serialize(alert), small);
        EXPECT_LE(body.size(), limit) << limit;
        EXPECT_NO_THROW(json::parse(body));
    }
}

TEST(PagerDutyEvent, TimestampOnlyWhenItIsIso8601) {
    json::object event = real_event();
    event["eventTime"] = "yesterday";
    EXPECT_FALSE(pagerduty::build_trigger(alert_for(event), options())
                     .at("payload")
                     .as_object()
                     .contains("timestamp"));
    event["eventTime"] = "2015-07-17T08:42:58.315+00:00";
    EXPECT_EQ(pagerduty::build_trigger(alert_for(event), options())
                  .at("payload")
                  .at("timestamp")
                  .as_string(),
              "2015-07-17T08:42:58.315+00:00");
}

TEST(PagerDutyEvent, SourceFallsBackToTheEventSource) {
    json::object event = real_event();
    event.erase("recipientAccountId");
    event["userIdentity"].as_object().erase("accountId");
    const auto payload =
        pagerduty::build_trigger(alert_for(event), options()).at("payload").as_object();
    EXPECT_EQ(payload.at("source").as_string(), "ec2.amazonaws.com");
    EXPECT_FALSE(payload.contains("group"));
    EXPECT_THROW(pagerduty::render_trigger("[]", options()), std::invalid_argument);
}

struct MappingCase {
    int status;
    Code expected;
};

TEST(PagerDutyResponse, FollowsPagerDutysRetryTable) {
    const std::vector<MappingCase> cases = {
        {202, Code::Ok},    {200, Code::Ok},    {400, Code::Fail},  {401, Code::Fail},
        {403, Code::Fail},  {404, Code::Fail},  {413, Code::Fail},  {408, Code::Retry},
        {429, Code::Retry}, {500, Code::Retry}, {502, Code::Retry}, {503, Code::Retry},
        {504, Code::Retry},
    };
    for (const auto& c : cases)
        EXPECT_EQ(pagerduty::map_response(c.status, "", std::nullopt).code, c.expected) << c.status;

    const auto limited =
        pagerduty::map_response(429, "Request Limit Exceeded", milliseconds(30000));
    EXPECT_EQ(limited.retry_after, milliseconds(30000));
    EXPECT_THAT(limited.message, HasSubstr("rate limiting"));
    EXPECT_EQ(pagerduty::map_response(503, "", milliseconds(1000)).retry_after, milliseconds(1000));
}

TEST(PagerDutyResponse, A400NamesPagerDutysReason) {
    const std::string body =
        read_file(std::string(TATTLE_SHARED_DATA_DIR) +
                  "/payloads/pagerduty_events_v2/enqueue_response_error_example.json");
    const auto result = pagerduty::map_response(400, body, std::nullopt);
    EXPECT_EQ(result.code, Code::Fail);
    EXPECT_EQ(result.message,
              "PagerDuty refused the event (HTTP 400 Unrecognized object: Event object format is "
              "unrecognized (JSON parse error))");
}

struct FakePagerDuty {
    http::Response answer;
    std::optional<http::TransportError> failure;
    std::vector<http::Request> seen;

    pagerduty::Transport transport() {
        return [this](const http::Request& request) {
            seen.push_back(request);
            if (failure) throw *failure;
            return answer;
        };
    }
};

pagerduty::PagerDutySinkConfig sink_config() {
    pagerduty::PagerDutySinkConfig config;
    config.event.routing_key = kRoutingKey;
    config.events_url = "https://events.example.test/v2/enqueue";
    return config;
}

TEST(PagerDutySink, PostsTheTriggerToTheEventsUrl) {
    FakePagerDuty fake;
    fake.answer = {202, {}, R"({"status":"success","message":"Event processed","dedup_key":"x"})"};
    pagerduty::PagerDutySink sink(sink_config(), fake.transport());
    EXPECT_EQ(sink.send(json::serialize(alert_for(real_event()))).code, Code::Ok);
    ASSERT_EQ(fake.seen.size(), 1u);
    EXPECT_EQ(fake.seen[0].method, "POST");
    EXPECT_EQ(fake.seen[0].url, "https://events.example.test/v2/enqueue");
    EXPECT_THAT(fake.seen[0].headers, ::testing::Contains(std::pair<std::string, std::string>(
                                          "Content-Type", "application/json")));
    EXPECT_EQ(json::parse(fake.seen[0].body).at("routing_key").as_string(), kRoutingKey);
}

TEST(PagerDutySink, HonoursRetryAfterAndRetriesTransportErrors) {
    FakePagerDuty fake;
    fake.answer = {429, {{"retry-after", "30"}}, "Request Limit Exceeded"};
    pagerduty::PagerDutySink sink(sink_config(), fake.transport());
    const auto limited = sink.send(json::serialize(alert_for(real_event())));
    EXPECT_EQ(limited.code, Code::Retry);
    EXPECT_EQ(limited.retry_after, milliseconds(30000));

    fake.failure = http::TransportError(http::TransportError::Kind::Connect, "connection refused");
    EXPECT_EQ(sink.send(json::serialize(alert_for(real_event()))).code, Code::Retry);
    fake.failure = http::TransportError(http::TransportError::Kind::InvalidRequest,
                                        "the URL's port is not valid");
    EXPECT_EQ(sink.send(json::serialize(alert_for(real_event()))).code, Code::Fail);
}

TEST(PagerDutySink, TheRoutingKeyNeverAppearsInAMessage) {
    FakePagerDuty fake;
    fake.answer = {
        400,
        {},
        std::string(R"({"status":"invalid event","message":"bad key )") + kRoutingKey + "\"}"};
    pagerduty::PagerDutySink sink(sink_config(), fake.transport());
    const std::string alert = json::serialize(alert_for(real_event()));
    const auto refused = sink.send(alert);
    EXPECT_EQ(refused.code, Code::Fail);
    EXPECT_THAT(refused.message, HasSubstr("bad key <redacted>"));
    EXPECT_THAT(refused.message, Not(HasSubstr(kRoutingKey)));

    fake.failure = http::TransportError(http::TransportError::Kind::Tls,
                                        std::string("handshake for ") + kRoutingKey);
    EXPECT_THAT(sink.send(alert).message, Not(HasSubstr(kRoutingKey)));
}

TEST(PagerDutyConfig, ReadsEveryKeyWithDefaults) {
    const auto defaults = pagerduty::parse_config(R"({"routing_key":"k"})");
    EXPECT_EQ(defaults.events_url, "https://events.pagerduty.com/v2/enqueue");
    EXPECT_EQ(defaults.event.default_severity, "warning");
    const auto set = pagerduty::parse_config(
        R"({"routing_key":"k","events_url":"https://x/e","default_severity":"error","timeout_ms":1234,
            "ca_file":"/ca.pem","insecure_skip_verify":true})");
    EXPECT_EQ(set.event.routing_key, "k");
    EXPECT_EQ(set.events_url, "https://x/e");
    EXPECT_EQ(set.event.default_severity, "error");
    EXPECT_EQ(set.timeout, milliseconds(1234));
    EXPECT_EQ(set.ca_file, "/ca.pem");
    EXPECT_TRUE(set.insecure_skip_verify);
}

// ---- the real plugin, through the same table the host uses ----------------------

std::vector<std::string>& captured_logs() {
    static std::vector<std::string> logs;
    return logs;
}

void capture_log(void*, int32_t, const char* message) { captured_logs().emplace_back(message); }

TEST(PagerDutyPlugin, SecretsStayOutOfErrorsAndLogs) {
    const tattle::sdk::PluginFunctions* plugin = nullptr;
    for (const auto& functions : tattle::sdk::static_registry()) {
        if (std::string_view(functions.get_info()->type_name) == "pagerduty") plugin = &functions;
    }
    ASSERT_NE(plugin, nullptr);
    EXPECT_NO_THROW(json::parse(plugin->get_info()->config_schema));
    captured_logs().clear();
    tattle_host_api host{sizeof(tattle_host_api), nullptr, &capture_log};

    const std::string config =
        std::string(R"({"routing_key":")") + kRoutingKey +
        R"(","events_url":"https://127.0.0.1:1/v2/enqueue","timeout_ms":2000})";
    tattle_create_args args{sizeof(tattle_create_args), &host, "pager", config.c_str()};
    tattle_rc rc = TATTLE_RC_ERROR;
    void* sink = plugin->sink_create(&args, &rc);
    ASSERT_EQ(rc, TATTLE_RC_OK) << plugin->last_error(nullptr);
    const std::string alert = json::serialize(alert_for(real_event()));
    tattle_send_result result{sizeof(tattle_send_result), 0};
    EXPECT_EQ(plugin->sink_send(sink, alert.data(), alert.size(), &result), TATTLE_RC_RETRY);
    EXPECT_THAT(std::string(plugin->last_error(sink)), HasSubstr("PagerDuty not reached"));
    EXPECT_THAT(std::string(plugin->last_error(sink)), Not(HasSubstr(kRoutingKey)));
    plugin->sink_destroy(sink);
    for (const auto& line : captured_logs()) EXPECT_THAT(line, Not(HasSubstr(kRoutingKey)));
}

TEST(PagerDutyEvent, LinksTheRunbookAndCarriesTheTags) {
    json::object alert = alert_for(real_event(), std::nullopt);
    alert["rule"].as_object()["runbook"] = "https://wiki.example.com/ec2-password";
    alert["rule"].as_object()["tags"] = json::array{"T1552.005"};
    alert["rule"].as_object()["severity"] = "medium";
    const json::object request = pagerduty::build_trigger(alert, options());
    const auto& links = request.at("links").as_array();
    ASSERT_EQ(links.size(), 2U);
    EXPECT_EQ(links[1], (json::object{{"href", "https://wiki.example.com/ec2-password"}, {"text", "Runbook"}}));
    const auto& payload = request.at("payload").as_object();
    EXPECT_EQ(payload.at("severity"), "warning");
    EXPECT_EQ(payload.at("custom_details").at("rule_tags"), (json::array{"T1552.005"}));
}

TEST(PagerDutyEvent, ATitleIsTheSummary) {
    json::object alert = alert_for(real_event(), std::nullopt);
    alert["title"] = "alice read the EC2 password data\nof i-123";
    alert["dedup"] = json::object{{"key", "alice"}, {"window_seconds", 86400}, {"suppressed", 1}};
    const json::object request = pagerduty::build_trigger(alert, options());
    const auto& payload = request.at("payload").as_object();
    EXPECT_EQ(payload.at("summary"), "alice read the EC2 password data of i-123");
    EXPECT_EQ(payload.at("custom_details").at("repeats"),
              "1 more match with \"alice\" suppressed since the previous alert (dedup window 1d)");
    EXPECT_EQ(payload.at("custom_details").at("dedup").at("suppressed"), 1);
}

}  // namespace

#endif
