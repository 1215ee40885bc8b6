#include "slack_sink.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <exception>
#include <utility>

#include "tattle/sinkkit/json_fields.hpp"
#include "tattle/sinkkit/secrets.hpp"
#include "tattle/sinkkit/text.hpp"

namespace tattle::sinks::slack {
namespace {

namespace json = boost::json;

using sinkkit::string_or;

// Slack's error body as it may appear in a message: printable ASCII, short.
std::string printable_body(std::string_view body) { return sinkkit::printable(body, 200); }

// What an operator should do about Slack's permanent errors.
std::string_view hint_for(std::string_view body) {
    if (body.starts_with("invalid_payload") || body.starts_with("invalid_blocks")) {
        return "; Slack could not read the message tattle built, please report it";
    }
    if (body.starts_with("channel_not_found")) return "; the webhook's channel no longer exists";
    if (body.starts_with("channel_is_archived")) return "; the webhook's channel is archived";
    if (body.starts_with("no_service") || body.starts_with("no_team") ||
        body.starts_with("team_disabled") || body.starts_with("invalid_token")) {
        return "; the webhook was removed or revoked, create a new one";
    }
    if (body.starts_with("action_prohibited") ||
        body.starts_with("posting_to_general_channel_denied")) {
        return "; the workspace does not allow this webhook to post there";
    }
    return {};
}

}  // namespace

SlackSinkConfig parse_config(const std::string& config_json) {
    const json::value parsed = json::parse(config_json);
    const json::object& config = parsed.as_object();
    SlackSinkConfig out;
    out.webhook_url = string_or(config, "webhook_url");
    out.message.channel = string_or(config, "channel");
    out.message.username = string_or(config, "username");
    out.message.icon_emoji = string_or(config, "icon_emoji");
    out.ca_file = string_or(config, "ca_file");
    if (const auto* text = config.if_contains("template"); text != nullptr && text->is_string()) {
        out.message_template = MessageTemplate::parse(text->get_string());
    } else if (text != nullptr && text->is_object()) {
        out.message_template = MessageTemplate::from_json(*text);
    }
    if (const auto* timeout = config.if_contains("timeout_ms");
        timeout != nullptr && timeout->is_number()) {
        out.timeout = std::chrono::milliseconds(timeout->to_number<std::int64_t>());
    }
    if (const auto* insecure = config.if_contains("insecure_skip_verify");
        insecure != nullptr && insecure->is_bool()) {
        out.insecure_skip_verify = insecure->get_bool();
    }
    return out;
}

sdk::SendResult map_response(int status, std::string_view body,
                             std::optional<std::chrono::milliseconds> retry_after) {
    if (status >= 200 && status < 300) return sdk::SendResult::ok();
    const std::string said = printable_body(body);
    const std::string answer = "HTTP " + std::to_string(status) + (said.empty() ? "" : " " + said);
    if (status == 429) {
        return sdk::SendResult::retry("Slack is rate limiting this webhook (" + answer + ")",
                                      retry_after);
    }
    // 408 and 5xx are Slack's trouble, not the message's; anything below 200 is a
    // broken exchange. All worth another try.
    if (status == 408 || status >= 500 || status < 200) {
        return sdk::SendResult::retry("Slack answered " + answer, retry_after);
    }
    // 400 invalid_payload, 403 action_prohibited, 404 channel_not_found / no_service,
    // 410 channel_is_archived, redirects: sending the same post again cannot work.
    return sdk::SendResult::fail("Slack refused the message (" + answer + ")" +
                                 std::string(hint_for(said)));
}

std::vector<std::string> url_secrets(std::string_view url) {
    std::vector<std::string> secrets;
    if (url.empty()) return secrets;
    secrets.emplace_back(url);
    const std::size_t scheme = url.find("://");
    const std::size_t path =
        url.find_first_of("/?#", scheme == std::string_view::npos ? 0 : scheme + 3);
    if (path == std::string_view::npos) return secrets;
    const std::string_view rest = url.substr(path);
    if (rest.size() > 1) secrets.emplace_back(rest);
    // Long segments only: "services" or a Slack team id alone are no secret, and
    // redacting them would garble harmless words.
    constexpr std::size_t kMinSegment = 12;
    std::size_t start = 0;
    while (start < rest.size()) {
        const std::size_t end = std::min(rest.find_first_of("/?#&=", start), rest.size());
        if (end - start >= kMinSegment) secrets.emplace_back(rest.substr(start, end - start));
        start = end + 1;
    }
    return secrets;
}

SlackSink::SlackSink(SlackSinkConfig config, Transport transport)
    : config_(std::move(config)),
      transport_(std::move(transport)),
      secrets_(url_secrets(config_.webhook_url)) {}

sdk::SendResult SlackSink::send(std::string_view alert_json) {
    sdk::SendResult result = attempt(alert_json);
    result.message = redact_secrets(std::move(result.message), secrets_);
    return result;
}

sdk::SendResult SlackSink::attempt(std::string_view alert_json) {
    http::Request request;
    try {
        request.body = config_.message_template
                           ? render_templated_message(alert_json, *config_.message_template, config_.message)
                           : render_message(alert_json, config_.message);
    } catch (const std::exception& e) {
        // The same alert will never render: retrying cannot help.
        return sdk::SendResult::fail(std::string("cannot build a Slack message from the alert: ") +
                                     e.what());
    }
    request.method = "POST";
    request.url = config_.webhook_url;
    request.headers = {{"Content-Type", "application/json; charset=utf-8"}};

    return sinkkit::deliver(transport_, request, {"Slack webhook request cannot be sent: ", "Slack webhook not reached: "}, map_response);
}

}  // namespace tattle::sinks::slack
