// The real webhook plugin, through the host's function table, against local HTTPS and
// HTTP servers (tests/support/https_server.py, make_test_ca.sh).
#if __has_include("webhook_sink.hpp") && __has_include("../../support/http/test_server.hpp")

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <boost/json.hpp>
#include <cstdio>
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

constexpr const char* kHmacSecret = "whsec_SharedSecretForTests";
constexpr const char* kToken = "Bearer apiTokenXYZ0123456789";
constexpr const char* kAlert =
    R"({"alert_id":"6f1c00000000000000000000000000aa","rule":{"name":"Create User","description":"d"},
        "destination":"hook","annotation":"username: \"user1\"",
        "summary":{"event_id":"e-1","event_name":"CreateUser","actor":"arn:aws:iam::123456789012:user/alice"},
        "origin":{"source":"local","batch":"x.json","index":0},"event":{"eventName":"CreateUser"}})";

using tattle::sink_tests::Outcome;
using tattle::sink_tests::PluginSink;

// What a receiver does to check a request: HMAC-SHA256(secret, timestamp + "." + body).
std::string receiver_signature(const std::string& timestamp, const std::string& body) {
    const std::string material = timestamp + "." + body;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_size = 0;
    HMAC(EVP_sha256(), kHmacSecret, static_cast<int>(std::string_view(kHmacSecret).size()),
         reinterpret_cast<const unsigned char*>(material.data()), material.size(), mac, &mac_size);
    std::string hex = "sha256=";
    char byte[3];
    for (unsigned int i = 0; i < mac_size; ++i) {
        std::snprintf(byte, sizeof byte, "%02x", mac[i]);
        hex += byte;
    }
    return hex;
}

TEST(WebhookHttps, SignedTemplatedPutArrivesIntact) {
    TestServer server({.script = R"([{"status": 204}, {"status": 422, "body": "bad"}])"});
    const std::string config = json::serialize(json::object{
        {"url", server.url("/hooks/inbound?key=QuerySecretValue42")},
        {"method", "PUT"},
        {"headers", json::object{{"Authorization", kToken}}},
        {"hmac_secret", kHmacSecret},
        {"body_template",
         R"({"text": "{{rule.name}}: {{annotation}}", "who": "{{summary.actor}}", "alert": {{alert_id | json}}})"},
        {"ca_file", TestCa::instance().ca_file()}});
    PluginSink sink("webhook", config);
    EXPECT_EQ(sink.send(kAlert).rc, TATTLE_RC_OK);
    const Outcome refused = sink.send(kAlert);
    EXPECT_EQ(refused.rc, TATTLE_RC_FAIL);
    EXPECT_THAT(refused.message, HasSubstr("HTTP 422 bad"));
    EXPECT_THAT(refused.message, Not(HasSubstr("QuerySecretValue42")));

    const auto requests = server.wait_for_requests(2);
    ASSERT_EQ(requests.size(), 2u);
    const auto& request = requests[0];
    EXPECT_EQ(request.method, "PUT");
    EXPECT_EQ(request.path, "/hooks/inbound?key=QuerySecretValue42");
    EXPECT_EQ(request.header("Authorization"), kToken);
    EXPECT_EQ(request.header("Content-Type"), "application/json");
    EXPECT_EQ(request.header("X-Tattle-Alert-Id"), "6f1c00000000000000000000000000aa");
    const json::value body = json::parse(request.body);
    EXPECT_EQ(body.at("text").as_string(), "Create User: username: \"user1\"");
    EXPECT_EQ(body.at("who").as_string(), "arn:aws:iam::123456789012:user/alice");
    EXPECT_EQ(body.at("alert").as_string(), "6f1c00000000000000000000000000aa");
    // The receiver's check passes on the bytes it got.
    const auto timestamp = request.header("X-Tattle-Timestamp");
    ASSERT_TRUE(timestamp.has_value());
    EXPECT_EQ(request.header("X-Tattle-Signature"), receiver_signature(*timestamp, request.body));
}

TEST(WebhookHttps, PlainHttpOnlyWhenAllowedAndTheDefaultBodyIsTheAlert) {
    TestServer server({.mode = ServerOptions::Mode::Http});
    const std::string config =
        json::serialize(json::object{{"url", server.url("/in")}, {"allow_plain_http", true}});
    PluginSink sink("webhook", config);
    EXPECT_EQ(sink.send(kAlert).rc, TATTLE_RC_OK);
    const auto requests = server.wait_for_requests(1);
    ASSERT_EQ(requests.size(), 1u);
    EXPECT_EQ(json::parse(requests[0].body), json::parse(kAlert));
    EXPECT_EQ(requests[0].method, "POST");
    EXPECT_FALSE(requests[0].header("X-Tattle-Signature").has_value());

    EXPECT_THROW(PluginSink("webhook", json::serialize(json::object{{"url", server.url("/in")}})),
                 std::runtime_error);
}

}  // namespace

#endif
