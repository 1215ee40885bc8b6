#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "tattle/sdk.hpp"

namespace tattle::sources {

struct FileSourceConfig {
    // Files, directories (walked recursively), glob patterns, or "-" for stdin.
    std::vector<std::string> paths;
    // Which files a directory walk takes; explicit files and globs are taken as given.
    std::vector<std::string> extensions;
};

FileSourceConfig parse_file_source_config(const std::string& config_json);

// Reads local CloudTrail files (plain or gzip), one batch per file, in a stable order.
class FileSource {
public:
    explicit FileSource(FileSourceConfig config);

    // The next file's bytes; nullopt when every path is read. Throws
    // sdk::BatchError for a path that cannot be read.
    std::optional<sdk::Batch> next();

    // The paths still to read (expanded), for tests.
    const std::deque<std::string>& pending() const noexcept { return pending_; }

private:
    void expand(const std::string& path);

    FileSourceConfig config_;
    std::deque<std::string> pending_;
    std::uint64_t next_id_ = 1;
};

}  // namespace tattle::sources
