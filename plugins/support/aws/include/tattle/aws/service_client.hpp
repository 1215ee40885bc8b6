#pragma once

// One AWS service as the plugins call it: region, endpoint and credentials resolved once
// from the plugin's settings, every request signed with SigV4 and sent over tattle::http,
// and every refusal turned into a ServiceError that names the call and says whether it
// is worth retrying. The wire protocols tattle needs are here: REST-XML (S3), Query (SNS,
// SES), and JSON 1.0/1.1 (SQS, SSM, Secrets Manager).
//
// Who retries: a sink never does (it returns RETRY and the core's outbox schedules it);
// sources and secret lookups, which have no outbox behind them, use call_with_retries()
// for idempotent reads.

#include <boost/json.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tattle/aws/config.hpp"
#include "tattle/aws/credentials.hpp"
#include "tattle/aws/sigv4.hpp"
#include "tattle/http/client.hpp"

namespace tattle::aws {

// A failed call. what() names the service call and the resource ("s3:GetObject
// s3://bucket/key: AccessDenied (HTTP 403): Access Denied") and never a secret.
class ServiceError : public std::runtime_error {
public:
    ServiceError(const std::string& message, int status, std::string code, bool retryable,
                 std::optional<std::chrono::milliseconds> retry_after = std::nullopt)
        : std::runtime_error(message),
          status_(status),
          code_(std::move(code)),
          retryable_(retryable),
          retry_after_(retry_after) {}

    int status() const noexcept { return status_; }               // 0: no HTTP answer (transport, credentials)
    const std::string& code() const noexcept { return code_; }    // "NoSuchKey", "ThrottlingException", "timeout", …
    bool retryable() const noexcept { return retryable_; }        // 5xx, throttling, timeouts, connection failures
    std::optional<std::chrono::milliseconds> retry_after() const noexcept { return retry_after_; }

private:
    int status_;
    std::string code_;
    bool retryable_;
    std::optional<std::chrono::milliseconds> retry_after_;
};

// The settings every AWS plugin takes (see TATTLE_AWS_SETTINGS_SCHEMA_PROPERTIES).
struct ServiceSettings {
    std::string region;
    std::string endpoint_url;
    std::string profile;
    std::string role_arn;
    std::string role_session_name;
    std::string external_id;
    S3AddressingStyle s3_addressing = S3AddressingStyle::Auto;
    http::ClientOptions http;
    // Empty: the process environment.
    Environment environment;
    // Set: used instead of the default chain (tests; keys from a plugin's own secret settings).
    std::shared_ptr<CredentialsProvider> credentials;
};

// The JSON Schema properties of those settings, to splice into a plugin's schema literal:
//   R"json({"type":"object","properties":{)json" TATTLE_AWS_SETTINGS_SCHEMA_PROPERTIES R"json(, "queue_url": …}})json"
#define TATTLE_AWS_SETTINGS_SCHEMA_PROPERTIES \
    R"json("region": {"type": "string", "description": "AWS region; else AWS_REGION, AWS_DEFAULT_REGION, the profile"},)json" \
    R"json("endpoint_url": {"type": "string", "format": "uri", "description": "Service endpoint (local stacks); else AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL, the profile"},)json" \
    R"json("profile": {"type": "string", "description": "Shared config profile; else AWS_PROFILE, else default"},)json" \
    R"json("role_arn": {"type": "string", "description": "Role to assume with sts:AssumeRole on top of the default credentials chain"},)json" \
    R"json("role_session_name": {"type": "string", "description": "Session name of the assumed role (shows in CloudTrail)"},)json" \
    R"json("external_id": {"type": "string", "x-secret": true, "description": "ExternalId for sts:AssumeRole"},)json" \
    R"json("s3_addressing": {"type": "string", "enum": ["auto", "path", "virtual"], "default": "auto", "description": "S3 URL style; path for most local stacks"},)json" \
    R"json("ca_file": {"type": "string", "format": "path", "description": "PEM file of extra trusted CAs"},)json" \
    R"json("connect_timeout_ms": {"type": "integer", "minimum": 1, "maximum": 600000, "default": 5000},)json" \
    R"json("timeout_ms": {"type": "integer", "minimum": 1, "maximum": 3600000, "default": 30000, "description": "Whole-request deadline"})json"

// Reads the keys above from a plugin's validated config (missing keys keep the defaults).
ServiceSettings settings_from_json(const boost::json::object& config);

// Retries of idempotent reads inside a plugin: exponential backoff with full jitter,
// Retry-After honoured up to max_delay.
struct RetryPolicy {
    int max_attempts = 4;
    std::chrono::milliseconds base_delay{200};
    std::chrono::milliseconds max_delay{5000};
};

// Not thread-safe (it owns one kept-alive HTTP connection per host): one per thread.
class ServiceClient {
public:
    // Resolves region, endpoint and the credentials provider (nothing fetched yet).
    // Throws ConfigError or CredentialsError.
    ServiceClient(const ServiceId& service, ServiceSettings settings);
    ~ServiceClient();
    ServiceClient(ServiceClient&&) noexcept;
    ServiceClient& operator=(ServiceClient&&) noexcept;

    const std::string& region() const noexcept;
    const Endpoint& endpoint() const noexcept;
    const ServiceSettings& settings() const noexcept;

    // Signs (fresh credentials) and sends; returns whatever status came back. Transport and
    // credentials failures become a ServiceError (status 0) with `what` as its context.
    http::Response send(http::Request request, std::string_view what, bool unsigned_payload = false);

    // Query protocol: POST Action=…&Version=…&params to the endpoint. Returns the body of a
    // 200 answer; anything else is a ServiceError with the XML error's Code and Message.
    std::string query(std::string_view action, std::string_view version,
                      const std::vector<std::pair<std::string, std::string>>& parameters, std::string_view what);

    // JSON protocol: POST the body with X-Amz-Target: <target>, content type
    // application/x-amz-json-<json_version>. Returns the parsed body of a 200 answer;
    // anything else is a ServiceError with the JSON error's __type and message.
    boost::json::value json_call(std::string_view target, const boost::json::object& body, std::string_view what,
                                 std::string_view json_version = "1.0");

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// The error a non-2xx answer stands for: code and message from an XML (<Error><Code>) or
// JSON (__type / message) body, or the x-amzn-query-error header; retryable for 5xx, 429 and
// the throttling codes; Retry-After kept. `what` prefixes the message.
ServiceError error_from_response(const http::Response& response, std::string_view what);
// A transport failure: retryable unless the request itself is invalid.
ServiceError error_from_transport(const http::TransportError& error, std::string_view what);
bool is_throttling_code(std::string_view code);

// Runs `call` until it returns, or throws a ServiceError that is not retryable, or the
// attempts run out (the last error is thrown). `sleep` is replaceable for tests.
using Sleeper = std::function<void(std::chrono::milliseconds)>;
template <class Call>
auto call_with_retries(Call&& call, const RetryPolicy& policy, const Sleeper& sleep = {}) -> decltype(call());

// Delay before attempt number `attempt` (1 = first retry): full jitter over
// min(max_delay, base_delay * 2^(attempt-1)), at least `retry_after` when given.
std::chrono::milliseconds retry_delay(const RetryPolicy& policy, int attempt,
                                      std::optional<std::chrono::milliseconds> retry_after);
void sleep_for(std::chrono::milliseconds delay);

template <class Call>
auto call_with_retries(Call&& call, const RetryPolicy& policy, const Sleeper& sleep) -> decltype(call()) {
    for (int attempt = 1;; ++attempt) {
        try {
            return call();
        } catch (const ServiceError& error) {
            if (!error.retryable() || attempt >= policy.max_attempts) throw;
            const auto delay = retry_delay(policy, attempt, error.retry_after());
            if (sleep) {
                sleep(delay);
            } else {
                sleep_for(delay);
            }
        }
    }
}

}  // namespace tattle::aws
