#include "ses_sink.hpp"

#include <boost/json.hpp>
#include <stdexcept>

#include "tattle/aws/xml.hpp"
#include "tattle/sinkkit/aws_delivery.hpp"
#include "tattle/sinkkit/json_fields.hpp"

namespace tattle::sinks::ses {
namespace {

namespace json = boost::json;

constexpr std::string_view kApiVersion = "2010-12-01";

// An address as SES takes it: "user@example.com" or "Name <user@example.com>". A line
// break would let a config value add mail headers; messages name the key, not the value
// (an address is personal data, not a secret, but logs need not hold it).
std::string checked_address(std::string_view address, const std::string& where) {
    for (const char c : address) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            throw std::invalid_argument(where + ": an address holds a control character or line break");
        }
    }
    if (address.find('@') == std::string_view::npos) throw std::invalid_argument(where + ": an address has no '@'");
    return std::string(address);
}

std::vector<std::string> addresses(const json::object& config, std::string_view key) {
    std::vector<std::string> out;
    const json::value* list = config.if_contains(key);
    if (list == nullptr || !list->is_array()) return out;
    for (std::size_t i = 0; i < list->get_array().size(); ++i) {
        const json::value& item = list->get_array()[i];
        const std::string where = std::string(key) + "[" + std::to_string(i) + "]";
        if (!item.is_string()) throw std::invalid_argument(where + ": not a string");
        out.push_back(checked_address({item.get_string().data(), item.get_string().size()}, where));
    }
    return out;
}

}  // namespace

SesSinkConfig parse_config(const std::string& config_json) {
    const json::value parsed = json::parse(config_json);
    const json::object& config = parsed.as_object();
    SesSinkConfig out;
    out.to_emails = addresses(config, "to_emails");
    if (out.to_emails.empty()) throw std::invalid_argument("to_emails: at least one address is needed");
    out.cc_emails = addresses(config, "cc_emails");
    if (out.to_emails.size() + out.cc_emails.size() > kMaxRecipients) {
        throw std::invalid_argument("to_emails and cc_emails: SES takes at most 50 recipients per message");
    }
    out.from_email = checked_address(sinkkit::string_or(config, "from_email"), "from_email");
    out.configuration_set = sinkkit::string_or(config, "configuration_set");
    if (const auto subject = sinkkit::string_or(config, "subject_template"); !subject.empty()) {
        try {
            out.subject_template = sinkkit::AlertTemplate::parse(subject);
        } catch (const std::invalid_argument& error) {
            throw std::invalid_argument("subject_template: " + std::string(error.what()));
        }
    }
    out.aws = aws::settings_from_json(config);
    return out;
}

std::vector<std::pair<std::string, std::string>> send_email_parameters(const Email& email, const SesSinkConfig& config) {
    std::vector<std::pair<std::string, std::string>> parameters;
    parameters.emplace_back("Source", config.from_email);
    for (std::size_t i = 0; i < config.to_emails.size(); ++i) {
        parameters.emplace_back("Destination.ToAddresses.member." + std::to_string(i + 1), config.to_emails[i]);
    }
    for (std::size_t i = 0; i < config.cc_emails.size(); ++i) {
        parameters.emplace_back("Destination.CcAddresses.member." + std::to_string(i + 1), config.cc_emails[i]);
    }
    parameters.emplace_back("Message.Subject.Data", email.subject);
    parameters.emplace_back("Message.Subject.Charset", "UTF-8");
    parameters.emplace_back("Message.Body.Text.Data", email.text);
    parameters.emplace_back("Message.Body.Text.Charset", "UTF-8");
    parameters.emplace_back("Message.Body.Html.Data", email.html);
    parameters.emplace_back("Message.Body.Html.Charset", "UTF-8");
    if (!config.configuration_set.empty()) parameters.emplace_back("ConfigurationSetName", config.configuration_set);
    return parameters;
}

std::string_view hint_for(std::string_view code) {
    if (code == "MessageRejected") {
        return "verify from_email (or its domain) in SES; in the SES sandbox the recipients must be verified too";
    }
    if (code == "MailFromDomainNotVerified") return "the sender's custom MAIL FROM domain is not verified in SES";
    if (code == "ConfigurationSetDoesNotExist") return "configuration_set names no SES configuration set in this region";
    if (code == "AccessDenied" || code == "AccessDeniedException") return "the credentials need ses:SendEmail";
    if (code == "InvalidClientTokenId" || code == "SignatureDoesNotMatch" || code == "UnrecognizedClientException") {
        return "the AWS access key or secret is wrong";
    }
    return {};
}

SesSink::SesSink(SesSinkConfig config, aws::ServiceClient client)
    : config_(std::move(config)), client_(std::move(client)), what_("ses:SendEmail from " + config_.from_email) {}

sdk::SendResult SesSink::send(std::string_view alert_json) {
    Email email;
    try {
        boost::system::error_code error;
        const json::value alert = json::parse(alert_json, error);
        if (error) throw std::invalid_argument("the alert is not valid JSON: " + error.message());
        if (!alert.is_object()) throw std::invalid_argument("the alert is not a JSON object");
        email = build_email(alert.get_object(), config_.subject_template);
    } catch (const std::exception& e) {
        // The same alert will never build: retrying cannot help.
        return sdk::SendResult::fail(std::string("cannot build an email from the alert: ") + e.what());
    }
    return sinkkit::deliver_aws_call(
        [&] {
            const std::string answer =
                client_.query("SendEmail", kApiVersion, send_email_parameters(email, config_), what_);
            last_message_id_ = aws::xml_text(answer, "MessageId").value_or("");
        },
        hint_for);
}

}  // namespace tattle::sinks::ses
