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
                   "description": "file name endings taken when walking a directory"},
    "follow": {"type": "boolean", "default": false,
               "description": "keep watching the paths for new files (tattle serve); each file is read once"},
    "scan_interval_seconds": {"type": "number", "minimum": 0.05, "maximum": 3600, "default": 5,
                              "description": "follow: how often the paths are scanned for new files"},
    "checkpoint": {"type": "string", "minLength": 1, "format": "path",
                   "description": "follow: file recording the files done (default: $TATTLE_STATE_DIR/file-<id>.checkpoint)"}
  },
  "required": ["paths"],
  "additionalProperties": false
})json";

    explicit FileSourcePlugin(const tattle::sdk::CreateContext& ctx)
        : source_(tattle::sources::parse_file_source_config(ctx.config_json, ctx.instance_id), ctx.host,
                  ctx.host_accepts_again) {}

    std::optional<tattle::sdk::Batch> next() override { return source_.next(); }
    // The files are left as they are; with follow, a settled one goes into the checkpoint.
    void ack(std::uint64_t batch_id, bool settled) override { source_.ack(batch_id, settled); }

private:
    tattle::sources::FileSource source_;
};

}  // namespace

TATTLE_EXPORT_SOURCE(FileSourcePlugin)
