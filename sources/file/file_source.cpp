#include "file_source.hpp"

#include <fcntl.h>
#include <glob.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <stdexcept>
#include <thread>

namespace tattle::sources {
namespace fs = std::filesystem;

namespace {

// An instance id as a file name: what is not a letter, digit, '.', '-' or '_' becomes '_'.
std::string file_name_part(const std::string& id) {
    std::string name = id;
    for (char& c : name) {
        const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                           c == '-' || c == '_';
        if (!plain) c = '_';
    }
    return name;
}

}  // namespace

FileSourceConfig parse_file_source_config(const std::string& config_json, const std::string& instance_id) {
    // The host validated the config against the schema; only read it here.
    const auto config = boost::json::parse(config_json).as_object();
    FileSourceConfig parsed;
    for (const auto& path : config.at("paths").as_array()) parsed.paths.emplace_back(path.as_string());
    for (const auto& ext : config.at("extensions").as_array()) parsed.extensions.emplace_back(ext.as_string());
    if (const auto* follow = config.if_contains("follow")) parsed.follow = follow->as_bool();
    if (const auto* interval = config.if_contains("scan_interval_seconds")) {
        parsed.scan_interval = std::chrono::milliseconds(static_cast<long long>(interval->to_number<double>() * 1000));
    }
    if (const auto* checkpoint = config.if_contains("checkpoint")) parsed.checkpoint = std::string(checkpoint->as_string());
    if (!parsed.follow) return parsed;
    if (std::find(parsed.paths.begin(), parsed.paths.end(), "-") != parsed.paths.end()) {
        throw std::invalid_argument("follow = true cannot read stdin (\"-\")");
    }
    if (parsed.checkpoint.empty()) {
        const char* state_dir = std::getenv("TATTLE_STATE_DIR");
        if (state_dir == nullptr || *state_dir == '\0') {
            throw std::invalid_argument(
                "follow = true needs a checkpoint file, to know after a restart which files are done: set "
                "\"checkpoint\", or TATTLE_STATE_DIR");
        }
        parsed.checkpoint = fs::path(state_dir) / ("file-" + file_name_part(instance_id) + ".checkpoint");
    }
    return parsed;
}

namespace {

bool has_glob_characters(const std::string& path) {
    return path.find_first_of("*?[") != std::string::npos;
}

bool ends_with(const std::string& text, const std::string& suffix) {
    return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Everything left in the stream, read straight into the vector it is returned in (an
// istreambuf_iterator copies byte by byte, a block buffer copies everything once more).
// expected_size: what the file holds, when known: a file that has not changed since is
// then read with one call and no reallocation.
std::vector<std::uint8_t> read_stream(std::istream& in, std::size_t expected_size = 0) {
    constexpr std::size_t kMinimumRoom = std::size_t{1} << 16;
    std::vector<std::uint8_t> data;
    std::size_t size = 0;
    // One byte more than expected, so that the read that finds the end needs no more room.
    data.resize(expected_size + 1);
    for (;;) {
        if (data.size() - size == 0) data.resize(std::max(2 * data.size(), size + kMinimumRoom));
        in.read(reinterpret_cast<char*>(data.data() + size), static_cast<std::streamsize>(data.size() - size));
        size += static_cast<std::size_t>(in.gcount());
        if (!in) break;
    }
    data.resize(size);
    return data;
}

}  // namespace

FileSource::FileSource(FileSourceConfig config, sdk::Host host, bool host_accepts_again)
    : config_(std::move(config)), host_(host), host_accepts_again_(host_accepts_again) {
    if (!config_.follow) {
        for (const auto& path : config_.paths) expand(path);
        return;
    }
    load_checkpoint();
    // A path that is missing now is reported once (a typo must not pass silently); the
    // scans keep looking at it.
    for (const auto& path : config_.paths) {
        std::error_code ec;
        if (!has_glob_characters(path) && !fs::exists(path, ec)) pending_.push_back(path);
    }
    scan();
}

void FileSource::expand(const std::string& path) {
    std::vector<std::string> found;
    expand_into(path, found);
    pending_.insert(pending_.end(), found.begin(), found.end());
}

void FileSource::expand_into(const std::string& path, std::vector<std::string>& out) const {
    if (path == "-") {
        out.push_back(path);
        return;
    }
    // A name that exists is itself, even with glob characters in it ("logs[1].json",
    // an S3 key copied to disk): globbing it would match itself again, for ever.
    std::error_code exists_ec;
    if (has_glob_characters(path) && !fs::exists(path, exists_ec)) {
        glob_t matches{};
        const int rc = ::glob(path.c_str(), GLOB_NOSORT, nullptr, &matches);
        std::vector<std::string> found;
        if (rc == 0) {
            for (std::size_t i = 0; i < matches.gl_pathc; ++i) found.emplace_back(matches.gl_pathv[i]);
        }
        globfree(&matches);
        if (found.empty()) {
            // Keep the pattern so that next() reports it: a typo must not pass silently.
            out.push_back(path);
            return;
        }
        std::sort(found.begin(), found.end());
        for (const auto& match : found) expand_into(match, out);
        return;
    }
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
        std::vector<std::string> files;
        for (auto it = fs::recursive_directory_iterator(path, fs::directory_options::skip_permission_denied, ec);
             it != fs::recursive_directory_iterator(); it.increment(ec)) {
            if (ec) break;
            if (!it->is_regular_file(ec)) continue;
            const std::string name = it->path().string();
            const bool wanted = std::any_of(config_.extensions.begin(), config_.extensions.end(),
                                            [&](const std::string& ext) { return ends_with(name, ext); });
            if (wanted) files.push_back(name);
        }
        std::sort(files.begin(), files.end());
        out.insert(out.end(), files.begin(), files.end());
        return;
    }
    out.push_back(path);
}

std::optional<sdk::Batch> FileSource::next() {
    while (pending_.empty()) {
        if (!config_.follow) return std::nullopt;
        const auto next_scan = last_scan_ + config_.scan_interval;
        if (std::chrono::steady_clock::now() >= next_scan) {
            scan();
            continue;
        }
        if (host_accepts_again_) throw sdk::NothingNow();
        std::this_thread::sleep_until(next_scan);  // a host older than ABI 1.1: wait here
    }
    const std::string path = pending_.front();
    pending_.pop_front();

    sdk::Batch batch;
    batch.id = next_id_++;
    batch.origin = path == "-" ? "<stdin>" : path;
    if (path == "-") {
        batch.data = read_stream(std::cin);
        return batch;
    }
    std::error_code ec;
    if (has_glob_characters(path) && !fs::exists(path, ec)) throw sdk::BatchError(path, "no file matches this pattern");
    if (fs::is_directory(path, ec)) throw sdk::BatchError(path, "is a directory");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw sdk::BatchError(path, std::string("cannot open: ") + std::strerror(errno));
    const auto expected_size = fs::file_size(path, ec);
    batch.data = read_stream(in, ec ? 0 : static_cast<std::size_t>(expected_size));
    if (in.bad()) throw sdk::BatchError(path, std::string("read failed: ") + std::strerror(errno));
    if (config_.follow) open_[batch.id] = path;
    return batch;
}

void FileSource::ack(std::uint64_t batch_id, bool settled) {
    const auto found = open_.find(batch_id);
    if (found == open_.end()) return;
    const std::string path = std::move(found->second);
    open_.erase(found);
    if (settled) {
        record_in_checkpoint(path);
    } else {
        host_.warn(path + " was not settled; it is not recorded in the checkpoint and is read again at the next start");
    }
}

void FileSource::scan() {
    const bool first_scan = last_scan_ == std::chrono::steady_clock::time_point{};
    last_scan_ = std::chrono::steady_clock::now();
    std::vector<std::string> found;
    for (const auto& path : config_.paths) expand_into(path, found);
    // At the first scan, a file not modified for a scan interval counts as finished; later
    // ones are taken once a scan finds them as the previous one did.
    const auto settled_before = fs::file_time_type::clock::now() - config_.scan_interval;
    std::map<std::string, FileState> still_changing;
    std::vector<std::string> ready;
    for (const auto& path : found) {
        if (done_.count(path) != 0) continue;
        std::error_code ec;
        if (!fs::is_regular_file(path, ec)) continue;
        FileState state;
        state.size = fs::file_size(path, ec);
        if (!ec) state.modified = fs::last_write_time(path, ec);
        if (ec) continue;  // gone meanwhile
        const auto seen = watching_.find(path);
        const bool stable = seen != watching_.end() ? seen->second == state
                                                    : first_scan && state.modified < settled_before;
        if (stable) {
            ready.push_back(path);
            done_.insert(path);
        } else {
            still_changing[path] = state;
        }
    }
    watching_ = std::move(still_changing);
    std::sort(ready.begin(), ready.end());
    pending_.insert(pending_.end(), ready.begin(), ready.end());
}

void FileSource::load_checkpoint() {
    std::ifstream in(config_.checkpoint);
    if (!in) {
        std::error_code ec;
        if (fs::exists(config_.checkpoint, ec)) {
            throw std::runtime_error("checkpoint " + config_.checkpoint.string() + ": cannot open: " + std::strerror(errno));
        }
        host_.info("checkpoint " + config_.checkpoint.string() + " does not exist yet: every file is new");
        return;
    }
    std::string line;
    std::size_t line_number = 0;
    while (std::getline(in, line)) {
        ++line_number;
        if (line.empty()) continue;
        boost::system::error_code ec;
        const auto value = boost::json::parse(line, ec);
        if (ec || !value.is_string()) {
            // A line cut short by a crash while it was written: that file is read again.
            host_.warn("checkpoint " + config_.checkpoint.string() + ":" + std::to_string(line_number) +
                       ": not a JSON string, ignored");
            continue;
        }
        done_.insert(std::string(value.as_string()));
    }
    host_.info("checkpoint " + config_.checkpoint.string() + ": " + std::to_string(done_.size()) +
               " file(s) done before");
}

void FileSource::record_in_checkpoint(const std::string& path) {
    std::error_code ec;
    if (config_.checkpoint.has_parent_path()) fs::create_directories(config_.checkpoint.parent_path(), ec);
    const std::string line = boost::json::serialize(boost::json::string(path)) + "\n";
    const int fd = ::open(config_.checkpoint.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    auto failed = [&](const char* what) {
        const std::string reason = std::strerror(errno);
        if (fd >= 0) ::close(fd);
        return std::runtime_error("checkpoint " + config_.checkpoint.string() + ": cannot " + what + ": " + reason +
                                  " (" + path + " will be read again at the next start)");
    };
    if (fd < 0) throw failed("open");
    // Durable before the file counts as done: a crash must make it read again, not skipped.
    if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) throw failed("write");
    if (::fsync(fd) != 0) throw failed("sync");
    ::close(fd);
}

}  // namespace tattle::sources
