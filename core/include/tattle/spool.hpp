#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "tattle/config.hpp"

namespace tattle {

using WallTime = std::chrono::system_clock::time_point;

// The spool could not be written: the alert is durable nowhere, so its batch must
// not be acknowledged.
class SpoolError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// One alert that could not be delivered, as parked in the spool.
struct SpoolRecord {
    std::string destination;
    std::string alert_id;
    std::string rule;
    unsigned attempts = 0;
    WallTime first_attempt{};
    WallTime last_attempt{};
    WallTime spooled_at{};
    std::string last_error;  // passed through tattle::redact before it is written
    std::string alert_json;  // the alert document, as the sink received it
};

struct SpoolEntry : SpoolRecord {
    std::string id;  // delivery_key(destination, alert_id): the file is <id>.json
    std::filesystem::path file;
};

// The spool directory, in this order: $TATTLE_SPOOL_DIR, the config's spool_dir,
// /tmp/tattle/spool inside AWS Lambda (only /tmp is writable there; the Lambda
// host must treat spooled alerts as failures, /tmp does not outlive the container),
// $XDG_STATE_HOME/tattle/spool, ~/.local/state/tattle/spool, and
// /tmp/tattle-spool-<uid> when there is no home.
std::filesystem::path resolve_spool_dir(const Config& config);

// A directory of JSON files, one per undelivered alert and destination:
//   {"spool_format": 1, "id", "destination", "alert_id", "rule", "attempts",
//    "first_attempt", "last_attempt", "spooled_at" (RFC 3339 UTC), "last_error",
//    "alert": {the alert document}}
// Files are written atomically (temporary file, fsync, rename, fsync of the
// directory) with mode 0600; the directory is created 0700 when missing.
// Safe to use from several threads.
class Spool {
public:
    explicit Spool(std::filesystem::path directory);
    const std::filesystem::path& directory() const noexcept { return directory_; }

    // Parks an alert and returns its id; an alert already parked for the same
    // destination is replaced. Throws SpoolError when the file cannot be made durable.
    std::string put(const SpoolRecord& record) const;

    struct Listing {
        std::vector<SpoolEntry> entries;      // oldest spooled first
        std::vector<std::string> unreadable;  // "file: why", for files that are not spool entries
    };
    // Every entry; a missing directory is an empty spool.
    Listing list() const;
    // Removes an entry; false when it was not there. Throws SpoolError when it cannot.
    bool remove(const std::string& id) const;

private:
    std::filesystem::path directory_;
};

// The entries that selectors name: each selector is a prefix (at least 4 characters)
// of a spool id or of an alert id. A selector that names nothing, or names several
// different alerts, is a problem. No selectors: every entry. destinations, when not
// empty, keep only entries for those destinations.
std::vector<SpoolEntry> select_spool_entries(const std::vector<SpoolEntry>& entries,
                                             const std::vector<std::string>& selectors,
                                             const std::vector<std::string>& destinations,
                                             std::vector<std::string>& problems);

// RFC 3339 UTC with milliseconds ("2024-05-01T12:00:00.123Z"), and back (nullopt
// when the text is not in that form).
std::string format_utc(WallTime time);
std::optional<WallTime> parse_utc(const std::string& text);

}  // namespace tattle
