#pragma once

// Posts alerts to a Slack incoming webhook and says what Slack's answer means for
// the core: delivered, try again (when), or give up (why).

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "slack_message.hpp"
#include "slack_template.hpp"
#include "tattle/http/client.hpp"
#include "tattle/sdk.hpp"
#include "tattle/sinkkit/delivery.hpp"
#include "tattle/sinkkit/secrets.hpp"

namespace tattle::sinks::slack {

struct SlackSinkConfig {
    std::string webhook_url;  // a secret: the URL is the credential
    MessageOptions message;
    std::optional<MessageTemplate> message_template;  // the user's message instead of tattle's
    std::chrono::milliseconds timeout{10000};
    std::string ca_file;
    bool insecure_skip_verify = false;
};

// Reads the host-validated config (schema defaults already filled in). Throws
// std::invalid_argument for a template that cannot work (see MessageTemplate::parse).
SlackSinkConfig parse_config(const std::string& config_json);

// Slack's answer → the core's next step. body is Slack's plain-text error name
// (invalid_payload, channel_not_found, …), quoted in the message of a failure.
sdk::SendResult map_response(int status, std::string_view body,
                             std::optional<std::chrono::milliseconds> retry_after);

// Pieces of a secret URL worth hiding on their own: the URL, its path and query,
// and each long path segment (a receiver may echo just the token).
std::vector<std::string> url_secrets(std::string_view url);

// text with every occurrence of every secret replaced by "<redacted>".
using sinkkit::redact_secrets;

// Sends one request and returns the whole response; throws http::TransportError.
using Transport = sinkkit::Transport;

class SlackSink {
public:
    SlackSink(SlackSinkConfig config, Transport transport);

    // Never sleeps or retries: one POST, one verdict. Result messages never hold the
    // webhook URL or any piece of it.
    sdk::SendResult send(std::string_view alert_json);

private:
    sdk::SendResult attempt(std::string_view alert_json);

    SlackSinkConfig config_;
    Transport transport_;
    std::vector<std::string> secrets_;
};

}  // namespace tattle::sinks::slack
