#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tattle/config.hpp"
#include "tattle/diagnostics.hpp"
#include "tattle/filter.hpp"
#include "tattle/plugin_catalog.hpp"

namespace tattle {

// A config checked against the plugins and compiled: what `check` reports and
// `run` executes. Plugin objects are not created yet.
struct PreparedConfig {
    Config config;
    std::shared_ptr<PluginCatalog> catalog;
    std::vector<std::string> plugin_refusals;  // plugin files that could not be loaded
    std::vector<Diagnostic> problems;          // everything wrong, with file:line
    std::unique_ptr<FilterStage> filter;
    // Each instance's config after schema validation, with defaults filled in.
    std::map<std::string, boost::json::object> destination_settings;
    std::map<std::string, boost::json::object> source_settings;
};

struct PrepareOptions {
    std::vector<std::filesystem::path> extra_plugin_dirs;  // --plugin-dir
    bool use_builtin_plugins = true;                       // the static registry
    bool use_default_search_path = true;                   // next to the binary, TATTLE_PLUGIN_PATH
};

// Loads plugins (default search path, then the config's plugin_dirs), validates
// every [[source]]/[[destination]] against its plugin's schema and compiles every
// rule. All problems are collected in problems; throws only for unreadable files.
PreparedConfig prepare(const Config& config, const PrepareOptions& options);
// Validates one instance's settings against its plugin's schema; appends problems.
boost::json::object validate_instance(const Plugin& plugin, const PluginInstanceSpec& spec,
                                      std::vector<Diagnostic>& problems);

struct RunSummary {
    std::size_t batches = 0;
    std::size_t batches_failed = 0;   // unreadable, undecodable, or not delivered
    std::size_t events = 0;
    std::size_t record_errors = 0;
    std::size_t skipped_documents = 0;
    std::size_t matches = 0;
    std::size_t alerts_delivered = 0;
    std::size_t alerts_failed = 0;
    std::size_t rule_errors = 0;       // jq runtime errors, all rules
    std::vector<std::string> failures; // one line per failed batch

    // Exit status of `tattle run`: 0 all good, 1 input problems, 3 undelivered alerts.
    int exit_code() const noexcept;
};

// Runs every source until exhausted: decode, filter, route to the rules'
// destinations, acknowledge each batch once all its alerts are delivered.
// input_paths, when not empty, replace the configured sources by a file source.
RunSummary run_pipeline(PreparedConfig& prepared, const std::vector<std::string>& input_paths);

}  // namespace tattle
