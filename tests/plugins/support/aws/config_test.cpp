// Shared config/credentials file parsing, profile selection, region and endpoint resolution.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "../http/test_server.hpp"
#include "tattle/aws/config.hpp"

namespace {

namespace fs = std::filesystem;
using namespace tattle::aws;
using ::testing::HasSubstr;
using ::testing::Not;

using Variables = std::map<std::string, std::string, std::less<>>;

class TempDir {
public:
    TempDir() : path_(tattle::test::make_temp_dir("tattle-aws-config-")) {}
    ~TempDir() {
        std::error_code ignored;
        fs::remove_all(path_, ignored);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    std::string write(const std::string& name, const std::string& text) const {
        const auto file = path_ / name;
        fs::create_directories(file.parent_path());
        std::ofstream(file) << text;
        return file.string();
    }
    std::string path(const std::string& name) const { return (path_ / name).string(); }

private:
    fs::path path_;
};

std::string error_of(const std::function<void()>& call) {
    try {
        call();
    } catch (const ConfigError& error) {
        return error.what();
    }
    return "(no error)";
}

// --- INI format ------------------------------------------------------------------------------

TEST(SharedConfigFormat, SectionsPropertiesAndComments) {
    const auto sections = parse_ini(R"(# a comment
; another
[default]
Region = eu-west-1   # inline comment
aws_access_key_id=AKID
output = json;not-a-comment

[profile  dev ]
s3 =
  endpoint_url = http://localhost:9000
  addressing_style = path
role_arn = arn:aws:iam::1:role/x
)",
                                    "config");
    ASSERT_EQ(sections.size(), 2U);
    const auto& defaults = sections.at("default");
    EXPECT_EQ(defaults.at("region"), "eu-west-1");
    EXPECT_EQ(defaults.at("aws_access_key_id"), "AKID");
    EXPECT_EQ(defaults.at("output"), "json;not-a-comment");
    const auto& dev = sections.at("profile  dev");
    EXPECT_EQ(dev.at("s3.endpoint_url"), "http://localhost:9000");
    EXPECT_EQ(dev.at("s3.addressing_style"), "path");
    EXPECT_EQ(dev.at("role_arn"), "arn:aws:iam::1:role/x");
}

TEST(SharedConfigFormat, ErrorsGiveTheLineButNotItsText) {
    const std::string secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    auto message = error_of([&] { parse_ini("[default]\naws_access_key_id = AKID\n" + secret + "\n", "/x/credentials"); });
    EXPECT_THAT(message, HasSubstr("/x/credentials:3:"));
    EXPECT_THAT(message, Not(HasSubstr(secret)));
    EXPECT_THAT(error_of([] { parse_ini("key = value\n", "f"); }), HasSubstr("f:1: a property before the first [section]"));
    EXPECT_THAT(error_of([] { parse_ini("[default\n", "f"); }), HasSubstr("f:1:"));
}

TEST(SharedConfigFiles, ProfilesFromBothFilesCredentialsFileWins) {
    TempDir dir;
    const auto config = dir.write("config", R"([default]
region = eu-west-1
aws_access_key_id = FROM_CONFIG
[profile dev]
region = us-west-2
[services local]
sqs =
  endpoint_url = http://localhost:9324
[plain]
region = ap-south-1
)");
    const auto credentials = dir.write("credentials", R"([default]
aws_access_key_id = FROM_CREDENTIALS
aws_secret_access_key = S
[only-here]
aws_access_key_id = X
)");
    const auto shared = SharedConfig::load(config, credentials);
    EXPECT_TRUE(shared.config_found());
    EXPECT_TRUE(shared.credentials_found());
    const auto merged = shared.profile("default");
    ASSERT_TRUE(merged);
    EXPECT_EQ(merged->at("aws_access_key_id"), "FROM_CREDENTIALS");
    EXPECT_EQ(merged->at("region"), "eu-west-1");
    EXPECT_TRUE(shared.profile("dev"));
    EXPECT_TRUE(shared.profile("only-here"));
    // In the config file a section without "profile " is not a profile.
    EXPECT_FALSE(shared.profile("plain"));
    ASSERT_NE(shared.services("local"), nullptr);
    EXPECT_EQ(shared.services("local")->at("sqs.endpoint_url"), "http://localhost:9324");
}

TEST(SharedConfigFiles, MissingFilesAreEmptyAndPathsComeFromTheEnvironment) {
    TempDir dir;
    const auto shared = SharedConfig::load(fixed_environment({{"HOME", dir.path("home")}}));
    EXPECT_EQ(shared.config_path(), dir.path("home") + "/.aws/config");
    EXPECT_EQ(shared.credentials_path(), dir.path("home") + "/.aws/credentials");
    EXPECT_FALSE(shared.config_found());
    EXPECT_FALSE(shared.profile("default"));

    const auto config = dir.write("elsewhere/cfg", "[profile x]\nregion = eu-north-1\n");
    const auto moved = SharedConfig::load(
        fixed_environment({{"HOME", dir.path("home")}, {"AWS_CONFIG_FILE", config}, {"AWS_SHARED_CREDENTIALS_FILE", "~/c"}}));
    EXPECT_EQ(moved.config_path(), config);
    EXPECT_EQ(moved.credentials_path(), dir.path("home") + "/c");
    EXPECT_TRUE(moved.profile("x"));
}

TEST(Profiles, SelectionOrder) {
    EXPECT_EQ(selected_profile(fixed_environment({})), "default");
    EXPECT_EQ(selected_profile(fixed_environment({{"AWS_DEFAULT_PROFILE", "legacy"}})), "legacy");
    EXPECT_EQ(selected_profile(fixed_environment({{"AWS_PROFILE", "dev"}, {"AWS_DEFAULT_PROFILE", "legacy"}})), "dev");
    EXPECT_EQ(selected_profile(fixed_environment({{"AWS_PROFILE", "dev"}}), "plugin"), "plugin");
    EXPECT_EQ(selected_profile(fixed_environment({{"AWS_PROFILE", ""}})), "default");
}

// --- region ----------------------------------------------------------------------------------

TEST(Region, ConfiguredThenEnvironmentThenProfile) {
    TempDir dir;
    const auto shared = SharedConfig::load(dir.write("config", "[profile dev]\nregion = ap-southeast-2\n"), dir.path("none"));
    const Variables both{{"AWS_REGION", "eu-west-1"}, {"AWS_DEFAULT_REGION", "us-west-2"}};
    EXPECT_EQ(resolve_region("eu-central-1", fixed_environment(both), shared, "dev"), "eu-central-1");
    EXPECT_EQ(resolve_region("", fixed_environment(both), shared, "dev"), "eu-west-1");
    EXPECT_EQ(resolve_region("", fixed_environment({{"AWS_DEFAULT_REGION", "us-west-2"}}), shared, "dev"), "us-west-2");
    EXPECT_EQ(resolve_region("", fixed_environment({}), shared, "dev"), "ap-southeast-2");
    EXPECT_FALSE(find_region("", fixed_environment({}), shared, "default"));
}

TEST(Region, MissingOrInvalidIsAClearError) {
    TempDir dir;
    const auto shared = SharedConfig::load(dir.path("config"), dir.path("credentials"));
    const auto message = error_of([&] { resolve_region("", fixed_environment({}), shared, "default"); });
    EXPECT_THAT(message, HasSubstr("no AWS region"));
    EXPECT_THAT(message, HasSubstr("AWS_REGION"));
    EXPECT_THAT(message, HasSubstr(dir.path("config")));
    EXPECT_THAT(error_of([&] { resolve_region("eu-west-1.evil.com/", fixed_environment({}), shared, "default"); }),
                HasSubstr("not a valid AWS region name"));
}

// --- endpoints -------------------------------------------------------------------------------

TEST(Endpoints, Defaults) {
    const auto shared = SharedConfig::load("/nonexistent/config", "/nonexistent/credentials");
    const auto env = fixed_environment({});
    EXPECT_EQ(resolve_endpoint(service::sqs, "eu-west-1", "", env, shared, "default").url,
              "https://sqs.eu-west-1.amazonaws.com");
    EXPECT_EQ(resolve_endpoint(service::ses, "eu-west-1", "", env, shared, "default").url,
              "https://email.eu-west-1.amazonaws.com");
    EXPECT_EQ(resolve_endpoint(service::s3, "us-east-1", "", env, shared, "default").url,
              "https://s3.us-east-1.amazonaws.com");
    EXPECT_EQ(resolve_endpoint(service::sns, "cn-north-1", "", env, shared, "default").url,
              "https://sns.cn-north-1.amazonaws.com.cn");
    EXPECT_EQ(resolve_endpoint(service::sts, "", "", env, shared, "default").url, "https://sts.amazonaws.com");
    const auto endpoint = resolve_endpoint(service::sts, "eu-west-1", "", env, shared, "default");
    EXPECT_EQ(endpoint.url, "https://sts.eu-west-1.amazonaws.com");
    EXPECT_FALSE(endpoint.is_custom());
    EXPECT_THAT(error_of([&] { resolve_endpoint(service::sqs, "", "", env, shared, "default"); }),
                HasSubstr("no AWS region"));
}

TEST(Endpoints, PrecedenceOfConfiguredUrls) {
    TempDir dir;
    const auto shared = SharedConfig::load(dir.write("config", R"([profile dev]
services = local
endpoint_url = http://profile:1
[profile plain]
endpoint_url = http://plain-profile:2/
[services local]
sqs =
  endpoint_url = http://services-section:3
)"),
                                           dir.path("credentials"));
    Variables variables{{"AWS_ENDPOINT_URL_SQS", "http://sqs-variable:4"}, {"AWS_ENDPOINT_URL", "http://global:5"}};
    auto resolve = [&](std::string_view configured, std::string_view profile, const Variables& values) {
        return resolve_endpoint(service::sqs, "eu-west-1", configured, fixed_environment(values), shared, profile);
    };
    EXPECT_EQ(resolve("http://127.0.0.1:9324/", "dev", variables).url, "http://127.0.0.1:9324");
    EXPECT_EQ(resolve("http://127.0.0.1:9324/", "dev", variables).source, "endpoint_url");
    EXPECT_EQ(resolve("", "dev", variables).url, "http://sqs-variable:4");
    EXPECT_EQ(resolve("", "dev", variables).source, "AWS_ENDPOINT_URL_SQS");
    variables.erase("AWS_ENDPOINT_URL_SQS");
    EXPECT_EQ(resolve("", "dev", variables).url, "http://global:5");
    variables.clear();
    EXPECT_EQ(resolve("", "dev", variables).url, "http://services-section:3");
    EXPECT_EQ(resolve("", "plain", variables).url, "http://plain-profile:2");
    EXPECT_EQ(resolve("", "default", variables).url, "https://sqs.eu-west-1.amazonaws.com");
    // The SNS service has no entry in the services section: the profile's endpoint_url applies.
    EXPECT_EQ(resolve_endpoint(service::sns, "eu-west-1", "", fixed_environment({}), shared, "dev").url, "http://profile:1");

    // Configured endpoints can be switched off wholesale, except the plugin's own setting.
    variables = {{"AWS_ENDPOINT_URL", "http://global:5"}, {"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"}};
    EXPECT_EQ(resolve("", "dev", variables).url, "https://sqs.eu-west-1.amazonaws.com");
    EXPECT_EQ(resolve("http://mine:6", "dev", variables).url, "http://mine:6");
}

TEST(Endpoints, InvalidUrlsAreRefusedWithTheirSource) {
    const auto shared = SharedConfig::load("/nonexistent/config", "/nonexistent/credentials");
    EXPECT_THAT(error_of([&] {
                    resolve_endpoint(service::s3, "eu-west-1", "", fixed_environment({{"AWS_ENDPOINT_URL_S3", "ftp://x"}}),
                                     shared, "default");
                }),
                HasSubstr("AWS_ENDPOINT_URL_S3"));
    EXPECT_THAT(error_of([&] { resolve_endpoint(service::s3, "eu-west-1", "localhost:9000", fixed_environment({}), shared, "default"); }),
                HasSubstr("endpoint_url"));
    EXPECT_THAT(error_of([&] {
                    resolve_endpoint(service::s3, "eu-west-1", "https://user:password@host/", fixed_environment({}),
                                     shared, "default");
                }),
                Not(HasSubstr("password")));
}

// --- S3 URLs ---------------------------------------------------------------------------------

TEST(S3Urls, AddressingStyles) {
    const Endpoint aws{"https://s3.eu-west-1.amazonaws.com", "default"};
    EXPECT_EQ(s3_url(aws, "trail-logs", "AWSLogs/1/a b+c.json.gz"),
              "https://trail-logs.s3.eu-west-1.amazonaws.com/AWSLogs/1/a%20b%2Bc.json.gz");
    EXPECT_EQ(s3_url(aws, "trail-logs", "k", S3AddressingStyle::Path), "https://s3.eu-west-1.amazonaws.com/trail-logs/k");
    EXPECT_EQ(s3_url(aws, "trail-logs", ""), "https://trail-logs.s3.eu-west-1.amazonaws.com/");
    EXPECT_EQ(s3_url(aws, "trail-logs", "", S3AddressingStyle::Path), "https://s3.eu-west-1.amazonaws.com/trail-logs");
    // Dots break the wildcard certificate, capitals are not DNS names: path style.
    EXPECT_EQ(s3_url(aws, "my.trail", "k"), "https://s3.eu-west-1.amazonaws.com/my.trail/k");
    EXPECT_EQ(s3_url(aws, "my.trail", "k", S3AddressingStyle::Virtual), "https://my.trail.s3.eu-west-1.amazonaws.com/k");
    // A name that is no host name's part is never put in the host, even when asked to.
    for (const char* bucket : {"", "Old_Bucket", "evil.example/x", "evil.example#"}) {
        EXPECT_THAT(error_of([&] { s3_url(aws, bucket, "k", S3AddressingStyle::Virtual); }),
                    HasSubstr("cannot be part of a host name: use path-style addressing"))
            << bucket;
        EXPECT_THAT(s3_url(aws, bucket, "k"), ::testing::StartsWith("https://s3.eu-west-1.amazonaws.com/")) << bucket;
    }
    EXPECT_EQ(s3_url(aws, "evil.example/x#", "k"), "https://s3.eu-west-1.amazonaws.com/evil.example%2Fx%23/k");
    // Local stacks: an IP address or localhost cannot carry the bucket as a subdomain.
    EXPECT_EQ(s3_url({"http://127.0.0.1:5000", "endpoint_url"}, "trail", "k"), "http://127.0.0.1:5000/trail/k");
    EXPECT_EQ(s3_url({"http://localhost:4566/base", "endpoint_url"}, "trail", "k"), "http://localhost:4566/base/trail/k");
    EXPECT_EQ(s3_url({"http://[::1]:9000", "endpoint_url"}, "trail", "k"), "http://[::1]:9000/trail/k");
}

TEST(EnvironmentFlags, TrueFalseOrError) {
    EXPECT_TRUE(env_flag(fixed_environment({{"X", "TRUE"}}), "X"));
    EXPECT_FALSE(env_flag(fixed_environment({{"X", "false"}}), "X", true));
    EXPECT_TRUE(env_flag(fixed_environment({}), "X", true));
    EXPECT_THAT(error_of([] { env_flag(fixed_environment({{"X", "yes"}}), "X"); }), HasSubstr("X must be true or false"));
}

}  // namespace
