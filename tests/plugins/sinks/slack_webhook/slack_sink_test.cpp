// What Slack's answers mean for the core, and that the webhook URL never leaks.
#if __has_include("slack_sink.hpp")  // the plugin is built only once tattle::http exists

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>
#include <vector>

#include "slack_sink.hpp"
#include "tattle/sdk.hpp"

namespace {

namespace json = boost::json;
namespace slack = tattle::sinks::slack;
namespace http = tattle::http;
using Code = tattle::sdk::SendResult::Code;
using std::chrono::milliseconds;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kSecretUrl =
    "https://hooks.slack.com/services/T0000AAAA/B0000BBBB/s3cr3tT0kenXYZ123456";
constexpr const char* kToken = "s3cr3tT0kenXYZ123456";
constexpr const char* kAlert =
    R"({"alert_id":"abc","rule":{"name":"Create User","description":"d"},"destination":"slack",
        "summary":{"event_id":"e1","event_name":"CreateUser","region":"us-east-1"},"event":{"eventName":"CreateUser"}})";

struct MappingCase {
    int status;
    std::string body;
    Code expected;
};

TEST(SlackResponse, MapsEveryAnswerToOkRetryOrFail) {
    const std::vector<MappingCase> cases = {
        {200, "ok", Code::Ok},
        {400, "invalid_payload", Code::Fail},
        {400, "user_not_found", Code::Fail},
        {403, "action_prohibited", Code::Fail},
        {404, "channel_not_found", Code::Fail},
        {404, "no_service", Code::Fail},
        {410, "channel_is_archived", Code::Fail},
        {301, "", Code::Fail},
        {401, "invalid_token", Code::Fail},
        {408, "", Code::Retry},
        {429, R"({"retry_after":3})", Code::Retry},
        {500, "rollup_error", Code::Retry},
        {502, "<html>Bad Gateway</html>", Code::Retry},
        {503, "", Code::Retry},
        {504, "", Code::Retry},
    };
    for (const auto& c : cases) {
        const auto result = slack::map_response(c.status, c.body, std::nullopt);
        EXPECT_EQ(result.code, c.expected) << c.status << " " << c.body;
        if (c.expected == Code::Fail) {
            EXPECT_THAT(result.message, HasSubstr("HTTP " + std::to_string(c.status)))
                << result.message;
            EXPECT_THAT(result.message, HasSubstr(c.body)) << result.message;
        }
        if (c.expected == Code::Ok) EXPECT_EQ(result.message, "");
    }
}

TEST(SlackResponse, RateLimitAndServerErrorsCarryRetryAfter) {
    const auto limited = slack::map_response(429, "", milliseconds(2000));
    EXPECT_EQ(limited.code, Code::Retry);
    EXPECT_EQ(limited.retry_after, milliseconds(2000));
    EXPECT_THAT(limited.message, HasSubstr("rate limiting"));
    EXPECT_EQ(slack::map_response(503, "", milliseconds(30000)).retry_after, milliseconds(30000));
    EXPECT_EQ(slack::map_response(429, "", std::nullopt).retry_after, std::nullopt);
}

TEST(SlackResponse, FailuresExplainWhatToDo) {
    EXPECT_THAT(slack::map_response(410, "channel_is_archived", std::nullopt).message,
                HasSubstr("Slack refused the message (HTTP 410 channel_is_archived); the webhook's "
                          "channel is archived"));
    EXPECT_THAT(slack::map_response(404, "no_service", std::nullopt).message,
                HasSubstr("removed or revoked"));
    // Slack's body is shown, but never raw control characters or an endless page.
    const auto noisy =
        slack::map_response(400, "bad\r\nX-Injected: 1" + std::string(5000, 'z'), std::nullopt);
    EXPECT_THAT(noisy.message, Not(HasSubstr("\n")));
    EXPECT_LT(noisy.message.size(), 400u);
}

TEST(SlackSecrets, UrlPiecesAreRedactedWherever) {
    const auto secrets = slack::url_secrets(kSecretUrl);
    EXPECT_THAT(secrets, ::testing::Contains(std::string(kToken)));
    EXPECT_THAT(secrets, ::testing::Contains(
                             std::string("/services/T0000AAAA/B0000BBBB/s3cr3tT0kenXYZ123456")));
    EXPECT_THAT(secrets, Not(::testing::Contains(std::string("services"))));
    EXPECT_EQ(slack::redact_secrets(std::string("at ") + kSecretUrl + " and " + kToken, secrets),
              "at <redacted> and <redacted>");
    EXPECT_EQ(slack::redact_secrets("nothing here", secrets), "nothing here");
}

struct FakeSlack {
    http::Response answer;
    std::optional<http::TransportError> failure;
    std::vector<http::Request> seen;

    slack::Transport transport() {
        return [this](const http::Request& request) {
            seen.push_back(request);
            if (failure) throw *failure;
            return answer;
        };
    }
};

slack::SlackSinkConfig config_with_secret() {
    slack::SlackSinkConfig config;
    config.webhook_url = kSecretUrl;
    config.message.channel = "#alerts";
    return config;
}

TEST(SlackSink, PostsTheRenderedMessageAsJson) {
    FakeSlack fake;
    fake.answer = {200, {}, "ok"};
    slack::SlackSink sink(config_with_secret(), fake.transport());
    EXPECT_EQ(sink.send(kAlert).code, Code::Ok);
    ASSERT_EQ(fake.seen.size(), 1u);
    const auto& request = fake.seen[0];
    EXPECT_EQ(request.method, "POST");
    EXPECT_EQ(request.url, kSecretUrl);
    EXPECT_THAT(request.headers, ::testing::Contains(std::pair<std::string, std::string>(
                                     "Content-Type", "application/json; charset=utf-8")));
    const json::value body = json::parse(request.body);
    EXPECT_EQ(body.at("channel").as_string(), "#alerts");
    EXPECT_EQ(body.at("blocks").at(0).at("type").as_string(), "header");
}

TEST(SlackSink, HonoursRetryAfterFromTheResponseHeader) {
    FakeSlack fake;
    fake.answer = {429, {{"retry-after", "7"}}, R"({"ok":false})"};
    slack::SlackSink sink(config_with_secret(), fake.transport());
    const auto result = sink.send(kAlert);
    EXPECT_EQ(result.code, Code::Retry);
    EXPECT_EQ(result.retry_after, milliseconds(7000));
}

TEST(SlackSink, TransportErrorsAreRetriedWithoutTheUrl) {
    FakeSlack fake;
    // A careless transport message must not leak the URL either.
    fake.failure = http::TransportError(http::TransportError::Kind::Timeout,
                                        std::string("timed out posting to ") + kSecretUrl);
    slack::SlackSink sink(config_with_secret(), fake.transport());
    const auto result = sink.send(kAlert);
    EXPECT_EQ(result.code, Code::Retry);
    EXPECT_THAT(result.message,
                HasSubstr("Slack webhook not reached: timed out posting to <redacted>"));
    EXPECT_THAT(result.message, Not(HasSubstr(kToken)));

    // A request the client can never send is not worth retrying.
    fake.failure = http::TransportError(http::TransportError::Kind::InvalidRequest,
                                        "the URL is not a valid absolute URL");
    const auto invalid = sink.send(kAlert);
    EXPECT_EQ(invalid.code, Code::Fail);
    EXPECT_THAT(invalid.message, HasSubstr("cannot be sent: the URL is not a valid absolute URL"));
}

TEST(SlackSink, ErrorBodiesEchoingTheUrlAreRedacted) {
    FakeSlack fake;
    fake.answer = {404, {}, std::string("no_service for ") + kToken};
    slack::SlackSink sink(config_with_secret(), fake.transport());
    const auto result = sink.send(kAlert);
    EXPECT_EQ(result.code, Code::Fail);
    EXPECT_THAT(result.message, HasSubstr("no_service for <redacted>"));
    EXPECT_THAT(result.message, Not(HasSubstr(kToken)));
}

TEST(SlackSink, AnAlertThatCannotBeRenderedFailsWithoutSending) {
    FakeSlack fake;
    slack::SlackSink sink(config_with_secret(), fake.transport());
    const auto result = sink.send("{broken");
    EXPECT_EQ(result.code, Code::Fail);
    EXPECT_TRUE(fake.seen.empty());
}

TEST(SlackConfig, ReadsEveryKey) {
    const auto config = slack::parse_config(
        R"({"webhook_url":"https://h/x","channel":"#c","username":"u","icon_emoji":":e:","timeout_ms":2500,
            "ca_file":"/ca.pem","insecure_skip_verify":true})");
    EXPECT_EQ(config.webhook_url, "https://h/x");
    EXPECT_EQ(config.message.channel, "#c");
    EXPECT_EQ(config.message.username, "u");
    EXPECT_EQ(config.message.icon_emoji, ":e:");
    EXPECT_EQ(config.timeout, milliseconds(2500));
    EXPECT_EQ(config.ca_file, "/ca.pem");
    EXPECT_TRUE(config.insecure_skip_verify);
}

// ---- the real plugin, through the same table the host uses ----------------------

const tattle::sdk::PluginFunctions* registered(std::string_view type_name) {
    for (const auto& functions : tattle::sdk::static_registry()) {
        if (functions.get_info()->kind == TATTLE_PLUGIN_KIND_SINK &&
            functions.get_info()->type_name == type_name) {
            return &functions;
        }
    }
    return nullptr;
}

std::vector<std::string>& captured_logs() {
    static std::vector<std::string> logs;
    return logs;
}

void capture_log(void*, int32_t, const char* message) { captured_logs().emplace_back(message); }

TEST(SlackWebhookPlugin, SecretsStayOutOfErrorsAndLogs) {
    const auto* plugin = registered("slack_webhook");
    ASSERT_NE(plugin, nullptr);
    EXPECT_NO_THROW(json::parse(plugin->get_info()->config_schema));
    EXPECT_THAT(std::string(plugin->get_info()->config_schema), HasSubstr(R"("x-secret": true)"));
    captured_logs().clear();
    tattle_host_api host{sizeof(tattle_host_api), nullptr, &capture_log};

    // Nothing listens on port 1: a transport error, so a retry.
    const std::string unreachable =
        "https://127.0.0.1:1/services/T0000AAAA/B0000BBBB/" + std::string(kToken);
    const std::string config =
        R"({"webhook_url":")" + unreachable + R"(","timeout_ms":2000,"insecure_skip_verify":true})";
    tattle_create_args args{sizeof(tattle_create_args), &host, "slack", config.c_str()};
    tattle_rc rc = TATTLE_RC_ERROR;
    void* sink = plugin->sink_create(&args, &rc);
    ASSERT_EQ(rc, TATTLE_RC_OK) << plugin->last_error(nullptr);
    tattle_send_result result{sizeof(tattle_send_result), 0};
    const std::string alert = kAlert;
    EXPECT_EQ(plugin->sink_send(sink, alert.data(), alert.size(), &result), TATTLE_RC_RETRY);
    const std::string error = plugin->last_error(sink);
    EXPECT_THAT(error, HasSubstr("Slack webhook not reached"));
    EXPECT_THAT(error, Not(HasSubstr(kToken)));
    EXPECT_THAT(error, Not(HasSubstr("/services/")));
    plugin->sink_destroy(sink);

    ASSERT_FALSE(captured_logs().empty());  // the insecure_skip_verify warning
    EXPECT_THAT(captured_logs().front(), HasSubstr("verification is OFF"));
    for (const auto& line : captured_logs()) EXPECT_THAT(line, Not(HasSubstr(kToken)));

    // A refused config names the key, never the value.
    const std::string plain =
        R"({"webhook_url":"http://hooks.example/)" + std::string(kToken) + R"("})";
    tattle_create_args plain_args{sizeof(tattle_create_args), &host, "slack", plain.c_str()};
    EXPECT_EQ(plugin->sink_create(&plain_args, &rc), nullptr);
    EXPECT_EQ(rc, TATTLE_RC_ERROR);
    EXPECT_THAT(std::string(plugin->last_error(nullptr)),
                HasSubstr("webhook_url must be an https:// URL"));
    EXPECT_THAT(std::string(plugin->last_error(nullptr)), Not(HasSubstr(kToken)));
}

}  // namespace

#endif
