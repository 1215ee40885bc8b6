// Registers the ses sink with tattle (shared library or static registry).
#include <utility>

#include "ses_sink.hpp"
#include "tattle/aws/config.hpp"
#include "tattle/sdk.hpp"

namespace {

namespace ses = tattle::sinks::ses;

class SesPlugin final : public tattle::sdk::Sink {
public:
    static constexpr const char* kTypeName = "ses";
    static constexpr const char* kVersion = "0.1.0";
    static constexpr const char* kDescription =
        "Emails alerts through Amazon SES, as plain text and HTML (cloudtrail-tattletail compatible keys)";
    static constexpr const char* kConfigSchema = R"json({
  "type": "object",
  "properties": {
    "to_emails": {"type": "array", "items": {"type": "string", "minLength": 3}, "minItems": 1, "maxItems": 50,
                  "description": "recipients"},
    "cc_emails": {"type": "array", "items": {"type": "string", "minLength": 3}, "maxItems": 49,
                  "description": "carbon-copy recipients"},
    "from_email": {"type": "string", "minLength": 3, "description": "sender: an address or domain verified in SES"},
    "subject_template": {"type": "string", "minLength": 1,
                         "description": "e.g. \"[{{severity}}] {{rule}}: {{event_name}} by {{actor}} in {{account}}\"; default: the rule and the actor"},
    "configuration_set": {"type": "string", "minLength": 1, "description": "SES configuration set (event publishing, suppression)"},
    )json" TATTLE_AWS_SETTINGS_SCHEMA_PROPERTIES R"json(
  },
  "required": ["to_emails", "from_email"],
  "additionalProperties": false
})json";

    explicit SesPlugin(const tattle::sdk::CreateContext& ctx) : SesPlugin(ses::parse_config(ctx.config_json)) {}

    tattle::sdk::SendResult send(std::string_view alert_json) override { return sink_.send(alert_json); }

private:
    explicit SesPlugin(ses::SesSinkConfig config)
        : sink_(config, tattle::aws::ServiceClient(tattle::aws::service::ses, config.aws)) {}

    ses::SesSink sink_;
};

}  // namespace

TATTLE_EXPORT_SINK(SesPlugin)
