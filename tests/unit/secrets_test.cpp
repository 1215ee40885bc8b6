// Secret references (env:, file:) in values a plugin marks x-secret, and the
// redaction of every registered secret from logs and messages.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>

#include "tattle/logging.hpp"
#include "tattle/secrets.hpp"

namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const boost::json::value kSchema = boost::json::parse(R"({
  "type": "object",
  "properties": {
    "webhook_url": {"type": "string", "x-secret": true},
    "headers": {"type": "object", "x-secret": true},
    "channel": {"type": "string"}
  }
})");

class SecretsTest : public ::testing::Test {
protected:
    void SetUp() override { tattle::clear_secrets(); }
    void TearDown() override {
        tattle::clear_secrets();
        ::unsetenv("TATTLE_TEST_WEBHOOK");
    }
    tattle::PluginInstanceSpec spec(boost::json::object settings) {
        tattle::PluginInstanceSpec s;
        s.id = "slack";
        s.type = "slack_webhook";
        s.settings = std::move(settings);
        s.where = {"/etc/tattle/tattle.toml", 7, 1};
        s.value_locations["/webhook_url"] = {"/etc/tattle/tattle.toml", 10, 15};
        return s;
    }
};

TEST_F(SecretsTest, EnvReferenceIsResolvedAndRegistered) {
    ::setenv("TATTLE_TEST_WEBHOOK", "https://hooks.example/services/T1/B2/very-secret-token", 1);
    auto s = spec({{"webhook_url", "env:TATTLE_TEST_WEBHOOK"}, {"channel", "env:NOT_A_SECRET_FIELD"}});
    boost::json::value instance = s.settings;
    std::vector<tattle::Diagnostic> problems;
    tattle::resolve_secrets(kSchema, instance, s, "destination \"slack\"", problems);
    EXPECT_TRUE(problems.empty());
    EXPECT_EQ(instance.at("webhook_url").as_string(), "https://hooks.example/services/T1/B2/very-secret-token");
    EXPECT_EQ(instance.at("channel").as_string(), "env:NOT_A_SECRET_FIELD");  // only x-secret values resolve
    EXPECT_EQ(tattle::redact("posting to https://hooks.example/services/T1/B2/very-secret-token failed"),
              "posting to <redacted> failed");
}

TEST_F(SecretsTest, FileReferenceIsReadRelativeToTheConfigWithoutTrailingNewline) {
    const auto dir = std::filesystem::temp_directory_path() / ("tattle_secrets_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "token") << "file-held-secret-value\n";
    auto s = spec({{"webhook_url", "file:token"}});
    s.where.file = (dir / "tattle.toml").string();
    boost::json::value instance = s.settings;
    std::vector<tattle::Diagnostic> problems;
    tattle::resolve_secrets(kSchema, instance, s, "destination \"slack\"", problems);
    EXPECT_TRUE(problems.empty());
    EXPECT_EQ(instance.at("webhook_url").as_string(), "file-held-secret-value");
    std::filesystem::remove_all(dir);
}

TEST_F(SecretsTest, UnsetVariableIsReportedAtTheValueWithoutAnyValue) {
    auto s = spec({{"webhook_url", "env:TATTLE_TEST_WEBHOOK"}});
    boost::json::value instance = s.settings;
    std::vector<tattle::Diagnostic> problems;
    tattle::resolve_secrets(kSchema, instance, s, "destination \"slack\"", problems);
    ASSERT_EQ(problems.size(), 1U);
    EXPECT_EQ(problems[0].where.line, 10);
    EXPECT_THAT(problems[0].message, HasSubstr("TATTLE_TEST_WEBHOOK, which is not set"));
}

TEST_F(SecretsTest, LiteralSecretsAndNestedSecretObjectsAreRegistered) {
    auto s = spec({{"webhook_url", "https://literal.example/hook/abcdef"},
                   {"headers", {{"Authorization", "Bearer nested-token-123"}}}});
    boost::json::value instance = s.settings;
    std::vector<tattle::Diagnostic> problems;
    tattle::resolve_secrets(kSchema, instance, s, "destination \"slack\"", problems);
    EXPECT_EQ(tattle::redact("a https://literal.example/hook/abcdef b Bearer nested-token-123"),
              "a <redacted> b <redacted>");  // the whole header value is the secret
}

TEST_F(SecretsTest, LogLinesAreRedacted) {
    tattle::register_secret("log-line-secret-xyz");
    tattle::setup_logging(tattle::LogFormat::Json, "info");
    ::testing::internal::CaptureStderr();
    spdlog::error("request to https://x/log-line-secret-xyz failed");
    spdlog::default_logger()->flush();
    const std::string logged = ::testing::internal::GetCapturedStderr();
    EXPECT_THAT(logged, HasSubstr("request to https://x/<redacted> failed"));
    EXPECT_THAT(logged, Not(HasSubstr("log-line-secret-xyz")));
}

}  // namespace
