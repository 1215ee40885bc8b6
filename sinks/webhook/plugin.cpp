// Registers the webhook sink with tattle (shared library or static registry).
#include <memory>
#include <stdexcept>
#include <utility>

#include "tattle/http/client.hpp"
#include "tattle/sdk.hpp"
#include "tattle/sinkkit/delivery.hpp"
#include "webhook_sink.hpp"

namespace {

namespace webhook = tattle::sinks::webhook;
namespace http = tattle::http;

class WebhookPlugin final : public tattle::sdk::Sink {
public:
    static constexpr const char* kTypeName = "webhook";
    static constexpr const char* kVersion = "0.1.0";
    static constexpr const char* kDescription =
        "Sends alerts as JSON (or a body template) to any HTTPS endpoint, optionally HMAC-SHA256 "
        "signed";
    static constexpr const char* kConfigSchema = R"json({
  "type": "object",
  "properties": {
    "url": {"type": "string", "minLength": 1, "x-secret": true,
            "description": "the receiver's https:// URL; a secret, may be env:NAME or file:PATH"},
    "method": {"enum": ["POST", "PUT"], "default": "POST"},
    "content_type": {"type": "string", "minLength": 1, "default": "application/json",
                     "description": "the body's Content-Type; JSON types make template values JSON-escaped"},
    "headers": {"type": "object", "additionalProperties": {"type": "string"}, "x-secret": true,
                "description": "extra request headers; values are secrets (tokens), each may be env:NAME or file:PATH"},
    "hmac_secret": {"type": "string", "minLength": 1, "x-secret": true,
                    "description": "signs each request: X-Tattle-Signature = sha256=HMAC-SHA256(secret, timestamp + \".\" + body)"},
    "body_template": {"type": "string", "minLength": 1,
                      "description": "the body instead of the alert document; {{path}} and {{path | json}} over the alert"},
    "timeout_ms": {"type": "integer", "minimum": 100, "maximum": 300000, "default": 10000,
                   "description": "connect, TLS, request and response together"},
    "ca_file": {"type": "string", "format": "path", "description": "PEM file of extra trusted CAs (the system store is used too)"},
    "insecure_skip_verify": {"type": "boolean", "default": false,
                             "description": "true turns OFF certificate and host name checks (tests only)"},
    "allow_plain_http": {"type": "boolean", "default": false,
                         "description": "true allows an http:// url: alerts then travel unencrypted"}
  },
  "required": ["url"],
  "additionalProperties": false
})json";

    explicit WebhookPlugin(const tattle::sdk::CreateContext& ctx)
        : WebhookPlugin(ctx, checked(webhook::parse_config(ctx.config_json))) {}

    tattle::sdk::SendResult send(std::string_view alert_json) override {
        return sink_.send(alert_json);
    }

private:
    WebhookPlugin(const tattle::sdk::CreateContext& ctx, webhook::WebhookSinkConfig config)
        : client_(make_client(ctx, config)),
          sink_(std::move(config), [client = client_.get()](const http::Request& request) {
              return client->send(request);
          }) {}

    static webhook::WebhookSinkConfig checked(webhook::WebhookSinkConfig config) {
        // Checked here, not by a schema pattern: the schema sees "env:NAME" before it is resolved.
        const bool https = config.url.starts_with("https://");
        const bool plain = config.url.starts_with("http://");
        if (!https && !(plain && config.allow_plain_http)) {
            throw std::invalid_argument(
                plain ? "url is http://: set allow_plain_http = true to send alerts unencrypted"
                      : "url must be an https:// URL");
        }
        return config;
    }

    static std::unique_ptr<http::Client> make_client(const tattle::sdk::CreateContext& ctx,
                                                     const webhook::WebhookSinkConfig& config) {
        http::ClientOptions options = tattle::sinkkit::https_client_options(
            ctx.host, config.timeout, config.ca_file, config.insecure_skip_verify);
        auto client = std::make_unique<http::Client>(std::move(options));
        if (config.url.starts_with("http://")) {
            ctx.host.warn("alerts to " + http::redact_url(config.url) +
                          " travel unencrypted (allow_plain_http = true)");
            client->allow_plain_http(true);
        }
        return client;
    }

    std::unique_ptr<http::Client> client_;  // before sink_: the sink's transport uses it
    webhook::WebhookSink sink_;
};

}  // namespace

TATTLE_EXPORT_SINK(WebhookPlugin)
