// Config and bundle loading. The input is a root config, optionally followed by bundle
// files, each after a line "#=bundle=" (the seeds' root configs load "bundles/*.toml").
// Whatever the TOML, loading gives a Config or a ConfigError whose every diagnostic names
// a place; the settings of each source and destination of a built-in type then go
// through that plugin's schema, which reports problems and never throws.

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <toml++/toml.h>

#include "fuzz_support.hpp"
#include "tattle/config.hpp"
#include "tattle/json_schema.hpp"
#include "tattle/plugin_catalog.hpp"

namespace {

const tattle::PluginCatalog& catalog() {
    static const tattle::PluginCatalog built_in = [] {
        tattle::PluginCatalog plugins;
        plugins.add_builtin_plugins();
        return plugins;
    }();
    return built_in;
}

// A directory of our own for the bundle files, emptied for each input.
const std::filesystem::path& work_directory() {
    static const std::filesystem::path directory = [] {
        auto path = std::filesystem::temp_directory_path() / ("tattle-fuzz-config-" + std::to_string(getpid()));
        std::filesystem::create_directories(path / "bundles");
        return path;
    }();
    return directory;
}

void check_settings(const tattle::PluginInstanceSpec& instance, tattle_plugin_kind kind) {
    const auto plugin = catalog().find(kind, instance.type);
    if (!plugin) return;
    boost::json::value settings = instance.settings;
    for (const auto& violation : tattle::validate_and_fill_defaults(plugin->config_schema, settings)) {
        tattle::fuzz::require(!violation.message.empty(), "a schema violation without a message", instance.type);
    }
}

// Bundle patterns are globs over the file system: "/*/*/*" would walk and read the
// machine's files (slowly, and /proc's without end). The work directory's bundle files are
// all an input may name; an input that names anything else is skipped.
bool bundles_stay_in_work_directory(std::string_view root) {
    toml::table document;
    try {
        document = toml::parse(root);
    } catch (const toml::parse_error&) {
        return true;  // parse_config stops at the same error, before any bundle
    }
    const toml::node* bundles = document.get("bundles");
    if (bundles == nullptr || !bundles->is_array()) return true;
    for (const toml::node& element : *bundles->as_array()) {
        const auto pattern = element.value<std::string>();
        if (!pattern) continue;
        if (*pattern != "bundles/*.toml" && !(pattern->starts_with("bundles/b") && pattern->ends_with(".toml") &&
                                              pattern->find_first_of("/*?[.", 9) == pattern->size() - 5)) {
            return false;
        }
    }
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input = tattle::fuzz::as_text(data, size);
    const std::string_view marker = "\n#=bundle=\n";
    const std::filesystem::path& directory = work_directory();
    std::filesystem::remove_all(directory / "bundles");
    std::filesystem::create_directories(directory / "bundles");

    std::string_view root = input;
    std::size_t at = input.find(marker);
    if (at != std::string_view::npos) {
        root = input.substr(0, at);
        std::string_view rest = input.substr(at + marker.size());
        for (int n = 0; n < 8; ++n) {
            at = rest.find(marker);
            std::ofstream(directory / "bundles" / ("b" + std::to_string(n) + ".toml"), std::ios::binary)
                << rest.substr(0, at);
            if (at == std::string_view::npos) break;
            rest.remove_prefix(at + marker.size());
        }
    }

    if (!bundles_stay_in_work_directory(root)) return 0;
    try {
        const tattle::Config config = tattle::parse_config(root, directory / "tattle.toml");
        for (const auto& source : config.sources) check_settings(source, TATTLE_PLUGIN_KIND_SOURCE);
        for (const auto& destination : config.destinations) check_settings(destination, TATTLE_PLUGIN_KIND_SINK);
        for (const auto& rule : config.rules) {
            tattle::fuzz::require(!rule.key().empty(), "a rule without a name or id");
        }
    } catch (const tattle::ConfigError& error) {
        for (const auto& problem : error.problems()) {
            tattle::fuzz::require(!problem.message.empty(), "a config problem without a message", error.what());
            tattle::fuzz::require(!problem.where.file.empty(), "a config problem that names no file", error.what());
        }
    }
    return 0;
}
