// Registers the s3 source with tattle (shared library or static registry).
#include "s3_source.hpp"
#include "tattle/aws/service_client.hpp"
#include "tattle/sdk.hpp"

namespace {

class S3SourcePlugin final : public tattle::sdk::Source {
public:
    static constexpr const char* kTypeName = "s3";
    static constexpr const char* kVersion = "0.1.0";
    static constexpr const char* kDescription =
        "Reads CloudTrail log files from S3: a bucket prefix (backfill) or the objects named by S3 "
        "event notifications";
    static constexpr const char* kConfigSchema =
        R"json({
  "type": "object",
  "properties": {)json" TATTLE_AWS_SETTINGS_SCHEMA_PROPERTIES R"json(,
    "bucket": {"type": "string", "minLength": 1, "description": "list this bucket (with prefix, since, until)"},
    "prefix": {"type": "string", "description": "only keys starting with this, e.g. AWSLogs/123456789012/CloudTrail/"},
    "since": {"type": "string", "pattern": "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$",
              "description": "first day (YYYY-MM-DD, inclusive) by the date in the key; keys without one are skipped"},
    "until": {"type": "string", "pattern": "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$",
              "description": "last day (YYYY-MM-DD, inclusive) by the date in the key; keys without one are skipped"},
    "notifications": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1, "format": "path"},
                      "description": "files (or - for stdin), each one S3 event notification payload in any wrapping"},
    "key_pattern": {"type": "string", "minLength": 1,
                    "description": "ECMAScript regex a key must contain a match of; default: CloudTrail log files only"},
    "include_insights": {"type": "boolean", "default": false,
                         "description": "also read CloudTrail Insights files (without key_pattern)"},
    "max_object_bytes": {"type": "integer", "minimum": 1, "maximum": 4294967296, "default": 268435456,
                         "description": "larger objects fail their batch"}
  },
  "oneOf": [{"required": ["bucket"]}, {"required": ["notifications"]}],
  "additionalProperties": false
})json";

    explicit S3SourcePlugin(const tattle::sdk::CreateContext& ctx)
        : source_(tattle::sources::s3::parse_s3_source_config(ctx.config_json), ctx.host) {}

    std::optional<tattle::sdk::Batch> next() override { return source_.next(); }
    void ack(std::uint64_t, bool) override {}  // S3 objects stay where they are

private:
    tattle::sources::s3::S3Source source_;
};

}  // namespace

TATTLE_EXPORT_SOURCE(S3SourcePlugin)
