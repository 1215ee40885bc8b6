#include "tattle/aws/service_client.hpp"

#include <algorithm>
#include <array>
#include <random>
#include <thread>

#include "tattle/aws/xml.hpp"

namespace tattle::aws {

namespace json = boost::json;

namespace {

constexpr std::size_t kMaxMessageLength = 400;

// AWS's message goes into our error: one line and bounded.
std::string printable(std::string text) {
    for (char& c : text) {
        if (static_cast<unsigned char>(c) < 0x20) c = ' ';
    }
    if (text.size() > kMaxMessageLength) text = text.substr(0, kMaxMessageLength) + "…";
    return text;
}

std::string string_setting(const json::object& config, std::string_view key) {
    if (const json::value* value = config.if_contains(key); value != nullptr && value->is_string()) {
        return std::string(value->as_string());
    }
    return {};
}

std::optional<std::int64_t> integer_setting(const json::object& config, std::string_view key) {
    if (const json::value* value = config.if_contains(key); value != nullptr && value->is_int64()) {
        return value->as_int64();
    }
    return std::nullopt;
}

}  // namespace

ServiceSettings settings_from_json(const json::object& config) {
    ServiceSettings settings;
    settings.region = string_setting(config, "region");
    settings.endpoint_url = string_setting(config, "endpoint_url");
    settings.profile = string_setting(config, "profile");
    settings.role_arn = string_setting(config, "role_arn");
    settings.role_session_name = string_setting(config, "role_session_name");
    settings.external_id = string_setting(config, "external_id");
    const std::string addressing = string_setting(config, "s3_addressing");
    if (addressing == "path") {
        settings.s3_addressing = S3AddressingStyle::Path;
    } else if (addressing == "virtual") {
        settings.s3_addressing = S3AddressingStyle::Virtual;
    }
    settings.http.ca_file = string_setting(config, "ca_file");
    if (const auto connect = integer_setting(config, "connect_timeout_ms")) {
        settings.http.connect_timeout = std::chrono::milliseconds(*connect);
    }
    if (const auto total = integer_setting(config, "timeout_ms")) {
        settings.http.total_timeout = std::chrono::milliseconds(*total);
    }
    return settings;
}

bool is_throttling_code(std::string_view code) {
    static constexpr std::array<std::string_view, 18> kThrottling = {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
        "RequestTimeout",
        "RequestTimeoutException",
        "KMSThrottlingException",
        "AWS.SimpleQueueService.RequestThrottled",
    };
    return std::find(kThrottling.begin(), kThrottling.end(), code) != kThrottling.end();
}

ServiceError error_from_response(const http::Response& response, std::string_view what) {
    std::string code;
    std::string message;
    const std::string_view body = response.body;
    const auto first = body.find_first_not_of(" \t\r\n");
    if (first != std::string_view::npos && body[first] == '<') {
        code = xml_text(body, "Code").value_or("");
        message = xml_text(body, "Message").value_or("");
    } else if (first != std::string_view::npos && body[first] == '{') {
        boost::system::error_code parse_error;
        const json::value parsed = json::parse(body, parse_error);
        if (!parse_error && parsed.is_object()) {
            const json::object& object = parsed.as_object();
            for (const char* key : {"__type", "code", "Code"}) {
                if (const json::value* value = object.if_contains(key); value != nullptr && value->is_string()) {
                    code = std::string(value->as_string());
                    break;
                }
            }
            for (const char* key : {"message", "Message", "errorMessage"}) {
                if (const json::value* value = object.if_contains(key); value != nullptr && value->is_string()) {
                    message = std::string(value->as_string());
                    break;
                }
            }
            // "com.amazonaws.sqs#QueueDoesNotExist" → "QueueDoesNotExist"
            if (const auto hash = code.rfind('#'); hash != std::string::npos) code = code.substr(hash + 1);
        }
    }
    // The Query-compatible code ("AWS.SimpleQueueService.NonExistentQueue;Sender") when present.
    if (const auto query_error = response.header("x-amzn-query-error")) {
        const std::string compatible = query_error->substr(0, query_error->find(';'));
        if (!compatible.empty() && (code.empty() || code.find('.') == std::string::npos)) code = compatible;
    }
    if (code.empty()) {
        if (const auto header_code = response.header("x-amz-error-code")) code = *header_code;
    }

    std::string text = std::string(what) + ": ";
    text += code.empty() ? "HTTP " + std::to_string(response.status)
                         : printable(code) + " (HTTP " + std::to_string(response.status) + ")";
    if (!message.empty()) text += ": " + printable(message);
    if (const auto request_id = response.header("x-amzn-requestid")) {
        text += " [request " + printable(*request_id) + "]";
    } else if (const auto s3_request_id = response.header("x-amz-request-id")) {
        text += " [request " + printable(*s3_request_id) + "]";
    }

    const bool retryable = response.status >= 500 || response.status == 429 || is_throttling_code(code);
    std::optional<std::chrono::milliseconds> retry_after;
    if (const auto header = response.header("retry-after")) retry_after = http::parse_retry_after(*header);
    return ServiceError(text, response.status, std::move(code), retryable, retry_after);
}

ServiceError error_from_transport(const http::TransportError& error, std::string_view what) {
    const bool retryable = error.kind() != http::TransportError::Kind::InvalidRequest &&
                           error.kind() != http::TransportError::Kind::TooLarge;
    return ServiceError(std::string(what) + ": " + error.what(), 0, std::string(http::kind_name(error.kind())), retryable);
}

std::chrono::milliseconds retry_delay(const RetryPolicy& policy, int attempt,
                                      std::optional<std::chrono::milliseconds> retry_after) {
    const int doublings = std::clamp(attempt - 1, 0, 20);
    const auto ceiling = std::min<std::int64_t>(policy.max_delay.count(), policy.base_delay.count() << doublings);
    thread_local std::mt19937_64 generator{std::random_device{}()};
    std::uniform_int_distribution<std::int64_t> jitter(0, std::max<std::int64_t>(ceiling, 0));
    auto delay = std::chrono::milliseconds(jitter(generator));
    if (retry_after) delay = std::max(delay, std::min(*retry_after, policy.max_delay));
    return delay;
}

void sleep_for(std::chrono::milliseconds delay) { std::this_thread::sleep_for(delay); }

struct ServiceClient::Impl {
    ServiceId service;
    ServiceSettings settings;
    std::string region;
    Endpoint endpoint;
    std::shared_ptr<CredentialsProvider> credentials;
    http::Client client;

    Impl(const ServiceId& service_id, ServiceSettings given)
        : service(service_id), settings(std::move(given)), client(settings.http) {
        const Environment env = settings.environment ? settings.environment : process_environment();
        const SharedConfig shared = SharedConfig::load(env);
        const std::string profile = selected_profile(env, settings.profile);
        region = resolve_region(settings.region, env, shared, profile);
        endpoint = resolve_endpoint(service, region, settings.endpoint_url, env, shared, profile);
        if (settings.credentials) {
            credentials = settings.credentials;
        } else {
            CredentialsOptions options;
            options.profile = settings.profile;
            options.region = region;
            options.role_arn = settings.role_arn;
            options.role_session_name = settings.role_session_name;
            options.external_id = settings.external_id;
            options.http = settings.http;
            options.environment = settings.environment;
            credentials = make_credentials_provider(std::move(options));
        }
        // Plain http:// only from an explicitly configured endpoint (a local stack).
        client.allow_plain_http(endpoint.is_custom() && endpoint.url.starts_with("http://"));
    }
};

ServiceClient::ServiceClient(const ServiceId& service, ServiceSettings settings)
    : impl_(std::make_unique<Impl>(service, std::move(settings))) {}
ServiceClient::~ServiceClient() = default;
ServiceClient::ServiceClient(ServiceClient&&) noexcept = default;
ServiceClient& ServiceClient::operator=(ServiceClient&&) noexcept = default;

const std::string& ServiceClient::region() const noexcept { return impl_->region; }
const Endpoint& ServiceClient::endpoint() const noexcept { return impl_->endpoint; }
const ServiceSettings& ServiceClient::settings() const noexcept { return impl_->settings; }

http::Response ServiceClient::send(http::Request request, std::string_view what, bool unsigned_payload) {
    Credentials credentials;
    try {
        credentials = impl_->credentials->credentials();
    } catch (const CredentialsError& error) {
        // Often transient (a metadata endpoint that did not answer): worth another try.
        throw ServiceError(std::string(what) + ": no credentials: " + error.what(), 0, "credentials", true);
    }
    SigningOptions signing;
    signing.service = std::string(impl_->service.signing_name);
    signing.region = impl_->region;
    signing.unsigned_payload = unsigned_payload;
    try {
        sign_request(request, credentials, signing);
    } catch (const std::invalid_argument& error) {
        throw ServiceError(std::string(what) + ": cannot sign the request: " + error.what(), 0, "signing", false);
    }
    try {
        return impl_->client.send(request);
    } catch (const http::TransportError& error) {
        throw error_from_transport(error, what);
    }
}

std::string ServiceClient::query(std::string_view action, std::string_view version,
                                 const std::vector<std::pair<std::string, std::string>>& parameters,
                                 std::string_view what) {
    std::vector<std::pair<std::string, std::string>> form;
    form.reserve(parameters.size() + 2);
    form.emplace_back("Action", std::string(action));
    form.emplace_back("Version", std::string(version));
    form.insert(form.end(), parameters.begin(), parameters.end());
    http::Request request;
    request.method = "POST";
    request.url = impl_->endpoint.url + "/";
    request.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded; charset=utf-8");
    request.body = form_body_encode(form);
    http::Response response = send(std::move(request), what);
    if (response.status != 200) throw error_from_response(response, what);
    return std::move(response.body);
}

json::value ServiceClient::json_call(std::string_view target, const json::object& body, std::string_view what,
                                     std::string_view json_version) {
    http::Request request;
    request.method = "POST";
    request.url = impl_->endpoint.url + "/";
    request.headers.emplace_back("Content-Type", "application/x-amz-json-" + std::string(json_version));
    request.headers.emplace_back("X-Amz-Target", std::string(target));
    request.body = json::serialize(body);
    const http::Response response = send(std::move(request), what);
    if (response.status != 200) throw error_from_response(response, what);
    boost::system::error_code parse_error;
    json::value parsed = json::parse(response.body, parse_error);
    if (parse_error) {
        throw ServiceError(std::string(what) + ": the answer is not JSON (" + parse_error.message() + ")", response.status,
                           "malformed", true);
    }
    return parsed;
}

}  // namespace tattle::aws
