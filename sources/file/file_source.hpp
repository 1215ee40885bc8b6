#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "tattle/sdk.hpp"

namespace tattle::sources {

struct FileSourceConfig {
    // Files, directories (walked recursively), glob patterns, or "-" for stdin.
    std::vector<std::string> paths;
    // Which files a directory walk takes; explicit files and globs are taken as given.
    std::vector<std::string> extensions;
    // Keep watching the paths for new files (a daemon); each file is read once.
    bool follow = false;
    std::chrono::milliseconds scan_interval{std::chrono::seconds(5)};
    // follow: the files fully settled, one per line, so that a restart neither reads
    // them again nor skips the others. Empty: $TATTLE_STATE_DIR/file-<instance>.checkpoint.
    std::filesystem::path checkpoint;
};

// Throws std::invalid_argument for follow without a checkpoint (nor TATTLE_STATE_DIR),
// or follow with "-".
FileSourceConfig parse_file_source_config(const std::string& config_json, const std::string& instance_id = "file");

// Reads local CloudTrail files (plain or gzip), one batch per file, in a stable order.
// With follow, keeps scanning the paths every scan_interval: a new file is read once
// its size and modification time stayed the same from one scan to the next (it is not
// being written any more), and is recorded in the checkpoint once its batch is settled.
class FileSource {
public:
    // Throws std::runtime_error when the checkpoint cannot be read.
    explicit FileSource(FileSourceConfig config, sdk::Host host = sdk::Host(nullptr),
                        bool host_accepts_again = false);

    // The next file's bytes; nullopt when every path is read. Throws
    // sdk::BatchError for a path that cannot be read. With follow it never ends: it
    // throws sdk::NothingNow when no file is ready (host_accepts_again), else waits.
    std::optional<sdk::Batch> next();
    // Settled (follow): the file goes into the checkpoint. Throws std::runtime_error when
    // the checkpoint cannot be written.
    void ack(std::uint64_t batch_id, bool settled);

    // The paths still to read (expanded), for tests.
    const std::deque<std::string>& pending() const noexcept { return pending_; }

private:
    struct FileState {
        std::uintmax_t size = 0;
        std::filesystem::file_time_type modified{};
        bool operator==(const FileState&) const = default;
    };

    void expand(const std::string& path);
    void expand_into(const std::string& path, std::vector<std::string>& out) const;
    // follow: looks for new files; those unchanged since the last scan become pending.
    void scan();
    void load_checkpoint();
    void record_in_checkpoint(const std::string& path);

    FileSourceConfig config_;
    sdk::Host host_;
    bool host_accepts_again_ = false;
    std::deque<std::string> pending_;
    std::uint64_t next_id_ = 1;
    // follow
    std::set<std::string> done_;                 // checkpointed, or handed out by this process
    std::map<std::string, FileState> watching_;  // seen, not stable yet
    std::map<std::uint64_t, std::string> open_;  // batch id -> path
    std::chrono::steady_clock::time_point last_scan_{};
};

}  // namespace tattle::sources
