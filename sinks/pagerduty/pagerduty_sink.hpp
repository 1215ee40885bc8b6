#pragma once

// Sends alerts to PagerDuty's Events API v2 and says what PagerDuty's answer means
// for the core: delivered, try again (when), or give up (why).

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pagerduty_event.hpp"
#include "tattle/http/client.hpp"
#include "tattle/sdk.hpp"
#include "tattle/sinkkit/delivery.hpp"
#include "tattle/sinkkit/secrets.hpp"

namespace tattle::sinks::pagerduty {

inline constexpr const char* kDefaultEventsUrl = "https://events.pagerduty.com/v2/enqueue";

struct PagerDutySinkConfig {
    EventOptions event;  // routing_key (a secret), default_severity
    std::string events_url = kDefaultEventsUrl;
    std::chrono::milliseconds timeout{10000};
    std::string ca_file;
    bool insecure_skip_verify = false;
};

// Reads the host-validated config (schema defaults already filled in).
PagerDutySinkConfig parse_config(const std::string& config_json);

// PagerDuty's answer → the core's next step (PagerDuty's own retry table: 202 done,
// 400 never, 429 and 5xx later). body is PagerDuty's JSON error, quoted on failure.
sdk::SendResult map_response(int status, std::string_view body,
                             std::optional<std::chrono::milliseconds> retry_after);

// text with every occurrence of every secret replaced by "<redacted>".
using sinkkit::redact_secrets;

// Sends one request and returns the whole response; throws http::TransportError.
using Transport = sinkkit::Transport;

class PagerDutySink {
public:
    PagerDutySink(PagerDutySinkConfig config, Transport transport);

    // Never sleeps or retries: one POST, one verdict. Result messages never hold the
    // routing key.
    sdk::SendResult send(std::string_view alert_json);

private:
    sdk::SendResult attempt(std::string_view alert_json);

    PagerDutySinkConfig config_;
    Transport transport_;
};

}  // namespace tattle::sinks::pagerduty
