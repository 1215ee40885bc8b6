// tattle::aws::S3Client against moto with signature checking on: the two calls the s3
// source makes (ListObjectsV2, GetObject), with awkward keys, pagination, versions, gzip
// objects and the refusals a source must report well.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "../../support/http/test_server.hpp"
#include "moto_s3.hpp"
#include "tattle/aws/s3.hpp"

namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using tattle::aws::S3Client;
using tattle::aws::ServiceError;
using tattle::s3_tests::MotoS3;

class S3ClientTest : public ::testing::Test {
protected:
    MotoS3 moto_;
};

TEST_F(S3ClientTest, ListsEveryKeyAcrossPagesAndReadsKeysWithSpaces) {
    moto_.create_bucket("trail");
    // moto checks signatures of keys made of unreserved characters and spaces, and of query
    // values without '/' (it signs the query as its web framework re-quotes it, '/' unencoded,
    // where S3 and botocore's client send %2F): hence "AWSLogs" as the prefix. The next test
    // covers the rest on the wire.
    const std::vector<std::string> keys = {
        "AWSLogs/plain.json",          "AWSLogs/with space.json",      "AWSLogs/two  spaces and trailing .json",
        "AWSLogs/a/b/c/deep.json",     "AWSLogs/UPPER lower 123.json", "AWSLogs/tilde~dash-under_.json",
        "AWSLogs/x.json",
    };
    for (const auto& key : keys) moto_.put_object("trail", key, "body of " + key);
    moto_.put_object("trail", "elsewhere/not-listed.json", "x");

    S3Client client(moto_.settings());
    std::vector<std::string> listed;
    std::string token;
    int pages = 0;
    do {
        const auto page = client.list_objects_v2("trail", "AWSLogs", token, {}, 2);
        EXPECT_LE(page.objects.size(), 2U);
        for (const auto& object : page.objects) {
            listed.push_back(object.key);
            EXPECT_EQ(object.size, ("body of " + object.key).size()) << object.key;
        }
        token = page.next_continuation_token;
        ++pages;
    } while (!token.empty());

    auto expected = keys;
    std::sort(expected.begin(), expected.end());  // S3 lists in UTF-8 byte order, as std::string compares
    EXPECT_EQ(listed, expected);
    EXPECT_EQ(pages, 4);
    for (const auto& key : keys) EXPECT_EQ(client.get_object("trail", key).body, "body of " + key) << key;
}

// moto (5.x) cannot check the signature of a key with '+', '%', non-ASCII or sub-delimiters:
// it verifies against the path as its web framework re-quotes it, and refuses botocore's own
// requests for such keys too. What matters on tattle's side is the wire form (SigV4's
// encoding, which sigv4_test checks against botocore) and reading such keys back from XML.
TEST(S3ClientWireForm, KeysAreSentPercentEncodedOnceAndReadBackFromTheListing) {
    tattle::test::ServerOptions options;
    options.mode = tattle::test::ServerOptions::Mode::Http;
    options.script = R"([
      {"status": 200, "body": "object bytes"},
      {"status": 200, "headers": {"Content-Type": "application/xml"},
       "body": "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult><Name>trail</Name><IsTruncated>false</IsTruncated><Contents><Key>team+x y/\u00fc &amp; \u20ac 100%.json</Key><Size>12</Size></Contents></ListBucketResult>"}
    ])";
    tattle::test::TestServer server(options);
    tattle::aws::ServiceSettings settings;
    settings.region = "us-east-1";
    settings.endpoint_url = server.url("");
    settings.environment = tattle::aws::fixed_environment({{"AWS_CONFIG_FILE", "/nonexistent"},
                                                           {"AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"}});
    settings.credentials = tattle::aws::make_static_credentials_provider(
        {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "", std::nullopt, "test"});
    S3Client client(std::move(settings));

    EXPECT_EQ(client.get_object("trail", "team+x y/\u00fc & \u20ac 100%.json").body, "object bytes");
    const auto page = client.list_objects_v2("trail", "team+x y/", "");
    ASSERT_EQ(page.objects.size(), 1U);
    EXPECT_EQ(page.objects[0].key, "team+x y/\u00fc & \u20ac 100%.json");

    const auto requests = server.requests();
    ASSERT_EQ(requests.size(), 2U);
    EXPECT_EQ(requests[0].path, "/trail/team%2Bx%20y/%C3%BC%20%26%20%E2%82%AC%20100%25.json");
    EXPECT_THAT(requests[1].path, HasSubstr("prefix=team%2Bx%20y%2F"));
    for (const auto& request : requests) EXPECT_TRUE(request.header("Authorization").has_value());
}

TEST_F(S3ClientTest, GzipObjectComesBackByteIdenticalEvenWhenStoredWithContentEncodingGzip) {
    moto_.create_bucket("trail");
    const std::string gz = tattle::s3_tests::sample_log_gz();
    ASSERT_EQ(gz.substr(0, 2), "\x1f\x8b");
    moto_.put_object("trail", "AWSLogs/encoded.json.gz", gz,
                     {{"Content-Encoding", "gzip"}, {"Content-Type", "application/json"}});
    moto_.put_object("trail", "AWSLogs/plain.json.gz", gz);

    S3Client client(moto_.settings());
    const auto encoded = client.get_object("trail", "AWSLogs/encoded.json.gz");
    EXPECT_EQ(encoded.content_encoding, "gzip");
    EXPECT_TRUE(encoded.body == gz) << "the HTTP layer must not inflate a Content-Encoding: gzip body";
    EXPECT_TRUE(client.get_object("trail", "AWSLogs/plain.json.gz").body == gz);
}

TEST_F(S3ClientTest, MissingKeyAndBucketArePermanentErrorsNamingWhatWasAskedFor) {
    moto_.create_bucket("trail");
    S3Client client(moto_.settings());
    try {
        client.get_object("trail", "AWSLogs/missing key.json.gz");
        FAIL() << "expected NoSuchKey";
    } catch (const ServiceError& error) {
        EXPECT_EQ(error.status(), 404);
        EXPECT_EQ(error.code(), "NoSuchKey");
        EXPECT_FALSE(error.retryable());
        EXPECT_THAT(error.what(), HasSubstr("s3://trail/AWSLogs/missing key.json.gz"));
        EXPECT_THAT(error.what(), HasSubstr("NoSuchKey"));
    }
    try {
        client.list_objects_v2("no-such-bucket", "AWSLogs", "");
        FAIL() << "expected NoSuchBucket";
    } catch (const ServiceError& error) {
        EXPECT_EQ(error.code(), "NoSuchBucket");
        EXPECT_FALSE(error.retryable());
        EXPECT_THAT(error.what(), HasSubstr("s3://no-such-bucket/AWSLogs"));
    }
}

TEST_F(S3ClientTest, WrongSecretIsRefusedWithSignatureDoesNotMatchAndTheSecretIsNeverShown) {
    moto_.create_bucket("trail");
    moto_.put_object("trail", "AWSLogs/a.json", "{}");
    auto wrong = moto_.user();
    wrong.secret_access_key = "WrongSecretKeyThatMustNotBePrinted0000000";
    S3Client client(moto_.settings(wrong));
    try {
        client.get_object("trail", "AWSLogs/a.json");
        FAIL() << "expected a refusal";
    } catch (const ServiceError& error) {
        EXPECT_EQ(error.status(), 403);
        EXPECT_EQ(error.code(), "SignatureDoesNotMatch");
        EXPECT_FALSE(error.retryable());
        EXPECT_THAT(error.what(), HasSubstr("s3://trail/AWSLogs/a.json"));
        EXPECT_THAT(error.what(), Not(HasSubstr(wrong.secret_access_key)));
        EXPECT_THAT(error.what(), Not(HasSubstr(moto_.user().secret_access_key)));
    }
}

TEST_F(S3ClientTest, VersionIdReadsThatVersionOfTheObject) {
    moto_.create_bucket("trail");
    moto_.enable_versioning("trail");
    const std::string first = moto_.put_object("trail", "AWSLogs/a.json", "first");
    const std::string second = moto_.put_object("trail", "AWSLogs/a.json", "second");
    ASSERT_FALSE(first.empty());
    ASSERT_NE(first, second);

    S3Client client(moto_.settings());
    EXPECT_EQ(client.get_object("trail", "AWSLogs/a.json", first).body, "first");
    EXPECT_EQ(client.get_object("trail", "AWSLogs/a.json", second).body, "second");
    EXPECT_EQ(client.get_object("trail", "AWSLogs/a.json").body, "second");
}

TEST_F(S3ClientTest, ObjectOverTheSizeLimitIsAPermanentTooLargeError) {
    moto_.create_bucket("trail");
    moto_.put_object("trail", "AWSLogs/big.json", std::string(5000, 'x'));
    auto settings = moto_.settings();
    settings.http.max_response_bytes = 1000;
    S3Client client(std::move(settings));
    try {
        client.get_object("trail", "AWSLogs/big.json");
        FAIL() << "expected too_large";
    } catch (const ServiceError& error) {
        EXPECT_EQ(error.code(), "too_large");
        EXPECT_FALSE(error.retryable());
        EXPECT_THAT(error.what(), HasSubstr("s3://trail/AWSLogs/big.json"));
        EXPECT_THAT(error.what(), HasSubstr("max_object_bytes"));
    }
}

}  // namespace
