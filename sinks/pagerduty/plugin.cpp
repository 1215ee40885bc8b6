// Registers the pagerduty sink with tattle (shared library or static registry).
#include <memory>
#include <stdexcept>
#include <utility>

#include "pagerduty_sink.hpp"
#include "tattle/http/client.hpp"
#include "tattle/sdk.hpp"
#include "tattle/sinkkit/delivery.hpp"

namespace {

namespace pagerduty = tattle::sinks::pagerduty;
namespace http = tattle::http;

class PagerDutyPlugin final : public tattle::sdk::Sink {
public:
    static constexpr const char* kTypeName = "pagerduty";
    static constexpr const char* kVersion = "0.1.0";
    static constexpr const char* kDescription =
        "Triggers PagerDuty alerts through the Events API v2 (dedup_key = alert id)";
    static constexpr const char* kConfigSchema = R"json({
  "type": "object",
  "properties": {
    "routing_key": {"type": "string", "minLength": 1, "x-secret": true,
                    "description": "the integration key of an Events API v2 integration; a secret, may be env:NAME or file:PATH"},
    "events_url": {"type": "string", "default": "https://events.pagerduty.com/v2/enqueue",
                   "description": "the Events API v2 enqueue URL (override for tests or a proxy)"},
    "default_severity": {"enum": ["critical", "error", "warning", "info"], "default": "warning",
                         "description": "severity when the rule has none PagerDuty understands"},
    "timeout_ms": {"type": "integer", "minimum": 100, "maximum": 300000, "default": 10000,
                   "description": "connect, TLS, request and response together"},
    "ca_file": {"type": "string", "format": "path", "description": "PEM file of extra trusted CAs (the system store is used too)"},
    "insecure_skip_verify": {"type": "boolean", "default": false,
                             "description": "true turns OFF certificate and host name checks (tests only)"}
  },
  "required": ["routing_key"],
  "additionalProperties": false
})json";

    explicit PagerDutyPlugin(const tattle::sdk::CreateContext& ctx)
        : PagerDutyPlugin(ctx, checked(pagerduty::parse_config(ctx.config_json))) {}

    tattle::sdk::SendResult send(std::string_view alert_json) override {
        return sink_.send(alert_json);
    }

private:
    PagerDutyPlugin(const tattle::sdk::CreateContext& ctx, pagerduty::PagerDutySinkConfig config)
        : client_(make_client(ctx, config)),
          sink_(std::move(config), [client = client_.get()](const http::Request& request) {
              return client->send(request);
          }) {}

    static pagerduty::PagerDutySinkConfig checked(pagerduty::PagerDutySinkConfig config) {
        if (!config.events_url.starts_with("https://")) {
            throw std::invalid_argument("events_url must be an https:// URL");
        }
        return config;
    }

    static std::unique_ptr<http::Client> make_client(const tattle::sdk::CreateContext& ctx,
                                                     const pagerduty::PagerDutySinkConfig& config) {
        http::ClientOptions options = tattle::sinkkit::https_client_options(
            ctx.host, config.timeout, config.ca_file, config.insecure_skip_verify);
        if (config.events_url != pagerduty::kDefaultEventsUrl) {
            ctx.host.info("sending to " + http::redact_url(config.events_url) +
                          " instead of PagerDuty");
        }
        return std::make_unique<http::Client>(std::move(options));
    }

    std::unique_ptr<http::Client> client_;  // before sink_: the sink's transport uses it
    pagerduty::PagerDutySink sink_;
};

}  // namespace

TATTLE_EXPORT_SINK(PagerDutyPlugin)
