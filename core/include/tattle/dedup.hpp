#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tattle/config.hpp"

namespace tattle {

using WallTime = std::chrono::system_clock::time_point;

// The key of one delivery: which alert went to which destination. 32 hex digits
// (128 bits of SHA-256 over destination and alert id). The same key names the
// alert's file in the spool, so one alert is parked at most once per destination.
std::string delivery_key(std::string_view destination, std::string_view alert_id);

struct DedupSettings {
    std::chrono::seconds window{24 * 3600};
    std::size_t max_entries = 100'000;
};

// The state directory that persists delivered keys, in this order: $TATTLE_STATE_DIR,
// the config's state_dir, /tmp/tattle/state inside AWS Lambda (where only /tmp is
// writable and a warm container keeps it between invocations); otherwise none, and
// duplicate suppression is off: a one-shot `tattle run FILES` shows every alert again
// when run again, which is what someone trying rules expects.
std::optional<std::filesystem::path> resolve_state_dir(const Config& config);
// The config's dedup_window_seconds / dedup_max_entries, or the defaults.
DedupSettings dedup_settings(const Config& config);

// Remembers which deliveries were made, so that a redelivered batch, a rerun or a
// restart does not alert twice. Memory is bounded (max_entries, oldest forgotten
// first) and an entry older than the window no longer counts.
//
// Persisted form: <state_dir>/dedup.jsonl, an append-only log of lines
// {"t":UNIX_SECONDS,"k":"KEY"} (and {"t":..,"k":..,"forget":true}). At open the log is loaded
// (expired and surplus entries dropped, a torn last line skipped) and rewritten compacted; it is
// also rewritten when it has grown to twice max_entries. Several processes may share a state
// directory: each holds a shared lock on dedup.lock for its lifetime and only a process that gets
// it exclusively compacts, so no process writes to a file that another has replaced. A process does
// not see keys another process records after it started.
//
// Thread-safe.
class DedupStore {
public:
    // In memory only.
    explicit DedupStore(DedupSettings settings);
    // Persisted in directory (created when missing). Throws std::runtime_error when the
    // directory or the log cannot be opened.
    DedupStore(DedupSettings settings, const std::filesystem::path& directory, WallTime now);
    ~DedupStore();
    DedupStore(const DedupStore&) = delete;
    DedupStore& operator=(const DedupStore&) = delete;

    // Whether key was delivered within the window before now.
    bool contains(const std::string& key, WallTime now);
    // Records delivered keys: in memory, and appended to the log (one write, no fsync).
    void record(const std::vector<std::string>& keys, WallTime now);
    // Takes keys back (a delivery that turned out not to be durable): they count as
    // never delivered, also after a restart (the log gets a "forget" line).
    void forget(const std::vector<std::string>& keys, WallTime now);
    // Makes every recorded key durable. Called before a batch is acknowledged, so an
    // acknowledged batch's deliveries survive a crash of the machine, not only of tattle.
    void sync();

    std::size_t size() const;
    const std::optional<std::filesystem::path>& log_file() const noexcept { return log_path_; }

    // A key as two 64-bit halves: a quarter of the memory of its hex text.
    struct Key {
        std::uint64_t high = 0;
        std::uint64_t low = 0;
        bool operator==(const Key&) const = default;
    };

private:
    struct KeyHash {
        std::size_t operator()(const Key& key) const noexcept {
            return static_cast<std::size_t>(key.high ^ (key.low * 0x9e3779b97f4a7c15ULL));
        }
    };

    void insert_locked(const Key& key, std::int64_t seconds);
    void load_locked(WallTime now);
    void compact_locked();
    void open_log_locked();
    void append_locked(const std::string& lines, std::size_t count);

    DedupSettings settings_;
    mutable std::mutex mutex_;
    std::unordered_map<Key, std::int64_t, KeyHash> delivered_at_;  // unix seconds
    std::deque<std::pair<std::int64_t, Key>> order_;  // oldest first; may hold stale pairs
    std::optional<std::filesystem::path> log_path_;
    int log_fd_ = -1;
    int lock_fd_ = -1;
    std::size_t lines_in_log_ = 0;
    std::size_t next_compaction_at_ = 0;
    bool unsynced_ = false;
    bool write_error_logged_ = false;
};

}  // namespace tattle
