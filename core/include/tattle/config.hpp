#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tattle/diagnostics.hpp"

namespace tattle {

// A [[rule]]: tattletail's keys.
struct RuleSpec {
    std::string name;
    std::string description;
    std::string jq_match;
    std::vector<std::string> destinations;
    SourceLocation where;          // the rule's table
    SourceLocation jq_match_where; // the jq_match value
};

// How the core delivers to one destination: the reserved `delivery` table of a
// [[destination]] (never passed to the plugin), or a plugin's suggestion (the
// "x-tattle-delivery" object of its config schema). Unset fields fall back, in
// order, to the plugin's suggestion and the core's defaults (see outbox.hpp).
struct DeliveryOverrides {
    std::optional<double> rate_per_second;       // 0: no rate limit
    std::optional<std::int64_t> burst;
    std::optional<std::int64_t> concurrency;     // worker threads, each with its own sink instance
    std::optional<std::int64_t> queue_size;      // alerts held before the pipeline waits
    std::optional<std::int64_t> max_attempts;
    std::optional<double> max_retry_seconds;     // from the first attempt
    std::optional<std::int64_t> initial_backoff_ms;
    std::optional<std::int64_t> max_backoff_ms;
};

// The keys a delivery table may hold.
const std::vector<std::string>& delivery_keys();

// One problem in a delivery table: a JSON pointer into the table ("" = the table
// itself, "/burst") and the message.
struct DeliveryProblem {
    std::string pointer;
    std::string message;
};

// Reads a delivery table (already JSON); fills out and returns every problem:
// unknown keys (with "did you mean"), wrong types, values out of range.
std::vector<DeliveryProblem> read_delivery_overrides(const boost::json::object& table,
                                                     DeliveryOverrides& out);

// A [[source]] or [[destination]]: id, type, and the plugin's own keys.
struct PluginInstanceSpec {
    std::string id;
    std::string type;
    // The plugin's keys (everything but id and type, and `delivery` for a destination), as JSON.
    boost::json::object settings;
    // A destination's `delivery` table, owned by the core.
    DeliveryOverrides delivery;
    SourceLocation where;  // the table
    // Location of every value in settings, keyed by JSON pointer ("/webhook_url", "/to_emails/1").
    std::map<std::string, SourceLocation> value_locations;

    // The best-known location for a JSON pointer into settings: the value itself,
    // else its nearest ancestor, else the table.
    SourceLocation locate(const std::string& json_pointer) const;
};

struct Config {
    std::filesystem::path path;
    std::vector<RuleSpec> rules;
    std::vector<PluginInstanceSpec> destinations;
    std::vector<PluginInstanceSpec> sources;
    // Extra plugin directories (key plugin_dirs), resolved relative to the config file.
    std::vector<std::filesystem::path> plugin_dirs;
    // Where alerts that could not be delivered are parked (spool_dir), and where
    // delivered alert ids are remembered (state_dir); relative to the config file.
    // Unset: see resolve_spool_dir (spool.hpp) and resolve_state_dir (dedup.hpp).
    std::optional<std::filesystem::path> spool_dir;
    std::optional<std::filesystem::path> state_dir;
    // How long a delivered alert id suppresses the same alert (0: never), and how
    // many ids are remembered at most.
    std::optional<std::int64_t> dedup_window_seconds;
    std::optional<std::int64_t> dedup_max_entries;
};

// Parses a config file (tattletail.toml or tattle's superset) and checks its
// structure: known keys (with "did you mean"), types, required keys, duplicate
// ids, rules naming unknown destinations. Does not look at plugins or jq.
// Throws ConfigError with every problem found, each with file:line:col.
Config load_config(const std::filesystem::path& path);
// Same, from text (path only names it in messages).
Config parse_config(std::string_view toml_text, const std::filesystem::path& path);

}  // namespace tattle
