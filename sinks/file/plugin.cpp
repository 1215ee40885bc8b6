// Registers the file sink with tattle (shared library or static registry).
#include <stdexcept>

#include "file_sink.hpp"
#include "tattle/sdk.hpp"

namespace {

class FileSinkPlugin final : public tattle::sdk::Sink {
public:
    static constexpr const char* kTypeName = "file";
    static constexpr const char* kVersion = "0.1.0";
    static constexpr const char* kDescription = "Appends alerts to a file as JSON lines";
    static constexpr const char* kConfigSchema = R"json({
  "type": "object",
  "properties": {
    "path": {"type": "string", "minLength": 1, "format": "path", "description": "file to append to (created if missing)"},
    "fsync": {"type": "boolean", "default": true,
              "description": "fsync after each batch, before the batch is acknowledged"},
    "mode": {"type": "string", "pattern": "^0?[0-7]{3}$", "default": "0600",
             "description": "permissions of a newly created file (octal)"}
  },
  "required": ["path"],
  "additionalProperties": false
})json";

    explicit FileSinkPlugin(const tattle::sdk::CreateContext& ctx)
        : sink_(tattle::sinks::parse_file_sink_config(ctx.config_json)) {}

    tattle::sdk::SendResult send(std::string_view alert_json) override {
        if (auto error = sink_.append(alert_json); !error.empty()) return tattle::sdk::SendResult::retry(error);
        return tattle::sdk::SendResult::ok();
    }
    void flush() override {
        if (auto error = sink_.flush(); !error.empty()) throw std::runtime_error(error);
    }

private:
    tattle::sinks::FileSink sink_;
};

}  // namespace

TATTLE_EXPORT_SINK(FileSinkPlugin)
