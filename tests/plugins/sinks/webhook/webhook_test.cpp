// The generic webhook: body, headers, HMAC signature, body templates, what the
// receiver's answers mean, and that no configured secret leaks.
// Event: invictus-ir/aws_dataset (MIT), ../shared/data/cloudtrail/invictus-ir_aws_dataset.
#if __has_include("webhook_sink.hpp")  // the plugin is built only once tattle::http exists

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tattle/alert.hpp"
#include "tattle/sdk.hpp"
#include "webhook_request.hpp"
#include "webhook_sink.hpp"

namespace {

namespace json = boost::json;
namespace webhook = tattle::sinks::webhook;
namespace http = tattle::http;
using Code = tattle::sdk::SendResult::Code;
using Headers = std::vector<std::pair<std::string, std::string>>;
using std::chrono::milliseconds;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kLogFile =
    "/cloudtrail/invictus-ir_aws_dataset/CloudTrail/"
    "218007301253_CloudTrail_us-east-1_20230710T1200Z_iLj9fb7yyUG9X4Bf.json";
constexpr std::int64_t kNow = 1700000000;
constexpr const char* kHmacSecret = "hmacS3cretValue!";
constexpr const char* kToken = "Bearer tok3nABCDEF0123456789";
constexpr const char* kSecretUrl =
    "https://hooks.example.test/in/Zx9SecretPathToken42?sig=QueryS1gnature99";

json::object real_event() {
    std::ifstream in(std::string(TATTLE_SHARED_DATA_DIR) + kLogFile);
    std::stringstream text;
    text << in.rdbuf();
    const json::value log = json::parse(text.str());
    for (const auto& record : log.at("Records").as_array()) {
        if (record.at("eventID").as_string() == "fbd91225-39aa-4c00-822c-9f0b96e7758f")
            return record.as_object();
    }
    ADD_FAILURE() << "event not found";
    return {};
}

std::string alert_json(
    std::optional<json::value> annotation = json::value("instance i-durz4ux740gjqvcm")) {
    json::object alert = tattle::make_alert(
        {"EC2 password data", "Someone asked for an instance's Windows password"}, real_event(),
        annotation, {"local", "logs/x.json", 17});
    alert["destination"] = "hook";
    return json::serialize(alert);
}

std::string header(const http::Request& request, std::string_view name) {
    for (const auto& [key, value] : request.headers) {
        if (key == name) return value;
    }
    return "<absent>";
}

// Computed independently of the sink: OpenSSL's one-shot HMAC().
std::string expected_signature(std::string_view secret, std::int64_t timestamp,
                               std::string_view body) {
    const std::string material = std::to_string(timestamp) + "." + std::string(body);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_size = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(material.data()), material.size(), mac, &mac_size);
    std::string hex;
    char byte[3];
    for (unsigned int i = 0; i < mac_size; ++i) {
        std::snprintf(byte, sizeof byte, "%02x", mac[i]);
        hex += byte;
    }
    return "sha256=" + hex;
}

TEST(WebhookRequest, DefaultBodyIsTheAlertDocumentUnchanged) {
    webhook::RequestOptions options;
    options.headers = {{"Authorization", kToken}};
    const std::string alert = alert_json();
    const http::Request request = webhook::build_request(alert, options, kNow);
    EXPECT_EQ(request.method, "POST");
    EXPECT_EQ(request.body, alert);
    EXPECT_EQ(header(request, "Content-Type"), "application/json");
    EXPECT_EQ(header(request, "Authorization"), kToken);
    EXPECT_EQ(header(request, "X-Tattle-Alert-Id"), json::parse(alert).at("alert_id").as_string());
    EXPECT_EQ(header(request, "X-Tattle-Signature"), "<absent>");
    EXPECT_EQ(header(request, "X-Tattle-Timestamp"), "<absent>");
    EXPECT_TRUE(request.url.empty());  // the caller adds the secret URL
}

TEST(WebhookRequest, HmacSignatureMatchesAnIndependentComputation) {
    webhook::RequestOptions options;
    options.method = "PUT";
    options.hmac_secret = kHmacSecret;
    const http::Request request = webhook::build_request(alert_json(), options, kNow);
    EXPECT_EQ(request.method, "PUT");
    EXPECT_EQ(header(request, "X-Tattle-Timestamp"), "1700000000");
    EXPECT_EQ(header(request, "X-Tattle-Signature"),
              expected_signature(kHmacSecret, kNow, request.body));
    // The timestamp is part of what is signed.
    EXPECT_NE(header(request, "X-Tattle-Signature"),
              expected_signature(kHmacSecret, kNow + 1, request.body));
    EXPECT_EQ(webhook::signature(kHmacSecret, kNow, request.body),
              header(request, "X-Tattle-Signature"));
}

TEST(WebhookRequest, HmacHexMatchesRfc4231) {
    // RFC 4231, test case 2.
    EXPECT_EQ(webhook::hmac_sha256_hex("Jefe", "what do ya want for nothing?"),
              "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(WebhookRequest, RecognisesJsonContentTypes) {
    for (const char* type :
         {"application/json", "Application/JSON; charset=utf-8", " application/json ",
          "application/vnd.microsoft.card.adaptive+json"}) {
        EXPECT_TRUE(webhook::is_json_content_type(type)) << type;
    }
    for (const char* type :
         {"text/plain", "application/jsonp", "text/json", "application/x-www-form-urlencoded"}) {
        EXPECT_FALSE(webhook::is_json_content_type(type)) << type;
    }
}

TEST(WebhookTemplate, RendersTeamsStyleJsonWithEscapedValues) {
    webhook::RequestOptions options;
    options.body_template = webhook::BodyTemplate::parse(
        R"({"title": "{{ rule.name }}", "text": "{{annotation}} by {{summary.actor}}", "id": "{{alert_id}}",)"
        R"( "index": {{origin.index}}, "first_key": "{{event.userIdentity.type}}", "event": {{event | json}},)"
        R"( "note": {{annotation | json}}, "missing": {{nothing.here | json}}, "empty": "{{nothing}}"})");
    const std::string alert = alert_json(json::value("he said \"hi\"\\ \n\t<b> & \u00e9 \u0001"));
    const http::Request request = webhook::build_request(alert, options, kNow);
    const json::value body = json::parse(request.body);
    EXPECT_EQ(body.at("title").as_string(), "EC2 password data");
    EXPECT_EQ(body.at("text").as_string(),
              "he said \"hi\"\\ \n\t<b> & \u00e9 \u0001 by arn:aws:sts::123837392027:assumed-role/"
              "stratus-red-team-ec2-get-password-data-role/aws-go-sdk-1688990082523310002");
    EXPECT_EQ(body.at("id"), json::parse(alert).at("alert_id"));
    EXPECT_EQ(body.at("index").as_int64(), 17);
    EXPECT_EQ(body.at("first_key").as_string(), "AssumedRole");
    EXPECT_EQ(body.at("event"), json::value(real_event()));
    EXPECT_EQ(body.at("note").as_string(), "he said \"hi\"\\ \n\t<b> & \u00e9 \u0001");
    EXPECT_TRUE(body.at("missing").is_null());
    EXPECT_EQ(body.at("empty").as_string(), "");
}

TEST(WebhookTemplate, EventTextCannotAddKeysToTheReceiversJson) {
    webhook::RequestOptions options;
    options.body_template =
        webhook::BodyTemplate::parse(R"({"text": "{{annotation}}", "admin": false})");
    const http::Request request = webhook::build_request(
        alert_json(json::value(R"(x", "admin": true, "y": ")")), options, kNow);
    const json::value body = json::parse(request.body);
    EXPECT_EQ(body.as_object().size(), 2u);
    EXPECT_FALSE(body.at("admin").as_bool());
    EXPECT_EQ(body.at("text").as_string(), R"(x", "admin": true, "y": ")");
}

TEST(WebhookTemplate, ArrayIndexesAndNonJsonBodies) {
    webhook::RequestOptions options;
    options.content_type = "text/plain; charset=utf-8";
    options.body_template = webhook::BodyTemplate::parse(
        "{{rule.name}}: {{annotation}} \"raw\" [{{event.tlsDetails.tlsVersion}}] {{summary}} "
        "{{event.x.0}}");
    const http::Request request =
        webhook::build_request(alert_json(json::value("a \"quote\"")), options, kNow);
    EXPECT_THAT(request.body, ::testing::StartsWith(
                                  R"(EC2 password data: a "quote" "raw" [TLSv1.2] {"event_id":)"));
    EXPECT_EQ(header(request, "Content-Type"), "text/plain; charset=utf-8");
    // The configured type is the only one.
    EXPECT_EQ(std::count_if(request.headers.begin(), request.headers.end(),
                            [](const auto& h) { return h.first == "Content-Type"; }),
              1);

    json::object alert = json::parse(alert_json()).as_object();
    alert["event"].as_object()["resources"] =
        json::parse(R"([{"ARN":"arn:one"},{"ARN":"arn:two"}])");
    const auto indexed = webhook::BodyTemplate::parse(
        "{{event.resources.1.ARN}}|{{event.resources.9.ARN}}|{{event.resources.x}}");
    EXPECT_EQ(indexed.render(alert, false), "arn:two||");
}

TEST(WebhookTemplate, MistakesAreRefusedWithTheirOffset) {
    const auto message_of = [](std::string_view text) {
        try {
            webhook::BodyTemplate::parse(text);
        } catch (const std::invalid_argument& e) {
            return std::string(e.what());
        }
        return std::string("accepted");
    };
    EXPECT_EQ(message_of("ok {{rule.name"), "body_template: \"{{\" without \"}}\" at offset 3");
    EXPECT_EQ(message_of("{{ rule.name | upper }}"),
              "body_template: unknown filter \"upper\" at offset 0 (the only filter is json)");
    EXPECT_EQ(message_of("x{{ }}"), "body_template: empty placeholder at offset 1");
    EXPECT_EQ(message_of("{{rule..name}}"), "body_template: empty key in a path at offset 0");
    EXPECT_EQ(message_of("{{rule.name()}}"),
              "body_template: unexpected character '(' in a path at offset 0");
    EXPECT_EQ(message_of("plain text, no placeholders"), "accepted");
}

TEST(WebhookConfig, ATemplateThatCannotRenderJsonIsRefusedAtLoad) {
    try {
        webhook::parse_config(
            R"({"url":"https://x/y","body_template":"{\"text\": {{rule.name}}}"})");
        FAIL() << "accepted";
    } catch (const std::invalid_argument& e) {
        EXPECT_THAT(std::string(e.what()), HasSubstr("body_template does not render JSON"));
        EXPECT_THAT(std::string(e.what()), HasSubstr("{{path | json}}"));
    }
    // The same template is fine for a text receiver.
    EXPECT_NO_THROW(webhook::parse_config(
        R"({"url":"https://x/y","content_type":"text/plain","body_template":"{\"text\": {{rule.name}}}"})"));
}

TEST(WebhookConfig, HeadersAreCheckedWithoutShowingValues) {
    const auto message_of = [](const Headers& headers) {
        try {
            webhook::check_headers(headers);
        } catch (const std::invalid_argument& e) {
            return std::string(e.what());
        }
        return std::string("accepted");
    };
    EXPECT_EQ(message_of({{"Authorization", kToken}, {"X-Api-Key", "k"}}), "accepted");
    EXPECT_EQ(message_of({{"Bad Name", "v"}}), "headers: \"Bad Name\" is not a valid header name");
    const std::string injected = std::string(kToken) + "\r\nX-Evil: 1";
    EXPECT_EQ(message_of({{"Authorization", injected}}),
              "headers: the value of \"Authorization\" contains a line break or NUL");
    EXPECT_EQ(message_of({{"host", "x"}}),
              "headers: \"host\" is set by tattle and cannot be configured");
    EXPECT_EQ(message_of({{"content-type", "text/plain"}}),
              "headers: set the body's type with content_type, not a \"content-type\" header");
    EXPECT_EQ(message_of({{"X-Tattle-Signature", "x"}}),
              "headers: \"X-Tattle-Signature\" is set by tattle and cannot be configured");
}

TEST(WebhookConfig, ReadsEveryKey) {
    const auto config = webhook::parse_config(
        R"({"url":"https://x/y","method":"PUT","content_type":"application/vnd.x+json",
            "headers":{"Authorization":"a","X-Team":"sec"},"hmac_secret":"s",
            "body_template":"{\"t\":\"{{rule.name}}\"}","timeout_ms":3000,"ca_file":"/ca.pem",
            "insecure_skip_verify":true,"allow_plain_http":true})");
    EXPECT_EQ(config.url, "https://x/y");
    EXPECT_EQ(config.request.method, "PUT");
    EXPECT_EQ(config.request.content_type, "application/vnd.x+json");
    EXPECT_EQ(config.request.headers, (Headers{{"Authorization", "a"}, {"X-Team", "sec"}}));
    EXPECT_EQ(config.request.hmac_secret, "s");
    EXPECT_TRUE(config.request.body_template.has_value());
    EXPECT_EQ(config.timeout, milliseconds(3000));
    EXPECT_EQ(config.ca_file, "/ca.pem");
    EXPECT_TRUE(config.insecure_skip_verify);
    EXPECT_TRUE(config.allow_plain_http);
}

TEST(WebhookResponse, MapsStatusesToOkRetryOrFail) {
    const std::vector<std::pair<int, Code>> table = {
        {200, Code::Ok},    {201, Code::Ok},    {202, Code::Ok},    {204, Code::Ok},
        {408, Code::Retry}, {429, Code::Retry}, {500, Code::Retry}, {502, Code::Retry},
        {503, Code::Retry}, {504, Code::Retry}, {301, Code::Fail},  {302, Code::Fail},
        {307, Code::Fail},  {400, Code::Fail},  {401, Code::Fail},  {403, Code::Fail},
        {404, Code::Fail},  {405, Code::Fail},  {410, Code::Fail},  {413, Code::Fail},
        {422, Code::Fail},
    };
    for (const auto& [status, expected] : table) {
        EXPECT_EQ(webhook::map_response(status, "", std::nullopt).code, expected) << status;
    }
    for (const int status : {408, 429, 503}) {
        EXPECT_EQ(webhook::map_response(status, "", milliseconds(2000)).retry_after,
                  milliseconds(2000))
            << status;
    }
    EXPECT_THAT(webhook::map_response(422, "missing field", std::nullopt).message,
                HasSubstr("refused the alert (HTTP 422 missing field)"));
    EXPECT_THAT(webhook::map_response(301, "", std::nullopt).message,
                HasSubstr("set url to the final address"));
}

struct FakeReceiver {
    http::Response answer;
    std::optional<http::TransportError> failure;
    std::vector<http::Request> seen;

    webhook::Transport transport() {
        return [this](const http::Request& request) {
            seen.push_back(request);
            if (failure) throw *failure;
            return answer;
        };
    }
};

webhook::WebhookSinkConfig secret_config() {
    webhook::WebhookSinkConfig config;
    config.url = kSecretUrl;
    config.request.headers = {{"Authorization", kToken}, {"X-Team", "security"}};
    config.request.hmac_secret = kHmacSecret;
    return config;
}

TEST(WebhookSink, SendsSignedRequestsToTheUrlAndHonoursRetryAfter) {
    FakeReceiver fake;
    fake.answer = {503, {{"retry-after", "2"}}, "busy"};
    webhook::WebhookSink sink(secret_config(), fake.transport(), [] { return kNow; });
    const auto result = sink.send(alert_json());
    EXPECT_EQ(result.code, Code::Retry);
    EXPECT_EQ(result.retry_after, milliseconds(2000));
    ASSERT_EQ(fake.seen.size(), 1u);
    EXPECT_EQ(fake.seen[0].url, kSecretUrl);
    EXPECT_EQ(header(fake.seen[0], "X-Tattle-Signature"),
              expected_signature(kHmacSecret, kNow, fake.seen[0].body));

    fake.answer = {204, {}, ""};
    EXPECT_EQ(sink.send(alert_json()).code, Code::Ok);
}

TEST(WebhookSink, NoSecretAppearsInAnyMessage) {
    FakeReceiver fake;
    // An echoing receiver: its error repeats what it got, secrets included.
    fake.answer = {400,
                   {},
                   std::string("bad request to ") + kSecretUrl + " auth=" + kToken +
                       " token-only=tok3nABCDEF0123456789" + " secret=" + kHmacSecret +
                       " path-only=Zx9SecretPathToken42"};
    webhook::WebhookSink sink(secret_config(), fake.transport(), [] { return kNow; });
    const auto refused = sink.send(alert_json());
    EXPECT_EQ(refused.code, Code::Fail);
    for (const char* secret : {kSecretUrl, kToken, "tok3nABCDEF0123456789", kHmacSecret,
                               "Zx9SecretPathToken42", "QueryS1gnature99"}) {
        EXPECT_THAT(refused.message, Not(HasSubstr(secret))) << refused.message;
    }
    EXPECT_THAT(refused.message, HasSubstr("auth=<redacted>"));

    fake.failure = http::TransportError(http::TransportError::Kind::Timeout,
                                        std::string("timeout on ") + kSecretUrl);
    const auto unreachable = sink.send(alert_json());
    EXPECT_EQ(unreachable.code, Code::Retry);
    EXPECT_THAT(unreachable.message, Not(HasSubstr("Zx9SecretPathToken42")));

    fake.failure = http::TransportError(http::TransportError::Kind::InvalidRequest,
                                        "plain http:// is not allowed");
    EXPECT_EQ(sink.send(alert_json()).code, Code::Fail);
}

TEST(WebhookSink, AnAlertTheTemplateCannotRenderFails) {
    FakeReceiver fake;
    auto config = secret_config();
    // Set directly, past parse_config's load-time check: this alert's annotation is an
    // object, which a text placeholder outside quotes cannot turn into JSON.
    config.request.body_template = webhook::BodyTemplate::parse(R"({"n": {{annotation}}})");
    webhook::WebhookSink sink(std::move(config), fake.transport(), [] { return kNow; });
    const auto result = sink.send(alert_json(json::parse(R"({"a":"b c"})")));
    EXPECT_EQ(result.code, Code::Fail);
    EXPECT_THAT(result.message, HasSubstr("body_template rendered a body that is not JSON"));
    EXPECT_TRUE(fake.seen.empty());
}

// ---- the real plugin, through the same table the host uses ----------------------

std::vector<std::string>& captured_logs() {
    static std::vector<std::string> logs;
    return logs;
}

void capture_log(void*, int32_t, const char* message) { captured_logs().emplace_back(message); }

const tattle::sdk::PluginFunctions* webhook_plugin() {
    for (const auto& functions : tattle::sdk::static_registry()) {
        if (std::string_view(functions.get_info()->type_name) == "webhook") return &functions;
    }
    return nullptr;
}

TEST(WebhookPlugin, SecretsStayOutOfErrorsAndLogs) {
    const auto* plugin = webhook_plugin();
    ASSERT_NE(plugin, nullptr);
    EXPECT_NO_THROW(json::parse(plugin->get_info()->config_schema));
    captured_logs().clear();
    tattle_host_api host{sizeof(tattle_host_api), nullptr, &capture_log};
    tattle_rc rc = TATTLE_RC_ERROR;

    const std::string config =
        std::string(R"({"url":"https://127.0.0.1:1/in/Zx9SecretPathToken42","headers":)") +
        R"({"Authorization":")" + kToken + R"("},"hmac_secret":")" + kHmacSecret +
        R"(","timeout_ms":2000})";
    tattle_create_args args{sizeof(tattle_create_args), &host, "hook", config.c_str()};
    void* sink = plugin->sink_create(&args, &rc);
    ASSERT_EQ(rc, TATTLE_RC_OK) << plugin->last_error(nullptr);
    const std::string alert = alert_json();
    tattle_send_result result{sizeof(tattle_send_result), 0};
    EXPECT_EQ(plugin->sink_send(sink, alert.data(), alert.size(), &result), TATTLE_RC_RETRY);
    const std::string error = plugin->last_error(sink);
    EXPECT_THAT(error, HasSubstr("webhook receiver not reached"));
    for (const char* secret : {"Zx9SecretPathToken42", kToken, kHmacSecret})
        EXPECT_THAT(error, Not(HasSubstr(secret)));
    plugin->sink_destroy(sink);

    // Refused configs name the key, never the value.
    const std::string plain = R"({"url":"http://hooks.example.test/in/Zx9SecretPathToken42"})";
    tattle_create_args plain_args{sizeof(tattle_create_args), &host, "hook", plain.c_str()};
    EXPECT_EQ(plugin->sink_create(&plain_args, &rc), nullptr);
    EXPECT_THAT(std::string(plugin->last_error(nullptr)), HasSubstr("allow_plain_http"));
    EXPECT_THAT(std::string(plugin->last_error(nullptr)), Not(HasSubstr("Zx9SecretPathToken42")));

    const std::string injected =
        R"({"url":"https://x/y","headers":{"Authorization":"tok3nABCDEF0123456789\r\nX: 1"}})";
    tattle_create_args injected_args{sizeof(tattle_create_args), &host, "hook", injected.c_str()};
    EXPECT_EQ(plugin->sink_create(&injected_args, &rc), nullptr);
    EXPECT_THAT(std::string(plugin->last_error(nullptr)), HasSubstr("contains a line break"));
    EXPECT_THAT(std::string(plugin->last_error(nullptr)), Not(HasSubstr("tok3nABCDEF0123456789")));

    // allow_plain_http says so in the log, without the URL's path.
    const std::string allowed =
        R"({"url":"http://127.0.0.1:1/in/Zx9SecretPathToken42","allow_plain_http":true})";
    tattle_create_args allowed_args{sizeof(tattle_create_args), &host, "hook", allowed.c_str()};
    void* plain_sink = plugin->sink_create(&allowed_args, &rc);
    ASSERT_NE(plain_sink, nullptr) << plugin->last_error(nullptr);
    plugin->sink_destroy(plain_sink);
    EXPECT_THAT(captured_logs(), Contains(HasSubstr("travel unencrypted")));
    for (const auto& line : captured_logs()) {
        for (const char* secret : {"Zx9SecretPathToken42", kToken, kHmacSecret})
            EXPECT_THAT(line, Not(HasSubstr(secret)));
    }
}

}  // namespace

#endif
