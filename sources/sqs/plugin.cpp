// Registers the sqs source with tattle (shared library or static registry).
#include "sqs_source.hpp"
#include "tattle/aws/service_client.hpp"
#include "tattle/sdk.hpp"

namespace {

namespace sqs = tattle::sources::sqs;

sqs::SqsSourceConfig with_host_capabilities(sqs::SqsSourceConfig config, const tattle::sdk::CreateContext& ctx) {
    config.host_accepts_again = ctx.host_accepts_again;
    return config;
}

class SqsSourcePlugin final : public tattle::sdk::Source {
public:
    static constexpr const char* kTypeName = "sqs";
    static constexpr const char* kVersion = "0.1.0";
    static constexpr const char* kDescription =
        "Receives S3 notifications (any wrapping) or EventBridge CloudTrail events from an SQS queue; "
        "deletes a message once its batches are settled";
    static constexpr const char* kConfigSchema = R"json({
  "type": "object",
  "properties": {)json" TATTLE_AWS_SETTINGS_SCHEMA_PROPERTIES R"json(,
    "queue_url": {"type": "string", "minLength": 1,
                  "description": "https://sqs.<region>.amazonaws.com/<account>/<queue>"},
    "wait_time_seconds": {"type": "integer", "minimum": 0, "maximum": 20, "default": 20,
                          "description": "long polling: how long a receive waits for messages"},
    "max_messages": {"type": "integer", "minimum": 1, "maximum": 10, "default": 10,
                     "description": "messages per receive"},
    "visibility_timeout": {"type": "integer", "minimum": 1, "maximum": 43200, "default": 120,
                           "description": "seconds a received message stays hidden; extended at half-time while its batches are delivered"},
    "stop_when_empty": {"type": "boolean", "default": false,
                        "description": "end after a receive that finds no message (tattle run); else poll forever"},
    "key_pattern": {"type": "string", "minLength": 1,
                    "description": "ECMAScript regex the object keys must match; default: CloudTrail log files, digests skipped"},
    "include_insights": {"type": "boolean", "default": false,
                         "description": "also read CloudTrail-Insight files (without key_pattern)"},
    "max_object_bytes": {"type": "integer", "minimum": 1, "maximum": 17179869184, "default": 268435456,
                         "description": "larger objects fail their batch instead of filling memory"}
  },
  "required": ["queue_url"],
  "additionalProperties": false
})json";

    explicit SqsSourcePlugin(const tattle::sdk::CreateContext& ctx)
        : source_(with_host_capabilities(sqs::parse_sqs_source_config(ctx.config_json), ctx), ctx.host) {}

    std::optional<tattle::sdk::Batch> next() override { return source_.next(); }
    void ack(std::uint64_t batch_id, bool settled) override { source_.ack(batch_id, settled); }

private:
    sqs::SqsSource source_;
};

}  // namespace

TATTLE_EXPORT_SOURCE(SqsSourcePlugin)
