// Lambda invocation payloads → work items: the event kinds, SQS message ids for
// batchItemFailures, CloudWatch Logs decoding, and what bad payloads become.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "tattle/lambda.hpp"

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using tattle::lambda::InvocationPlan;
using tattle::lambda::plan_invocation;
using tattle::lambda::WorkItem;
using tattle::notifications::ObjectFilter;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const fs::path kPayloads = fs::path(TATTLE_SHARED_DATA_DIR) / "payloads";

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path.string());
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

std::string gzip_text(const std::string& text) {
    z_stream stream{};
    deflateInit2(&stream, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    std::string out(deflateBound(&stream, static_cast<uLong>(text.size())), '\0');
    stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
    stream.avail_in = static_cast<uInt>(text.size());
    stream.next_out = reinterpret_cast<Bytef*>(out.data());
    stream.avail_out = static_cast<uInt>(out.size());
    deflate(&stream, Z_FINISH);
    out.resize(stream.total_out);
    deflateEnd(&stream);
    return out;
}

std::string base64(const std::string& bytes) {
    static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3) {
        const unsigned n = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                           static_cast<unsigned char>(bytes[i + 2]);
        for (int shift = 18; shift >= 0; shift -= 6) out += kAlphabet[(n >> shift) & 63];
    }
    if (i + 1 == bytes.size()) {
        const unsigned n = static_cast<unsigned char>(bytes[i]) << 16;
        out += kAlphabet[(n >> 18) & 63];
        out += kAlphabet[(n >> 12) & 63];
        out += "==";
    } else if (i + 2 == bytes.size()) {
        const unsigned n = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8);
        out += kAlphabet[(n >> 18) & 63];
        out += kAlphabet[(n >> 12) & 63];
        out += kAlphabet[(n >> 6) & 63];
        out += '=';
    }
    return out;
}

std::string cloudwatch_payload(const json::object& logs) {
    return json::serialize(json::object{{"awslogs", json::object{{"data", base64(gzip_text(json::serialize(logs)))}}}});
}

TEST(PlanInvocation, S3EventObjectsAndTheCloudTrailKeyFilter) {
    const std::string payload = read_file(kPayloads / "aws-lambda-go_events_testdata" / "s3-event.json");
    const InvocationPlan all = plan_invocation(payload, ObjectFilter::accept_all());
    EXPECT_EQ(all.event_kind, "s3");
    EXPECT_FALSE(all.partial_batch_response);
    ASSERT_FALSE(all.items.empty());
    EXPECT_EQ(all.items[0].kind, WorkItem::Kind::object);
    EXPECT_THAT(all.items[0].origin, ::testing::StartsWith("s3://" + all.items[0].object.bucket + "/"));
    EXPECT_TRUE(all.problems.empty());

    // Not a CloudTrail key: skipped with its reason, not a problem.
    const InvocationPlan cloudtrail_only = plan_invocation(payload, ObjectFilter::cloudtrail_logs());
    EXPECT_TRUE(cloudtrail_only.items.empty());
    EXPECT_FALSE(cloudtrail_only.skipped.empty());
    EXPECT_TRUE(cloudtrail_only.problems.empty());
}

TEST(PlanInvocation, SqsEventKeepsEveryMessageIdAndTiesItemsToThem) {
    const std::string payload = read_file(kPayloads / "powertools_tests_events" / "s3SqsEvent.json");
    const InvocationPlan plan = plan_invocation(payload, ObjectFilter::accept_all());
    EXPECT_EQ(plan.event_kind, "sqs");
    EXPECT_TRUE(plan.partial_batch_response);
    const auto records = json::parse(payload).at("Records").as_array();
    ASSERT_EQ(plan.message_ids.size(), records.size());
    EXPECT_EQ(plan.message_ids[0], records[0].at("messageId").as_string());
    ASSERT_FALSE(plan.items.empty());
    for (const auto& item : plan.items) {
        ASSERT_TRUE(item.sqs_message_id);
        EXPECT_EQ(*item.sqs_message_id, plan.message_ids[0]);
    }
}

TEST(PlanInvocation, SqsMessagesThatAreNotNotificationsAreProblemsOfThoseMessages) {
    const std::string payload = read_file(kPayloads / "powertools_tests_events" / "sqsEvent.json");
    const InvocationPlan plan = plan_invocation(payload, ObjectFilter::accept_all());
    EXPECT_EQ(plan.event_kind, "sqs");
    EXPECT_TRUE(plan.items.empty());
    ASSERT_FALSE(plan.problems.empty());
    for (const auto& problem : plan.problems) {
        ASSERT_TRUE(problem.sqs_message_id) << problem.message;
        EXPECT_THAT(plan.message_ids, ::testing::Contains(*problem.sqs_message_id));
    }
}

TEST(PlanInvocation, CloudWatchLogsEventsBecomeOneEventsItem) {
    const std::string payload = read_file(kPayloads / "aws-lambda-go_events_testdata" / "cloudwatch-logs-event.json");
    const InvocationPlan plan = plan_invocation(payload, ObjectFilter::cloudtrail_logs());
    EXPECT_EQ(plan.event_kind, "cloudwatch-logs");
    ASSERT_EQ(plan.items.size(), 1U);
    EXPECT_EQ(plan.items[0].kind, WorkItem::Kind::events);
    EXPECT_EQ(plan.items[0].origin, "cloudwatch-logs testLogGroup/testLogStream");
    EXPECT_EQ(plan.items[0].events, "[ERROR] First test message\n[ERROR] Second test message\n");

    const json::object cloudtrail_event{{"eventVersion", "1.08"}, {"eventID", "e-1"}, {"eventName", "CreateUser"}};
    const InvocationPlan trail = plan_invocation(
        cloudwatch_payload({{"messageType", "DATA_MESSAGE"},
                            {"logGroup", "trail"},
                            {"logStream", "s"},
                            {"logEvents", json::array{json::object{{"id", "1"}, {"message", json::serialize(cloudtrail_event)}}}}}),
        ObjectFilter::cloudtrail_logs());
    ASSERT_EQ(trail.items.size(), 1U);
    EXPECT_EQ(json::parse(trail.items[0].events), cloudtrail_event);
}

TEST(PlanInvocation, CloudWatchControlMessagesAreSkippedAndBrokenDataIsAProblem) {
    const InvocationPlan control = plan_invocation(
        cloudwatch_payload({{"messageType", "CONTROL_MESSAGE"}, {"logGroup", ""}, {"logStream", ""}, {"logEvents", json::array()}}),
        ObjectFilter::cloudtrail_logs());
    EXPECT_TRUE(control.items.empty());
    EXPECT_TRUE(control.problems.empty());
    ASSERT_EQ(control.skipped.size(), 1U);
    EXPECT_THAT(control.skipped[0], HasSubstr("control message"));

    const InvocationPlan not_base64 = plan_invocation(R"({"awslogs":{"data":"%%%"}})", ObjectFilter::cloudtrail_logs());
    ASSERT_EQ(not_base64.problems.size(), 1U);
    EXPECT_THAT(not_base64.problems[0].message, HasSubstr("not valid base64"));

    const InvocationPlan not_gzip =
        plan_invocation(R"({"awslogs":{"data":")" + base64("plain text, no gzip") + R"("}})", ObjectFilter::cloudtrail_logs());
    ASSERT_EQ(not_gzip.problems.size(), 1U);
    EXPECT_THAT(not_gzip.problems[0].message, HasSubstr(".awslogs.data"));
}

TEST(PlanInvocation, EventBridgeCloudTrailEventsAreCarriedInline) {
    const json::object detail{{"eventVersion", "1.08"}, {"eventID", "evt-42"}, {"eventName", "StopLogging"},
                              {"eventSource", "cloudtrail.amazonaws.com"}};
    const std::string payload = json::serialize(json::object{{"version", "0"},
                                                             {"id", "eb-1"},
                                                             {"detail-type", "AWS API Call via CloudTrail"},
                                                             {"source", "aws.cloudtrail"},
                                                             {"account", "123456789012"},
                                                             {"region", "us-east-1"},
                                                             {"resources", json::array()},
                                                             {"detail", detail}});
    const InvocationPlan plan = plan_invocation(payload, ObjectFilter::cloudtrail_logs());
    EXPECT_EQ(plan.event_kind, "eventbridge");
    ASSERT_EQ(plan.items.size(), 1U);
    EXPECT_EQ(plan.items[0].kind, WorkItem::Kind::events);
    EXPECT_EQ(plan.items[0].origin, "eventbridge evt-42");
    EXPECT_EQ(json::parse(plan.items[0].events), detail);
}

TEST(PlanInvocation, NotJsonIsAProblemNotAThrow) {
    const InvocationPlan plan = plan_invocation("not json {", ObjectFilter::cloudtrail_logs());
    EXPECT_EQ(plan.event_kind, "unknown");
    ASSERT_EQ(plan.problems.size(), 1U);
    EXPECT_FALSE(plan.problems[0].sqs_message_id);
}

TEST(BatchItemFailures, ListsTheMessageIds) {
    EXPECT_EQ(tattle::lambda::batch_item_failures_json({}), R"({"batchItemFailures":[]})");
    EXPECT_EQ(tattle::lambda::batch_item_failures_json({"a", "b"}),
              R"({"batchItemFailures":[{"itemIdentifier":"a"},{"itemIdentifier":"b"}]})");
}

}  // namespace
