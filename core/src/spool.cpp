#include "tattle/spool.hpp"

#include "posix_io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <set>
#include <sstream>
#include <tuple>

#include "tattle/dedup.hpp"
#include "tattle/secrets.hpp"

namespace tattle {
namespace fs = std::filesystem;

namespace {

constexpr int kSpoolFormat = 1;
constexpr std::size_t kMinSelectorLength = 4;

std::string errno_text() { return std::strerror(errno); }

using posix_io::write_all;

// Alerts hold event details that only their owners should read.
void ensure_directory(const fs::path& directory) {
    std::error_code ec;
    if (fs::is_directory(directory, ec)) return;
    const fs::path parent = directory.parent_path();
    if (!parent.empty() && parent != directory) fs::create_directories(parent, ec);
    if (::mkdir(directory.c_str(), 0700) != 0 && errno != EEXIST) {
        throw SpoolError("cannot create spool directory " + directory.string() + ": " +
                         errno_text());
    }
    if (!fs::is_directory(directory, ec)) {
        throw SpoolError("spool path " + directory.string() + " is not a directory");
    }
}

std::string string_field(const boost::json::object& object, std::string_view key) {
    const auto* value = object.if_contains(key);
    return value != nullptr && value->is_string() ? std::string(value->get_string())
                                                  : std::string();
}

SpoolEntry read_entry(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open: " + errno_text());
    std::ostringstream text;
    text << in.rdbuf();
    boost::system::error_code ec;
    const auto parsed = boost::json::parse(text.str(), ec);
    if (ec) throw std::runtime_error("not JSON: " + ec.message());
    const auto* object = parsed.if_object();
    if (object == nullptr) throw std::runtime_error("not a JSON object");
    const auto* alert = object->if_contains("alert");
    const auto* attempts = object->if_contains("attempts");
    SpoolEntry entry;
    entry.id = string_field(*object, "id");
    entry.destination = string_field(*object, "destination");
    entry.alert_id = string_field(*object, "alert_id");
    entry.rule = string_field(*object, "rule");
    entry.last_error = string_field(*object, "last_error");
    if (alert == nullptr || !alert->is_object() || entry.destination.empty() ||
        entry.alert_id.empty() || attempts == nullptr || !attempts->is_int64()) {
        throw std::runtime_error(
            "not a tattle spool entry (alert, destination, alert_id or attempts missing)");
    }
    if (entry.id != file.stem().string())
        throw std::runtime_error("its id does not match its file name");
    entry.attempts = static_cast<unsigned>(std::max<std::int64_t>(0, attempts->get_int64()));
    entry.first_attempt = parse_utc(string_field(*object, "first_attempt")).value_or(WallTime{});
    entry.last_attempt = parse_utc(string_field(*object, "last_attempt")).value_or(WallTime{});
    entry.spooled_at = parse_utc(string_field(*object, "spooled_at")).value_or(WallTime{});
    entry.alert_json = boost::json::serialize(*alert);
    entry.file = file;
    return entry;
}

}  // namespace

std::string format_utc(WallTime time) {
    const auto millis =
        std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
    const auto seconds = static_cast<std::time_t>(millis / 1000 - (millis % 1000 < 0 ? 1 : 0));
    const auto fraction = static_cast<int>(((millis % 1000) + 1000) % 1000);
    std::tm parts{};
    gmtime_r(&seconds, &parts);
    char buffer[80];
    std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                  parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday, parts.tm_hour,
                  parts.tm_min, parts.tm_sec, fraction);
    return buffer;
}

std::optional<WallTime> parse_utc(const std::string& text) {
    std::tm parts{};
    int millis = 0;
    int consumed = 0;
    if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ%n", &parts.tm_year, &parts.tm_mon,
                    &parts.tm_mday, &parts.tm_hour, &parts.tm_min, &parts.tm_sec, &millis,
                    &consumed) != 7 ||
        static_cast<std::size_t>(consumed) != text.size()) {
        return std::nullopt;
    }
    parts.tm_year -= 1900;
    parts.tm_mon -= 1;
    const std::time_t seconds = timegm(&parts);
    return WallTime(std::chrono::seconds(seconds)) + std::chrono::milliseconds(millis);
}

fs::path resolve_spool_dir(const Config& config) {
    auto from_env = [](const char* name) -> const char* {
        const char* value = std::getenv(name);
        return value != nullptr && *value != '\0' ? value : nullptr;
    };
    if (const char* dir = from_env("TATTLE_SPOOL_DIR")) return dir;
    if (config.spool_dir) return *config.spool_dir;
    if (from_env("AWS_LAMBDA_RUNTIME_API") != nullptr) return "/tmp/tattle/spool";
    if (const char* state = from_env("XDG_STATE_HOME")) return fs::path(state) / "tattle" / "spool";
    if (const char* home = from_env("HOME"))
        return fs::path(home) / ".local" / "state" / "tattle" / "spool";
    return "/tmp/tattle-spool-" + std::to_string(::getuid());
}

Spool::Spool(fs::path directory) : directory_(std::move(directory)) {}

std::string Spool::put(const SpoolRecord& record) const {
    const std::string id = delivery_key(record.destination, record.alert_id);
    boost::system::error_code ec;
    boost::json::value alert = boost::json::parse(record.alert_json, ec);
    if (ec)
        alert = boost::json::object{
            {"unparsed", record.alert_json}};  // never drop an alert for its form
    const boost::json::object document{
        {"spool_format", kSpoolFormat},
        {"id", id},
        {"destination", record.destination},
        {"alert_id", record.alert_id},
        {"rule", record.rule},
        {"attempts", record.attempts},
        {"first_attempt", format_utc(record.first_attempt)},
        {"last_attempt", format_utc(record.last_attempt)},
        {"spooled_at", format_utc(record.spooled_at)},
        {"last_error", redact(record.last_error)},
        {"alert", std::move(alert)},
    };
    const std::string text = boost::json::serialize(document) + "\n";

    ensure_directory(directory_);
    // Unique among threads and processes, and hidden from list() while incomplete.
    static std::atomic<unsigned long> counter{0};
    const fs::path temporary = directory_ / (".tmp-" + id + "-" + std::to_string(::getpid()) + "-" +
                                             std::to_string(++counter));
    const fs::path final_path = directory_ / (id + ".json");
    const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        throw SpoolError("cannot create a file in spool " + directory_.string() + ": " +
                         errno_text());
    const bool written = write_all(fd, text) && ::fsync(fd) == 0;
    const int saved_errno = errno;
    ::close(fd);
    if (!written) {
        ::unlink(temporary.c_str());
        throw SpoolError("cannot write to spool " + directory_.string() + ": " +
                         std::strerror(saved_errno));
    }
    if (::rename(temporary.c_str(), final_path.c_str()) != 0) {
        const std::string reason = errno_text();
        ::unlink(temporary.c_str());
        throw SpoolError("cannot rename into spool " + directory_.string() + ": " + reason);
    }
    // The rename is durable only once the directory is.
    const int dir_fd = ::open(directory_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0 || ::fsync(dir_fd) != 0) {
        const std::string reason = errno_text();
        if (dir_fd >= 0) ::close(dir_fd);
        throw SpoolError("cannot fsync spool directory " + directory_.string() + ": " + reason);
    }
    ::close(dir_fd);
    return id;
}

Spool::Listing Spool::list() const {
    Listing listing;
    std::error_code ec;
    if (!fs::is_directory(directory_, ec)) return listing;
    for (const auto& item : fs::directory_iterator(directory_, ec)) {
        const std::string name = item.path().filename().string();
        if (name.starts_with(".") || item.path().extension() != ".json") continue;
        try {
            listing.entries.push_back(read_entry(item.path()));
        } catch (const std::exception& e) {
            listing.unreadable.push_back(item.path().string() + ": " + e.what());
        }
    }
    if (ec) listing.unreadable.push_back(directory_.string() + ": " + ec.message());
    std::sort(listing.entries.begin(), listing.entries.end(),
              [](const SpoolEntry& a, const SpoolEntry& b) {
                  return std::tie(a.spooled_at, a.id) < std::tie(b.spooled_at, b.id);
              });
    return listing;
}

bool Spool::remove(const std::string& id) const {
    const fs::path file = directory_ / (id + ".json");
    if (::unlink(file.c_str()) != 0) {
        if (errno == ENOENT) return false;
        throw SpoolError("cannot remove " + file.string() + ": " + errno_text());
    }
    return true;
}

std::vector<SpoolEntry> select_spool_entries(const std::vector<SpoolEntry>& entries,
                                             const std::vector<std::string>& selectors,
                                             const std::vector<std::string>& destinations,
                                             std::vector<std::string>& problems) {
    auto wanted_destination = [&](const SpoolEntry& entry) {
        return destinations.empty() || std::find(destinations.begin(), destinations.end(),
                                                 entry.destination) != destinations.end();
    };
    std::vector<SpoolEntry> selected;
    if (selectors.empty()) {
        for (const auto& entry : entries) {
            if (wanted_destination(entry)) selected.push_back(entry);
        }
        return selected;
    }
    std::set<std::string> taken;
    for (const auto& selector : selectors) {
        if (selector.size() < kMinSelectorLength) {
            problems.push_back("\"" + selector +
                               "\" is too short to name a spooled alert (give at least " +
                               std::to_string(kMinSelectorLength) + " characters of its id)");
            continue;
        }
        std::vector<const SpoolEntry*> matches;
        std::set<std::string> alert_ids;
        for (const auto& entry : entries) {
            if (!wanted_destination(entry)) continue;
            if (entry.id.starts_with(selector) || entry.alert_id.starts_with(selector)) {
                matches.push_back(&entry);
                alert_ids.insert(entry.alert_id);
            }
        }
        if (matches.empty()) {
            problems.push_back("no spooled alert matches \"" + selector + "\"");
        } else if (alert_ids.size() > 1) {
            // One alert may be parked for several destinations; several alerts is a typo.
            problems.push_back("\"" + selector + "\" matches " + std::to_string(alert_ids.size()) +
                               " different spooled alerts; give more characters");
        } else {
            for (const auto* entry : matches) {
                if (taken.insert(entry->id).second) selected.push_back(*entry);
            }
        }
    }
    return selected;
}

}  // namespace tattle
