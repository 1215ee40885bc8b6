// Registers the slack_webhook sink with tattle (shared library or static registry).
#include <memory>
#include <stdexcept>
#include <utility>

#include "slack_sink.hpp"
#include "tattle/http/client.hpp"
#include "tattle/sdk.hpp"
#include "tattle/sinkkit/delivery.hpp"

namespace {

namespace slack = tattle::sinks::slack;
namespace http = tattle::http;

class SlackWebhookPlugin final : public tattle::sdk::Sink {
public:
    static constexpr const char* kTypeName = "slack_webhook";
    static constexpr const char* kVersion = "0.1.0";
    static constexpr const char* kDescription =
        "Posts alerts to a Slack incoming webhook as a Block Kit message (cloudtrail-tattletail "
        "compatible)";
    static constexpr const char* kConfigSchema = R"json({
  "type": "object",
  "properties": {
    "webhook_url": {"type": "string", "minLength": 1, "x-secret": true,
                    "description": "the incoming webhook URL (https://hooks.slack.com/services/...); a secret, may be env:NAME or file:PATH"},
    "channel": {"type": "string", "description": "channel override (#name); legacy webhooks only"},
    "username": {"type": "string", "description": "sender name override; legacy webhooks only"},
    "icon_emoji": {"type": "string", "pattern": "^:[^:\\s]+:$", "description": "sender icon override, e.g. :shield:; legacy webhooks only"},
    "template": {"type": ["string", "object"],
                 "description": "the message as Slack JSON (text and/or blocks) with {{placeholders}} from the alert, instead of tattle's; see the sink's README"},
    "timeout_ms": {"type": "integer", "minimum": 100, "maximum": 300000, "default": 10000,
                   "description": "connect, TLS, request and response together"},
    "ca_file": {"type": "string", "format": "path", "description": "PEM file of extra trusted CAs (the system store is used too)"},
    "insecure_skip_verify": {"type": "boolean", "default": false,
                             "description": "true turns OFF certificate and host name checks (tests only)"}
  },
  "required": ["webhook_url"],
  "additionalProperties": false
})json";

    explicit SlackWebhookPlugin(const tattle::sdk::CreateContext& ctx)
        : SlackWebhookPlugin(ctx, checked(slack::parse_config(ctx.config_json))) {}

    tattle::sdk::SendResult send(std::string_view alert_json) override {
        return sink_.send(alert_json);
    }

private:
    SlackWebhookPlugin(const tattle::sdk::CreateContext& ctx, slack::SlackSinkConfig config)
        : client_(make_client(ctx, config)),
          sink_(std::move(config), [client = client_.get()](const http::Request& request) {
              return client->send(request);
          }) {}

    static slack::SlackSinkConfig checked(slack::SlackSinkConfig config) {
        // Checked here, not by a schema pattern: the schema sees "env:NAME" before it is resolved.
        if (!config.webhook_url.starts_with("https://")) {
            throw std::invalid_argument("webhook_url must be an https:// URL");
        }
        return config;
    }

    static std::unique_ptr<http::Client> make_client(const tattle::sdk::CreateContext& ctx,
                                                     const slack::SlackSinkConfig& config) {
        http::ClientOptions options = tattle::sinkkit::https_client_options(
            ctx.host, config.timeout, config.ca_file, config.insecure_skip_verify);
        return std::make_unique<http::Client>(std::move(options));
    }

    std::unique_ptr<http::Client> client_;  // before sink_: the sink's transport uses it
    slack::SlackSink sink_;
};

}  // namespace

TATTLE_EXPORT_SINK(SlackWebhookPlugin)
