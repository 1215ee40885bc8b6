#include "sns_sink.hpp"

#include <boost/json.hpp>
#include <stdexcept>
#include <utility>

#include "tattle/aws/xml.hpp"
#include "tattle/sinkkit/aws_delivery.hpp"
#include "tattle/sinkkit/json_fields.hpp"

namespace tattle::sinks::sns {
namespace {

namespace json = boost::json;

constexpr std::string_view kApiVersion = "2010-03-31";

}  // namespace

SnsSinkConfig parse_config(const std::string& config_json) {
    const json::value parsed = json::parse(config_json);
    const json::object& config = parsed.as_object();
    SnsSinkConfig out;
    out.topic_arn = sinkkit::string_or(config, "sns_arn");
    TopicArn topic;
    try {
        topic = parse_topic_arn(out.topic_arn);
    } catch (const std::invalid_argument& error) {
        throw std::invalid_argument("sns_arn: " + std::string(error.what()));
    }
    if (const auto subject = sinkkit::string_or(config, "subject"); !subject.empty()) {
        try {
            out.subject = sinkkit::AlertTemplate::parse(subject);
        } catch (const std::invalid_argument& error) {
            throw std::invalid_argument("subject: " + std::string(error.what()));
        }
    }
    out.aws = aws::settings_from_json(config);
    if (out.aws.region.empty()) out.aws.region = topic.region;
    return out;
}

std::string_view hint_for(std::string_view code) {
    if (code == "NotFound") return "the topic does not exist in this account and region; check sns_arn";
    if (code == "AuthorizationError" || code == "AccessDenied" || code == "AccessDeniedException") {
        return "the credentials need sns:Publish on the topic (and kms:GenerateDataKey/kms:Decrypt for an encrypted topic)";
    }
    if (code == "InvalidClientTokenId" || code == "SignatureDoesNotMatch" || code == "UnrecognizedClientException") {
        return "the AWS access key or secret is wrong";
    }
    if (code == "KMSDisabled" || code == "KMSNotFound" || code == "KMSAccessDenied" || code == "KMSInvalidState") {
        return "the topic's KMS key cannot be used";
    }
    return {};
}

SnsSink::SnsSink(SnsSinkConfig config, aws::ServiceClient client)
    : config_(std::move(config)),
      options_{config_.topic_arn, config_.subject},
      client_(std::move(client)),
      what_("sns:Publish " + config_.topic_arn) {}

sdk::SendResult SnsSink::send(std::string_view alert_json) {
    Publication publication;
    try {
        boost::system::error_code error;
        const json::value alert = json::parse(alert_json, error);
        if (error) throw std::invalid_argument("the alert is not valid JSON: " + error.message());
        if (!alert.is_object()) throw std::invalid_argument("the alert is not a JSON object");
        publication = build_publication(alert.get_object(), options_);
    } catch (const std::exception& e) {
        // The same alert will never build: retrying cannot help.
        return sdk::SendResult::fail(std::string("cannot build an SNS message from the alert: ") + e.what());
    }
    return sinkkit::deliver_aws_call(
        [&] {
            const std::string answer =
                client_.query("Publish", kApiVersion, publish_parameters(publication, config_.topic_arn), what_);
            last_message_id_ = aws::xml_text(answer, "MessageId").value_or("");
        },
        hint_for);
}

}  // namespace tattle::sinks::sns
