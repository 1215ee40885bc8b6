#include "webhook_sink.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <exception>
#include <stdexcept>
#include <utility>

#include "tattle/sinkkit/json_fields.hpp"
#include "tattle/sinkkit/secrets.hpp"
#include "tattle/sinkkit/text.hpp"

namespace tattle::sinks::webhook {
namespace {

namespace json = boost::json;

using sinkkit::string_or;

bool bool_or(const json::object& config, std::string_view key, bool fallback) {
    const auto* found = config.if_contains(key);
    return found != nullptr && found->is_bool() ? found->get_bool() : fallback;
}

std::string printable_body(std::string_view body) { return sinkkit::printable(body, 200); }

// Every field a template may reach, so a template that cannot give JSON is refused
// when the config is loaded, not at the first alert at 3 a.m.
const json::object& sample_alert() {
    static const json::object sample = json::parse(R"({
        "alert_id": "00000000000000000000000000000000",
        "rule": {"name": "rule", "description": "description", "severity": "high"},
        "destination": "destination", "annotation": "annotation", "title": "title",
        "dedup": {"key": "key", "window_seconds": 3600, "suppressed": 0},
        "threshold": {"key": "key", "count": 5, "min_count": 5, "window_seconds": 600},
        "summary": {"event_id": "id", "event_time": "2024-01-01T00:00:00Z", "event_name": "CreateUser",
                    "event_source": "iam.amazonaws.com", "account_id": "123456789012", "region": "us-east-1",
                    "actor": "arn:aws:iam::123456789012:user/alice", "source_ip": "192.0.2.1",
                    "user_agent": "agent", "error_code": "AccessDenied", "error_message": "message"},
        "origin": {"source": "source", "batch": "batch", "index": 0},
        "event": {"eventName": "CreateUser"}
    })")
                                           .as_object();
    return sample;
}

// Long enough to be a credential rather than a common word.
void add_secret_words(std::string_view text, std::size_t min_length,
                      std::vector<std::string>& out) {
    std::size_t start = 0;
    while (start < text.size()) {
        std::size_t end = text.find_first_of(" \t/?#&=", start);
        if (end == std::string_view::npos) end = text.size();
        if (end - start >= min_length) out.emplace_back(text.substr(start, end - start));
        start = end + 1;
    }
}

}  // namespace

WebhookSinkConfig parse_config(const std::string& config_json) {
    const json::value parsed = json::parse(config_json);
    const json::object& config = parsed.as_object();
    WebhookSinkConfig out;
    out.url = string_or(config, "url");
    out.request.method = string_or(config, "method", "POST");
    out.request.content_type = string_or(config, "content_type", "application/json");
    out.request.hmac_secret = string_or(config, "hmac_secret");
    out.ca_file = string_or(config, "ca_file");
    out.insecure_skip_verify = bool_or(config, "insecure_skip_verify", false);
    out.allow_plain_http = bool_or(config, "allow_plain_http", false);
    if (const auto* timeout = config.if_contains("timeout_ms");
        timeout != nullptr && timeout->is_number()) {
        out.timeout = std::chrono::milliseconds(timeout->to_number<std::int64_t>());
    }
    if (const auto* headers = config.if_contains("headers");
        headers != nullptr && headers->is_object()) {
        for (const auto& member : headers->get_object()) {
            if (!member.value().is_string()) {
                throw std::invalid_argument("headers: the value of \"" + std::string(member.key()) +
                                            "\" must be a string");
            }
            out.request.headers.emplace_back(member.key(), member.value().get_string());
        }
    }
    check_headers(out.request.headers);

    if (const auto* text = config.if_contains("body_template");
        text != nullptr && text->is_string()) {
        out.request.body_template = BodyTemplate::parse(text->get_string());
        if (is_json_content_type(out.request.content_type)) {
            boost::system::error_code error;
            json::parse(out.request.body_template->render(sample_alert(), true), error);
            if (error) {
                throw std::invalid_argument(
                    "body_template does not render JSON (" + error.message() +
                    "); put text placeholders inside quotes, e.g. \"{{rule.name}}\", "
                    "or use {{path | json}}, or set a non-JSON content_type");
            }
        }
    }
    return out;
}

sdk::SendResult map_response(int status, std::string_view body,
                             std::optional<std::chrono::milliseconds> retry_after) {
    if (status >= 200 && status < 300) return sdk::SendResult::ok();
    const std::string said = printable_body(body);
    const std::string answer = "HTTP " + std::to_string(status) + (said.empty() ? "" : " " + said);
    if (status == 408 || status == 429 || status >= 500 || status < 200) {
        return sdk::SendResult::retry("the receiver answered " + answer, retry_after);
    }
    if (status >= 300 && status < 400) {
        // A redirect is not followed: the body would be re-sent to an address nobody configured.
        return sdk::SendResult::fail("the receiver redirected (" + answer +
                                     "); set url to the final address");
    }
    return sdk::SendResult::fail("the receiver refused the alert (" + answer + ")");
}

std::vector<std::string> secrets_of(const WebhookSinkConfig& config) {
    std::vector<std::string> secrets;
    if (!config.url.empty()) {
        secrets.push_back(config.url);
        const std::size_t scheme = config.url.find("://");
        const std::size_t path =
            config.url.find_first_of("/?#", scheme == std::string::npos ? 0 : scheme + 3);
        if (path != std::string::npos && config.url.size() - path > 1) {
            const std::string rest = config.url.substr(path);
            secrets.push_back(rest);
            add_secret_words(rest, 12, secrets);
        }
    }
    for (const auto& [name, value] : config.request.headers) {
        if (value.empty()) continue;
        secrets.push_back(value);
        add_secret_words(value, 8, secrets);
    }
    if (!config.request.hmac_secret.empty()) secrets.push_back(config.request.hmac_secret);
    return secrets;
}

std::int64_t unix_seconds_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

WebhookSink::WebhookSink(WebhookSinkConfig config, Transport transport, Clock now)
    : config_(std::move(config)),
      transport_(std::move(transport)),
      now_(std::move(now)),
      secrets_(secrets_of(config_)) {}

sdk::SendResult WebhookSink::send(std::string_view alert_json) {
    sdk::SendResult result = attempt(alert_json);
    result.message = redact_secrets(std::move(result.message), secrets_);
    return result;
}

sdk::SendResult WebhookSink::attempt(std::string_view alert_json) {
    http::Request request;
    try {
        request = build_request(alert_json, config_.request, now_());
    } catch (const std::exception& e) {
        // The same alert will never render: retrying cannot help.
        return sdk::SendResult::fail(std::string("cannot build the webhook request: ") + e.what());
    }
    request.url = config_.url;

    return sinkkit::deliver(transport_, request, {"webhook request cannot be sent: ", "webhook receiver not reached: "}, map_response);
}

}  // namespace tattle::sinks::webhook
