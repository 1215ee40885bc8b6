#include "tattle/dedup.hpp"

#include "posix_io.hpp"
#include "tattle/sha256.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <tuple>

namespace tattle {
namespace fs = std::filesystem;

namespace {

constexpr const char* kLogName = "dedup.jsonl";
constexpr const char* kLockName = "dedup.lock";

std::int64_t unix_seconds(WallTime time) {
    return std::chrono::duration_cast<std::chrono::seconds>(time.time_since_epoch()).count();
}

std::string errno_text() { return std::strerror(errno); }

bool parse_hex_half(std::string_view text, std::uint64_t& out) {
    out = 0;
    for (const char c : text) {
        std::uint64_t digit = 0;
        if (c >= '0' && c <= '9') {
            digit = static_cast<std::uint64_t>(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            digit = static_cast<std::uint64_t>(c - 'a' + 10);
        } else {
            return false;
        }
        out = (out << 4U) | digit;
    }
    return true;
}

std::optional<DedupStore::Key> parse_key(std::string_view hex) {
    if (hex.size() != 32) return std::nullopt;
    DedupStore::Key key;
    if (!parse_hex_half(hex.substr(0, 16), key.high) || !parse_hex_half(hex.substr(16), key.low)) {
        return std::nullopt;
    }
    return key;
}

std::string key_text(const DedupStore::Key& key) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out(32, '0');
    for (int i = 0; i < 16; ++i) {
        out[static_cast<std::size_t>(15 - i)] = kHex[(key.high >> (4 * i)) & 0xfU];
        out[static_cast<std::size_t>(31 - i)] = kHex[(key.low >> (4 * i)) & 0xfU];
    }
    return out;
}

std::string log_line(const DedupStore::Key& key, std::int64_t seconds, bool forget = false) {
    return "{\"t\":" + std::to_string(seconds) + ",\"k\":\"" + key_text(key) + "\"" +
           (forget ? ",\"forget\":true" : "") + "}\n";
}

using posix_io::write_all;

}  // namespace

std::string delivery_key(std::string_view destination, std::string_view alert_id) {
    std::string input(destination);
    input += '\0';  // destination ids may hold any character but NUL cannot come from TOML
    input += alert_id;
    return sha256_hex(input, 32);
}

std::optional<fs::path> resolve_state_dir(const Config& config) {
    if (const char* from_env = std::getenv("TATTLE_STATE_DIR");
        from_env != nullptr && *from_env != '\0') {
        return fs::path(from_env);
    }
    if (config.state_dir) return *config.state_dir;
    if (std::getenv("AWS_LAMBDA_RUNTIME_API") != nullptr) return fs::path("/tmp/tattle/state");
    return std::nullopt;
}

DedupSettings dedup_settings(const Config& config) {
    DedupSettings settings;
    if (config.dedup_window_seconds)
        settings.window = std::chrono::seconds(*config.dedup_window_seconds);
    if (config.dedup_max_entries)
        settings.max_entries = static_cast<std::size_t>(*config.dedup_max_entries);
    return settings;
}

DedupStore::DedupStore(DedupSettings settings) : settings_(settings) {}

DedupStore::DedupStore(DedupSettings settings, const fs::path& directory, WallTime now)
    : settings_(settings) {
    std::error_code ec;
    fs::create_directories(directory, ec);
    if (ec)
        throw std::runtime_error("cannot create state directory " + directory.string() + ": " +
                                 ec.message());
    const fs::path lock_path = directory / kLockName;
    lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock_fd_ < 0)
        throw std::runtime_error("cannot open " + lock_path.string() + ": " + errno_text());
    log_path_ = directory / kLogName;

    std::lock_guard lock(mutex_);
    load_locked(now);
    // Only a process alone with the state directory may replace the log; the others
    // would go on appending to the file it replaced.
    const bool alone = ::flock(lock_fd_, LOCK_EX | LOCK_NB) == 0;
    if (alone) compact_locked();
    open_log_locked();
    next_compaction_at_ = lines_in_log_ + 2 * settings_.max_entries + 1024;
    if (::flock(lock_fd_, LOCK_SH) != 0) {
        spdlog::warn("state directory {}: cannot lock {}: {}", directory.string(),
                     lock_path.string(), errno_text());
    }
}

DedupStore::~DedupStore() {
    if (log_fd_ >= 0) {
        if (unsynced_) ::fdatasync(log_fd_);
        ::close(log_fd_);
    }
    if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the lock
}

void DedupStore::load_locked(WallTime now) {
    std::ifstream in(*log_path_);
    if (!in) return;  // a first run: nothing delivered yet
    const std::int64_t oldest_kept = unix_seconds(now) - settings_.window.count();
    std::unordered_map<Key, std::int64_t, KeyHash> latest;
    std::string line;
    std::size_t unreadable = 0;
    std::size_t lines = 0;
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        boost::system::error_code ec;
        const auto parsed = boost::json::parse(line, ec);
        const auto* object = !ec ? parsed.if_object() : nullptr;
        const auto* seconds = object != nullptr ? object->if_contains("t") : nullptr;
        const auto* hex = object != nullptr ? object->if_contains("k") : nullptr;
        std::optional<Key> key;
        if (hex != nullptr && hex->is_string()) key = parse_key(hex->get_string());
        if (!key || seconds == nullptr || !seconds->is_int64()) {
            // A crash in the middle of an append leaves a torn last line; it is the
            // only delivery that may be repeated.
            ++unreadable;
            continue;
        }
        ++lines;
        if (const auto* forget = object->if_contains("forget");
            forget != nullptr && forget->is_bool() && forget->get_bool()) {
            latest.erase(*key);
        } else if (seconds->get_int64() > oldest_kept) {
            latest[*key] = seconds->get_int64();
        }
    }
    std::vector<std::pair<std::int64_t, Key>> entries;
    entries.reserve(latest.size());
    for (const auto& [key, seconds] : latest) entries.emplace_back(seconds, key);
    if (unreadable > 0)
        spdlog::warn("{}: skipped {} unreadable line(s)", log_path_->string(), unreadable);
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
        return std::tie(a.first, a.second.high, a.second.low) <
               std::tie(b.first, b.second.high, b.second.low);
    });
    for (const auto& [seconds, key] : entries) insert_locked(key, seconds);
    lines_in_log_ = lines + unreadable;
}

void DedupStore::insert_locked(const Key& key, std::int64_t seconds) {
    delivered_at_[key] = seconds;
    order_.emplace_back(seconds, key);
    while (delivered_at_.size() > settings_.max_entries && !order_.empty()) {
        const auto [oldest_seconds, oldest_key] = order_.front();
        order_.pop_front();
        // A key recorded again later has a newer pair further back; this one is stale.
        if (auto found = delivered_at_.find(oldest_key);
            found != delivered_at_.end() && found->second == oldest_seconds) {
            delivered_at_.erase(found);
        }
    }
    // Stale pairs (keys recorded twice) must not let the deque grow without bound.
    if (order_.size() > 2 * settings_.max_entries + 16) {
        std::deque<std::pair<std::int64_t, Key>> fresh;
        for (const auto& pair : order_) {
            if (auto found = delivered_at_.find(pair.second);
                found != delivered_at_.end() && found->second == pair.first) {
                fresh.push_back(pair);
            }
        }
        order_ = std::move(fresh);
    }
}

void DedupStore::compact_locked() {
    std::string text;
    std::size_t lines = 0;
    for (const auto& [seconds, key] : order_) {
        if (auto found = delivered_at_.find(key);
            found != delivered_at_.end() && found->second == seconds) {
            text += log_line(key, seconds);
            ++lines;
        }
    }
    const fs::path temporary = log_path_->string() + ".tmp";
    const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    bool ok = fd >= 0 && write_all(fd, text) && ::fsync(fd) == 0;
    if (fd >= 0) ::close(fd);
    ok = ok && ::rename(temporary.c_str(), log_path_->c_str()) == 0;
    if (!ok) {
        spdlog::warn("cannot compact {}: {}; appending to it as it is", log_path_->string(),
                     errno_text());
        ::unlink(temporary.c_str());
        return;
    }
    if (const int dir_fd =
            ::open(log_path_->parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        dir_fd >= 0) {
        ::fsync(dir_fd);
        ::close(dir_fd);
    }
    lines_in_log_ = lines;
}

void DedupStore::open_log_locked() {
    if (log_fd_ >= 0) ::close(log_fd_);
    log_fd_ = ::open(log_path_->c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (log_fd_ < 0)
        throw std::runtime_error("cannot open " + log_path_->string() + ": " + errno_text());
    // A torn last line (a crash mid-append) left in place must not swallow the next record.
    struct stat info {};
    char last = '\n';
    if (::fstat(log_fd_, &info) == 0 && info.st_size > 0 &&
        ::pread(log_fd_, &last, 1, info.st_size - 1) == 1 && last != '\n') {
        write_all(log_fd_, "\n");
    }
}

bool DedupStore::contains(const std::string& key_hex, WallTime now) {
    const auto key = parse_key(key_hex);
    if (!key) return false;
    std::lock_guard lock(mutex_);
    const auto found = delivered_at_.find(*key);
    if (found == delivered_at_.end()) return false;
    if (found->second > unix_seconds(now) - settings_.window.count()) return true;
    delivered_at_.erase(found);  // expired; its pair in order_ is now stale
    return false;
}

void DedupStore::record(const std::vector<std::string>& keys, WallTime now) {
    const std::int64_t seconds = unix_seconds(now);
    std::string lines;
    std::lock_guard lock(mutex_);
    for (const auto& hex : keys) {
        const auto key = parse_key(hex);
        if (!key) continue;
        insert_locked(*key, seconds);
        lines += log_line(*key, seconds);
    }
    append_locked(lines, keys.size());
}

void DedupStore::forget(const std::vector<std::string>& keys, WallTime now) {
    const std::int64_t seconds = unix_seconds(now);
    std::string lines;
    std::lock_guard lock(mutex_);
    for (const auto& hex : keys) {
        const auto key = parse_key(hex);
        if (!key) continue;
        delivered_at_.erase(*key);  // its pair in order_ is now stale
        lines += log_line(*key, seconds, true);
    }
    append_locked(lines, keys.size());
}

void DedupStore::append_locked(const std::string& lines, std::size_t count) {
    if (log_fd_ < 0 || lines.empty()) return;
    // One write(2) with O_APPEND: lines of concurrent processes never interleave.
    if (!write_all(log_fd_, lines)) {
        if (!write_error_logged_) {
            spdlog::error(
                "cannot append to {}: {}; delivered alerts may be sent again after a restart",
                log_path_->string(), errno_text());
            write_error_logged_ = true;
        }
        return;
    }
    unsynced_ = true;
    lines_in_log_ += count;
    if (lines_in_log_ >= next_compaction_at_) {
        // Converting a shared flock to exclusive drops the shared one first, so it is
        // taken again whatever the outcome.
        if (::flock(lock_fd_, LOCK_EX | LOCK_NB) == 0) {
            compact_locked();
            open_log_locked();
            unsynced_ = false;  // compaction fsyncs what it wrote
        }
        ::flock(lock_fd_, LOCK_SH);
        next_compaction_at_ = lines_in_log_ + 2 * settings_.max_entries + 1024;
    }
}

void DedupStore::sync() {
    std::lock_guard lock(mutex_);
    if (log_fd_ < 0 || !unsynced_) return;
    if (::fdatasync(log_fd_) != 0) {
        spdlog::error("fdatasync of {} failed: {}", log_path_->string(), errno_text());
        return;
    }
    unsynced_ = false;
}

std::size_t DedupStore::size() const {
    std::lock_guard lock(mutex_);
    return delivered_at_.size();
}

}  // namespace tattle
