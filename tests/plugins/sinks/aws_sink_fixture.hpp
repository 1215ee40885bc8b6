// What the sns and ses sink tests share: a CloudTrail alert built by the core's own
// make_alert, a ServiceClient pointed at moto with the test user's key, and moto's
// inspection store (/moto-api/data.json).
#pragma once

#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <boost/json.hpp>

#include "../support/aws/moto_server.hpp"
#include "tattle/alert.hpp"
#include "tattle/aws/service_client.hpp"
#include "tattle/http/client.hpp"

namespace tattle::sink_tests {

// A CreateUser call by an assumed role, from a client that put markup in its user agent.
inline constexpr const char* kHostileEvent = R"json({
  "eventVersion": "1.08",
  "userIdentity": {"type": "AssumedRole", "principalId": "AROAEXAMPLE:alice",
                   "arn": "arn:aws:sts::123456789012:assumed-role/Admin/alice", "accountId": "123456789012"},
  "eventTime": "2023-07-10T12:00:00Z",
  "eventSource": "iam.amazonaws.com",
  "eventName": "CreateUser",
  "awsRegion": "us-east-1",
  "sourceIPAddress": "192.0.2.1",
  "userAgent": "<script>alert(1)</script></td></tr><img src=x onerror=alert(2)> \"quoted\" & 'single'",
  "requestParameters": {"userName": "mallory</pre><b>bold</b>"},
  "responseElements": {"user": {"userName": "mallory</pre><b>bold</b>"}},
  "eventID": "3b6bd6a1-0000-4e3b-8d2f-5a7f3f0e6c11",
  "eventType": "AwsApiCall",
  "recipientAccountId": "123456789012"
})json";

inline boost::json::object alert_for(const std::string& event_json, const std::string& rule_name,
                                     std::optional<boost::json::value> annotation = std::nullopt,
                                     const std::string& destination = "dest") {
    const boost::json::object event = boost::json::parse(event_json).as_object();
    boost::json::object alert =
        make_alert({rule_name, "A new IAM user has been created"}, event, annotation, {"local", "logs/x.json", 17});
    alert["destination"] = destination;
    return alert;
}

inline aws::ServiceSettings moto_settings(const test::MotoServer& moto, const aws::Credentials& credentials) {
    aws::ServiceSettings settings;
    settings.region = "us-east-1";
    settings.endpoint_url = moto.url();
    settings.environment = aws::fixed_environment({});  // nothing from this machine's AWS setup
    settings.credentials = aws::make_static_credentials_provider(credentials);
    settings.http.https_proxy = "";
    settings.http.no_proxy = "";
    return settings;
}

// A signed Query call that must succeed; returns the answer's body.
inline std::string moto_call(const test::MotoServer& moto, const std::string& service,
                             const aws::Credentials& credentials,
                             std::vector<std::pair<std::string, std::string>> form) {
    const http::Response answer = test::moto_query(moto.url(), service, credentials, form);
    if (answer.status != 200) {
        throw std::runtime_error("moto " + service + " " + form.front().second + ": HTTP " +
                                 std::to_string(answer.status) + " " + answer.body);
    }
    return answer.body;
}

// moto's store of everything it holds (SES messages, SNS notifications), parsed.
inline boost::json::object moto_data(const test::MotoServer& moto) {
    http::ClientOptions options;
    options.https_proxy = "";
    options.no_proxy = "";
    http::Client client(options);
    client.allow_plain_http(true);
    http::Request request;
    request.method = "GET";
    request.url = moto.url() + "/moto-api/data.json";
    const http::Response answer = client.send(request);
    if (answer.status != 200) throw std::runtime_error("moto data.json: HTTP " + std::to_string(answer.status));
    return boost::json::parse(answer.body).as_object();
}

// Sets environment variables for one test and puts the old values back.
class ScopedEnvironment {
public:
    explicit ScopedEnvironment(std::vector<std::pair<std::string, std::string>> variables) {
        for (auto& [name, value] : variables) {
            const char* old = std::getenv(name.c_str());
            saved_.emplace_back(name, old != nullptr ? std::optional<std::string>(old) : std::nullopt);
            ::setenv(name.c_str(), value.c_str(), 1);
        }
    }
    ~ScopedEnvironment() {
        for (const auto& [name, value] : saved_) {
            if (value) {
                ::setenv(name.c_str(), value->c_str(), 1);
            } else {
                ::unsetenv(name.c_str());
            }
        }
    }
    ScopedEnvironment(const ScopedEnvironment&) = delete;
    ScopedEnvironment& operator=(const ScopedEnvironment&) = delete;

private:
    std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

}  // namespace tattle::sink_tests
