// Every case of the AWS SigV4 test suite (botocore's copy, in the shared data directory):
// the canonical request, the string to sign and the Authorization header must match exactly.
//
// The fixed inputs are the suite's (see botocore_test_sigv4.py.txt beside the cases):
// AKIDEXAMPLE / wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, us-east-1, service "service",
// 20150830T123600Z, and a session token exactly when the expected canonical request signs
// one. botocore skips four cases (a request line with a space, which Python's parser
// refuses, and three with repeated or reordered query keys its dict-based parameters
// cannot express); this signer has neither limit, so it runs all of them.

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tattle/aws/sigv4.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const fs::path kSuiteDir = fs::path(TATTLE_SHARED_DATA_DIR) / "sigv4" / "botocore_aws4_testsuite";

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path.string());
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

std::string without_carriage_returns(std::string text) {
    std::erase(text, '\r');
    return text;
}

// Case directories: every directory holding <name>/<name>.req, found at run time.
std::vector<std::string> suite_cases() {
    std::vector<std::string> cases;
    if (!fs::is_directory(kSuiteDir)) return cases;
    for (const auto& entry : fs::recursive_directory_iterator(kSuiteDir)) {
        if (!entry.is_directory()) continue;
        const auto name = entry.path().filename().string();
        if (fs::exists(entry.path() / (name + ".req"))) {
            cases.push_back(fs::relative(entry.path(), kSuiteDir).generic_string());
        }
    }
    std::sort(cases.begin(), cases.end());
    return cases;
}

// The suite's raw HTTP request: request line (the path may hold a space), header lines
// (continuation lines start with whitespace), a blank line, the body.
tattle::http::Request parse_raw_request(const std::string& raw) {
    std::istringstream lines(raw);
    std::string line;
    std::getline(lines, line);
    const auto method_end = line.find(' ');
    const auto version_start = line.rfind(" HTTP/");
    if (method_end == std::string::npos || version_start == std::string::npos || version_start <= method_end) {
        throw std::runtime_error("bad request line: " + line);
    }
    tattle::http::Request request;
    request.method = line.substr(0, method_end);
    const std::string target = line.substr(method_end + 1, version_start - method_end - 1);

    std::string host;
    while (std::getline(lines, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) break;
        if ((line.front() == ' ' || line.front() == '\t') && !request.headers.empty()) {
            request.headers.back().second += "\n" + line;
            continue;
        }
        const auto colon = line.find(':');
        if (colon == std::string::npos) throw std::runtime_error("bad header line: " + line);
        request.headers.emplace_back(line.substr(0, colon), line.substr(colon + 1));
        if (line.substr(0, colon) == "Host") host = line.substr(colon + 1);
    }
    std::ostringstream body;
    body << lines.rdbuf();
    request.body = body.str();
    request.url = "https://" + host + target;
    return request;
}

std::string session_token_signed_in(const std::string& canonical_request) {
    std::istringstream lines(canonical_request);
    for (std::string line; std::getline(lines, line);) {
        if (line.starts_with("x-amz-security-token:")) return line.substr(line.find(':') + 1);
    }
    return "";
}

class SigV4Suite : public ::testing::TestWithParam<std::string> {};

TEST_P(SigV4Suite, MatchesCanonicalRequestStringToSignAndAuthorization) {
    const fs::path dir = kSuiteDir / GetParam();
    const fs::path stem = dir / dir.filename();
    auto read_part = [&](const char* extension) { return read_file(stem.string() + extension); };
    const std::string expected_canonical = without_carriage_returns(read_part(".creq"));
    const std::string expected_string_to_sign = without_carriage_returns(read_part(".sts"));
    const std::string expected_authorization = without_carriage_returns(read_part(".authz"));

    auto request = parse_raw_request(read_part(".req"));
    tattle::aws::Credentials credentials{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                                         session_token_signed_in(expected_canonical), std::nullopt, "test suite"};
    tattle::aws::SigningOptions options;
    options.service = "service";
    options.region = "us-east-1";
    options.time = std::chrono::sys_days{std::chrono::year{2015} / 8 / 30} + 12h + 36min;

    const auto parts = tattle::aws::sign_request(request, credentials, options);
    EXPECT_EQ(parts.canonical_request, expected_canonical);
    EXPECT_EQ(parts.string_to_sign, expected_string_to_sign);
    EXPECT_EQ(parts.authorization, expected_authorization);
    const auto authorization = std::find_if(request.headers.begin(), request.headers.end(),
                                            [](const auto& header) { return header.first == "Authorization"; });
    ASSERT_NE(authorization, request.headers.end());
    EXPECT_EQ(authorization->second, expected_authorization);
}

std::string case_test_name(const ::testing::TestParamInfo<std::string>& info) {
    std::string name = info.param;
    std::replace_if(name.begin(), name.end(), [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); }, '_');
    return name;
}

INSTANTIATE_TEST_SUITE_P(Botocore, SigV4Suite, ::testing::ValuesIn(suite_cases()), case_test_name);

// A missing or moved data directory must fail, not pass with zero cases.
TEST(SigV4SuiteData, HasTheWholeSuite) {
    EXPECT_GT(suite_cases().size(), 20U) << "expected the SigV4 suite under " << kSuiteDir;
}

}  // namespace
