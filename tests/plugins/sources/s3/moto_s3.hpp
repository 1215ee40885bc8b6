// S3 in moto for the s3 source's tests: a signed user, and the few writes the tests need
// (buckets, objects, versioning) sent as real S3 REST calls through tattle's own client.
#pragma once

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "../../support/aws/moto_server.hpp"
#include "tattle/aws/s3.hpp"
#include "tattle/aws/xml.hpp"

namespace tattle::s3_tests {

inline std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path.string());
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A gzipped CloudTrail log file from the repository's samples.
inline std::string sample_log_gz(int which = 0) {
    static const char* const kSamples[] = {
        "218007301253_CloudTrail_us-east-1_20230710T1200Z_iLj9fb7yyUG9X4Bf.json.gz",
        "218007301253_CloudTrail_us-east-1_20230710T1205Z_UljXNp9xLp8nsAGc.json.gz",
        "218007301253_CloudTrail_us-east-1_20230710T1205Z_zs3JGxETHr59VpkX.json.gz",
    };
    return read_file(std::filesystem::path(TATTLE_SOURCE_DIR) / "configs/samples" / kSamples[which % 3]);
}

class MotoS3 {
public:
    MotoS3() : user_(test::create_moto_user(server_)), admin_(aws::service::s3, settings()) {}

    const test::MotoServer& server() const { return server_; }
    const aws::Credentials& user() const { return user_; }

    // Settings that reach this moto with `credentials` (the user's by default) and nothing
    // from the process environment or ~/.aws.
    aws::ServiceSettings settings(std::optional<aws::Credentials> credentials = std::nullopt) const {
        aws::ServiceSettings settings;
        settings.region = "us-east-1";
        settings.endpoint_url = server_.url();
        settings.environment = aws::fixed_environment({{"AWS_CONFIG_FILE", "/nonexistent/config"},
                                                       {"AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials"}});
        settings.credentials = aws::make_static_credentials_provider(credentials.value_or(user_));
        settings.http.https_proxy = "";
        settings.http.no_proxy = "";
        return settings;
    }

    void create_bucket(const std::string& bucket) { expect_ok(request("PUT", bucket, "", "", {}), "CreateBucket"); }

    void enable_versioning(const std::string& bucket) {
        const std::string body =
            R"(<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status></VersioningConfiguration>)";
        expect_ok(request("PUT", bucket, "", body, {}, "?versioning="), "PutBucketVersioning");
    }

    // Returns the version id S3 gave the object ("" without versioning).
    std::string put_object(const std::string& bucket, const std::string& key, const std::string& body,
                           std::vector<std::pair<std::string, std::string>> headers = {}) {
        const auto response = request("PUT", bucket, key, body, std::move(headers));
        expect_ok(response, "PutObject " + key);
        return response.header("x-amz-version-id").value_or("");
    }

private:
    http::Response request(const std::string& method, const std::string& bucket, const std::string& key,
                           const std::string& body, std::vector<std::pair<std::string, std::string>> headers,
                           const std::string& query = "") {
        http::Request request;
        request.method = method;
        request.url = aws::s3_url(admin_.endpoint(), bucket, key, aws::S3AddressingStyle::Path) + query;
        request.headers = std::move(headers);
        request.body = body;
        return admin_.send(std::move(request), method + " " + aws::s3_uri(bucket, key));
    }

    static void expect_ok(const http::Response& response, const std::string& what) {
        if (response.status != 200) {
            throw std::runtime_error("moto " + what + ": HTTP " + std::to_string(response.status) + ": " +
                                     response.body);
        }
    }

    test::MotoServer server_{3};
    aws::Credentials user_;
    aws::ServiceClient admin_;
};

}  // namespace tattle::s3_tests
