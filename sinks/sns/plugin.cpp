// Registers the sns sink with tattle (shared library or static registry).
#include <utility>

#include "sns_sink.hpp"
#include "tattle/aws/config.hpp"
#include "tattle/sdk.hpp"

namespace {

namespace sns = tattle::sinks::sns;

class SnsPlugin final : public tattle::sdk::Sink {
public:
    static constexpr const char* kTypeName = "sns";
    static constexpr const char* kVersion = "0.1.0";
    static constexpr const char* kDescription =
        "Publishes alerts to an Amazon SNS topic (cloudtrail-tattletail compatible message)";
    static constexpr const char* kConfigSchema = R"json({
  "type": "object",
  "properties": {
    "sns_arn": {"type": "string", "minLength": 1, "description": "ARN of the topic (arn:aws:sns:<region>:<account>:<name>; .fifo topics get a group and deduplication id)"},
    "subject": {"type": "string", "description": "Subject template, e.g. \"{{rule}} by {{actor}}\" (email subscribers see it); none by default"},
    )json" TATTLE_AWS_SETTINGS_SCHEMA_PROPERTIES R"json(
  },
  "required": ["sns_arn"],
  "additionalProperties": false
})json";

    explicit SnsPlugin(const tattle::sdk::CreateContext& ctx) : SnsPlugin(sns::parse_config(ctx.config_json)) {}

    tattle::sdk::SendResult send(std::string_view alert_json) override { return sink_.send(alert_json); }

private:
    explicit SnsPlugin(sns::SnsSinkConfig config)
        : sink_(config, tattle::aws::ServiceClient(tattle::aws::service::sns, config.aws)) {}

    sns::SnsSink sink_;
};

}  // namespace

TATTLE_EXPORT_SINK(SnsPlugin)
