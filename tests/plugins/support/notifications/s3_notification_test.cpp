#include "tattle/notifications/s3_notification.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace tattle::notifications;
using std::chrono::day;
using std::chrono::month;
using std::chrono::year;
using ::testing::HasSubstr;
using ::testing::StartsWith;

const fs::path payload_dir = fs::path(TATTLE_SHARED_DATA_DIR) / "payloads";

std::string read_text(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    EXPECT_TRUE(in) << "cannot open " << path;
    std::ostringstream buffer;
    buffer << in.rdbuf();
    return buffer.str();
}

NotificationDecoding decode_payload(const std::string& relative_path, const ObjectFilter& filter) {
    return decode_notification(read_text(payload_dir / relative_path), filter);
}

struct Named {
    std::string bucket;
    std::string key;
    bool operator==(const Named&) const = default;
};

std::ostream& operator<<(std::ostream& out, const Named& named) {
    return out << "s3://" << named.bucket << "/" << named.key;
}

std::vector<Named> names_of(const std::vector<ObjectToFetch>& objects) {
    std::vector<Named> names;
    for (const auto& item : objects) names.push_back({item.object.bucket, item.object.key});
    return names;
}

std::vector<Named> names_of_skipped(const NotificationDecoding& decoding, SkipCode code) {
    std::vector<Named> names;
    for (const auto& item : decoding.skipped) {
        if (item.code == code && item.object)
            names.push_back({item.object->bucket, item.object->key});
    }
    return names;
}

// One word per outcome, sorted: skip code names and "error" (objects are checked elsewhere).
std::vector<std::string> outcomes(const NotificationDecoding& decoding) {
    std::vector<std::string> words;
    for (const auto& item : decoding.skipped) words.emplace_back(skip_code_name(item.code));
    for (std::size_t i = 0; i < decoding.errors.size(); ++i) words.emplace_back("error");
    std::sort(words.begin(), words.end());
    return words;
}

std::string errors_of(const NotificationDecoding& decoding) {
    std::string text;
    for (const auto& error : decoding.errors) text.append(error.message).append("\n");
    return text;
}

// ---------------------------------------------------------------------------------
// Every payload file, by hand: what it names, read from the file itself.

struct PayloadWithObjects {
    std::string file;
    std::vector<Named> to_fetch;     // ObjectCreated / "Object Created" / CloudTrail's list
    std::vector<Named> not_created;  // deletes, restores, lifecycle…: named but not fetched
    bool cloudtrail_logs = false;    // the default filter fetches to_fetch (else it refuses them)
};

const std::string happy_face = "Happy Face.jpg";
const std::string lambda_artifacts = "lambda-artifacts-deafc19498e3f2df";
const std::string lambda_artifact_key = "b21b84d653bb07b05b1e6b33684dc11b";
const Named eb_example{"example-bucket", "IMG_m7fzo3.jpg"};
const std::vector<Named> cloudtrail_docs_three_logs{
    {"your-bucket-name",
     "AWSLogs/123456789012/CloudTrail/us-east-2/2016/08/11/"
     "123456789012_CloudTrail_us-east-2_20160811T2215Z_kpaMYavMQA9Ahp7L.json.gz"},
    {"your-bucket-name",
     "AWSLogs/123456789012/CloudTrail/us-east-2/2016/08/11/"
     "123456789012_CloudTrail_us-east-2_20160811T2210Z_zqDkyQv3TK8ZdLr0.json.gz"},
    {"your-bucket-name",
     "AWSLogs/123456789012/CloudTrail/us-east-2/2016/08/11/"
     "123456789012_CloudTrail_us-east-2_20160811T2205Z_jaMVRa6JfdLCJYHP.json.gz"},
};
const std::vector<Named> cloudtrail_docs_one_log{
    {"your-bucket-name",
     "AWSLogs/123456789012/CloudTrail/us-east-2/2013/12/13/"
     "123456789012_CloudTrail_us-west-2_20131213T1920Z_LnPgDQnpkSKEsppV.json.gz"},
};

const std::vector<PayloadWithObjects>& payloads_with_objects() {
    static const std::vector<PayloadWithObjects> table{
        // S3 -> EventBridge -> Lambda; the key is not URL-encoded there.
        {"powertools_captured_nested_events/eb_s3_event.json",
         {{"s3-eb-unwrap-sourcebucket-7mop1gqlyrzu", "s3-eb-template.yaml"}},
         {}},
        {"powertools_captured_nested_events/sns_s3_event.json",
         {{"s3-sns-unwrap-bucket-683517028648", "samconfig.toml"}},
         {}},
        {"powertools_captured_nested_events/sqs_s3_event.json",
         {{"sqs-s3-unwrap-bucket-683517028648", "samconfig.toml"}},
         {}},
        // SQS body = SNS envelope whose Message = S3 event: double-encoded.
        {"powertools_captured_nested_events/sqs_sns_s3_event.json",
         {{"unwraptestevents-bucket-683517028648", "firehose-s3-template.json"}},
         {}},
        {"powertools_captured_nested_events/sqs_rawsns_s3_event.json",
         {{"unwraptestevents-bucket-683517028648", "samconfig.toml"}},
         {}},
        {"powertools_captured_nested_events/sqs_eb_s3_event.json",
         {{"s3-eb-unwrap-sourcebucket-7mop1gqlyrzu", "__init__.py"}},
         {}},
        // Hand-made: two SQS records without eventSource, one bucket each.
        {"powertools_captured_nested_events/sqs_s3_multi_event.json",
         {{"example-bucket11", "example-object-3.txt"},
          {"example-bucket22", "example-object-3.txt"}},
         {}},

        {"powertools_tests_events/s3Event.json", {{lambda_artifacts, lambda_artifact_key}}, {}},
        {"powertools_tests_events/s3EventBridgeNotificationObjectCreatedEvent.json",
         {eb_example},
         {}},
        {"powertools_tests_events/s3EventBridgeNotificationObjectDeletedEvent.json",
         {},
         {eb_example}},
        {"powertools_tests_events/s3EventBridgeNotificationObjectExpiredEvent.json",
         {},
         {eb_example}},
        {"powertools_tests_events/s3EventBridgeNotificationObjectRestoreCompletedEvent.json",
         {},
         {eb_example}},
        {"powertools_tests_events/s3EventDecodedKey.json", {{"sourcebucket", happy_face}}, {}},
        {"powertools_tests_events/s3EventDeleteObject.json",
         {},
         {{lambda_artifacts, lambda_artifact_key}}},
        // ObjectCreated:Put with glacierEventData: still a new object.
        {"powertools_tests_events/s3EventGlacier.json",
         {{lambda_artifacts, lambda_artifact_key}},
         {}},
        {"powertools_tests_events/s3SqsEvent.json", {{"xxx", "test.pdf"}}, {}},

        {"aws-lambda-go_events_testdata/s3-event.json", {{"sourcebucket", happy_face}}, {}},
        {"aws-lambda-go_events_testdata/s3-event-with-decoded.json",
         {{"sourcebucket", happy_face}},
         {}},
        {"aws-lambda-go_events_testdata/s3-glacier-event.json",
         {},
         {{"example-bucket", "glacier-test.txt"}}},
        {"aws-lambda-go_events_testdata/s3-intelligenttier-event.json",
         {},
         {{"example-bucket", "intelligent-tier-test.dat"}}},
        {"aws-lambda-go_events_testdata/s3-lifecycle-event.json",
         {},
         {{"example-bucket", "lifecycle-test.dat"}}},
        {"aws-lambda-go_events_testdata/s3-replication-event.json",
         {},
         {{"amzn-s3-demo-bucket1", "replication-test.png"}}},
        {"aws-lambda-go_events_testdata/s3-restore-event.json",
         {},
         {{"example-bucket", "glacier-test.txt"}}},

        {"awsdocs_s3_notification_examples/objectcreated_put_v2.1.json",
         {{"mybucket", "HappyFace.jpg"}},
         {}},
        // Field-description templates: "eventName": "event-type", "size": "object-size".
        {"awsdocs_s3_notification_examples/schema_v2.0_template.json",
         {},
         {{"bucket-name", "object-key"}}},
        {"awsdocs_s3_notification_examples/schema_v2.2_template.json",
         {},
         {{"bucket-name", "object-key"}}},

        // CloudTrail's own SNS message, bare and in a raw SNS envelope.
        {"awsdocs_cloudtrail_userguide/extracted/cloudtrail_sns_message_multiple_logfiles.json",
         cloudtrail_docs_three_logs,
         {},
         true},
        {"awsdocs_cloudtrail_userguide/extracted/cloudtrail_sns_message_single_logfile.json",
         cloudtrail_docs_one_log,
         {},
         true},
        {"cloudtrail_sns_notifications/cloudtrail_sns_message_multiple_logfiles.json",
         cloudtrail_docs_three_logs,
         {},
         true},
        {"cloudtrail_sns_notifications/cloudtrail_sns_message_single_logfile.json",
         cloudtrail_docs_one_log,
         {},
         true},
        {"cloudtrail_sns_notifications/sns_raw_cloudtrail_logfile_notification.json",
         {{"aws-cloudtrail-logs-005292802539-91be7236",
           "AWSLogs/005292802539/CloudTrail/us-west-2/2023/12/16/"
           "005292802539_CloudTrail_us-west-2_20231216T0020Z_7PliVTBQKBEdK2Bd.json.gz"}},
         {},
         true},
        // S3 -> SNS, raw envelope (as an SQS or HTTP subscriber sees it).
        {"cloudtrail_sns_notifications/sns_raw_s3_objectcreated_notification.json",
         {{"cloudtrail", "foo.json.gz"}},
         {}},
    };
    return table;
}

// JSON files that announce no S3 object, with what the decoder makes of them.
struct PayloadWithoutObjects {
    std::string file;
    std::vector<std::string> outcomes;  // sorted skip code names and "error"s
    std::string why;
};

const std::vector<PayloadWithoutObjects>& payloads_without_objects() {
    static const std::vector<PayloadWithoutObjects> table{
        {"powertools_captured_nested_events/firehose_cw_event.json",
         {"unsupported_payload"},
         "Firehose records"},
        {"powertools_captured_nested_events/firehose_sns_event.json",
         {"unsupported_payload"},
         "Firehose records"},
        {"powertools_captured_nested_events/sqs_sns_event.json",
         {"non_s3_sns_message"},
         "SNS 'from sns' via SQS"},
        {"powertools_captured_nested_events/sqs_rawsns_event.json",
         {"error"},
         "raw SNS delivery leaves a plain-text SQS body: a poison message"},
        {"powertools_tests_events/cloudWatchLogEvent.json", {"cloudwatch_logs"}, "awslogs.data"},
        {"powertools_tests_events/eventBridgeEvent.json",
         {"unsupported_payload"},
         "EC2 state change"},
        {"powertools_tests_events/kinesisFirehoseSQSEvent.json",
         {"unsupported_payload"},
         "Firehose records"},
        {"powertools_tests_events/kinesisStreamCloudWatchLogsEvent.json",
         {"unsupported_payload", "unsupported_payload"},
         "two aws:kinesis records"},
        {"powertools_tests_events/s3ObjectEventIAMUser.json",
         {"unsupported_payload"},
         "S3 Object Lambda"},
        {"powertools_tests_events/s3ObjectEventTempCredentials.json",
         {"unsupported_payload"},
         "S3 Object Lambda"},
        {"powertools_tests_events/snsEvent.json", {"non_s3_sns_message"}, "'Hello from SNS!'"},
        {"powertools_tests_events/snsSqsEvent.json",
         {"non_s3_sns_message"},
         "JSON SNS message, not S3"},
        {"powertools_tests_events/snsSqsFifoEvent.json",
         {"non_s3_sns_message"},
         "JSON SNS message, not S3"},
        {"powertools_tests_events/sqsDlqTriggerEvent.json", {"error"}, "body 'hello world'"},
        {"powertools_tests_events/sqsEvent.json",
         {"error", "unknown_shape"},
         "bodies 'Test message.' and {\"message\": \"foo1\"}"},
        {"aws-lambda-go_events_testdata/cloudwatch-logs-event.json",
         {"cloudwatch_logs"},
         "awslogs.data"},
        {"aws-lambda-go_events_testdata/sns-event.json",
         {"non_s3_sns_message"},
         "'Hello from SNS!'"},
        {"aws-lambda-go_events_testdata/sqs-event.json", {"error"}, "body 'Message Body'"},
        {"awsdocs_s3_notification_examples/s3_test_event.json", {"test_event"}, "s3:TestEvent"},
        {"awsdocs_cloudtrail_userguide/extracted/cloudtrail_digest_file_empty_example.json",
         {"unsupported_payload"},
         "a digest file's body"},
        {"awsdocs_cloudtrail_userguide/extracted/cloudtrail_digest_file_example.json",
         {"unsupported_payload"},
         "a digest file's body"},
        {"cloudtrail_s3_object_keys/awsdocs_digest_file_empty_example.json",
         {"unsupported_payload"},
         "a digest file's body"},
        {"cloudtrail_s3_object_keys/awsdocs_digest_file_example.json",
         {"unsupported_payload"},
         "a digest file's body"},
        {"pagerduty_events_v2/change_enqueue_request_example_build-change-event.json",
         {"unknown_shape"},
         "PagerDuty"},
        {"pagerduty_events_v2/change_enqueue_request_example_git-change-event.json",
         {"unknown_shape"},
         "PagerDuty"},
        {"pagerduty_events_v2/docs_example_acknowledge_request.json",
         {"unknown_shape"},
         "PagerDuty"},
        {"pagerduty_events_v2/docs_example_resolve_request.json", {"unknown_shape"}, "PagerDuty"},
        {"pagerduty_events_v2/enqueue_request_example_event.json", {"unknown_shape"}, "PagerDuty"},
        {"pagerduty_events_v2/enqueue_response_202_success.json", {"unknown_shape"}, "PagerDuty"},
        {"pagerduty_events_v2/enqueue_response_error_example.json", {"unknown_shape"}, "PagerDuty"},
        {"pagerduty_events_v2/openapiv3.json", {"unknown_shape"}, "PagerDuty"},
        {"slack_incoming_webhook/slack_webhook_responses.json", {"unknown_shape"}, "Slack"},
    };
    return table;
}

TEST(S3NotificationPayloads, EveryPayloadNamingAnObjectDecodesToItsBucketAndKey) {
    for (const auto& payload : payloads_with_objects()) {
        SCOPED_TRACE(payload.file);
        const auto decoding = decode_payload(payload.file, ObjectFilter::accept_all());
        EXPECT_TRUE(decoding.ok()) << errors_of(decoding);
        EXPECT_EQ(names_of(decoding.objects), payload.to_fetch);
        EXPECT_EQ(names_of_skipped(decoding, SkipCode::not_object_created), payload.not_created);
        EXPECT_EQ(decoding.skipped.size(), payload.not_created.size());
        EXPECT_TRUE(decoding.inline_events.empty());
    }
}

TEST(S3NotificationPayloads, DefaultFilterFetchesCloudTrailLogsOnlyAndSaysWhyNotTheRest) {
    for (const auto& payload : payloads_with_objects()) {
        SCOPED_TRACE(payload.file);
        const auto decoding = decode_payload(payload.file, ObjectFilter{});
        EXPECT_TRUE(decoding.ok()) << errors_of(decoding);
        if (payload.cloudtrail_logs) {
            EXPECT_EQ(names_of(decoding.objects), payload.to_fetch);
        } else {
            EXPECT_TRUE(decoding.objects.empty());
            EXPECT_EQ(names_of_skipped(decoding, SkipCode::key_not_accepted), payload.to_fetch);
            for (const auto& item : decoding.skipped) {
                if (item.code == SkipCode::key_not_accepted) {
                    EXPECT_THAT(item.reason, HasSubstr("not a CloudTrail log file"));
                }
            }
        }
        EXPECT_EQ(names_of_skipped(decoding, SkipCode::not_object_created), payload.not_created);
    }
}

TEST(S3NotificationPayloads, PayloadsWithoutObjectsAreSkippedOrRefusedAsListed) {
    for (const auto& payload : payloads_without_objects()) {
        SCOPED_TRACE(payload.file + " (" + payload.why + ")");
        const auto decoding = decode_payload(payload.file, ObjectFilter::accept_all());
        EXPECT_TRUE(decoding.objects.empty());
        EXPECT_TRUE(decoding.inline_events.empty());
        EXPECT_EQ(outcomes(decoding), payload.outcomes) << errors_of(decoding);
        for (const auto& item : decoding.skipped) EXPECT_FALSE(item.reason.empty());
    }
}

// A payload file added later must land in one of the two tables above.
TEST(S3NotificationPayloads, EveryJsonFileUnderPayloadsIsClassifiedByTheTests) {
    std::set<std::string> listed;
    for (const auto& payload : payloads_with_objects()) {
        EXPECT_TRUE(listed.insert(payload.file).second) << "listed twice: " << payload.file;
    }
    for (const auto& payload : payloads_without_objects()) {
        EXPECT_TRUE(listed.insert(payload.file).second) << "listed twice: " << payload.file;
    }

    std::set<std::string> on_disk;
    ASSERT_TRUE(fs::is_directory(payload_dir)) << payload_dir;
    for (const auto& entry : fs::recursive_directory_iterator(payload_dir)) {
        if (entry.is_regular_file() && entry.path().extension() == ".json") {
            on_disk.insert(entry.path().lexically_relative(payload_dir).generic_string());
        }
    }
    for (const auto& file : on_disk) {
        EXPECT_TRUE(listed.contains(file))
            << file << " is in neither table of s3_notification_test.cpp";
    }
    for (const auto& file : listed)
        EXPECT_TRUE(on_disk.contains(file)) << file << " is listed but missing";
}

TEST(S3NotificationPayloads, KeepsWhatTheNotificationSaysAboutTheObject) {
    const auto eventbridge = decode_payload("powertools_captured_nested_events/eb_s3_event.json",
                                            ObjectFilter::accept_all());
    ASSERT_EQ(eventbridge.objects.size(), 1u);
    const auto& eb = eventbridge.objects[0];
    EXPECT_EQ(eb.object.size, 1565u);
    EXPECT_EQ(eb.object.etag, "e56e21b1610dd94e9907f82b8d05b934");
    EXPECT_EQ(eb.object.sequencer, "0065FB77A03AD4478F");
    EXPECT_EQ(eb.object.region, "us-east-1");
    EXPECT_EQ(eb.object.event_name, "Object Created");
    EXPECT_EQ(eb.object.event_time, "2024-03-20T23:56:16Z");
    EXPECT_EQ(eb.origin.route, "EventBridge event");
    EXPECT_EQ(eb.origin.path, ".");
    EXPECT_FALSE(eb.origin.sqs_message_id);

    const auto nested = decode_payload("powertools_captured_nested_events/sqs_sns_s3_event.json",
                                       ObjectFilter::accept_all());
    ASSERT_EQ(nested.objects.size(), 1u);
    const auto& item = nested.objects[0];
    EXPECT_EQ(item.object.size, 4314u);
    EXPECT_EQ(item.object.etag, "e77dffcd1756d6e8e5123ef1e0ce7c54");
    EXPECT_EQ(item.object.sequencer, "0065FA0B4B104A6DAB");
    EXPECT_EQ(item.object.region, "us-west-2");
    EXPECT_EQ(item.object.event_name, "ObjectCreated:Put");
    EXPECT_EQ(item.object.event_time, "2024-03-19T22:01:47.135Z");
    EXPECT_EQ(item.origin.route, "SQS message > SNS notification > S3 event notification");
    EXPECT_EQ(item.origin.path, ".Records[0].body | fromjson | .Message | fromjson | .Records[0]");
    EXPECT_EQ(item.origin.sqs_message_id, "45405be4-2278-4eef-a29c-993898bb8917");

    const auto lambda_sns = decode_payload("powertools_captured_nested_events/sns_s3_event.json",
                                           ObjectFilter::accept_all());
    ASSERT_EQ(lambda_sns.objects.size(), 1u);
    EXPECT_EQ(lambda_sns.objects[0].origin.route, "SNS notification > S3 event notification");
    EXPECT_EQ(lambda_sns.objects[0].origin.path,
              ".Records[0].Sns.Message | fromjson | .Records[0]");

    const auto trail =
        decode_payload("cloudtrail_sns_notifications/sns_raw_cloudtrail_logfile_notification.json",
                       ObjectFilter{});
    ASSERT_EQ(trail.objects.size(), 1u);
    EXPECT_EQ(trail.objects[0].origin.route, "SNS notification > CloudTrail SNS message");
    EXPECT_EQ(trail.objects[0].origin.path, ".Message | fromjson | .s3ObjectKey[0]");
    // CloudTrail's message has no time of its own; the SNS envelope's stands in.
    EXPECT_EQ(trail.objects[0].object.event_time, "2023-12-16T00:21:11.830Z");
    EXPECT_FALSE(trail.objects[0].object.size);

    // The templates write "size": "object-size": no size rather than a failure.
    const auto templated = decode_payload(
        "awsdocs_s3_notification_examples/schema_v2.2_template.json", ObjectFilter::accept_all());
    ASSERT_EQ(templated.skipped.size(), 1u);
    ASSERT_TRUE(templated.skipped[0].object);
    EXPECT_FALSE(templated.skipped[0].object->size);
    EXPECT_THAT(templated.skipped[0].reason, HasSubstr("\"event-type\""));
}

// The urlDecodedKey that aws-lambda-go's samples add by hand agrees with our decoding.
TEST(S3NotificationPayloads, DecodedKeysMatchTheSamplesUrlDecodedKey) {
    int compared = 0;
    for (const auto& payload : payloads_with_objects()) {
        const auto document = json::parse(read_text(payload_dir / payload.file));
        const auto* records =
            document.is_object() ? document.as_object().if_contains("Records") : nullptr;
        if (records == nullptr || !records->is_array()) continue;
        const auto decoding = decode_payload(payload.file, ObjectFilter::accept_all());
        std::vector<std::string> keys;
        for (const auto& item : decoding.objects) keys.push_back(item.object.key);
        for (const auto& item : decoding.skipped) {
            if (item.object) keys.push_back(item.object->key);
        }
        for (const auto& record : records->as_array()) {
            const auto* s3 = record.as_object().if_contains("s3");
            if (s3 == nullptr) continue;
            const auto* expected =
                s3->as_object().at("object").as_object().if_contains("urlDecodedKey");
            if (expected == nullptr) continue;
            EXPECT_THAT(keys, ::testing::Contains(std::string(expected->as_string())))
                << payload.file;
            ++compared;
        }
    }
    EXPECT_GE(compared, 7);
}

// ---------------------------------------------------------------------------------
// Shapes built here

json::object s3_record(std::string_view bucket, std::string_view encoded_key,
                       std::string_view event_name = "ObjectCreated:Put") {
    return json::object{
        {"eventVersion", "2.1"},
        {"eventSource", "aws:s3"},
        {"awsRegion", "eu-west-1"},
        {"eventTime", "2024-05-01T10:00:00.000Z"},
        {"eventName", event_name},
        {"s3",
         {{"s3SchemaVersion", "1.0"},
          {"bucket", {{"name", bucket}, {"arn", "arn:aws:s3:::" + std::string(bucket)}}},
          {"object",
           {{"key", encoded_key}, {"size", 2048}, {"eTag", "abc"}, {"sequencer", "0065"}}}}},
    };
}

std::string s3_event(std::initializer_list<json::object> records) {
    json::array array;
    for (const auto& record : records) array.push_back(record);
    return json::serialize(json::object{{"Records", std::move(array)}});
}

std::string sns_envelope(std::string_view message, std::string_view type = "Notification") {
    return json::serialize(json::object{
        {"Type", type},
        {"MessageId", "11111111-2222-3333-4444-555555555555"},
        {"TopicArn", "arn:aws:sns:eu-west-1:123456789012:trail-topic"},
        {"Message", message},
        {"Timestamp", "2024-05-01T10:00:01.000Z"},
    });
}

json::object sqs_record(std::string_view message_id, std::string_view body) {
    return json::object{{"messageId", message_id},
                        {"receiptHandle", "handle"},
                        {"body", body},
                        {"eventSource", "aws:sqs"},
                        {"awsRegion", "eu-west-1"}};
}

std::string lambda_sqs_event(std::initializer_list<json::object> records) {
    json::array array;
    for (const auto& record : records) array.push_back(record);
    return json::serialize(json::object{{"Records", std::move(array)}});
}

const std::string log_key =
    "AWSLogs/123456789012/CloudTrail/eu-west-1/2024/05/01/"
    "123456789012_CloudTrail_eu-west-1_20240501T1000Z_abcdefABCDEF1234.json.gz";
const std::string digest_key =
    "AWSLogs/123456789012/CloudTrail-Digest/eu-west-1/2024/05/01/"
    "123456789012_CloudTrail-Digest_eu-west-1_main_eu-west-1_20240501T100000Z.json.gz";

TEST(S3NotificationKeys, UrlDecodingFollowsFormEncoding) {
    EXPECT_EQ(url_decode_s3_key("red+flower.jpg"), "red flower.jpg");
    EXPECT_EQ(url_decode_s3_key("c%2B%2B+linux.tar.gz"), "c++ linux.tar.gz");
    EXPECT_EQ(url_decode_s3_key("Happy%20Face.jpg"), "Happy Face.jpg");
    EXPECT_EQ(url_decode_s3_key("caf%C3%A9%2F%E2%82%AC"), "caf\xC3\xA9/\xE2\x82\xAC");
    EXPECT_EQ(url_decode_s3_key("test%2F10%3A47%3A07.log"), "test/10:47:07.log");
    EXPECT_EQ(url_decode_s3_key("plain/key.json.gz"), "plain/key.json.gz");
    EXPECT_EQ(url_decode_s3_key(""), "");
    EXPECT_FALSE(url_decode_s3_key("100%"));
    EXPECT_FALSE(url_decode_s3_key("bad%zz"));
}

TEST(S3NotificationKeys, S3EventKeysAreDecodedButEventBridgeAndCloudTrailKeysAreNot) {
    const std::string prefix_encoded = "my+trail+%C3%A9t%C3%A9/";
    const auto s3 = decode_notification(s3_event({s3_record("b", prefix_encoded + log_key)}));
    ASSERT_EQ(s3.objects.size(), 1u) << errors_of(s3);
    EXPECT_EQ(s3.objects[0].object.key, "my trail \xC3\xA9t\xC3\xA9/" + log_key);

    const auto plus = decode_notification(s3_event({s3_record("b", "a+b%2Bc+%E2%82%AC.txt")}),
                                          ObjectFilter::accept_all());
    ASSERT_EQ(plus.objects.size(), 1u);
    EXPECT_EQ(plus.objects[0].object.key, "a b+c \xE2\x82\xAC.txt");

    const std::string eventbridge = json::serialize(json::object{
        {"version", "0"},
        {"detail-type", "Object Created"},
        {"source", "aws.s3"},
        {"region", "eu-west-1"},
        {"time", "2024-05-01T10:00:00Z"},
        {"detail",
         {{"bucket", {{"name", "b"}}}, {"object", {{"key", "a+b%2Bc.txt"}, {"size", 3}}}}},
    });
    const auto eb = decode_notification(eventbridge, ObjectFilter::accept_all());
    ASSERT_EQ(eb.objects.size(), 1u);
    EXPECT_EQ(eb.objects[0].object.key, "a+b%2Bc.txt");

    const auto trail = decode_notification(R"({"s3Bucket":"b","s3ObjectKey":["x+y%20z.json.gz"]})",
                                           ObjectFilter::accept_all());
    ASSERT_EQ(trail.objects.size(), 1u);
    EXPECT_EQ(trail.objects[0].object.key, "x+y%20z.json.gz");
}

TEST(S3NotificationKeys, ABucketNameThatNamesNoBucketIsAnErrorNamingTheRecord) {
    // Empty, or with characters no bucket has ever had: it would end up in a request's host or path.
    const auto trail = decode_notification(
        json::serialize(json::object{{"s3Bucket", ""}, {"s3ObjectKey", json::array{log_key, log_key}}}));
    EXPECT_TRUE(trail.objects.empty());
    ASSERT_EQ(trail.errors.size(), 2u);
    EXPECT_THAT(trail.errors[1].message, StartsWith(".s3ObjectKey[1]: "));
    EXPECT_THAT(trail.errors[1].message, HasSubstr("the bucket name \"\" is not an S3 bucket name"));

    const auto records = decode_notification(
        s3_event({s3_record("attacker.example#", log_key), s3_record("a b", log_key), s3_record("Old_Bucket.1", log_key)}));
    ASSERT_EQ(records.objects.size(), 1u) << errors_of(records);
    EXPECT_EQ(records.objects[0].object.bucket, "Old_Bucket.1");  // a legacy us-east-1 name
    ASSERT_EQ(records.errors.size(), 2u);
    EXPECT_EQ(records.errors[0].origin.path, ".Records[0]");
    EXPECT_THAT(records.errors[0].message, HasSubstr("\"attacker.example#\" is not an S3 bucket name"));
    EXPECT_EQ(records.errors[1].origin.path, ".Records[1]");
}

TEST(S3NotificationKeys, BrokenUrlEncodingIsAnErrorNamingTheRecord) {
    const auto decoding =
        decode_notification(s3_event({s3_record("b", log_key), s3_record("b", "100%.json.gz")}));
    EXPECT_EQ(decoding.objects.size(), 1u);
    ASSERT_EQ(decoding.errors.size(), 1u);
    EXPECT_THAT(decoding.errors[0].message, StartsWith(".Records[1]: "));
    EXPECT_THAT(decoding.errors[0].message,
                HasSubstr("\"100%.json.gz\" is not valid URL encoding"));
    EXPECT_EQ(decoding.errors[0].origin.path, ".Records[1]");
}

// ---------------------------------------------------------------------------------
// Wrappings

TEST(S3NotificationShapes, DoubleEncodedSnsInsideSqsDecodes) {
    const std::string inner = s3_event({s3_record("trail-bucket", log_key)});
    const std::string body = sns_envelope(inner);
    const auto decoding = decode_notification(lambda_sqs_event({sqs_record("m-1", body)}));
    ASSERT_TRUE(decoding.ok()) << errors_of(decoding);
    ASSERT_EQ(decoding.objects.size(), 1u);
    EXPECT_EQ(decoding.objects[0].object.bucket, "trail-bucket");
    EXPECT_EQ(decoding.objects[0].object.key, log_key);
    EXPECT_EQ(decoding.objects[0].origin.sqs_message_id, "m-1");

    // The same body as the SQS source sees it: the message body alone.
    const auto body_only = decode_notification(body);
    ASSERT_EQ(body_only.objects.size(), 1u);
    EXPECT_EQ(body_only.objects[0].origin.route, "SNS notification > S3 event notification");
    EXPECT_EQ(body_only.objects[0].origin.path, ".Message | fromjson | .Records[0]");

    // CloudTrail's message through SNS and SQS: three levels of strings.
    const std::string trail_body = sns_envelope(json::serialize(
        json::object{{"s3Bucket", "trail-bucket"}, {"s3ObjectKey", json::array{log_key}}}));
    const auto trail = decode_notification(lambda_sqs_event({sqs_record("m-2", trail_body)}));
    ASSERT_EQ(trail.objects.size(), 1u) << errors_of(trail);
    EXPECT_EQ(trail.objects[0].origin.route,
              "SQS message > SNS notification > CloudTrail SNS message");
    EXPECT_EQ(trail.objects[0].object.event_time, "2024-05-01T10:00:01.000Z");
}

TEST(S3NotificationShapes, MultiRecordNotificationsKeepEveryRecordApart) {
    const auto decoding = decode_notification(s3_event({
        s3_record("b", log_key),
        s3_record("b", digest_key),
        s3_record("b", "AWSLogs/123456789012/elasticloadbalancing/eu-west-1/2024/05/01/x.log.gz"),
        s3_record("b", log_key, "ObjectRemoved:Delete"),
    }));
    ASSERT_TRUE(decoding.ok()) << errors_of(decoding);
    ASSERT_EQ(decoding.objects.size(), 1u);
    EXPECT_EQ(decoding.objects[0].origin.path, ".Records[0]");
    ASSERT_EQ(decoding.skipped.size(), 3u);
    EXPECT_EQ(decoding.skipped[0].code, SkipCode::cloudtrail_digest);
    EXPECT_EQ(decoding.skipped[0].origin.path, ".Records[1]");
    EXPECT_THAT(decoding.skipped[0].reason, HasSubstr("digest"));
    EXPECT_EQ(decoding.skipped[1].code, SkipCode::key_not_accepted);
    EXPECT_EQ(decoding.skipped[1].origin.path, ".Records[2]");
    EXPECT_EQ(decoding.skipped[2].code, SkipCode::not_object_created);
    EXPECT_THAT(decoding.skipped[2].reason, HasSubstr("ObjectRemoved:Delete"));

    // Two SQS messages, two records each: every item keeps its message id.
    const auto lambda = decode_notification(lambda_sqs_event({
        sqs_record("m-1", s3_event({s3_record("b1", log_key), s3_record("b1", digest_key)})),
        sqs_record("m-2", s3_event({s3_record("b2", log_key), s3_record("b2", log_key)})),
    }));
    ASSERT_EQ(lambda.objects.size(), 3u);
    EXPECT_EQ(lambda.objects[0].origin.sqs_message_id, "m-1");
    EXPECT_EQ(lambda.objects[1].origin.sqs_message_id, "m-2");
    EXPECT_EQ(lambda.objects[2].origin.path, ".Records[1].body | fromjson | .Records[1]");
    ASSERT_EQ(lambda.skipped.size(), 1u);
    EXPECT_EQ(lambda.skipped[0].origin.sqs_message_id, "m-1");
}

TEST(S3NotificationShapes, EveryLambdaSqsRecordYieldsAnItemWithItsMessageId) {
    const auto decoding = decode_payload("powertools_tests_events/sqsEvent.json", ObjectFilter{});
    ASSERT_EQ(decoding.errors.size(), 1u);
    EXPECT_EQ(decoding.errors[0].origin.sqs_message_id, "059f36b4-87a3-44ab-83d2-661975830a7d");
    EXPECT_THAT(decoding.errors[0].message, StartsWith(".Records[0].body:1:1: JSON syntax error"));
    ASSERT_EQ(decoding.skipped.size(), 1u);
    EXPECT_EQ(decoding.skipped[0].code, SkipCode::unknown_shape);
    EXPECT_EQ(decoding.skipped[0].origin.sqs_message_id, "2e1424d4-f796-459a-8184-9c92662be6da");
    EXPECT_THAT(decoding.skipped[0].reason, HasSubstr("\"message\""));
}

TEST(S3NotificationShapes, TestEventsAreSkippedWithoutErrorWhereverTheyArrive) {
    const std::string test_event =
        read_text(payload_dir / "awsdocs_s3_notification_examples/s3_test_event.json");
    for (const auto& [payload, route] : std::vector<std::pair<std::string, std::string>>{
             {test_event, "S3 test event"},
             {sns_envelope(test_event), "SNS notification > S3 test event"},
             {lambda_sqs_event({sqs_record("m-1", test_event)}), "SQS message > S3 test event"},
             {lambda_sqs_event({sqs_record("m-1", sns_envelope(test_event))}),
              "SQS message > SNS notification > S3 test event"},
         }) {
        const auto decoding = decode_notification(payload);
        EXPECT_TRUE(decoding.ok()) << errors_of(decoding);
        EXPECT_TRUE(decoding.objects.empty());
        ASSERT_EQ(decoding.skipped.size(), 1u);
        EXPECT_EQ(decoding.skipped[0].code, SkipCode::test_event);
        EXPECT_EQ(decoding.skipped[0].origin.route, route);
        EXPECT_THAT(decoding.skipped[0].reason, HasSubstr("\"bucketname\""));
    }
}

TEST(S3NotificationShapes, NonS3SnsMessagesAreSkippedWithoutError) {
    for (const std::string message :
         {"Hello from SNS!", R"({"AlarmName":"cpu","NewStateValue":"ALARM"})", "  "}) {
        const auto decoding = decode_notification(sns_envelope(message));
        EXPECT_TRUE(decoding.ok()) << errors_of(decoding);
        ASSERT_EQ(decoding.skipped.size(), 1u) << message;
        EXPECT_EQ(decoding.skipped[0].code, SkipCode::non_s3_sns_message);
        EXPECT_THAT(decoding.skipped[0].reason,
                    HasSubstr("arn:aws:sns:eu-west-1:123456789012:trail-topic"));
    }
    const auto confirmation =
        decode_notification(sns_envelope("confirm", "SubscriptionConfirmation"));
    ASSERT_EQ(confirmation.skipped.size(), 1u);
    EXPECT_EQ(confirmation.skipped[0].code, SkipCode::sns_control_message);

    // Text that starts like JSON but is not is a broken notification, not chatter.
    const auto broken = decode_notification(sns_envelope(R"({"Records": [)"));
    ASSERT_EQ(broken.errors.size(), 1u);
    EXPECT_THAT(broken.errors[0].message, StartsWith(".Message:1:"));
}

TEST(S3NotificationShapes, CloudTrailEventsFromEventBridgeComeBackInline) {
    const json::object detail{
        {"eventVersion", "1.08"}, {"eventSource", "iam.amazonaws.com"}, {"eventName", "CreateUser"},
        {"eventID", "e-1"},       {"userIdentity", {{"type", "Root"}}},
    };
    const std::string api_call = json::serialize(json::object{
        {"version", "0"},
        {"id", "x"},
        {"detail-type", "AWS API Call via CloudTrail"},
        {"source", "aws.iam"},
        {"detail", detail},
    });
    const auto direct = decode_notification(api_call);
    ASSERT_TRUE(direct.ok());
    ASSERT_EQ(direct.inline_events.size(), 1u);
    EXPECT_EQ(direct.inline_events[0].event, detail);
    EXPECT_EQ(direct.inline_events[0].detail_type, "AWS API Call via CloudTrail");
    EXPECT_EQ(direct.inline_events[0].origin.path, ".detail");
    EXPECT_TRUE(direct.objects.empty());

    // The SQS source's case: EventBridge -> SQS, one message per event.
    const auto queued = decode_notification(lambda_sqs_event({sqs_record("m-9", api_call)}));
    ASSERT_EQ(queued.inline_events.size(), 1u);
    EXPECT_EQ(queued.inline_events[0].origin.sqs_message_id, "m-9");
    EXPECT_EQ(queued.inline_events[0].origin.path, ".Records[0].body | fromjson | .detail");
    EXPECT_EQ(queued.inline_events[0].origin.route, "SQS message > EventBridge event");

    // Console sign-ins (root logins!) arrive under their own detail type.
    std::string sign_in = api_call;
    sign_in.replace(sign_in.find("AWS API Call via CloudTrail"), 27,
                    "AWS Console Sign In via CloudTrail");
    EXPECT_EQ(decode_notification(sign_in).inline_events.size(), 1u);
}

TEST(S3NotificationShapes, DigestKeysAreSkippedWithoutError) {
    const auto decoding = decode_notification(json::serialize(
        json::object{{"s3Bucket", "b"}, {"s3ObjectKey", json::array{log_key, digest_key}}}));
    EXPECT_TRUE(decoding.ok());
    ASSERT_EQ(decoding.objects.size(), 1u);
    ASSERT_EQ(decoding.skipped.size(), 1u);
    EXPECT_EQ(decoding.skipped[0].code, SkipCode::cloudtrail_digest);
    EXPECT_EQ(decoding.skipped[0].origin.path, ".s3ObjectKey[1]");
    ASSERT_TRUE(decoding.skipped[0].object);
    EXPECT_EQ(decoding.skipped[0].object->key, digest_key);
}

// ---------------------------------------------------------------------------------
// Errors

TEST(S3NotificationErrors, InvalidJsonNamesThePosition) {
    const auto one_line = decode_notification(R"({"Records": [})");
    ASSERT_EQ(one_line.errors.size(), 1u);
    EXPECT_THAT(one_line.errors[0].message, StartsWith("1:14: JSON syntax error: "));
    EXPECT_THAT(one_line.errors[0].message, HasSubstr("at '}'"));
    EXPECT_EQ(one_line.errors[0].origin.path, ".");

    const auto multi_line = decode_notification("{\n  \"Records\": [\n    {\"s3\": }\n  ]\n}\n");
    ASSERT_EQ(multi_line.errors.size(), 1u);
    EXPECT_THAT(multi_line.errors[0].message, StartsWith("3:12: JSON syntax error: "));

    const auto trailing = decode_notification("{} {}");
    ASSERT_EQ(trailing.errors.size(), 1u);
    EXPECT_THAT(trailing.errors[0].message, StartsWith("1:4: JSON syntax error: "));

    const auto empty = decode_notification(" \n");
    ASSERT_EQ(empty.errors.size(), 1u);
    EXPECT_THAT(empty.errors[0].message, HasSubstr("empty text, not JSON"));

    const auto text = decode_notification("this is a raw message");
    ASSERT_EQ(text.errors.size(), 1u);
    EXPECT_THAT(text.errors[0].message, StartsWith("1:1: JSON syntax error: "));
}

TEST(S3NotificationErrors, BrokenNestedBodiesNameTheStringAndThePositionInIt) {
    const auto decoding = decode_notification(lambda_sqs_event({
        sqs_record("m-1", s3_event({s3_record("b", log_key)})),
        sqs_record("m-2", "{\"Records\": [\n  {\"eventSource\": \"aws:s3\",}\n]}"),
    }));
    EXPECT_EQ(decoding.objects.size(), 1u);
    ASSERT_EQ(decoding.errors.size(), 1u);
    EXPECT_THAT(decoding.errors[0].message,
                StartsWith(".Records[1].body:2:28: JSON syntax error: "));
    EXPECT_EQ(decoding.errors[0].origin.sqs_message_id, "m-2");
    EXPECT_EQ(decoding.errors[0].origin.path, ".Records[1].body");
}

TEST(S3NotificationErrors, MalformedKnownShapesAreErrorsNotSkips) {
    const auto no_key = decode_notification(
        R"({"Records":[{"eventSource":"aws:s3","s3":{"bucket":{"name":"b"}}}]})");
    ASSERT_EQ(no_key.errors.size(), 1u);
    EXPECT_THAT(no_key.errors[0].message, StartsWith(".Records[0]: S3 event record without"));

    const auto not_array = decode_notification(R"({"Records":{"eventSource":"aws:s3"}})");
    ASSERT_EQ(not_array.errors.size(), 1u);
    EXPECT_THAT(not_array.errors[0].message, HasSubstr("\"Records\" is an object, not an array"));

    const auto not_object = decode_notification(R"({"Records":["x"]})");
    ASSERT_EQ(not_object.errors.size(), 1u);
    EXPECT_THAT(not_object.errors[0].message, StartsWith(".Records[0]: the record is a string"));

    const auto bad_key = decode_notification(R"({"s3Bucket":"b","s3ObjectKey":["ok.json.gz", 7]})",
                                             ObjectFilter::accept_all());
    EXPECT_EQ(bad_key.objects.size(), 1u);
    ASSERT_EQ(bad_key.errors.size(), 1u);
    EXPECT_THAT(bad_key.errors[0].message, StartsWith(".s3ObjectKey[1]: the key is a number"));

    const auto no_body =
        decode_notification(R"({"Records":[{"eventSource":"aws:sqs","messageId":"m"}]})");
    ASSERT_EQ(no_body.errors.size(), 1u);
    EXPECT_EQ(no_body.errors[0].origin.sqs_message_id, "m");
}

TEST(S3NotificationErrors, EndlessNestingStops) {
    std::string payload = s3_event({s3_record("b", log_key)});
    for (int level = 0; level < 6; ++level) payload = sns_envelope(payload);
    const auto decoding = decode_notification(payload);
    EXPECT_TRUE(decoding.objects.empty());
    ASSERT_EQ(decoding.errors.size(), 1u);
    EXPECT_THAT(decoding.errors[0].message, HasSubstr("nested more than 4 levels deep"));
}

TEST(S3NotificationErrors, EmptyAndUnknownDocumentsAreSkipped) {
    EXPECT_EQ(outcomes(decode_notification(R"({"Records":[]})")),
              std::vector<std::string>{"empty_notification"});
    EXPECT_EQ(outcomes(decode_notification(R"({"s3Bucket":"b","s3ObjectKey":[]})")),
              std::vector<std::string>{"empty_notification"});
    EXPECT_EQ(outcomes(decode_notification("{}")), std::vector<std::string>{"unknown_shape"});
    EXPECT_EQ(outcomes(decode_notification("[1,2]")), std::vector<std::string>{"unknown_shape"});
    const auto cloudtrail_log = decode_notification(
        R"({"Records":[{"eventVersion":"1.08","eventSource":"iam.amazonaws.com","eventName":"CreateUser"}]})");
    ASSERT_EQ(cloudtrail_log.skipped.size(), 1u);
    EXPECT_EQ(cloudtrail_log.skipped[0].code, SkipCode::unsupported_payload);
    EXPECT_THAT(cloudtrail_log.skipped[0].reason, HasSubstr("CloudTrail event record"));
}

// ---------------------------------------------------------------------------------
// Keys and filters

KeyKind kind_from_label(const std::string& label) {
    if (label.starts_with("log")) return KeyKind::cloudtrail_log;
    if (label.starts_with("digest")) return KeyKind::cloudtrail_digest;
    if (label.starts_with("insight")) return KeyKind::cloudtrail_insight;
    ADD_FAILURE() << "object_keys.jsonl has a kind this test does not know: " << label;
    return KeyKind::other;
}

TEST(S3NotificationKeys, EveryKeyInObjectKeysJsonlIsClassifiedAsLabelled) {
    std::ifstream in(payload_dir / "cloudtrail_s3_object_keys/object_keys.jsonl");
    ASSERT_TRUE(in);
    const ObjectFilter default_filter;
    const auto with_insights = ObjectFilter::cloudtrail_logs(true);
    std::map<KeyKind, int> seen;
    std::string line;
    while (std::getline(in, line)) {
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        const auto entry = json::parse(line).as_object();
        const std::string key(entry.at("key").as_string());
        const std::string label(entry.at("kind").as_string());
        SCOPED_TRACE(key + " (" + label + ")");
        const KeyKind expected = kind_from_label(label);
        ++seen[expected];

        const auto parsed = classify_cloudtrail_key(key);
        EXPECT_EQ(key_kind_name(parsed.kind), key_kind_name(expected));
        // "log_filename_only…" keys are bare file names; the others use the delivery layout.
        EXPECT_EQ(parsed.standard_layout, key.starts_with("AWSLogs/"));
        EXPECT_TRUE(parsed.date.has_value());
        EXPECT_EQ(parsed.account_id.size(), 12u);

        const auto rejection = default_filter.check(key);
        switch (expected) {
            case KeyKind::cloudtrail_log:
                EXPECT_FALSE(rejection) << rejection->reason;
                break;
            case KeyKind::cloudtrail_digest:
                ASSERT_TRUE(rejection);
                EXPECT_EQ(rejection->code, SkipCode::cloudtrail_digest);
                EXPECT_TRUE(with_insights.check(key));
                break;
            case KeyKind::cloudtrail_insight:
                ASSERT_TRUE(rejection);
                EXPECT_EQ(rejection->code, SkipCode::key_not_accepted);
                EXPECT_THAT(rejection->reason, HasSubstr("Insights"));
                EXPECT_FALSE(with_insights.check(key));
                break;
            case KeyKind::other:
                break;
        }
    }
    EXPECT_GE(seen[KeyKind::cloudtrail_log], 10);
    EXPECT_GE(seen[KeyKind::cloudtrail_digest], 5);
    EXPECT_GE(seen[KeyKind::cloudtrail_insight], 1);
}

TEST(S3NotificationKeys, LayoutPartsAndDates) {
    const auto org = classify_cloudtrail_key(
        "team/audit/AWSLogs/o-fxozgwu6rc/123456789015/CloudTrail/ca-central-1/2020/09/23/"
        "123456789015_CloudTrail_ca-central-1_20200923T0516Z_KL5e9VCV2SS7IqzB.json.gz");
    EXPECT_EQ(org.kind, KeyKind::cloudtrail_log);
    EXPECT_TRUE(org.standard_layout);
    EXPECT_EQ(org.prefix, "team/audit");
    EXPECT_EQ(org.organization_id, "o-fxozgwu6rc");
    EXPECT_EQ(org.account_id, "123456789015");
    EXPECT_EQ(org.region, "ca-central-1");
    EXPECT_EQ(org.date, (Date{year{2020}, month{9}, day{23}}));

    EXPECT_EQ(cloudtrail_key_date(log_key), (Date{year{2024}, month{5}, day{1}}));
    // A digest's file name ends with its own timestamp, after the trail name.
    EXPECT_EQ(
        cloudtrail_key_date(
            "123456789012_CloudTrail-Digest_us-east-2_my_trail_us-east-2_20150817T150131Z.json.gz"),
        (Date{year{2015}, month{8}, day{17}}));
    EXPECT_EQ(cloudtrail_key_date(
                  "218007301253_CloudTrail_us-east-1_20230710T1145Z_7xgocspSowgK0Gto.json"),
              (Date{year{2023}, month{7}, day{10}}));
    // The delivery layout wins over the file name, and an impossible folder date is no date.
    EXPECT_FALSE(
        cloudtrail_key_date("AWSLogs/123456789012/CloudTrail/us-east-1/2023/02/30/x.json.gz"));
    EXPECT_EQ(
        classify_cloudtrail_key("AWSLogs/123456789012/CloudTrail/us-east-1/2023/02/30/x.json.gz")
            .kind,
        KeyKind::other);

    for (const char* other : {
             "AWSLogs/123456789012/CloudTrail/us-east-1/2024/05/01/",  // a console "folder"
             "AWSLogs/123456789012/CloudTrail/us-east-1/2024/05/01/notes.txt",
             "AWSLogs/123456789012/Config/ConfigWritabilityCheckFile",
             "AWSLogs/123456789012/vpcflowlogs/us-east-1/2024/05/01/flow.log.gz",
             "AWSLogs/12345/CloudTrail/us-east-1/2024/05/01/x.json.gz",
             "foo.json.gz",
             "",
         }) {
        EXPECT_EQ(classify_cloudtrail_key(other).kind, KeyKind::other) << other;
        EXPECT_FALSE(cloudtrail_key_date(other)) << other;
        const auto rejection = ObjectFilter{}.check(other);
        ASSERT_TRUE(rejection) << other;
        EXPECT_EQ(rejection->code, SkipCode::key_not_accepted);
    }
}

TEST(S3NotificationKeys, KeyPatternReplacesTheCloudTrailRules) {
    const auto filter = ObjectFilter::key_pattern(R"(^exports/.*\.json(\.gz)?$)");
    EXPECT_FALSE(filter.check("exports/2024/a.json.gz"));
    EXPECT_FALSE(filter.check("exports/b.json"));
    const auto refused = filter.check(log_key);
    ASSERT_TRUE(refused);
    EXPECT_EQ(refused->code, SkipCode::key_not_accepted);
    EXPECT_THAT(refused->reason, HasSubstr("exports/"));

    // Unanchored patterns match anywhere in the key.
    EXPECT_FALSE(ObjectFilter::key_pattern("/CloudTrail/").check(log_key));
    EXPECT_TRUE(ObjectFilter::key_pattern("/CloudTrail/").check(digest_key));

    EXPECT_THROW(ObjectFilter::key_pattern(""), std::invalid_argument);
    try {
        ObjectFilter::key_pattern("(unclosed");
        FAIL() << "expected std::invalid_argument";
    } catch (const std::invalid_argument& error) {
        EXPECT_THAT(error.what(), HasSubstr("\"(unclosed\""));
    }

    const auto decoding = decode_notification(
        s3_event({s3_record("b", "exports/x.json"), s3_record("b", log_key)}), filter);
    ASSERT_EQ(decoding.objects.size(), 1u);
    EXPECT_EQ(decoding.objects[0].object.key, "exports/x.json");
    EXPECT_FALSE(ObjectFilter::accept_all().check("anything at all"));
}

TEST(S3NotificationKeys, SkipCodesHaveStableNames) {
    EXPECT_EQ(skip_code_name(SkipCode::test_event), "test_event");
    EXPECT_EQ(skip_code_name(SkipCode::cloudtrail_digest), "cloudtrail_digest");
    EXPECT_EQ(skip_code_name(SkipCode::key_not_accepted), "key_not_accepted");
    EXPECT_EQ(key_kind_name(KeyKind::cloudtrail_insight), "cloudtrail_insight");
}

}  // namespace
