#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "tattle/config.hpp"

namespace tattle {

// One config whose [[rule.test]] cases `tattle test` runs.
struct RuleTestTarget {
    Config config;
    // Only the rules declared in these files (bundles named on the command line
    // and found through their root config); empty: every rule of the config.
    std::vector<std::filesystem::path> only_files;
    // Loaded without a root config: bundles that name a root's shared
    // destinations cannot load this way.
    bool synthetic_root = false;
};

// How a TOML file presents itself: a bundle declares `team`, a root config
// names `bundles`; anything else (a plain tattletail.toml, or a file that is
// not valid TOML, whose error load_config reports) is a config.
enum class ConfigFileKind { Config, RootWithBundles, Bundle };
ConfigFileKind classify_config_file(const std::filesystem::path& file);

// Resolves `tattle test` arguments into configs:
// - a config file (root or plain): itself, all of its rules;
// - a bundle file: the root config beside it (or one directory up) that loads
//   it, restricted to that bundle's rules; bundles no root loads are loaded
//   together under a synthetic root;
// - a directory: its root config if exactly one *.toml in it names `bundles`,
//   else every *.toml in it as bundles under a synthetic root.
// Throws ConfigError naming the argument when one is missing, empty or ambiguous,
// or when a config does not load.
std::vector<RuleTestTarget> resolve_rule_test_targets(const std::vector<std::filesystem::path>& arguments);

// The same rule test however its file was spelt: for running each test once
// when a bundle and its root config are both named.
std::string rule_test_identity(const std::string& rule, const SourceLocation& where);

// Copy of config keeping only the rules declared in files (all when files is empty).
Config rules_declared_in(const Config& config, const std::vector<std::filesystem::path>& files);

}  // namespace tattle
