// How the sigv4 fuzz target reads an input into a request to sign (see sigv4.cpp); shared
// with the differential check that signs the same corpus with botocore.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "tattle/aws/sigv4.hpp"

namespace tattle::fuzz {

struct SigningCase {
    http::Request request;
    aws::Credentials credentials;
    aws::SigningOptions options;
};

inline SigningCase read_signing_case(std::string_view input) {
    auto next_line = [&input]() {
        const auto end = input.find('\n');
        const std::string_view line = input.substr(0, end);
        input = end == std::string_view::npos ? std::string_view() : input.substr(end + 1);
        return line;
    };
    SigningCase signing_case;
    const std::string_view service = next_line();
    signing_case.options.service = service == "s3" ? "s3" : "sqs";
    signing_case.options.region = "us-east-1";
    // The test suite's fixed time and keys (botocore's aws4_testsuite).
    signing_case.options.time = std::chrono::sys_days(std::chrono::year{2015} / 8 / 30) + std::chrono::hours(12) +
                                std::chrono::minutes(36);
    signing_case.credentials.access_key_id = "AKIDEXAMPLE";
    signing_case.credentials.secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    signing_case.request.method = std::string(next_line());
    signing_case.request.url = "https://" + signing_case.options.service + ".us-east-1.amazonaws.com" + std::string(next_line());
    for (std::string_view line = next_line(); !line.empty(); line = next_line()) {
        const auto colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        signing_case.request.headers.emplace_back(std::string(line.substr(0, colon)), std::string(line.substr(colon + 1)));
    }
    signing_case.request.body = std::string(input);
    return signing_case;
}

}  // namespace tattle::fuzz
