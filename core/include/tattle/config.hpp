#pragma once

#include <boost/json.hpp>
#include <filesystem>
#include <map>
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

// A [[source]] or [[destination]]: id, type, and the plugin's own keys.
struct PluginInstanceSpec {
    std::string id;
    std::string type;
    // The plugin's keys (everything but id and type), as JSON.
    boost::json::object settings;
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
};

// Parses a config file (tattletail.toml or tattle's superset) and checks its
// structure: known keys (with "did you mean"), types, required keys, duplicate
// ids, rules naming unknown destinations. Does not look at plugins or jq.
// Throws ConfigError with every problem found, each with file:line:col.
Config load_config(const std::filesystem::path& path);
// Same, from text (path only names it in messages).
Config parse_config(std::string_view toml_text, const std::filesystem::path& path);

}  // namespace tattle
