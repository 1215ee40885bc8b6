// Registers the file source with tattle (shared library or static registry).
#include "file_source.hpp"
#include "tattle/sdk.hpp"

namespace {

class FileSourcePlugin final : public tattle::sdk::Source {
public:
    static constexpr const char* kTypeName = "file";
    static constexpr const char* kVersion = "0.1.0";
    static constexpr const char* kDescription =
        "Reads CloudTrail logs from local files, directories, globs or stdin (plain or gzip)";
    static constexpr const char* kConfigSchema = R"json({
  "type": "object",
  "properties": {
    "paths": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1, "format": "path"},
              "description": "files, directories (recursive), glob patterns, or - for stdin"},
    "extensions": {"type": "array", "items": {"type": "string"},
                   "default": [".json", ".json.gz", ".jsonl", ".jsonl.gz"],
                   "description": "file name endings taken when walking a directory"}
  },
  "required": ["paths"],
  "additionalProperties": false
})json";

    explicit FileSourcePlugin(const tattle::sdk::CreateContext& ctx)
        : source_(tattle::sources::parse_file_source_config(ctx.config_json)) {}

    std::optional<tattle::sdk::Batch> next() override { return source_.next(); }
    void ack(std::uint64_t, bool) override {}  // local files are left as they are

private:
    tattle::sources::FileSource source_;
};

}  // namespace

TATTLE_EXPORT_SOURCE(FileSourcePlugin)
