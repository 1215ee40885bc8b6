#pragma once

// Sends alerts to any HTTPS endpoint (POST or PUT) and says what the receiver's
// answer means for the core: delivered, try again (when), or give up (why).

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tattle/http/client.hpp"
#include "tattle/sdk.hpp"
#include "tattle/sinkkit/delivery.hpp"
#include "tattle/sinkkit/secrets.hpp"
#include "webhook_request.hpp"

namespace tattle::sinks::webhook {

struct WebhookSinkConfig {
    std::string url;         // a secret: webhook URLs often carry their token
    RequestOptions request;  // method, headers (secret values), hmac_secret, body_template
    std::chrono::milliseconds timeout{10000};
    std::string ca_file;
    bool insecure_skip_verify = false;
    bool allow_plain_http = false;
};

// Reads the host-validated config (schema defaults already filled in) and checks
// what a schema cannot: header names and values, the body template, and that a JSON
// template renders JSON. Throws std::invalid_argument; messages never quote the URL,
// a header value or the HMAC secret.
WebhookSinkConfig parse_config(const std::string& config_json);

// The receiver's answer → the core's next step: 2xx done; 408, 429 and 5xx later
// (Retry-After honoured); redirects and other 4xx never.
sdk::SendResult map_response(int status, std::string_view body,
                             std::optional<std::chrono::milliseconds> retry_after);

// Everything of the config that must never be shown: the URL and its long pieces,
// header values and their long words, the HMAC secret.
std::vector<std::string> secrets_of(const WebhookSinkConfig& config);

// text with every occurrence of every secret replaced by "<redacted>".
using sinkkit::redact_secrets;

// Sends one request and returns the whole response; throws http::TransportError.
using Transport = sinkkit::Transport;
// Seconds since the Unix epoch, for X-Tattle-Timestamp.
using Clock = std::function<std::int64_t()>;

std::int64_t unix_seconds_now();

class WebhookSink {
public:
    WebhookSink(WebhookSinkConfig config, Transport transport, Clock now = unix_seconds_now);

    // Never sleeps or retries: one request, one verdict. Result messages never hold
    // a secret of the config.
    sdk::SendResult send(std::string_view alert_json);

private:
    sdk::SendResult attempt(std::string_view alert_json);

    WebhookSinkConfig config_;
    Transport transport_;
    Clock now_;
    std::vector<std::string> secrets_;
};

}  // namespace tattle::sinks::webhook
