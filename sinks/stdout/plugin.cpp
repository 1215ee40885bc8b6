// Registers the stdout sink with tattle (shared library or static registry).
#include <stdexcept>

#include "stdout_sink.hpp"
#include "tattle/sdk.hpp"

namespace {

class StdoutSinkPlugin final : public tattle::sdk::Sink {
public:
    static constexpr const char* kTypeName = "stdout";
    static constexpr const char* kVersion = "0.1.0";
    static constexpr const char* kDescription = "Prints alerts to standard output, as JSON lines or text";
    static constexpr const char* kConfigSchema = R"json({
  "type": "object",
  "properties": {
    "format": {"enum": ["json", "text"], "default": "text",
               "description": "json: the alert document, one per line; text: one readable line per alert"}
  },
  "additionalProperties": false
})json";

    explicit StdoutSinkPlugin(const tattle::sdk::CreateContext& ctx)
        : sink_(tattle::sinks::parse_stdout_format(ctx.config_json), stdout) {}

    tattle::sdk::SendResult send(std::string_view alert_json) override {
        if (auto error = sink_.write(alert_json); !error.empty()) return tattle::sdk::SendResult::retry(error);
        return tattle::sdk::SendResult::ok();
    }
    void flush() override {
        if (auto error = sink_.flush(); !error.empty()) throw std::runtime_error(error);
    }

private:
    tattle::sinks::StdoutSink sink_;
};

}  // namespace

TATTLE_EXPORT_SINK(StdoutSinkPlugin)
