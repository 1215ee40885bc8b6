// The s3 source, created and driven through the C ABI from the static registry the way the
// host drives it, against moto with signature checking on: listing a prefix with day
// bounds, notification files of every kind (good, skipped, broken, failing objects), a
// wrong secret; and against a scripted server: retries of 5xx answers.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>

#include "../../support/http/test_server.hpp"
#include "moto_s3.hpp"
#include "s3_source.hpp"
#include "tattle/json_schema.hpp"
#include "tattle/sdk.hpp"

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using tattle::s3_tests::MotoS3;
using tattle::test::ScopedEnv;

// One call of tattle_source_next, as the host sees it.
struct Next {
    tattle_rc rc = TATTLE_RC_ERROR;
    std::uint64_t id = 0;
    std::string origin;
    std::string data;
    std::string error;
};

class PluginSource {
public:
    explicit PluginSource(const json::object& config) {
        for (const auto& functions : tattle::sdk::static_registry()) {
            if (std::string_view(functions.get_info()->type_name) == "s3" && functions.source_create != nullptr) {
                plugin_ = &functions;
            }
        }
        if (plugin_ == nullptr) throw std::runtime_error("no s3 source in the static registry");
        const std::string text = json::serialize(config);
        tattle_create_args args{};
        args.struct_size = sizeof args;
        args.host = &host_;
        args.instance_id = "s3-test";
        args.config_json = text.c_str();
        tattle_rc rc = TATTLE_RC_ERROR;
        handle_ = plugin_->source_create(&args, &rc);
        if (handle_ == nullptr) throw std::runtime_error(plugin_->last_error(nullptr));
    }
    ~PluginSource() { plugin_->source_destroy(handle_); }
    PluginSource(const PluginSource&) = delete;
    PluginSource& operator=(const PluginSource&) = delete;

    Next next() {
        tattle_batch batch{};
        batch.struct_size = sizeof batch;
        Next out;
        out.rc = plugin_->source_next(handle_, &batch);
        if (batch.origin != nullptr) out.origin = batch.origin;
        if (out.rc == TATTLE_RC_OK) {
            out.id = batch.batch_id;
            out.data.assign(reinterpret_cast<const char*>(batch.data), batch.size);
            EXPECT_EQ(plugin_->source_ack(handle_, batch.batch_id, TATTLE_BATCH_SETTLED), TATTLE_RC_OK);
        } else if (out.rc == TATTLE_RC_ERROR) {
            out.error = plugin_->last_error(handle_);
        }
        return out;
    }

    // Every remaining call until EOF (bounded, so that a source that never ends fails).
    std::vector<Next> drain() {
        std::vector<Next> all;
        for (int i = 0; i < 1000; ++i) {
            Next one = next();
            if (one.rc == TATTLE_RC_EOF) return all;
            all.push_back(std::move(one));
        }
        ADD_FAILURE() << "the source did not end";
        return all;
    }

    const std::vector<std::string>& log() const { return log_; }

private:
    static void record(void* context, int32_t level, const char* message) {
        static const char* const kLevels[] = {"trace", "debug", "info", "warn", "error"};
        const auto index = static_cast<std::size_t>(std::clamp(level, 0, 4));
        static_cast<std::vector<std::string>*>(context)->push_back(std::string(kLevels[index]) + ": " + message);
    }

    std::vector<std::string> log_;
    tattle_host_api host_{sizeof(tattle_host_api), &log_, &record};
    const tattle::sdk::PluginFunctions* plugin_ = nullptr;
    void* handle_ = nullptr;
};

// The plugin takes its credentials where users keep them: the environment.
class CredentialsInEnvironment {
public:
    CredentialsInEnvironment(const std::string& access_key_id, const std::string& secret_access_key)
        : key_("AWS_ACCESS_KEY_ID", access_key_id),
          secret_("AWS_SECRET_ACCESS_KEY", secret_access_key) {}

private:
    ScopedEnv key_;
    ScopedEnv secret_;
    ScopedEnv token_{"AWS_SESSION_TOKEN", std::nullopt};
    ScopedEnv profile_{"AWS_PROFILE", std::nullopt};
    ScopedEnv endpoint_{"AWS_ENDPOINT_URL", std::nullopt};
    ScopedEnv config_{"AWS_CONFIG_FILE", "/nonexistent/config"};
    ScopedEnv shared_{"AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials"};
    ScopedEnv imds_{"AWS_EC2_METADATA_DISABLED", "true"};
    ScopedEnv region_{"AWS_REGION", "us-east-1"};
};

const std::string kLayout = "AWSLogs/123456789012/CloudTrail/us-east-1/";

std::string log_key(const std::string& day_folder, const std::string& stamp, const std::string& prefix = "") {
    return prefix + kLayout + day_folder + "/123456789012_CloudTrail_us-east-1_" + stamp + "_abcdEFGH12345678.json.gz";
}

class S3SourceTest : public ::testing::Test {
protected:
    S3SourceTest() : credentials_(moto_.user().access_key_id, moto_.user().secret_access_key) {
        moto_.create_bucket("trail");
    }

    json::object config(json::object extra) const {
        extra["endpoint_url"] = moto_.server().url();
        return extra;
    }

    fs::path write(const std::string& name, const std::string& text) {
        const fs::path path = dir_ / name;
        std::ofstream(path, std::ios::binary) << text;
        return path;
    }

    MotoS3 moto_;
    CredentialsInEnvironment credentials_;
    fs::path dir_ = tattle::test::make_temp_dir("tattle-s3-source-");
};

TEST_F(S3SourceTest, ListingReadsTheCloudTrailLogsOfTheSelectedDaysOnly) {
    std::map<std::string, std::string> stored;
    auto put = [&](const std::string& key, int sample) {
        stored[key] = tattle::s3_tests::sample_log_gz(sample);
        moto_.put_object("trail", key, stored[key]);
    };
    put(log_key("2023/07/08", "20230708T1200Z"), 0);
    put(log_key("2023/07/09", "20230709T1200Z"), 1);
    put(log_key("2023/07/10", "20230710T0000Z"), 2);
    put(log_key("2023/07/10", "20230710T2355Z"), 0);
    put(log_key("2023/07/11", "20230711T0000Z"), 1);
    // Copied elsewhere: only the file name tells the day.
    put("exports/123456789012_CloudTrail_us-east-1_20230709T0500Z_abcdEFGH12345678.json.gz", 2);
    put("exports/123456789012_CloudTrail_us-east-1_20230712T0500Z_abcdEFGH12345678.json.gz", 2);
    moto_.put_object("trail", "AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2023/07/09/"
                              "123456789012_CloudTrail-Digest_us-east-1_trail_us-east-1_20230709T1300Z.json.gz", "{}");
    moto_.put_object("trail", "notes/readme.txt", "not a log");

    PluginSource source(config({{"bucket", "trail"}, {"since", "2023-07-09"}, {"until", "2023-07-10"}}));
    std::vector<std::string> origins;
    for (const auto& batch : source.drain()) {
        ASSERT_EQ(batch.rc, TATTLE_RC_OK) << batch.error;
        const std::string key = batch.origin.substr(std::string("s3://trail/").size());
        EXPECT_TRUE(batch.data == stored.at(key)) << "bytes of " << key << " must be handed over as stored";
        origins.push_back(batch.origin);
    }
    EXPECT_THAT(origins, ElementsAre("s3://trail/" + log_key("2023/07/09", "20230709T1200Z"),
                                     "s3://trail/" + log_key("2023/07/10", "20230710T0000Z"),
                                     "s3://trail/" + log_key("2023/07/10", "20230710T2355Z"),
                                     "s3://trail/exports/123456789012_CloudTrail_us-east-1_20230709T0500Z_"
                                     "abcdEFGH12345678.json.gz"));
    EXPECT_THAT(source.log(), Contains(AllOf(HasSubstr("debug: "), HasSubstr("CloudTrail-Digest"),
                                             HasSubstr("cloudtrail_digest"))));
    EXPECT_THAT(source.log(), Contains(AllOf(HasSubstr("notes/readme.txt"), HasSubstr("skipped"))));
    EXPECT_THAT(source.log(), Contains(AllOf(HasSubstr("2023/07/11"), HasSubstr("outside since/until"))));
    EXPECT_THAT(source.log(), Contains(HasSubstr("info: listed s3://trail/: 9 object(s), 4 to read")));
}

TEST_F(S3SourceTest, ListingWithAPrefixAndKeyPatternFollowsEveryPage) {
    std::vector<std::string> keys;
    for (int minute = 0; minute < 5; ++minute) {
        keys.push_back("team a/exports/part-" + std::to_string(minute) + ".json");
        moto_.put_object("trail", keys.back(), "{\"Records\":[]}");
    }
    moto_.put_object("trail", "team a/exports/part-9.csv", "no");
    moto_.put_object("trail", "team b/exports/part-0.json", "{}");

    auto parsed = tattle::sources::s3::parse_s3_source_config(
        json::serialize(config({{"bucket", "trail"}, {"prefix", "team a"}, {"key_pattern", "\\.json$"}})));
    parsed.list_page_size = 2;  // 6 keys under the prefix: three pages
    tattle::sources::s3::S3Source source(std::move(parsed), tattle::sdk::Host(nullptr));
    std::vector<std::string> origins;
    while (auto batch = source.next()) origins.push_back(batch->origin);
    std::vector<std::string> expected;
    for (const auto& key : keys) expected.push_back("s3://trail/" + key);
    EXPECT_EQ(origins, expected);
}

// A CloudTrail record delivered whole by EventBridge ("AWS API Call via CloudTrail").
json::object eventbridge_cloudtrail_event() {
    const auto records = json::parse(tattle::s3_tests::read_file(
        fs::path(TATTLE_SHARED_DATA_DIR) / "tattletail/testdata-1.json")).at("Records").as_array();
    for (const auto& record : records) {
        if (record.at("eventName").as_string() == "CreateUser") {
            return {{"version", "0"},
                    {"id", "1b6d1a3e-0c5e-4b0f-9e0c-111111111111"},
                    {"detail-type", "AWS API Call via CloudTrail"},
                    {"source", "aws.iam"},
                    {"account", "123456789012"},
                    {"time", "2021-01-01T00:00:00Z"},
                    {"region", "us-east-1"},
                    {"resources", json::array()},
                    {"detail", record}};
        }
    }
    throw std::runtime_error("no CreateUser record in the tattletail test data");
}

// The documented ObjectCreated:Put notification, naming another bucket and key.
std::string s3_event_for(const std::string& bucket, const std::string& encoded_key) {
    auto event = json::parse(tattle::s3_tests::read_file(
        fs::path(TATTLE_SHARED_DATA_DIR) / "payloads/awsdocs_s3_notification_examples/objectcreated_put_v2.1.json"));
    auto& s3 = event.at("Records").as_array().at(0).at("s3").as_object();
    s3["bucket"].as_object()["name"] = bucket;
    auto& object = s3["object"].as_object();
    object["key"] = encoded_key;
    object.erase("versionId");
    return json::serialize(event);
}

TEST_F(S3SourceTest, NotificationFilesGiveOneBatchPerObjectAndReportWhatTheyCannotRead) {
    // Keys in S3's notifications are form-encoded: ' ' is '+' ('+' itself, %2B, is a key moto
    // cannot check signatures for; the decoder's tests cover it).
    const std::string key = log_key("2023/07/10", "20230710T1200Z", "org trail 1/");
    const std::string gz = tattle::s3_tests::sample_log_gz();
    moto_.put_object("trail", key, gz, {{"Content-Encoding", "gzip"}});
    const std::string encoded_key = "org+trail+1/" + key.substr(std::string("org trail 1/").size());
    const std::string missing = log_key("2023/07/10", "20230710T1300Z");

    const auto direct = write("direct.json", s3_event_for("trail", encoded_key));
    const auto test_event = write("test-event.json", tattle::s3_tests::read_file(
        fs::path(TATTLE_SHARED_DATA_DIR) / "payloads/awsdocs_s3_notification_examples/s3_test_event.json"));
    const auto broken = write("broken.json", "{\"Records\": [\n  {\"s3\": ");
    const auto unknown = write("unknown.json", R"({"hello": "world"})");
    const auto missing_object = write("missing.json", json::serialize(json::object{
        {"s3Bucket", "trail"}, {"s3ObjectKey", json::array{missing, key}}}));
    const auto digest = write("digest.json", s3_event_for("trail", "AWSLogs/123456789012/CloudTrail-Digest/us-east-1/"
                                                                   "2023/07/10/x_CloudTrail-Digest_y.json.gz"));
    const auto inline_event = write("eventbridge.json", json::serialize(eventbridge_cloudtrail_event()));

    json::array files;
    for (const auto& path : {direct, test_event, broken, unknown, missing_object, digest, inline_event}) {
        files.emplace_back(path.string());
    }
    PluginSource source(config({{"notifications", files}}));
    const auto batches = source.drain();
    ASSERT_EQ(batches.size(), 6U);

    EXPECT_EQ(batches[0].rc, TATTLE_RC_OK);
    EXPECT_EQ(batches[0].origin, "s3://trail/" + key);
    EXPECT_TRUE(batches[0].data == gz) << "gzip must stay gzip";

    EXPECT_EQ(batches[1].rc, TATTLE_RC_ERROR);
    EXPECT_EQ(batches[1].origin, broken.string());
    EXPECT_THAT(batches[1].error, HasSubstr("2:"));  // where the JSON broke: line 2

    EXPECT_EQ(batches[2].rc, TATTLE_RC_ERROR);
    EXPECT_EQ(batches[2].origin, unknown.string());
    EXPECT_THAT(batches[2].error, HasSubstr("not an S3 notification"));

    EXPECT_EQ(batches[3].rc, TATTLE_RC_ERROR);
    EXPECT_EQ(batches[3].origin, "s3://trail/" + missing);
    EXPECT_THAT(batches[3].error, AllOf(HasSubstr("s3://trail/" + missing), HasSubstr("NoSuchKey")));
    EXPECT_EQ(batches[4].rc, TATTLE_RC_OK) << "the object after a failed one is still read";
    EXPECT_EQ(batches[4].origin, "s3://trail/" + key);

    EXPECT_EQ(batches[5].rc, TATTLE_RC_OK);
    EXPECT_THAT(batches[5].origin, AllOf(HasSubstr("eventbridge.json"), HasSubstr(".detail")));
    EXPECT_EQ(json::parse(batches[5].data).at("eventName").as_string(), "CreateUser");

    EXPECT_THAT(source.log(), Contains(AllOf(HasSubstr("info: "), HasSubstr("test-event.json"),
                                             HasSubstr("test_event"))));
    EXPECT_THAT(source.log(), Contains(AllOf(HasSubstr("digest.json"), HasSubstr("cloudtrail_digest"))));
}

TEST_F(S3SourceTest, WrongSecretFailsWithTheAwsErrorCodeAndWithoutTheSecret) {
    const std::string wrong_secret = "WrongSecretKeyThatMustNotBePrinted0000000";
    CredentialsInEnvironment wrong(moto_.user().access_key_id, wrong_secret);
    moto_.put_object("trail", log_key("2023/07/10", "20230710T1200Z"), tattle::s3_tests::sample_log_gz());

    // No '/' in the prefix: moto checks such query values against a form S3 does not sign.
    PluginSource listing(config({{"bucket", "trail"}, {"prefix", "AWSLogs"}}));
    const auto listed = listing.drain();
    ASSERT_EQ(listed.size(), 1U) << "a refused listing ends the listing";
    EXPECT_EQ(listed[0].rc, TATTLE_RC_ERROR);
    EXPECT_EQ(listed[0].origin, "s3://trail/AWSLogs");
    EXPECT_THAT(listed[0].error, HasSubstr("SignatureDoesNotMatch"));

    const auto notification = write("n.json", json::serialize(json::object{
        {"s3Bucket", "trail"},
        {"s3ObjectKey", json::array{log_key("2023/07/10", "20230710T1200Z"), log_key("2023/07/10", "20230710T1200Z")}}}));
    PluginSource notified(config({{"notifications", json::array{notification.string()}}}));
    const auto fetched = notified.drain();
    ASSERT_EQ(fetched.size(), 2U) << "each object fails on its own";
    for (const auto& batch : fetched) {
        EXPECT_EQ(batch.rc, TATTLE_RC_ERROR);
        EXPECT_THAT(batch.error, AllOf(HasSubstr("s3://trail/" + log_key("2023/07/10", "20230710T1200Z")),
                                       HasSubstr("SignatureDoesNotMatch"), Not(HasSubstr(wrong_secret)),
                                       Not(HasSubstr(moto_.user().secret_access_key))));
    }
    for (const auto& line : listing.log()) EXPECT_THAT(line, Not(HasSubstr(wrong_secret)));
}

// No moto here: a scripted server answers S3's 5xx errors first, which moto never does.
TEST(S3SourceRetries, ServerErrorsAndThrottlingAreRetriedAndNoContentEncodingIsAskedFor) {
    tattle::test::ServerOptions options;
    options.mode = tattle::test::ServerOptions::Mode::Http;
    options.script = R"([
      {"status": 503, "headers": {"Content-Type": "application/xml"},
       "body": "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"},
      {"status": 500, "headers": {"Content-Type": "application/xml"},
       "body": "<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>"},
      {"status": 200, "body": "the object"},
      {"status": 404, "headers": {"Content-Type": "application/xml"},
       "body": "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>"}
    ])";
    tattle::test::TestServer server(options);

    tattle::sources::s3::S3SourceConfig config;
    config.notification_files = {
        (fs::path(TATTLE_SHARED_DATA_DIR) / "payloads/cloudtrail_sns_notifications/"
                                            "cloudtrail_sns_message_multiple_logfiles.json").string()};
    config.aws.region = "us-east-1";
    config.aws.endpoint_url = server.url("");
    config.aws.environment = tattle::aws::fixed_environment({{"AWS_CONFIG_FILE", "/nonexistent"},
                                                             {"AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"}});
    config.aws.credentials = tattle::aws::make_static_credentials_provider(
        {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "", std::nullopt, "test"});
    tattle::sources::s3::S3Source source(std::move(config), tattle::sdk::Host(nullptr));
    source.set_retry_policy({4, std::chrono::milliseconds(1), std::chrono::milliseconds(5)});

    auto first = source.next();
    ASSERT_TRUE(first.has_value());
    EXPECT_EQ(std::string(first->data.begin(), first->data.end()), "the object");
    EXPECT_THROW(source.next(), tattle::sdk::BatchError);  // 404: not retried
    const auto requests = server.requests();
    ASSERT_EQ(requests.size(), 4U) << "503, 500 and 200 for the first object, one 404 for the second";
    for (const auto& request : requests) {
        EXPECT_EQ(request.method, "GET");
        EXPECT_FALSE(request.header("Accept-Encoding").has_value()) << "S3 must send the bytes as stored";
        EXPECT_TRUE(request.header("Authorization").has_value());
    }
}

TEST(S3SourceConfig, ExactlyOneModeAndRealDaysAreRequired) {
    const auto& registry = tattle::sdk::static_registry();
    const auto found = std::find_if(registry.begin(), registry.end(), [](const auto& functions) {
        return std::string_view(functions.get_info()->type_name) == "s3" && functions.source_create != nullptr;
    });
    ASSERT_NE(found, registry.end());
    const json::value schema = json::parse(found->get_info()->config_schema);
    tattle::check_schema(schema);
    auto violations = [&](json::object config) {
        json::value instance = std::move(config);
        return tattle::validate_and_fill_defaults(schema, instance);
    };
    EXPECT_TRUE(violations({{"bucket", "trail"}, {"since", "2023-07-01"}}).empty());
    EXPECT_TRUE(violations({{"notifications", json::array{"-"}}}).empty());
    EXPECT_FALSE(violations({}).empty());
    EXPECT_FALSE(violations({{"bucket", "trail"}, {"notifications", json::array{"-"}}}).empty());
    EXPECT_FALSE(violations({{"bucket", "trail"}, {"since", "July 1st"}}).empty());
    EXPECT_FALSE(violations({{"bucket", "trail"}, {"until", "2023-13-01"}}).empty());
    EXPECT_FALSE(violations({{"bucket", "trail"}, {"max_object_bytes", 0}}).empty());

    using tattle::sources::s3::parse_s3_source_config;
    auto refusal = [](const std::string& config) {
        try {
            parse_s3_source_config(config);
        } catch (const std::invalid_argument& error) {
            return std::string(error.what());
        }
        return std::string("accepted");
    };
    EXPECT_THAT(refusal(R"({"bucket": "trail", "since": "2023-02-30"})"), HasSubstr("since \"2023-02-30\""));
    EXPECT_THAT(refusal(R"({"bucket": "trail", "since": "2023-07-10", "until": "2023-07-09"})"),
                HasSubstr("until is before since"));
    EXPECT_THAT(refusal(R"({"notifications": ["-"], "prefix": "AWSLogs/"})"), HasSubstr("prefix applies to listing"));
    EXPECT_THAT(refusal(R"({"bucket": "trail", "key_pattern": "(unclosed"})"), HasSubstr("(unclosed"));
    const auto parsed = parse_s3_source_config(R"({"bucket": "trail", "max_object_bytes": 1234})");
    EXPECT_EQ(parsed.aws.http.max_response_bytes, 1234U);
}

}  // namespace
