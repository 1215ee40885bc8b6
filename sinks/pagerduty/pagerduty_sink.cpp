#include "pagerduty_sink.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <exception>
#include <utility>

#include "tattle/sinkkit/json_fields.hpp"
#include "tattle/sinkkit/secrets.hpp"
#include "tattle/sinkkit/text.hpp"

namespace tattle::sinks::pagerduty {
namespace {

namespace json = boost::json;

using sinkkit::string_or;

// Text from PagerDuty as it may appear in a message: printable ASCII, short.
using sinkkit::printable;

// {"status":"invalid event","message":"Event object is invalid","errors":["..."]}
// → "invalid event: Event object is invalid (...)"; anything else, printable.
std::string explain_body(std::string_view body) {
    boost::system::error_code error;
    const json::value parsed = json::parse(body, error);
    if (error || !parsed.is_object()) return printable(body, 300);
    const auto& object = parsed.get_object();
    const auto text_at = [&object](std::string_view key) {
        const auto* found = object.if_contains(key);
        return found != nullptr && found->is_string() ? std::string(found->get_string())
                                                      : std::string();
    };
    std::string out = text_at("status");
    if (const auto message = text_at("message"); !message.empty())
        out += (out.empty() ? "" : ": ") + message;
    if (const auto* errors = object.if_contains("errors");
        errors != nullptr && errors->is_array()) {
        std::string listed;
        for (const auto& item : errors->get_array()) {
            if (!listed.empty()) listed += "; ";
            listed += item.is_string() ? std::string(item.get_string()) : json::serialize(item);
        }
        if (!listed.empty()) out += " (" + listed + ")";
    }
    return printable(out, 300);
}

}  // namespace

PagerDutySinkConfig parse_config(const std::string& config_json) {
    const json::value parsed = json::parse(config_json);
    const json::object& config = parsed.as_object();
    PagerDutySinkConfig out;
    out.event.routing_key = string_or(config, "routing_key");
    out.event.default_severity = string_or(config, "default_severity", "warning");
    out.events_url = string_or(config, "events_url", kDefaultEventsUrl);
    out.ca_file = string_or(config, "ca_file");
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
    const std::string said = explain_body(body);
    const std::string answer = "HTTP " + std::to_string(status) + (said.empty() ? "" : " " + said);
    if (status == 429) {
        return sdk::SendResult::retry(
            "PagerDuty is rate limiting this routing key (" + answer + ")", retry_after);
    }
    if (status == 408 || status >= 500 || status < 200) {
        return sdk::SendResult::retry("PagerDuty answered " + answer, retry_after);
    }
    // 400 (the event is invalid), 401/403/404 (wrong events_url or key), 413: sending
    // the same event again cannot work.
    return sdk::SendResult::fail("PagerDuty refused the event (" + answer + ")");
}

PagerDutySink::PagerDutySink(PagerDutySinkConfig config, Transport transport)
    : config_(std::move(config)), transport_(std::move(transport)) {}

sdk::SendResult PagerDutySink::send(std::string_view alert_json) {
    sdk::SendResult result = attempt(alert_json);
    result.message = redact_secrets(std::move(result.message), {config_.event.routing_key});
    return result;
}

sdk::SendResult PagerDutySink::attempt(std::string_view alert_json) {
    http::Request request;
    try {
        request.body = render_trigger(alert_json, config_.event);
    } catch (const std::exception& e) {
        // The same alert will never render: retrying cannot help.
        return sdk::SendResult::fail(
            std::string("cannot build a PagerDuty event from the alert: ") + e.what());
    }
    request.method = "POST";
    request.url = config_.events_url;
    request.headers = {{"Content-Type", "application/json"}};

    return sinkkit::deliver(transport_, request, {"PagerDuty request cannot be sent: ", "PagerDuty not reached: "}, map_response);
}

}  // namespace tattle::sinks::pagerduty
