#include "tattle/rule_test_targets.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <system_error>

namespace tattle {
namespace {

namespace fs = std::filesystem;

// The same file however it was spelt (relative, `..`, symlinks).
fs::path identity_of(const fs::path& file) {
    std::error_code ec;
    fs::path canonical = fs::weakly_canonical(file, ec);
    return ec ? fs::absolute(file).lexically_normal() : canonical;
}

ConfigError argument_error(const fs::path& argument, std::string message) {
    return ConfigError({Diagnostic{SourceLocation{argument.string(), 0, 0}, std::move(message)}});
}

std::vector<fs::path> toml_files_in(const fs::path& directory) {
    std::vector<fs::path> files;
    std::error_code ec;
    for (fs::directory_iterator it(directory, ec), end; !ec && it != end; it.increment(ec)) {
        std::error_code type_ec;
        if (it->path().extension() == ".toml" && it->is_regular_file(type_ec)) files.push_back(it->path());
    }
    std::sort(files.begin(), files.end());
    return files;
}

std::vector<fs::path> root_configs_in(const fs::path& directory) {
    std::vector<fs::path> roots;
    for (const auto& file : toml_files_in(directory)) {
        if (classify_config_file(file) == ConfigFileKind::RootWithBundles) roots.push_back(file);
    }
    return roots;
}

bool loads_bundle(const Config& root, const fs::path& bundle_identity) {
    return std::any_of(root.bundle_files.begin(), root.bundle_files.end(),
                       [&](const fs::path& file) { return identity_of(file) == bundle_identity; });
}

bool names_file(const ConfigError& error, const fs::path& file_identity) {
    const auto& problems = error.problems();
    return std::any_of(problems.begin(), problems.end(), [&](const Diagnostic& problem) {
        return !problem.where.file.empty() && identity_of(problem.where.file) == file_identity;
    });
}

// The root config beside the bundle, or one directory up, that loads it. A
// candidate root that fails to load because of this very bundle is the error
// to report; one that fails for other reasons is not this bundle's root.
std::optional<fs::path> owning_root(const fs::path& bundle, std::map<fs::path, Config>& loaded) {
    const fs::path identity = identity_of(bundle);
    // Spelt as the bundle was, so that messages and the table show familiar paths.
    const fs::path directory = bundle.has_parent_path() ? bundle.parent_path() : fs::path(".");
    std::vector<fs::path> candidates = root_configs_in(directory);
    if (identity.parent_path().has_parent_path() && identity.parent_path().parent_path() != identity.parent_path()) {
        for (const auto& above : root_configs_in(directory / "..")) candidates.push_back(above.lexically_normal());
    }
    for (const auto& candidate : candidates) {
        const fs::path root_identity = identity_of(candidate);
        auto found = loaded.find(root_identity);
        if (found == loaded.end()) {
            try {
                found = loaded.emplace(root_identity, load_config(candidate)).first;
            } catch (const ConfigError& error) {
                if (names_file(error, identity)) throw;
                continue;
            }
        }
        if (loads_bundle(found->second, identity)) return root_identity;
    }
    return std::nullopt;
}

}  // namespace

std::string rule_test_identity(const std::string& rule, const SourceLocation& where) {
    return rule + '\n' + identity_of(where.file).string() + ':' + std::to_string(where.line) + ':' +
           std::to_string(where.column);
}

namespace {

// Bundles under a synthetic root; a failure says what was missing: a root config.
Config load_without_root(const std::vector<fs::path>& bundles, const fs::path& named_as) {
    try {
        return load_bundle_set(bundles, named_as);
    } catch (const ConfigError& error) {
        std::vector<Diagnostic> problems = error.problems();
        problems.push_back(Diagnostic{SourceLocation{named_as.parent_path().string(), 0, 0},
                                      "these bundles were loaded without a root config (none beside them or one "
                                      "directory up names them in `bundles`): destinations and sources a root "
                                      "config provides are unknown; name the root config to test them"});
        throw ConfigError(std::move(problems));
    }
}

}  // namespace

ConfigFileKind classify_config_file(const fs::path& file) {
    toml::table document;
    try {
        document = toml::parse_file(file.string());
    } catch (const toml::parse_error&) {
        return ConfigFileKind::Config;
    }
    if (document.contains("team")) return ConfigFileKind::Bundle;
    if (document.contains("bundles")) return ConfigFileKind::RootWithBundles;
    return ConfigFileKind::Config;
}

Config rules_declared_in(const Config& config, const std::vector<fs::path>& files) {
    Config kept = config;
    if (files.empty()) return kept;
    std::set<fs::path> identities;
    for (const auto& file : files) identities.insert(identity_of(file));
    std::erase_if(kept.rules, [&](const RuleSpec& rule) {
        return identities.count(identity_of(rule.where.file)) == 0;
    });
    return kept;
}

std::vector<RuleTestTarget> resolve_rule_test_targets(const std::vector<fs::path>& arguments) {
    std::vector<RuleTestTarget> targets;
    std::vector<fs::path> loose_bundles;                   // no root config loads them
    std::map<fs::path, std::vector<fs::path>> by_root;     // root -> the bundles named from it
    std::vector<fs::path> root_order;
    std::map<fs::path, Config> loaded_roots;

    auto add_bundle = [&](const fs::path& bundle) {
        if (auto root = owning_root(bundle, loaded_roots)) {
            if (by_root.find(*root) == by_root.end()) root_order.push_back(*root);
            by_root[*root].push_back(bundle);
        } else {
            loose_bundles.push_back(bundle);
        }
    };

    for (const auto& argument : arguments) {
        std::error_code ec;
        if (fs::is_directory(argument, ec)) {
            const auto roots = root_configs_in(argument);
            if (roots.size() == 1) {
                targets.push_back(RuleTestTarget{load_config(roots.front()), {}, false});
                continue;
            }
            if (roots.size() > 1) {
                std::string names;
                for (const auto& root : roots) names += (names.empty() ? "" : ", ") + root.filename().string();
                throw argument_error(argument, "the directory holds " + std::to_string(roots.size()) +
                                                   " root configs (files with `bundles =`: " + names +
                                                   "); name the one to test");
            }
            const auto files = toml_files_in(argument);
            if (files.empty()) throw argument_error(argument, "the directory holds no *.toml file to test");
            auto synthetic = load_without_root(files, argument / "(bundles without a root config)");
            targets.push_back(RuleTestTarget{std::move(synthetic), {}, true});
            continue;
        }
        if (!fs::exists(argument, ec)) throw argument_error(argument, "no such file or directory");
        if (classify_config_file(argument) == ConfigFileKind::Bundle) {
            add_bundle(argument);
        } else {
            targets.push_back(RuleTestTarget{load_config(argument), {}, false});
        }
    }
    for (const auto& root : root_order) {
        targets.push_back(RuleTestTarget{loaded_roots.at(root), by_root.at(root), false});
    }
    if (!loose_bundles.empty()) {
        const fs::path named_as = loose_bundles.front().parent_path() / "(bundles without a root config)";
        targets.push_back(RuleTestTarget{load_without_root(loose_bundles, named_as), {}, true});
    }
    return targets;
}

}  // namespace tattle
