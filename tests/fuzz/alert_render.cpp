// Every sink's rendering of an alert, whatever the event holds: Slack (built-in layout and
// a user template), email (SES), PagerDuty, SNS. The input is either a JSON object (an
// alert document when it has "rule", else an event made into one) or, when it is not JSON,
// lines put into the string fields of a CloudTrail event (kept to valid UTF-8, as a JSON
// parser would give them). Invariants: each body is valid JSON when parsed back, within the
// service's size limits; Slack text mentions nobody and links only to the AWS console;
// email HTML carries no markup from the event; subjects are one line.

#include <boost/json.hpp>

#include <optional>
#include <string>

#include "fuzz_support.hpp"
#include "pagerduty/pagerduty_event.hpp"
#include "ses/ses_message.hpp"
#include "slack_webhook/slack_message.hpp"
#include "slack_webhook/slack_template.hpp"
#include "sns/sns_message.hpp"
#include "tattle/alert.hpp"

namespace {

namespace json = boost::json;
using tattle::fuzz::require;

// Text the event could have written, meant to be found escaped in every output.
constexpr std::string_view kMarkup = "<b id=x-evil>";

json::object alert_from_lines(std::string_view input) {
    static constexpr std::string_view fields[] = {"userAgent",       "eventName", "sourceIPAddress",
                                                  "errorMessage",    "errorCode", "awsRegion",
                                                  "eventID",         "eventSource", "recipientAccountId",
                                                  "eventTime"};
    json::object event;
    std::size_t n = 0;
    for (const std::string_view line : tattle::fuzz::split(input, '\n', std::size(fields) + 3)) {
        const std::string text = tattle::fuzz::valid_utf8(line);
        if (n < std::size(fields)) {
            event[fields[n]] = text;
        } else if (n == std::size(fields)) {
            event["userIdentity"] = {{"type", "AssumedRole"}, {"arn", text}};
        } else {
            event["requestParameters"] = {{"bucketName", text}, {"note", std::string(kMarkup)}};
        }
        ++n;
    }
    tattle::AlertRule rule;
    rule.name = "fuzz rule " + std::string(kMarkup);
    rule.description = "what the rule finds";
    rule.severity = "high";
    return tattle::make_alert(rule, event, json::value(tattle::fuzz::valid_utf8(input.substr(0, 300))),
                              tattle::EventOrigin{"fuzz", "s3://bucket/key", 0});
}

json::value parse_back(std::string_view text, std::string_view what) {
    boost::system::error_code error;
    json::value value = json::parse(text, error);
    require(!error, std::string(what) + " is not valid JSON", text);
    return value;
}

// The rule's runbook link: the rule comes from the config (trusted), not from the event.
std::string runbook_link;

// Slack mrkdwn/plain text: no mention (<!…>, <@…>, <#…>) and no link but the console's
// and the rule's runbook.
void check_slack_text(std::string_view text, std::size_t max_bytes, std::string_view where) {
    require(text.size() <= max_bytes, std::string(where) + " over Slack's limit", text);
    for (std::size_t at = text.find('<'); at != std::string_view::npos; at = text.find('<', at + 1)) {
        const std::string_view link = text.substr(at);
        const auto host_end = link.find_first_of("/|>", 9);
        const bool console_link = link.rfind("<https://", 0) == 0 && host_end != std::string_view::npos &&
                                  link.substr(0, host_end).ends_with(".console.aws.amazon.com");
        const bool runbook = !runbook_link.empty() && link.rfind(runbook_link, 0) == 0;
        require(console_link || runbook, std::string(where) + " has markup that is not a console link", text);
    }
}

void check_slack_message(const json::object& message, std::string_view serialized) {
    if (const auto* text = message.if_contains("text")) {
        check_slack_text(text->as_string(), tattle::sinks::slack::kMaxMessageText, "message text");
    }
    const auto* blocks = message.if_contains("blocks");
    if (blocks == nullptr) return;
    require(blocks->as_array().size() <= tattle::sinks::slack::kMaxBlocks, "more than 50 blocks", serialized);
    for (const auto& block_value : blocks->as_array()) {
        const auto& block = block_value.as_object();
        const auto type = block.at("type").as_string();
        if (type == "header") {
            check_slack_text(block.at("text").at("text").as_string(), tattle::sinks::slack::kMaxHeaderText, "header");
        }
        if (const auto* text = block.if_contains("text"); text != nullptr && type == "section") {
            check_slack_text(text->at("text").as_string(), tattle::sinks::slack::kMaxSectionText, "section");
        }
        if (const auto* fields = block.if_contains("fields")) {
            require(fields->as_array().size() <= tattle::sinks::slack::kMaxFields, "more than 10 fields", serialized);
            for (const auto& field : fields->as_array()) {
                check_slack_text(field.at("text").as_string(), tattle::sinks::slack::kMaxFieldText, "field");
            }
        }
        if (const auto* elements = block.if_contains("elements"); elements != nullptr && type == "context") {
            for (const auto& element : elements->as_array()) {
                check_slack_text(element.at("text").as_string(), tattle::sinks::slack::kMaxContextText, "context");
            }
        }
    }
}

const tattle::sinks::slack::MessageTemplate& slack_template() {
    static const auto parsed = tattle::sinks::slack::MessageTemplate::parse(R"({
        "text": "{{rule}}: {{annotation}} by {{actor}}",
        "blocks": [
          {"type": "header", "text": {"type": "plain_text", "text": "{{rule}} in {{account}}"}},
          {"type": "section", "text": {"type": "mrkdwn", "text": "*Who* {{actor}} from {{source_ip}}\n*Agent* `{{user_agent}}`\n{{event.requestParameters}}"}},
          {"type": "section", "fields": [{"type": "mrkdwn", "text": "{{event_name}}"}, {"type": "mrkdwn", "text": "{{error_code}}: {{summary.error_message}}"}]},
          {"type": "context", "elements": [{"type": "mrkdwn", "text": "{{event.eventID}} {{region}} {{event}}"}]}
        ]})");
    return parsed;
}

// Every '<' of the HTML starts a tag the email template writes, never one from the event.
void check_html(std::string_view html) {
    static constexpr std::string_view tags[] = {"a", "b", "body", "br", "h2", "head", "html", "meta", "p", "pre",
                                                "style", "table", "td", "th", "title", "tr", "!DOCTYPE", "!doctype"};
    require(html.find(kMarkup) == std::string_view::npos, "event markup in the email HTML", html);
    for (std::size_t at = html.find('<'); at != std::string_view::npos; at = html.find('<', at + 1)) {
        std::string_view name = html.substr(at + 1);
        if (!name.empty() && name[0] == '/') name.remove_prefix(1);
        name = name.substr(0, name.find_first_of(" >"));
        bool known = false;
        for (const auto tag : tags) known = known || name == tag;
        require(known, "an HTML tag the template does not write", html.substr(at, 200));
    }
}

void render_everything(const json::object& alert) {
    const std::string alert_json = json::serialize(alert);
    runbook_link.clear();
    if (const auto* rule = alert.if_contains("rule"); rule != nullptr && rule->is_object()) {
        if (const auto* runbook = rule->as_object().if_contains("runbook"); runbook != nullptr && runbook->is_string()) {
            runbook_link = "<" + std::string(runbook->as_string()) + "|Runbook>";
        }
    }
    try {
        const std::string slack = tattle::sinks::slack::render_message(alert_json, {});
        check_slack_message(parse_back(slack, "the Slack message").as_object(), slack);
        const std::string templated =
            tattle::sinks::slack::render_templated_message(alert_json, slack_template(), {});
        check_slack_message(parse_back(templated, "the templated Slack message").as_object(), templated);
    } catch (const std::invalid_argument&) {
        // Not an alert document (no rule object): the sink refuses it, as it should.
    }

    try {
        const auto email = tattle::sinks::ses::build_email(alert, std::nullopt);
        require(email.subject.size() <= tattle::sinks::ses::kMaxSubjectBytes, "an email subject over its limit",
                email.subject);
        require(email.subject.find_first_of("\r\n") == std::string::npos, "an email subject of two lines", email.subject);
        require(tattle::fuzz::is_utf8(email.subject) && tattle::fuzz::is_utf8(email.text) &&
                    tattle::fuzz::is_utf8(email.html),
                "an email that is not UTF-8", email.subject);
        check_html(email.html);
    } catch (const std::invalid_argument&) {
    }

    for (const std::size_t budget : {tattle::sinks::pagerduty::kMaxRequestBytes, std::size_t{4096}}) {
        try {
            tattle::sinks::pagerduty::EventOptions options;
            options.routing_key = "R0UT1NGKEY";
            options.max_request_bytes = budget;
            const std::string trigger = tattle::sinks::pagerduty::render_trigger(alert_json, options);
            require(trigger.size() <= budget, "a PagerDuty request over its size limit", trigger);
            const json::value parsed = parse_back(trigger, "the PagerDuty request");
            require(parsed.at("payload").at("summary").as_string().size() <= tattle::sinks::pagerduty::kMaxSummary,
                    "a PagerDuty summary over 1024 bytes", trigger);
            if (const auto* key = parsed.as_object().if_contains("dedup_key")) {
                require(key->as_string().size() <= tattle::sinks::pagerduty::kMaxDedupKey, "a dedup_key over 255",
                        trigger);
            }
        } catch (const std::invalid_argument&) {
        }
    }

    try {
        tattle::sinks::sns::PublishOptions options;
        options.topic_arn = "arn:aws:sns:us-east-1:123456789012:alerts";
        options.subject = tattle::sinkkit::AlertTemplate::parse("[{{severity}}] {{rule}} by {{actor}}");
        const auto publication = tattle::sinks::sns::build_publication(alert, options);
        parse_back(publication.message, "the SNS message");
        require(publication.message.size() + tattle::sinks::sns::attribute_bytes(publication.attributes) <=
                    tattle::sinks::sns::kMaxPublishBytes,
                "an SNS message over 256 KB", publication.subject);
        require(publication.subject.size() <= tattle::sinks::sns::kMaxSubjectChars, "an SNS subject over 99",
                publication.subject);
        for (const char c : publication.subject) {
            const auto byte = static_cast<unsigned char>(c);
            require(byte >= 0x20 && byte < 0x7f, "an SNS subject with a non-printable byte", publication.subject);
        }
    } catch (const std::invalid_argument&) {
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input = tattle::fuzz::as_text(data, size);
    boost::system::error_code error;
    json::value parsed = json::parse(input, error);
    if (!error && parsed.is_object()) {
        const json::object& object = parsed.as_object();
        if (object.contains("rule")) {
            render_everything(object);
        } else {
            tattle::AlertRule rule;
            rule.name = "fuzz";
            render_everything(tattle::make_alert(rule, object, std::nullopt, tattle::EventOrigin{"fuzz", "b", 0}));
        }
    } else {
        render_everything(alert_from_lines(input));
    }
    return 0;
}
