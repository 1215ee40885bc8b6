// Secret references (env:, file:, ssm:, secretsmanager:) in values a plugin marks
// x-secret, and the redaction of every registered secret from logs and messages. The AWS
// references are resolved against moto with signature checking on.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>

#include "../plugins/support/aws/moto_server.hpp"
#include "tattle/aws/service_client.hpp"
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

TEST_F(SecretsTest, SecretUrlsPathsAndTokensAreRedactedOnTheirOwnButNotTheirHost) {
    tattle::register_secret("https://hooks.example/services/T0/B0/urlTokenABCDEF123?sig=querySecret99887766");
    EXPECT_EQ(tattle::redact("POST https://hooks.example/services/T0/B0/urlTokenABCDEF123?sig=querySecret99887766"),
              "POST <redacted>");
    EXPECT_EQ(tattle::redact("not found: /services/T0/B0/urlTokenABCDEF123?sig=querySecret99887766"),
              "not found: <redacted>");
    EXPECT_EQ(tattle::redact("invalid token urlTokenABCDEF123, signature querySecret99887766"),
              "invalid token <redacted>, signature <redacted>");
    EXPECT_EQ(tattle::redact("https://hooks.example not reached; /services is fine"),
              "https://hooks.example not reached; /services is fine");
    EXPECT_THAT(tattle::url_secret_pieces("not a url"), ::testing::IsEmpty());
}

TEST_F(SecretsTest, ASecretCutShortByATruncatedMessageIsRedactedToo) {
    tattle::register_secret("hmacSecretValue0123456789");
    EXPECT_EQ(tattle::redact("receiver said: hmacSecretValue01..."), "receiver said: <redacted>...");
    EXPECT_EQ(tattle::redact("receiver said: hmacSecretVal\u2026"), "receiver said: <redacted>\u2026");
    EXPECT_EQ(tattle::redact("receiver said: hmacSecre"), "receiver said: <redacted>");
    // Not cut: a word that merely starts alike stays.
    EXPECT_EQ(tattle::redact("hmacSecretV is a different thing"), "hmacSecretV is a different thing");
    EXPECT_EQ(tattle::redact("short hmacSec..."), "short hmacSec...");  // 7 characters: too little to tell
}

// --- references that live in AWS --------------------------------------------------------

// What a lookup sees: only the variables given, so no shared files, profile or IMDS of
// the machine running the tests can take part.
tattle::SecretLookupEnvironment lookup_environment(std::map<std::string, std::string, std::less<>> variables) {
    variables.emplace("AWS_CONFIG_FILE", "/nonexistent/tattle-test/config");
    variables.emplace("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/tattle-test/credentials");
    variables.emplace("AWS_EC2_METADATA_DISABLED", "true");
    return tattle::aws::fixed_environment(std::move(variables));
}

std::vector<tattle::Diagnostic> resolve(const tattle::PluginInstanceSpec& spec, boost::json::value& instance) {
    std::vector<tattle::Diagnostic> problems;
    tattle::resolve_secrets(kSchema, instance, spec, "destination \"slack\" (slack_webhook)", problems);
    return problems;
}

TEST_F(SecretsTest, MalformedAwsReferencesAreReportedWithoutAnyLookup) {
    // No region, no endpoint, no credentials: any lookup would fail differently.
    tattle::set_secret_lookup_environment(lookup_environment({}));
    for (const auto& [reference, expected] : std::vector<std::pair<std::string, std::string>>{
             {"ssm:", "ssm: names no parameter"},
             {"secretsmanager:", "secretsmanager: names no secret"},
             {"secretsmanager:prod/slack#", "nothing follows '#'"},
             {"ssm:arn:aws:s3:::bucket/key", "not an ARN of the form arn:aws:ssm:REGION:ACCOUNT:parameter/NAME"},
             {"secretsmanager:arn:aws:ssm:us-east-1:123456789012:parameter/x",
              "not an ARN of the form arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME"}}) {
        auto s = spec({{"webhook_url", reference}});
        boost::json::value instance = s.settings;
        const auto problems = resolve(s, instance);
        ASSERT_EQ(problems.size(), 1U) << reference;
        EXPECT_EQ(problems[0].where.line, 10) << reference;
        EXPECT_THAT(problems[0].message, HasSubstr("\"webhook_url\" refers to ")) << reference;
        EXPECT_THAT(problems[0].message, HasSubstr(expected)) << reference;
    }
}

TEST_F(SecretsTest, AwsReferenceWithoutRegionSaysWhereARegionComesFrom) {
    tattle::set_secret_lookup_environment(lookup_environment({}));
    auto s = spec({{"webhook_url", "ssm:/tattle/slack"}});
    boost::json::value instance = s.settings;
    const auto problems = resolve(s, instance);
    ASSERT_EQ(problems.size(), 1U);
    EXPECT_THAT(problems[0].message, HasSubstr("refers to ssm:/tattle/slack: no AWS region"));
    EXPECT_THAT(problems[0].message, HasSubstr("AWS_REGION"));
}

// moto with signature checking, a user allowed everything, and the lookups pointed at it.
class AwsSecretsTest : public SecretsTest {
protected:
    static constexpr const char* kWebhookUrl = "https://hooks.slack.example/services/T0/B0/ssm-held-token";

    void SetUp() override {
        SecretsTest::SetUp();
        credentials_ = tattle::test::create_moto_user(moto_);
        tattle::set_secret_lookup_environment(environment("us-east-1"));
    }
    void TearDown() override {
        tattle::set_secret_lookup_environment({});
        SecretsTest::TearDown();
    }

    tattle::SecretLookupEnvironment environment(const std::string& region) const {
        return lookup_environment({{"AWS_ACCESS_KEY_ID", credentials_.access_key_id},
                                   {"AWS_SECRET_ACCESS_KEY", credentials_.secret_access_key},
                                   {"AWS_REGION", region},
                                   {"AWS_ENDPOINT_URL", moto_.url()}});
    }

    // A signed JSON 1.1 call made the way an administrator would set the secrets up.
    boost::json::value call(const tattle::aws::ServiceId& service, const std::string& target, boost::json::object body,
                            const std::string& region = "us-east-1") const {
        tattle::aws::ServiceSettings settings;
        settings.region = region;
        settings.endpoint_url = moto_.url();
        settings.environment = lookup_environment({});
        settings.credentials = tattle::aws::make_static_credentials_provider(credentials_);
        tattle::aws::ServiceClient client(service, std::move(settings));
        return client.json_call(target, body, target, "1.1");
    }
    void put_parameter(const std::string& name, const std::string& value, const std::string& region = "us-east-1") {
        call(tattle::aws::service::ssm, "AmazonSSM.PutParameter",
             {{"Name", name}, {"Value", value}, {"Type", "SecureString"}}, region);
    }

    tattle::test::MotoServer moto_{3};
    tattle::aws::Credentials credentials_;
};

TEST_F(AwsSecretsTest, SecureStringParameterResolvesOnceForEveryPluginAndIsRedacted) {
    put_parameter("/tattle/slack", kWebhookUrl);
    auto first = spec({{"webhook_url", "ssm:/tattle/slack"}, {"channel", "ssm:/tattle/slack"}});
    boost::json::value instance = first.settings;
    EXPECT_THAT(resolve(first, instance), ::testing::IsEmpty());
    EXPECT_EQ(instance.at("webhook_url").as_string(), kWebhookUrl);
    EXPECT_EQ(instance.at("channel").as_string(), "ssm:/tattle/slack");  // not x-secret: left alone
    EXPECT_EQ(tattle::redact(std::string("POST ") + kWebhookUrl + ": 404"), "POST <redacted>: 404");

    // Gone from the store, yet a second destination naming it still gets the value: the
    // process asked AWS once.
    call(tattle::aws::service::ssm, "AmazonSSM.DeleteParameter", {{"Name", "/tattle/slack"}});
    auto second = spec({{"webhook_url", "ssm:/tattle/slack"}});
    second.id = "other";
    boost::json::value other = second.settings;
    EXPECT_THAT(resolve(second, other), ::testing::IsEmpty());
    EXPECT_EQ(other.at("webhook_url").as_string(), kWebhookUrl);
}

TEST_F(AwsSecretsTest, MissingParameterIsReportedAtTheValueWithAwsCode) {
    put_parameter("/tattle/present", kWebhookUrl);
    auto s = spec({{"webhook_url", "ssm:/tattle/missing"}, {"headers", {{"X-Token", "ssm:/tattle/present"}}}});
    boost::json::value instance = s.settings;
    const auto problems = resolve(s, instance);
    ASSERT_EQ(problems.size(), 1U);
    EXPECT_EQ(problems[0].where.file, "/etc/tattle/tattle.toml");
    EXPECT_EQ(problems[0].where.line, 10);
    EXPECT_THAT(problems[0].message,
                HasSubstr("destination \"slack\" (slack_webhook): \"webhook_url\" refers to ssm:/tattle/missing: "
                          "ssm:GetParameter: ParameterNotFound"));
    EXPECT_THAT(problems[0].to_string(), Not(HasSubstr("ssm-held-token")));
    EXPECT_THAT(problems[0].to_string(), Not(HasSubstr(credentials_.secret_access_key)));
    // The other value of the same destination still resolved.
    EXPECT_EQ(instance.at("headers").at("X-Token").as_string(), kWebhookUrl);
}

TEST_F(AwsSecretsTest, ParameterArnIsLookedUpInItsOwnRegion) {
    put_parameter("/tattle/eu", kWebhookUrl, "eu-west-1");
    // The environment says us-east-1, where moto has no such parameter.
    auto s = spec({{"webhook_url", "ssm:arn:aws:ssm:eu-west-1:123456789012:parameter/tattle/eu"}});
    boost::json::value instance = s.settings;
    EXPECT_THAT(resolve(s, instance), ::testing::IsEmpty());
    EXPECT_EQ(instance.at("webhook_url").as_string(), kWebhookUrl);

    auto plain = spec({{"webhook_url", "ssm:/tattle/eu"}});
    boost::json::value plain_instance = plain.settings;
    const auto problems = resolve(plain, plain_instance);
    ASSERT_EQ(problems.size(), 1U);
    EXPECT_THAT(problems[0].message, HasSubstr("ParameterNotFound"));
}

TEST_F(AwsSecretsTest, JsonSecretKeyIsPickedAndEveryPartIsRedacted) {
    const std::string secret =
        R"({"webhook_url": "https://hooks.slack.example/services/T1/B1/sm-held-token", "token": "sm-other-token"})";
    call(tattle::aws::service::secrets_manager, "secretsmanager.CreateSecret",
         {{"Name", "prod/slack"}, {"SecretString", secret}});
    call(tattle::aws::service::secrets_manager, "secretsmanager.CreateSecret",
         {{"Name", "prod/plain"}, {"SecretString", "plain-secret-text"}});

    auto s = spec({{"webhook_url", "secretsmanager:prod/slack#webhook_url"},
                   {"headers", {{"Authorization", "secretsmanager:prod/plain"}, {"X-Whole", "secretsmanager:prod/slack"}}}});
    boost::json::value instance = s.settings;
    EXPECT_THAT(resolve(s, instance), ::testing::IsEmpty());
    EXPECT_EQ(instance.at("webhook_url").as_string(), "https://hooks.slack.example/services/T1/B1/sm-held-token");
    EXPECT_EQ(instance.at("headers").at("Authorization").as_string(), "plain-secret-text");
    EXPECT_EQ(instance.at("headers").at("X-Whole").as_string(), secret);
    EXPECT_EQ(tattle::redact("https://hooks.slack.example/services/T1/B1/sm-held-token plain-secret-text"),
              "<redacted> <redacted>");

    auto wrong = spec({{"webhook_url", "secretsmanager:prod/slack#channel"},
                       {"headers", {{"A", "secretsmanager:prod/plain#token"}, {"B", "secretsmanager:prod/absent"}}}});
    boost::json::value wrong_instance = wrong.settings;
    const auto problems = resolve(wrong, wrong_instance);
    ASSERT_EQ(problems.size(), 3U);
    EXPECT_THAT(problems[0].message, HasSubstr("secretsmanager:prod/slack#channel: the secret's JSON object has no key "
                                               "\"channel\""));
    EXPECT_THAT(problems[1].message,
                HasSubstr("secretsmanager:prod/plain#token: the secret is not a JSON object"));
    EXPECT_THAT(problems[2].message,
                HasSubstr("secretsmanager:prod/absent: secretsmanager:GetSecretValue: ResourceNotFoundException"));
    for (const auto& problem : problems) {
        EXPECT_THAT(problem.message, Not(HasSubstr("sm-held-token"))) << problem.message;
        EXPECT_THAT(problem.message, Not(HasSubstr("sm-other-token"))) << problem.message;
        EXPECT_THAT(problem.message, Not(HasSubstr("plain-secret-text"))) << problem.message;
    }
}

TEST_F(AwsSecretsTest, RefusalsNameAwsCodeAndNoCredential) {
    put_parameter("/tattle/slack", kWebhookUrl);
    // A second user without any policy: signed correctly, allowed nothing.
    const auto iam = [&](std::vector<std::pair<std::string, std::string>> form) {
        form.insert(form.begin(), {{"Version", "2010-05-08"}, {"UserName", "powerless"}});
        const auto answer = tattle::test::moto_query(moto_.url(), "iam", credentials_, form);
        EXPECT_EQ(answer.status, 200) << answer.body;
        return answer.body;
    };
    iam({{"Action", "CreateUser"}});
    const std::string key = iam({{"Action", "CreateAccessKey"}});
    const std::string key_id = tattle::aws::xml_text(key, "AccessKeyId").value_or("");
    const std::string secret_key = tattle::aws::xml_text(key, "SecretAccessKey").value_or("");
    ASSERT_FALSE(secret_key.empty());

    const auto refusal = [&](const std::string& access_key, const std::string& secret) {
        tattle::set_secret_lookup_environment(lookup_environment({{"AWS_ACCESS_KEY_ID", access_key},
                                                                  {"AWS_SECRET_ACCESS_KEY", secret},
                                                                  {"AWS_REGION", "us-east-1"},
                                                                  {"AWS_ENDPOINT_URL", moto_.url()}}));
        auto s = spec({{"webhook_url", "ssm:/tattle/slack"}});
        boost::json::value instance = s.settings;
        const auto problems = resolve(s, instance);
        EXPECT_EQ(instance.at("webhook_url").as_string(), "ssm:/tattle/slack");  // nothing substituted
        return problems.size() == 1 ? problems[0].to_string() : std::string("no single problem");
    };
    // moto answers AccessDenied where AWS says AccessDeniedException: both start alike.
    const std::string denied = refusal(key_id, secret_key);
    EXPECT_THAT(denied, HasSubstr("refers to ssm:/tattle/slack: ssm:GetParameter: AccessDenied"));
    EXPECT_THAT(denied, Not(HasSubstr(secret_key)));
    const std::string wrong_key = refusal(key_id, "wrong-secret-access-key-0123456789");
    EXPECT_THAT(wrong_key, HasSubstr("SignatureDoesNotMatch"));
    EXPECT_THAT(wrong_key, Not(HasSubstr("wrong-secret-access-key-0123456789")));
    EXPECT_THAT(wrong_key, Not(HasSubstr("ssm-held-token")));
}

}  // namespace
