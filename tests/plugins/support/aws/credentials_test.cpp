// The credentials chain: its order, the shared files, container credentials and IMDSv2
// against a local scripted server (tests/support/https_server.py), refresh before expiry,
// AssumeRole and web identity against a scripted STS, and sts:AssumeRole against moto with
// signature checking on.

#include <arpa/inet.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "../http/test_server.hpp"
#include "moto_server.hpp"
#include "tattle/aws/credentials.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace tattle::aws;
using tattle::test::RecordedRequest;
using tattle::test::ServerOptions;
using tattle::test::MotoServer;
using tattle::test::TestServer;
using tattle::test::unused_port;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

using Clock = std::chrono::system_clock;

constexpr const char* kEnvSecret = "env-secret-key-EXAMPLE";
constexpr const char* kFileSecret = "file-secret-key-EXAMPLE";
constexpr const char* kContainerToken = "Bearer container-auth-token-EXAMPLE";

std::string iso8601(Clock::time_point time) {
    const std::time_t seconds = Clock::to_time_t(time);
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
    return text;
}

// The time the providers see: it stands still until a test moves it, so a refresh
// happens exactly when a test says, however slow the machine (sanitizers, load).
class TestClock {
public:
    // Whole seconds, as the ISO 8601 expirations in the scripted responses carry them.
    TestClock() : now_(std::chrono::floor<std::chrono::seconds>(Clock::now())) {}
    Clock::time_point now() const { return now_.load(); }
    void set(Clock::time_point time) { now_.store(time); }

private:
    std::atomic<Clock::time_point> now_;
};

// A HOME of its own, IMDS off unless a test turns it on, files written on demand, and a
// clock of its own.
class Sandbox {
public:
    Sandbox() : dir_(tattle::test::make_temp_dir("tattle-aws-credentials-")) {
        variables["HOME"] = dir_.string();
        variables["AWS_EC2_METADATA_DISABLED"] = "true";
    }
    ~Sandbox() {
        std::error_code ignored;
        fs::remove_all(dir_, ignored);
    }
    Sandbox(const Sandbox&) = delete;
    Sandbox& operator=(const Sandbox&) = delete;

    std::string write(const std::string& name, const std::string& text) const {
        const auto file = dir_ / name;
        fs::create_directories(file.parent_path());
        std::ofstream(file) << text;
        return file.string();
    }
    std::string path(const std::string& name) const { return (dir_ / name).string(); }

    CredentialsOptions options() const {
        CredentialsOptions options;
        options.environment = fixed_environment(variables);
        options.http.https_proxy = "";
        options.http.no_proxy = "";
        options.http.connect_timeout = 2s;
        options.http.total_timeout = 5s;
        options.clock = [this] { return clock.now(); };
        return options;
    }

    Credentials resolve() const { return make_credentials_provider(options())->credentials(); }

    std::map<std::string, std::string, std::less<>> variables;
    TestClock clock;

private:
    fs::path dir_;
};

// When credentials living `lifetime` from the sandbox's present are due for refresh: at
// half their life, since that is shorter than the default margin (300 s) here.
Clock::time_point half_life(const Sandbox& sandbox, std::chrono::seconds lifetime) {
    return sandbox.clock.now() + lifetime / 2;
}

std::string error_of(const std::function<void()>& call) {
    try {
        call();
    } catch (const CredentialsError& error) {
        return error.what();
    }
    return "(no error)";
}

std::string credentials_json(const std::string& key, Clock::time_point expiration, const std::string& secret = "") {
    return boost::json::serialize(boost::json::object{{"AccessKeyId", key},
                                                      {"SecretAccessKey", secret.empty() ? "secret-of-" + key : secret},
                                                      {"Token", "token-of-" + key},
                                                      {"Expiration", iso8601(expiration)},
                                                      {"Code", "Success"},
                                                      {"Type", "AWS-HMAC"}});
}

// A https_server.py script entry answering with `body` (a JSON text is sent as JSON).
boost::json::object reply(const std::string& body, int status = 200) {
    boost::system::error_code error;
    auto parsed = boost::json::parse(body, error);
    boost::json::object entry{{"status", status}};
    if (!error && parsed.is_object()) {
        entry["body"] = std::move(parsed);
    } else {
        entry["body"] = body;
    }
    return entry;
}

TestServer scripted_server(const boost::json::array& script) {
    ServerOptions options;
    options.mode = ServerOptions::Mode::Http;
    options.script = boost::json::serialize(script);
    return TestServer(options);
}


std::string sts_credentials_xml(const std::string& key, Clock::time_point expiration, const std::string& action = "AssumeRole") {
    return "<" + action + "Response xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><" + action +
           "Result><Credentials><AccessKeyId>" + key + "</AccessKeyId><SecretAccessKey>secret-of-" + key +
           "</SecretAccessKey><SessionToken>token/of+" + key + "&amp;more=</SessionToken><Expiration>" +
           iso8601(expiration) + "</Expiration></Credentials></" + action + "Result></" + action + "Response>";
}

// --- chain order -------------------------------------------------------------------------------

TEST(CredentialsChain, EnvironmentBeatsFiles) {
    Sandbox sandbox;
    sandbox.write(".aws/credentials", std::string("[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = ") +
                                          kFileSecret + "\n");
    sandbox.variables["AWS_ACCESS_KEY_ID"] = "AKIDENV";
    sandbox.variables["AWS_SECRET_ACCESS_KEY"] = kEnvSecret;
    sandbox.variables["AWS_SESSION_TOKEN"] = "env-token";
    const auto credentials = sandbox.resolve();
    EXPECT_EQ(credentials.access_key_id, "AKIDENV");
    EXPECT_EQ(credentials.secret_access_key, kEnvSecret);
    EXPECT_EQ(credentials.session_token, "env-token");
    EXPECT_EQ(credentials.source, "environment");
}

TEST(CredentialsChain, PartialEnvironmentIsAnErrorWithoutTheSecret) {
    Sandbox sandbox;
    sandbox.variables["AWS_SECRET_ACCESS_KEY"] = kEnvSecret;
    const auto message = error_of([&] { sandbox.resolve(); });
    EXPECT_THAT(message, HasSubstr("AWS_ACCESS_KEY_ID is not"));
    EXPECT_THAT(message, Not(HasSubstr(kEnvSecret)));
}

TEST(CredentialsChain, ProfileSelection) {
    Sandbox sandbox;
    const auto file = sandbox.write(".aws/credentials", R"([default]
aws_access_key_id = AKIDDEFAULT
aws_secret_access_key = s1
[dev]
aws_access_key_id = AKIDDEV
aws_secret_access_key = s2
aws_session_token = dev-token
[plugin]
aws_access_key_id = AKIDPLUGIN
aws_secret_access_key = s3
)");
    EXPECT_EQ(sandbox.resolve().access_key_id, "AKIDDEFAULT");
    sandbox.variables["AWS_PROFILE"] = "dev";
    const auto dev = sandbox.resolve();
    EXPECT_EQ(dev.access_key_id, "AKIDDEV");
    EXPECT_EQ(dev.session_token, "dev-token");
    EXPECT_EQ(dev.source, "profile \"dev\" in " + file);
    auto options = sandbox.options();
    options.profile = "plugin";  // a plugin's `profile` setting beats AWS_PROFILE
    EXPECT_EQ(make_credentials_provider(options)->credentials().access_key_id, "AKIDPLUGIN");
}

TEST(CredentialsChain, ConfigFileOnlyProfile) {
    Sandbox sandbox;
    const auto config = sandbox.write("elsewhere/config", R"([profile reader]
region = eu-west-1
aws_access_key_id = AKIDCONFIG
aws_secret_access_key = config-secret
)");
    sandbox.variables["AWS_CONFIG_FILE"] = config;
    sandbox.variables["AWS_PROFILE"] = "reader";
    const auto credentials = sandbox.resolve();
    EXPECT_EQ(credentials.access_key_id, "AKIDCONFIG");
    EXPECT_EQ(credentials.source, "profile \"reader\" in " + config);
}

TEST(CredentialsChain, CredentialsFileBeatsConfigFileForOneProfile) {
    Sandbox sandbox;
    sandbox.write(".aws/config", "[default]\naws_access_key_id = AKIDCONFIG\naws_secret_access_key = c\n");
    const auto credentials_file = sandbox.write("custom/creds", "[default]\naws_access_key_id = AKIDCREDS\naws_secret_access_key = k\n");
    sandbox.variables["AWS_SHARED_CREDENTIALS_FILE"] = credentials_file;
    EXPECT_EQ(sandbox.resolve().access_key_id, "AKIDCREDS");
}

TEST(CredentialsChain, NamedProfileThatDoesNotExistIsAnError) {
    Sandbox sandbox;
    sandbox.write(".aws/credentials", "[default]\naws_access_key_id = A\naws_secret_access_key = B\n");
    sandbox.variables["AWS_PROFILE"] = "typo";
    const auto message = error_of([&] { sandbox.resolve(); });
    EXPECT_THAT(message, HasSubstr("profile \"typo\" not found"));
    EXPECT_THAT(message, HasSubstr(sandbox.path(".aws/credentials")));
}

TEST(CredentialsChain, MissingEverythingListsWhatWasTried) {
    Sandbox sandbox;
    const auto message = error_of([&] { sandbox.resolve(); });
    EXPECT_THAT(message, StartsWith("no AWS credentials found; tried "));
    EXPECT_THAT(message, HasSubstr("environment (AWS_ACCESS_KEY_ID not set)"));
    EXPECT_THAT(message, HasSubstr("web identity (AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN not set)"));
    EXPECT_THAT(message, HasSubstr("shared files (no profile \"default\" in " + sandbox.path(".aws/credentials") +
                                   " (not found) and " + sandbox.path(".aws/config") + " (not found))"));
    EXPECT_THAT(message, HasSubstr("container credentials (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and "
                                   "AWS_CONTAINER_CREDENTIALS_FULL_URI not set)"));
    EXPECT_THAT(message, HasSubstr("EC2 instance metadata (disabled by AWS_EC2_METADATA_DISABLED)"));
    // In the SDKs' order.
    EXPECT_LT(message.find("environment"), message.find("web identity"));
    EXPECT_LT(message.find("web identity"), message.find("shared files"));
    EXPECT_LT(message.find("shared files"), message.find("container"));
    EXPECT_LT(message.find("container"), message.find("EC2"));
}

TEST(CredentialsChain, UnreachableInstanceMetadataIsReportedAsTried) {
    Sandbox sandbox;
    const auto port = std::to_string(unused_port());
    sandbox.variables.erase("AWS_EC2_METADATA_DISABLED");
    sandbox.variables["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = "http://127.0.0.1:" + port + "/";
    const auto message = error_of([&] { sandbox.resolve(); });
    EXPECT_THAT(message, HasSubstr("no AWS credentials found"));
    EXPECT_THAT(message, HasSubstr("EC2 instance metadata at http://127.0.0.1:" + port + ": "));
}

TEST(CredentialsChain, MalformedFileNamesTheLineNotTheSecret) {
    Sandbox sandbox;
    sandbox.write(".aws/credentials", std::string("[default]\naws_access_key_id = A\n") + kFileSecret + "\n");
    const auto message = error_of([&] { sandbox.resolve(); });
    EXPECT_THAT(message, HasSubstr(sandbox.path(".aws/credentials") + ":3:"));
    EXPECT_THAT(message, Not(HasSubstr(kFileSecret)));
}

TEST(CredentialsChain, ProfileWithKeyButNoSecret) {
    Sandbox sandbox;
    sandbox.write(".aws/credentials", "[default]\naws_access_key_id = AKIDONLY\n");
    EXPECT_THAT(error_of([&] { sandbox.resolve(); }), HasSubstr("has aws_access_key_id but no aws_secret_access_key"));
}

TEST(CredentialsChain, UnsupportedProfileKindsAreNamed) {
    Sandbox sandbox;
    sandbox.write(".aws/config", "[default]\ncredential_process = /usr/bin/get-creds\n");
    EXPECT_THAT(error_of([&] { sandbox.resolve(); }), HasSubstr("credential_process, which tattle does not support"));
}

// --- container credentials ---------------------------------------------------------------------

TEST(ContainerCredentials, FullUriWithAuthorizationToken) {
    auto server = scripted_server({reply(credentials_json("ASIACONTAINER", Clock::now() + 1h))});
    Sandbox sandbox;
    sandbox.variables["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = server.url("/v2/credentials/abc");
    sandbox.variables["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = kContainerToken;
    const auto provider = make_credentials_provider(sandbox.options());
    const auto credentials = provider->credentials();
    EXPECT_EQ(credentials.access_key_id, "ASIACONTAINER");
    EXPECT_EQ(credentials.secret_access_key, "secret-of-ASIACONTAINER");
    EXPECT_EQ(credentials.session_token, "token-of-ASIACONTAINER");
    ASSERT_TRUE(credentials.expiration);
    EXPECT_GT(*credentials.expiration, Clock::now() + 50min);
    EXPECT_EQ(credentials.source, "container credentials (AWS_CONTAINER_CREDENTIALS_FULL_URI)");

    provider->credentials();  // an hour away from expiry: cached
    const auto requests = server.requests();
    ASSERT_EQ(requests.size(), 1U);
    EXPECT_EQ(requests[0].method, "GET");
    EXPECT_EQ(requests[0].path, "/v2/credentials/abc");
    EXPECT_EQ(requests[0].header("Authorization"), kContainerToken);
}

TEST(ContainerCredentials, TokenFileBeatsTokenVariableAndIsReadAtEachRefresh) {
    Sandbox sandbox;
    auto server = scripted_server({reply(credentials_json("ASIA1", sandbox.clock.now() + 8s)),
                                   reply(credentials_json("ASIA2", sandbox.clock.now() + 1h))});
    const auto token_file = sandbox.write("token", "token-from-file-1\n");
    sandbox.variables["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = server.url("/creds");
    sandbox.variables["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = token_file;
    sandbox.variables["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = "token-from-variable";
    const auto provider = make_credentials_provider(sandbox.options());
    const auto refresh_at = half_life(sandbox, 8s);
    EXPECT_EQ(provider->credentials().access_key_id, "ASIA1");
    sandbox.write("token", "token-from-file-2");  // rotated, as EKS Pod Identity does
    sandbox.clock.set(refresh_at);
    EXPECT_EQ(provider->credentials().access_key_id, "ASIA2");
    const auto requests = server.requests();
    ASSERT_EQ(requests.size(), 2U);
    EXPECT_EQ(requests[0].header("Authorization"), "token-from-file-1");
    EXPECT_EQ(requests[1].header("Authorization"), "token-from-file-2");
}

TEST(ContainerCredentials, RefreshedBeforeExpiry) {
    Sandbox sandbox;
    auto server = scripted_server({reply(credentials_json("ASIAFIRST", sandbox.clock.now() + 8s)),
                                   reply(credentials_json("ASIASECOND", sandbox.clock.now() + 1h))});
    sandbox.variables["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = server.url("/creds");
    const auto provider = make_credentials_provider(sandbox.options());
    const auto refresh_at = half_life(sandbox, 8s);
    const auto first = provider->credentials();
    EXPECT_EQ(first.access_key_id, "ASIAFIRST");
    EXPECT_EQ(provider->credentials().access_key_id, "ASIAFIRST");
    EXPECT_EQ(server.requests().size(), 1U);

    // Just before half of their short life: still cached.
    sandbox.clock.set(refresh_at - 1ms);
    EXPECT_EQ(provider->credentials().access_key_id, "ASIAFIRST");
    EXPECT_EQ(server.requests().size(), 1U);

    // Half of their life, still before their expiry: fetched again.
    sandbox.clock.set(refresh_at);
    ASSERT_LT(sandbox.clock.now(), *first.expiration);
    EXPECT_EQ(provider->credentials().access_key_id, "ASIASECOND");
    EXPECT_EQ(provider->credentials().access_key_id, "ASIASECOND");
    EXPECT_EQ(server.requests().size(), 2U);
}

TEST(ContainerCredentials, FailedRefreshKeepsCredentialsThatStillWork) {
    Sandbox sandbox;
    const auto expiration = sandbox.clock.now() + 10s;
    auto server = scripted_server({reply(credentials_json("ASIAFIRST", expiration)), reply("down", 503)});
    sandbox.variables["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = server.url("/creds");
    const auto provider = make_credentials_provider(sandbox.options());
    const auto refresh_at = half_life(sandbox, 10s);
    EXPECT_EQ(provider->credentials().access_key_id, "ASIAFIRST");
    sandbox.clock.set(refresh_at);
    EXPECT_EQ(provider->credentials().access_key_id, "ASIAFIRST");
    const auto tried = server.requests().size();
    EXPECT_GT(tried, 1U);

    // Expired, with the endpoint still down: an error, not credentials that no longer work.
    sandbox.clock.set(expiration);
    EXPECT_THAT(error_of([&] { provider->credentials(); }), HasSubstr("HTTP 503"));
    EXPECT_GT(server.requests().size(), tried);
}

TEST(ContainerCredentials, ErrorNamesTheSourceNotTheToken) {
    auto server = scripted_server({reply(R"({"code":"AccessDenied","message":"no"})", 403)});
    Sandbox sandbox;
    sandbox.variables["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = server.url("/secret-path/creds");
    sandbox.variables["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = kContainerToken;
    const auto message = error_of([&] { sandbox.resolve(); });
    EXPECT_THAT(message, HasSubstr("credentials from AWS_CONTAINER_CREDENTIALS_FULL_URI"));
    EXPECT_THAT(message, HasSubstr("HTTP 403"));
    EXPECT_THAT(message, Not(HasSubstr("container-auth-token")));
    EXPECT_THAT(message, Not(HasSubstr("secret-path")));
    EXPECT_EQ(server.requests().size(), 1U);  // a 4xx is not retried
}

TEST(ContainerCredentials, PlainHttpOnlyToLoopbackOrTheContainerAgents) {
    Sandbox sandbox;
    sandbox.variables["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = "http://credentials.example.com/creds";
    EXPECT_THAT(error_of([&] { sandbox.resolve(); }), HasSubstr("use https://"));
}

TEST(ContainerCredentials, OneFetchForManyThreads) {
    auto server = scripted_server({reply(credentials_json("ASIASHARED", Clock::now() + 1h))});
    Sandbox sandbox;
    sandbox.variables["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = server.url("/creds");
    const auto provider = make_credentials_provider(sandbox.options());
    std::atomic<int> matches{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 8; ++i) {
        threads.emplace_back([&] {
            for (int round = 0; round < 20; ++round) {
                if (provider->credentials().access_key_id == "ASIASHARED") ++matches;
            }
        });
    }
    for (auto& thread : threads) thread.join();
    EXPECT_EQ(matches.load(), 160);
    EXPECT_EQ(server.requests().size(), 1U);
}

// --- EC2 instance metadata ---------------------------------------------------------------------

TEST(InstanceMetadata, Imdsv2TokenRoleAndCredentialsThenRefresh) {
    Sandbox sandbox;
    auto server = scripted_server({reply("imds-session-token"), reply("tattle-instance-role\n"),
                                   reply(credentials_json("ASIAIMDS1", sandbox.clock.now() + 1h)),
                                   reply("tattle-instance-role"),
                                   reply(credentials_json("ASIAIMDS2", sandbox.clock.now() + 6h))});
    sandbox.variables.erase("AWS_EC2_METADATA_DISABLED");
    sandbox.variables["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = server.url("");
    const auto provider = make_credentials_provider(sandbox.options());
    const auto fetched = sandbox.clock.now();
    const auto first = provider->credentials();
    EXPECT_EQ(first.access_key_id, "ASIAIMDS1");
    EXPECT_EQ(first.session_token, "token-of-ASIAIMDS1");
    EXPECT_EQ(first.source, "EC2 instance metadata (role tattle-instance-role)");
    // An hour's credentials are refreshed 300 s (the default margin) before they expire.
    sandbox.clock.set(fetched + 1h - 301s);
    EXPECT_EQ(provider->credentials().access_key_id, "ASIAIMDS1");
    EXPECT_EQ(server.requests().size(), 3U);
    sandbox.clock.set(fetched + 1h - 300s);
    EXPECT_EQ(provider->credentials().access_key_id, "ASIAIMDS2");

    const auto requests = server.requests();
    ASSERT_EQ(requests.size(), 5U);
    EXPECT_EQ(requests[0].method, "PUT");
    EXPECT_EQ(requests[0].path, "/latest/api/token");
    EXPECT_EQ(requests[0].header("X-aws-ec2-metadata-token-ttl-seconds"), "21600");
    EXPECT_EQ(requests[1].method, "GET");
    EXPECT_EQ(requests[1].path, "/latest/meta-data/iam/security-credentials/");
    EXPECT_EQ(requests[2].path, "/latest/meta-data/iam/security-credentials/tattle-instance-role");
    // The session token is reused by the refresh.
    EXPECT_EQ(requests[3].path, "/latest/meta-data/iam/security-credentials/");
    for (std::size_t i = 1; i < requests.size(); ++i) {
        EXPECT_EQ(requests[i].header("X-aws-ec2-metadata-token"), "imds-session-token") << i;
    }
}

TEST(InstanceMetadata, FallsBackToImdsv1WhenTheTokenCallIsNotSupported) {
    auto server = scripted_server(
        {reply("not found", 404), reply("role-x"), reply(credentials_json("ASIAV1", Clock::now() + 6h))});
    Sandbox sandbox;
    sandbox.variables.erase("AWS_EC2_METADATA_DISABLED");
    sandbox.variables["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = server.url("");
    EXPECT_EQ(sandbox.resolve().access_key_id, "ASIAV1");
    const auto requests = server.requests();
    ASSERT_EQ(requests.size(), 3U);
    EXPECT_FALSE(requests[1].header("X-aws-ec2-metadata-token"));
}

TEST(InstanceMetadata, NoRoleMeansNotFound) {
    auto server = scripted_server({reply("token"), reply("", 404)});
    Sandbox sandbox;
    sandbox.variables.erase("AWS_EC2_METADATA_DISABLED");
    sandbox.variables["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = server.url("");
    const auto message = error_of([&] { sandbox.resolve(); });
    EXPECT_THAT(message, HasSubstr("no AWS credentials found"));
    EXPECT_THAT(message, HasSubstr("is an IAM role attached to the instance?"));
}

// --- AssumeRole and web identity against a scripted STS ---------------------------------------

TEST(AssumeRole, PluginRoleOnTopOfTheChain) {
    auto server = scripted_server({reply(sts_credentials_xml("ASIAROLE", Clock::now() + 1h))});
    Sandbox sandbox;
    sandbox.variables["AWS_ACCESS_KEY_ID"] = "AKIDBASE";
    sandbox.variables["AWS_SECRET_ACCESS_KEY"] = kEnvSecret;
    auto options = sandbox.options();
    options.role_arn = "arn:aws:iam::123456789012:role/tattle-reader";
    options.role_session_name = "alice@example.com";
    options.external_id = "ext-42";
    options.region = "eu-west-1";
    options.sts_endpoint_url = server.url("");
    const auto provider = make_credentials_provider(options);
    const auto credentials = provider->credentials();
    EXPECT_EQ(credentials.access_key_id, "ASIAROLE");
    EXPECT_EQ(credentials.secret_access_key, "secret-of-ASIAROLE");
    EXPECT_EQ(credentials.session_token, "token/of+ASIAROLE&more=");
    EXPECT_EQ(credentials.source, "sts:AssumeRole arn:aws:iam::123456789012:role/tattle-reader");
    provider->credentials();

    const auto requests = server.requests();
    ASSERT_EQ(requests.size(), 1U);
    EXPECT_EQ(requests[0].method, "POST");
    EXPECT_EQ(requests[0].path, "/");
    EXPECT_THAT(requests[0].header("Content-Type").value_or(""), StartsWith("application/x-www-form-urlencoded"));
    EXPECT_EQ(requests[0].body,
              "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Ftattle-reader"
              "&RoleSessionName=alice%40example.com&DurationSeconds=3600&ExternalId=ext-42");
    EXPECT_THAT(requests[0].header("Authorization").value_or(""),
                StartsWith("AWS4-HMAC-SHA256 Credential=AKIDBASE/"));
    EXPECT_THAT(requests[0].header("Authorization").value_or(""), HasSubstr("/eu-west-1/sts/aws4_request"));
}

TEST(AssumeRole, ErrorCarriesStsCodeAndMessageButNoSecret) {
    const std::string body =
        "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User is not authorized "
        "(echoing " + std::string(kEnvSecret) + ")</Message></Error></ErrorResponse>";
    auto server = scripted_server({reply(body, 403)});
    Sandbox sandbox;
    sandbox.variables["AWS_ACCESS_KEY_ID"] = "AKIDBASE";
    sandbox.variables["AWS_SECRET_ACCESS_KEY"] = kEnvSecret;
    auto options = sandbox.options();
    options.role_arn = "arn:aws:iam::123456789012:role/x";
    options.sts_endpoint_url = server.url("");
    const auto message = error_of([&] { make_credentials_provider(options)->credentials(); });
    EXPECT_THAT(message, HasSubstr("sts:AssumeRole of arn:aws:iam::123456789012:role/x"));
    EXPECT_THAT(message, HasSubstr("HTTP 403 AccessDenied: User is not authorized"));
    EXPECT_THAT(message, Not(HasSubstr(kEnvSecret)));
}

TEST(AssumeRole, ProfileRoleFromSourceProfile) {
    auto server = scripted_server({reply(sts_credentials_xml("ASIAPROFILEROLE", Clock::now() + 1h))});
    Sandbox sandbox;
    sandbox.write(".aws/credentials", "[base]\naws_access_key_id = AKIDSOURCE\naws_secret_access_key = source-secret\n");
    sandbox.write(".aws/config", R"([profile ops]
role_arn = arn:aws:iam::123456789012:role/ops
source_profile = base
role_session_name = bob
external_id = ext-7
duration_seconds = 900
region = eu-west-2
)");
    sandbox.variables["AWS_PROFILE"] = "ops";
    sandbox.variables["AWS_ENDPOINT_URL_STS"] = server.url("");
    EXPECT_EQ(sandbox.resolve().access_key_id, "ASIAPROFILEROLE");
    const auto requests = server.requests();
    ASSERT_EQ(requests.size(), 1U);
    EXPECT_THAT(requests[0].body, AllOf(HasSubstr("RoleSessionName=bob"), HasSubstr("ExternalId=ext-7"),
                                        HasSubstr("DurationSeconds=900")));
    EXPECT_THAT(requests[0].header("Authorization").value_or(""),
                AllOf(HasSubstr("Credential=AKIDSOURCE/"), HasSubstr("/eu-west-2/sts/aws4_request")));
}

TEST(AssumeRole, SourceProfileLoopIsAnError) {
    Sandbox sandbox;
    sandbox.write(".aws/config", R"([profile a]
role_arn = arn:aws:iam::1:role/a
source_profile = b
[profile b]
role_arn = arn:aws:iam::1:role/b
source_profile = a
)");
    sandbox.variables["AWS_PROFILE"] = "a";
    EXPECT_THAT(error_of([&] { sandbox.resolve(); }), HasSubstr("loops back"));
}

TEST(WebIdentity, TokenFileAndRoleFromTheEnvironment) {
    auto server = scripted_server(
        {reply(sts_credentials_xml("ASIAWEB", Clock::now() + 1h, "AssumeRoleWithWebIdentity"))});
    Sandbox sandbox;
    sandbox.variables["AWS_WEB_IDENTITY_TOKEN_FILE"] = sandbox.write("oidc-token", "eyJhbGciOi.payload.sig\n");
    sandbox.variables["AWS_ROLE_ARN"] = "arn:aws:iam::123456789012:role/pod";
    sandbox.variables["AWS_ROLE_SESSION_NAME"] = "pod-1";
    sandbox.variables["AWS_ENDPOINT_URL_STS"] = server.url("");
    const auto credentials = sandbox.resolve();
    EXPECT_EQ(credentials.access_key_id, "ASIAWEB");
    const auto requests = server.requests();
    ASSERT_EQ(requests.size(), 1U);
    EXPECT_THAT(requests[0].body, AllOf(HasSubstr("Action=AssumeRoleWithWebIdentity"),
                                        HasSubstr("WebIdentityToken=eyJhbGciOi.payload.sig&"),
                                        HasSubstr("RoleSessionName=pod-1")));
    EXPECT_FALSE(requests[0].header("Authorization"));  // the token is the proof
}

TEST(Iso8601, Formats) {
    const auto base = std::chrono::sys_days{std::chrono::year{2024} / 3 / 14} + 15h + 9min + 26s;
    EXPECT_EQ(parse_iso8601("2024-03-14T15:09:26Z"), base);
    EXPECT_EQ(parse_iso8601("2024-03-14T15:09:26.500Z"), base + 500ms);
    EXPECT_EQ(parse_iso8601("2024-03-14T16:09:26+01:00"), base);
    EXPECT_EQ(parse_iso8601(" 2024-03-14T15:09:26.878339Z\n"), base + 878339us);
    EXPECT_FALSE(parse_iso8601("2024-02-30T00:00:00Z"));
    EXPECT_FALSE(parse_iso8601("2024-03-14 garbage"));
    EXPECT_FALSE(parse_iso8601("2024-03-14T15:09:26"));
}

// --- moto, with signature checking ----------------------------------------------------------

TEST(AssumeRoleMoto, SignedCallsAcceptedWrongSecretRefusedSessionNameKept) {
    MotoServer moto(3);
    const Credentials user = tattle::test::create_moto_user(moto);

    AssumeRoleParameters parameters;
    parameters.role_arn = "arn:aws:iam::123456789012:role/tattle-reader";
    parameters.role_session_name = "alice";
    parameters.sts_endpoint = Endpoint{moto.url(), "endpoint_url"};
    parameters.region = "us-east-1";
    const auto role = make_assume_role_provider(make_static_credentials_provider(user), parameters);
    const auto assumed = role->credentials();
    EXPECT_THAT(assumed.access_key_id, StartsWith("ASIA"));
    EXPECT_FALSE(assumed.session_token.empty());
    ASSERT_TRUE(assumed.expiration);
    EXPECT_GT(*assumed.expiration, Clock::now() + 50min);

    // The assumed credentials sign (with their session token) and carry the session name.
    const auto identity = tattle::test::moto_query(moto.url(), "sts", assumed, {{"Action", "GetCallerIdentity"}, {"Version", "2011-06-15"}});
    EXPECT_EQ(identity.status, 200) << identity.body;
    EXPECT_THAT(identity.body, HasSubstr("assumed-role/tattle-reader/alice"));

    Credentials wrong = user;
    wrong.secret_access_key = "wrong-secret-EXAMPLE";
    const auto message = error_of(
        [&] { make_assume_role_provider(make_static_credentials_provider(wrong), parameters)->credentials(); });
    EXPECT_THAT(message, HasSubstr("HTTP 403 SignatureDoesNotMatch"));
    EXPECT_THAT(message, Not(HasSubstr("wrong-secret-EXAMPLE")));
}

}  // namespace
