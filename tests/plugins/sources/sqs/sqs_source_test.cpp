// The sqs source against moto with signature checking on: what it hands out, when it
// deletes a message, what it leaves to the queue's redrive policy, and how it keeps
// messages invisible while their batches are delivered.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../../support/aws/moto_server.hpp"
#include "sqs_queue.hpp"
#include "sqs_source.hpp"
#include "tattle/aws/s3.hpp"
#include "tattle/aws/service_client.hpp"

namespace {

using namespace std::chrono_literals;
namespace aws = tattle::aws;
namespace json = boost::json;
using tattle::sources::sqs::parse_queue_url;
using tattle::sources::sqs::SqsSource;
using tattle::sources::sqs::SqsSourceConfig;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kBucket = "trail";
constexpr const char* kLogKey =
    "AWSLogs/123456789012/CloudTrail/us-east-1/2023/07/10/123456789012_CloudTrail_us-east-1_20230710T1145Z_a1.json.gz";
constexpr const char* kOtherLogKey =
    "AWSLogs/123456789012/CloudTrail/us-east-1/2023/07/10/123456789012_CloudTrail_us-east-1_20230710T1150Z_b2.json.gz";
constexpr const char* kDigestKey =
    "AWSLogs/123456789012/CloudTrail-Digest/us-east-1/2023/07/10/"
    "123456789012_CloudTrail-Digest_us-east-1_trail_us-east-1_20230710T114500Z.json.gz";

// Not a real gzip stream: the source must hand the stored bytes over untouched, zeros and all.
const std::string kStoredBytes("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\x00\xff binary", 19);

// Log lines the source sends through its host, for assertions.
struct CapturedLog {
    std::mutex mutex;
    std::vector<std::string> lines;
    tattle_host_api api{sizeof(tattle_host_api), this, &CapturedLog::record};

    static void record(void* context, int32_t, const char* message) {
        auto* self = static_cast<CapturedLog*>(context);
        std::lock_guard lock(self->mutex);
        self->lines.emplace_back(message);
    }
    bool contains(const std::string& text) {
        std::lock_guard lock(mutex);
        for (const auto& line : lines) {
            if (line.find(text) != std::string::npos) return true;
        }
        return false;
    }
};

class SqsSourceTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        moto_ = new tattle::test::MotoServer(3);
        user_ = new aws::Credentials(tattle::test::create_moto_user(*moto_));
        aws::S3Client s3(settings());
        put(s3, std::string("/") + kBucket, "");
        put(s3, std::string("/") + kBucket + "/" + kLogKey, kStoredBytes);
        put(s3, std::string("/") + kBucket + "/" + kOtherLogKey, "second object");
    }
    static void TearDownTestSuite() {
        delete user_;
        delete moto_;
    }

    static aws::ServiceSettings settings(const aws::Credentials& credentials) {
        aws::ServiceSettings settings;
        settings.region = "us-east-1";
        settings.endpoint_url = moto_->url();
        settings.s3_addressing = aws::S3AddressingStyle::Path;
        settings.http.https_proxy = "";
        settings.http.no_proxy = "";
        settings.environment = aws::fixed_environment({{"HOME", "/nonexistent"}, {"AWS_EC2_METADATA_DISABLED", "true"}});
        settings.credentials = aws::make_static_credentials_provider(credentials);
        return settings;
    }
    static aws::ServiceSettings settings() { return settings(*user_); }

    static void put(aws::S3Client& s3, const std::string& path, const std::string& body) {
        tattle::http::Request request;
        request.method = "PUT";
        request.url = moto_->url() + path;
        request.body = body;
        const auto response = s3.service().send(std::move(request), "s3:Put " + path);
        ASSERT_EQ(response.status, 200) << response.body;
    }

    void SetUp() override {
        admin_ = std::make_unique<aws::ServiceClient>(aws::service::sqs, settings());
        const std::string name = std::string("q-") + ::testing::UnitTest::GetInstance()->current_test_info()->name();
        const auto created = admin_->json_call("AmazonSQS.CreateQueue", json::object{{"QueueName", name}}, "create");
        queue_url_ = std::string(created.at("QueueUrl").as_string());
    }

    SqsSourceConfig config(std::chrono::seconds visibility = 30s) const {
        SqsSourceConfig config;
        config.queue_url = queue_url_;
        config.wait_time = 0s;
        config.visibility_timeout = visibility;
        config.stop_when_empty = true;
        config.aws = settings();
        config.retries = aws::RetryPolicy{2, 10ms, 50ms};
        return config;
    }

    std::string send(const std::string& body) {
        const auto sent = admin_->json_call("AmazonSQS.SendMessage",
                                            json::object{{"QueueUrl", queue_url_}, {"MessageBody", body}}, "send");
        return std::string(sent.at("MessageId").as_string());
    }

    // Visible + in flight (received, not deleted).
    int messages_in_queue() {
        const auto answer = admin_->json_call(
            "AmazonSQS.GetQueueAttributes",
            json::object{{"QueueUrl", queue_url_},
                         {"AttributeNames", json::array{"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"}}},
            "attributes");
        const auto& attributes = answer.at("Attributes").as_object();
        return std::stoi(std::string(attributes.at("ApproximateNumberOfMessages").as_string())) +
               std::stoi(std::string(attributes.at("ApproximateNumberOfMessagesNotVisible").as_string()));
    }

    // Receives once (short poll) as another consumer would; returns the message ids seen,
    // and makes what it saw visible again at once.
    std::vector<std::string> peek() {
        const auto answer = admin_->json_call(
            "AmazonSQS.ReceiveMessage",
            json::object{{"QueueUrl", queue_url_}, {"MaxNumberOfMessages", 10}, {"WaitTimeSeconds", 0},
                         {"MessageSystemAttributeNames", json::array{"ApproximateReceiveCount"}}},
            "peek");
        std::vector<std::string> ids;
        if (const auto* messages = answer.as_object().if_contains("Messages")) {
            for (const auto& message : messages->as_array()) {
                ids.emplace_back(message.at("MessageId").as_string());
                last_receive_count_ = std::stoi(std::string(message.at("Attributes").at("ApproximateReceiveCount").as_string()));
                admin_->json_call("AmazonSQS.ChangeMessageVisibility",
                                  json::object{{"QueueUrl", queue_url_},
                                               {"ReceiptHandle", message.at("ReceiptHandle")},
                                               {"VisibilityTimeout", 0}},
                                  "release");
            }
        }
        return ids;
    }

    // Polls until the message is visible again; false if it is not within `limit`.
    bool becomes_visible(const std::string& message_id, std::chrono::seconds limit) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < deadline) {
            for (const auto& id : peek()) {
                if (id == message_id) return true;
            }
            std::this_thread::sleep_for(200ms);
        }
        return false;
    }

    static std::string s3_event(const std::vector<std::string>& keys) {
        json::array records;
        for (const auto& key : keys) {
            records.push_back(json::object{
                {"eventVersion", "2.1"},
                {"eventSource", "aws:s3"},
                {"awsRegion", "us-east-1"},
                {"eventTime", "2023-07-10T11:45:00.000Z"},
                {"eventName", "ObjectCreated:Put"},
                {"s3", json::object{{"s3SchemaVersion", "1.0"},
                                    {"bucket", json::object{{"name", kBucket}}},
                                    {"object", json::object{{"key", key}, {"size", 19}}}}}});
        }
        return json::serialize(json::object{{"Records", std::move(records)}});
    }

    static std::string text(const tattle::sdk::Batch& batch) { return {batch.data.begin(), batch.data.end()}; }

    static tattle::test::MotoServer* moto_;
    static aws::Credentials* user_;
    std::unique_ptr<aws::ServiceClient> admin_;
    std::string queue_url_;
    int last_receive_count_ = 0;
    CapturedLog log_;
};

tattle::test::MotoServer* SqsSourceTest::moto_ = nullptr;
aws::Credentials* SqsSourceTest::user_ = nullptr;

TEST(ParseQueueUrl, TakesNameOriginAndTheRegionOfAwsHosts) {
    const auto regional = parse_queue_url("https://sqs.eu-west-1.amazonaws.com/123456789012/trail-events");
    EXPECT_EQ(regional.origin, "https://sqs.eu-west-1.amazonaws.com");
    EXPECT_EQ(regional.name, "trail-events");
    EXPECT_EQ(regional.region, "eu-west-1");
    EXPECT_EQ(parse_queue_url("https://ap-south-1.queue.amazonaws.com/1/q").region, "ap-south-1");
    EXPECT_EQ(parse_queue_url("https://sqs.cn-north-1.amazonaws.com.cn/1/q").region, "cn-north-1");
    const auto local = parse_queue_url("http://127.0.0.1:4566/000000000000/q/");
    EXPECT_EQ(local.origin, "http://127.0.0.1:4566");
    EXPECT_EQ(local.name, "q");
    EXPECT_EQ(local.region, "");
}

TEST(ParseQueueUrl, RefusesWhatIsNotAQueueUrl) {
    EXPECT_THROW(parse_queue_url("trail-events"), std::invalid_argument);
    EXPECT_THROW(parse_queue_url("ftp://host/1/q"), std::invalid_argument);
    EXPECT_THROW(parse_queue_url("https://sqs.us-east-1.amazonaws.com"), std::invalid_argument);
    EXPECT_THROW(parse_queue_url("https://user:pw@host/1/q"), std::invalid_argument);
    EXPECT_THROW(parse_queue_url("https://host/1/q?Action=x"), std::invalid_argument);
}

TEST(SqsPluginRegistration, SchemaIsValidJsonWithDefaultsAndAwsKeys) {
    const tattle::sdk::PluginFunctions* found = nullptr;
    for (const auto& functions : tattle::sdk::static_registry()) {
        if (std::string(functions.get_info()->type_name) == "sqs") found = &functions;
    }
    ASSERT_NE(found, nullptr);
    EXPECT_EQ(found->get_info()->kind, TATTLE_PLUGIN_KIND_SOURCE);
    const auto schema = json::parse(found->get_info()->config_schema);
    const auto& properties = schema.at("properties").as_object();
    EXPECT_EQ(properties.at("wait_time_seconds").at("default").as_int64(), 20);
    EXPECT_EQ(properties.at("max_messages").at("default").as_int64(), 10);
    EXPECT_EQ(properties.at("visibility_timeout").at("default").as_int64(), 120);
    EXPECT_EQ(properties.at("max_object_bytes").at("default").as_int64(), 256 << 20);
    EXPECT_TRUE(properties.contains("endpoint_url"));
    EXPECT_EQ(schema.at("required").as_array().front().as_string(), "queue_url");
}

TEST_F(SqsSourceTest, HandsOutTheStoredBytesAndDeletesTheMessageOnceSettled) {
    send(s3_event({kLogKey}));
    SqsSource source(config(), tattle::sdk::Host(&log_.api));
    auto batch = source.next();
    ASSERT_TRUE(batch.has_value());
    EXPECT_EQ(batch->origin, std::string("s3://") + kBucket + "/" + kLogKey);
    EXPECT_EQ(text(*batch), kStoredBytes);
    EXPECT_EQ(messages_in_queue(), 1);

    source.ack(batch->id, true);
    EXPECT_FALSE(source.next().has_value());  // deletes what is settled, then finds the queue empty
    EXPECT_EQ(source.messages_in_flight(), 0U);
    EXPECT_EQ(messages_in_queue(), 0);
}

// A host of plugin ABI 1.1 hears "nothing now" after an empty receive instead of the
// source polling inside next(), and the settled message is deleted at the next call.
TEST_F(SqsSourceTest, AnEmptyReceiveSaysNothingNowToAHostThatTakesIt) {
    send(s3_event({kLogKey}));
    SqsSourceConfig polling = config();
    polling.stop_when_empty = false;
    polling.host_accepts_again = true;
    SqsSource source(polling, tattle::sdk::Host(&log_.api));
    auto batch = source.next();
    ASSERT_TRUE(batch.has_value());
    source.ack(batch->id, true);
    EXPECT_THROW(source.next(), tattle::sdk::NothingNow);
    EXPECT_EQ(source.messages_in_flight(), 0U);
    EXPECT_EQ(messages_in_queue(), 0);
    EXPECT_THROW(source.next(), tattle::sdk::NothingNow);  // and again: it never ends by itself
}

TEST_F(SqsSourceTest, AReleasedBatchLeavesTheMessageToBeDeliveredAgain) {
    const std::string id = send(s3_event({kLogKey}));
    SqsSource source(config(2s), tattle::sdk::Host(&log_.api));
    auto batch = source.next();
    ASSERT_TRUE(batch.has_value());
    source.ack(batch->id, false);
    EXPECT_EQ(source.messages_in_flight(), 0U);
    EXPECT_TRUE(log_.contains("message " + id + " (received 1 time(s)) is left in the queue"));
    EXPECT_TRUE(becomes_visible(id, 15s));
    EXPECT_EQ(last_receive_count_, 2);
    EXPECT_EQ(messages_in_queue(), 1);
}

TEST_F(SqsSourceTest, AMessageWithTwoObjectsIsDeletedOnlyAfterBothAreSettled) {
    send(s3_event({kLogKey, kOtherLogKey}));
    SqsSource source(config(), tattle::sdk::Host(&log_.api));
    auto first = source.next();
    auto second = source.next();
    ASSERT_TRUE(first && second);
    EXPECT_EQ(text(*second), "second object");

    source.ack(first->id, true);
    EXPECT_EQ(source.messages_in_flight(), 1U);
    EXPECT_EQ(messages_in_queue(), 1);

    source.ack(second->id, true);
    EXPECT_FALSE(source.next().has_value());
    EXPECT_EQ(messages_in_queue(), 0);
}

TEST_F(SqsSourceTest, OneReleasedObjectOfTwoKeepsTheMessage) {
    const std::string id = send(s3_event({kLogKey, kOtherLogKey}));
    SqsSource source(config(2s), tattle::sdk::Host(&log_.api));
    auto first = source.next();
    auto second = source.next();
    ASSERT_TRUE(first && second);
    source.ack(first->id, false);
    source.ack(second->id, true);
    EXPECT_EQ(source.messages_in_flight(), 0U);
    EXPECT_TRUE(becomes_visible(id, 15s));
}

TEST_F(SqsSourceTest, SkipOnlyMessagesAreDeletedWithoutFetching) {
    const std::string test_event = send(
        R"({"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2023-07-10T11:45:00.000Z","Bucket":"no-such-bucket",)"
        R"("RequestId":"5582815E1AEA5ADF","HostId":"8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE"})");
    send(s3_event({kDigestKey}));
    SqsSource source(config(), tattle::sdk::Host(&log_.api));
    EXPECT_FALSE(source.next().has_value());
    EXPECT_EQ(messages_in_queue(), 0);
    EXPECT_TRUE(log_.contains("message " + test_event));
    EXPECT_TRUE(log_.contains("test_event"));
    EXPECT_TRUE(log_.contains("cloudtrail_digest"));
}

TEST_F(SqsSourceTest, PoisonMessagesAreReportedNeitherDeletedNorExtended) {
    const std::string id = send("this is not JSON");
    SqsSource source(config(2s), tattle::sdk::Host(&log_.api));
    try {
        source.next();
        FAIL() << "no error for a poison message";
    } catch (const tattle::sdk::BatchError& error) {
        EXPECT_THAT(error.origin(), HasSubstr(id));
        EXPECT_THAT(error.what(), HasSubstr("message " + id + " (received 1 time(s)) cannot be read"));
        EXPECT_THAT(error.what(), HasSubstr("redrive"));
    }
    EXPECT_EQ(source.messages_in_flight(), 0U);
    // Still there, and visible again after its timeout while the source lives on.
    EXPECT_TRUE(becomes_visible(id, 15s));
    EXPECT_EQ(source.visibility_extensions(), 0U);

    send(R"({"some": "other document"})");
    SqsSource again(config(2s), tattle::sdk::Host(&log_.api));
    bool unknown_shape = false;
    for (int i = 0; i < 2; ++i) {
        try {
            again.next();
        } catch (const tattle::sdk::BatchError& error) {
            unknown_shape = unknown_shape || std::string(error.what()).find("unknown_shape") != std::string::npos;
        }
    }
    EXPECT_TRUE(unknown_shape);
    EXPECT_EQ(messages_in_queue(), 2);
}

TEST_F(SqsSourceTest, VisibilityIsExtendedWhileABatchIsOutstanding) {
    const std::string id = send(s3_event({kLogKey}));
    SqsSource source(config(2s), tattle::sdk::Host(&log_.api));
    auto batch = source.next();
    ASSERT_TRUE(batch.has_value());
    // Three times the original timeout: without extensions the message would reappear.
    const auto until = std::chrono::steady_clock::now() + 6s;
    while (std::chrono::steady_clock::now() < until) {
        EXPECT_THAT(peek(), Not(::testing::Contains(id)));
        std::this_thread::sleep_for(250ms);
    }
    EXPECT_GE(source.visibility_extensions(), 3U);
    source.ack(batch->id, true);
    EXPECT_FALSE(source.next().has_value());
    EXPECT_EQ(messages_in_queue(), 0);
}

TEST_F(SqsSourceTest, InlineCloudTrailEventsFromEventBridgeAreBatchesOfTheirOwn) {
    const std::string id = send(R"({"version":"0","id":"6a7e8feb","detail-type":"AWS API Call via CloudTrail",)"
                                R"("source":"aws.iam","account":"123456789012","time":"2023-07-10T11:45:00Z",)"
                                R"("region":"us-east-1","resources":[],"detail":{"eventVersion":"1.08",)"
                                R"("eventName":"CreateUser","eventSource":"iam.amazonaws.com","eventID":"e-1"}})");
    SqsSource source(config(), tattle::sdk::Host(&log_.api));
    auto batch = source.next();
    ASSERT_TRUE(batch.has_value());
    EXPECT_THAT(batch->origin, HasSubstr(id));
    const auto event = json::parse(text(*batch));
    EXPECT_EQ(event.at("eventName").as_string(), "CreateUser");
    source.ack(batch->id, true);
    EXPECT_FALSE(source.next().has_value());
    EXPECT_EQ(messages_in_queue(), 0);
}

TEST_F(SqsSourceTest, AnObjectThatCannotBeFetchedFailsItsBatchAndKeepsTheMessage) {
    const std::string missing =
        "AWSLogs/123456789012/CloudTrail/us-east-1/2023/07/10/123456789012_CloudTrail_us-east-1_20230710T1200Z_zz.json.gz";
    const std::string id = send(s3_event({missing, kLogKey}));
    SqsSource source(config(2s), tattle::sdk::Host(&log_.api));
    try {
        source.next();
        FAIL() << "no error for a missing object";
    } catch (const tattle::sdk::BatchError& error) {
        EXPECT_EQ(error.origin(), std::string("s3://") + kBucket + "/" + missing);
        EXPECT_THAT(error.what(), HasSubstr("NoSuchKey"));
        EXPECT_THAT(error.what(), HasSubstr(id));
    }
    auto other = source.next();  // the message's other object is still read
    ASSERT_TRUE(other.has_value());
    source.ack(other->id, true);
    EXPECT_EQ(source.messages_in_flight(), 0U);
    EXPECT_TRUE(becomes_visible(id, 15s));
}

TEST_F(SqsSourceTest, AWrongSecretIsAClearErrorThatEndsTheSource) {
    aws::Credentials wrong = *user_;
    wrong.secret_access_key = "wrong-secret-EXAMPLE-KEY";
    SqsSourceConfig refused = config();
    refused.aws = settings(wrong);
    refused.stop_when_empty = false;  // a permanent error ends even a source that polls forever
    SqsSource source(refused, tattle::sdk::Host(&log_.api));
    try {
        source.next();
        FAIL() << "no error";
    } catch (const std::runtime_error& error) {
        EXPECT_THAT(error.what(), HasSubstr("sqs:ReceiveMessage " + queue_url_));
        EXPECT_THAT(error.what(), HasSubstr("SignatureDoesNotMatch"));
        EXPECT_THAT(error.what(), Not(HasSubstr("wrong-secret-EXAMPLE-KEY")));
    }
    EXPECT_FALSE(source.next().has_value());
}

TEST_F(SqsSourceTest, AMissingQueueIsNamedInTheError) {
    SqsSourceConfig missing = config();
    missing.queue_url = moto_->url() + "/123456789012/no-such-queue";
    SqsSource source(missing, tattle::sdk::Host(&log_.api));
    try {
        source.next();
        FAIL() << "no error";
    } catch (const std::runtime_error& error) {
        EXPECT_THAT(error.what(), HasSubstr("no-such-queue"));
        EXPECT_THAT(error.what(), HasSubstr("NonExistentQueue"));
    }
    EXPECT_FALSE(source.next().has_value());
}

}  // namespace
