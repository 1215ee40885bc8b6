#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tattle/diagnostics.hpp"
#include "tattle/limits.hpp"

namespace tattle {

// A [[rule.test]] case: an event (inline JSON or a file) and what the rule must do
// with it; or a sequence of events and how many alerts they make after dedup and
// threshold.
struct RuleTestCase {
    std::string event_json;                  // inline `event`, already checked to be a JSON object
    std::optional<std::filesystem::path> event_file;  // `event_file`, relative paths resolved
    bool match = true;
    std::optional<std::string> annotation;   // expected annotation (a string's text, else its JSON)
    std::optional<std::string> title;        // expected alert title
    std::optional<std::string> dedup_key;    // expected dedup key
    // The sequence form: `events` (inline JSON objects) or `event_files`, in order,
    // and `alerts`, how many alerts they make.
    std::vector<std::string> events_json;
    std::vector<std::filesystem::path> event_files;
    std::optional<std::int64_t> alerts;
    SourceLocation where;                    // the test's table

    bool is_sequence() const noexcept { return alerts.has_value(); }
};

// One entry of a file's [lists] or [macros]: a jq definition (`def name: body;`)
// that the file's rules, titles and keys may use.
struct JqDefinition {
    std::string name;
    std::string body;      // jq text: a list's JSON array, a macro's expression
    bool is_list = false;
    SourceLocation where;  // the value
};
using JqDefinitions = std::shared_ptr<const std::vector<JqDefinition>>;

// A rule's `dedup` or `threshold`: a jq expression giving the key, a window, and
// (threshold) how many matches with one key the window must hold.
struct ShapingSpec {
    std::string key;  // jq expression
    std::int64_t window_seconds = 0;
    std::int64_t count = 1;     // threshold only
    SourceLocation where;       // the table
    SourceLocation key_where;   // the key value
};

// The severities a rule may declare, lowest first.
const std::vector<std::string>& rule_severities();

// A [[rule]]: tattletail's keys, and tattle's own (id, enabled, severity, tags,
// runbook, test).
struct RuleSpec {
    std::string name;
    // Unique across the config: `id` (default: name), prefixed `team/` in a bundle.
    std::string id;
    std::string team;  // empty for the root config's rules
    std::string description;
    std::string jq_match;
    // Destination ids as resolved: a bundle's own destinations are `team/id`.
    std::vector<std::string> destinations;
    bool enabled = true;  // false: loaded and compiled, never run
    std::string severity; // empty or one of rule_severities()
    std::vector<std::string> tags;
    std::string runbook;
    // Alert shaping (alert_shaping.hpp): a jq expression for the alert's title; one
    // alert per dedup key per window; no alert before threshold.count matches per key.
    std::string title;
    SourceLocation title_where;
    std::optional<ShapingSpec> dedup;
    std::optional<ShapingSpec> threshold;
    // The [lists] and [macros] of the rule's file (null when it has none).
    JqDefinitions definitions;
    std::vector<RuleTestCase> tests;
    SourceLocation where;          // the rule's table
    SourceLocation jq_match_where; // the jq_match value

    // The id, or the name for a rule built in code without one.
    const std::string& key() const noexcept { return id.empty() ? name : id; }
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
    // Bundles: the team that declared this destination (empty: the root config).
    std::string team;
    // Root destinations: the teams whose rules may name it (`share_with`, "*" = all).
    std::vector<std::string> share_with;
    // Root sources: the teams whose rules see its events (`teams`; unset = all).
    std::optional<std::vector<std::string>> teams;
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
    // Team bundles (`bundles`, globs relative to the config) and what a broken one
    // does (`on_bundle_error`): "fail" (default) refuses the config, "skip" leaves
    // that bundle out and records why in skipped_bundles.
    std::vector<std::filesystem::path> bundle_files;
    // Threads that decode and filter batches (`workers`); 0: one per hardware thread.
    std::size_t workers = 0;
    bool skip_broken_bundles = false;
    std::vector<Diagnostic> skipped_bundles;
    // Every loaded file's [lists] and [macros] (checked by prepare even when no rule uses them).
    std::vector<JqDefinitions> definition_sets;
    // [limits]: bounds on one batch and its records (defaults in limits.hpp).
    InputLimits limits;
};

// Reads a window: an integer number of seconds or a string such as "30s", "10m",
// "1h", "1d"; nullopt when it is neither (or not positive).
std::optional<std::int64_t> parse_window_seconds(std::string_view text);

// Whether a rule runs on events of a source: enabled, and its team (if any)
// is granted the source.
bool rule_runs_on(const RuleSpec& rule, const PluginInstanceSpec& source);

// Parses a config file (tattletail.toml or tattle's superset) and checks its
// structure: known keys (with "did you mean"), types, required keys, duplicate
// ids, rules naming unknown destinations. Does not look at plugins or jq.
// Throws ConfigError with every problem found, each with file:line:col.
Config load_config(const std::filesystem::path& path);
// What a host decides when the config does not: `tattle serve` keeps running with the
// good bundles when one is broken (and alerts about it); `check` and `run` refuse.
struct ConfigLoadOptions {
    bool skip_broken_bundles_by_default = false;  // on_bundle_error unset means "skip"
};
Config load_config(const std::filesystem::path& path, const ConfigLoadOptions& options);
// A config made of bundle files alone, loaded as a root config with no
// sources, destinations or rules of its own would load them (`tattle test
// BUNDLE...`); named_as is its path in messages. Throws ConfigError.
Config load_bundle_set(const std::vector<std::filesystem::path>& bundle_files,
                       const std::filesystem::path& named_as);
// Same, from text (path only names it in messages).
Config parse_config(std::string_view toml_text, const std::filesystem::path& path);
Config parse_config(std::string_view toml_text, const std::filesystem::path& path, const ConfigLoadOptions& options);

}  // namespace tattle
