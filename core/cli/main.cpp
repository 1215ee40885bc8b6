// tattle: the command-line host. Subcommands run, check, eval, plugins, version.
#include <spdlog/spdlog.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "tattle/config.hpp"
#include "tattle/logging.hpp"
#include "tattle/pipeline.hpp"
#include "tattle/secrets.hpp"

namespace po = boost::program_options;
using namespace tattle;

namespace {

constexpr int kExitOk = 0;
constexpr int kExitUsage = 2;

constexpr const char* kUsage = R"(usage: tattle [GLOBAL OPTIONS] COMMAND [ARGS]

Commands:
  run      process the configured sources (or the given files) until exhausted
  check    validate a config: plugins, destinations, sources, rules
  eval     run one jq rule over files and print the matches
  plugins  list the available plugins with their config schemas
  version  print the version and plugin ABI

Run `tattle COMMAND --help` for a command's options.

Exit status:
  0  success
  1  input problems: a file, object or record could not be read or decoded
  2  usage or config error (nothing was processed)
  3  some alerts could not be delivered
)";

struct GlobalOptions {
    std::string log_format = "text";
    std::string log_level = "info";
    std::vector<std::string> plugin_dirs;
};

po::options_description global_options(GlobalOptions& global) {
    po::options_description options("Global options");
    options.add_options()
        ("help,h", "show help")
        ("log-format", po::value(&global.log_format)->default_value("text"), "text or json (logs go to stderr)")
        ("log-level", po::value(&global.log_level)->default_value("info"),
         "trace, debug, info, warn, error or off")
        ("plugin-dir", po::value(&global.plugin_dirs)->composing(),
         "also load plugins from this directory (repeatable)");
    return options;
}

std::string default_config_path() {
    const char* from_env = std::getenv("TATTLE_CONFIG");
    return from_env != nullptr ? from_env : "";
}

PrepareOptions prepare_options(const GlobalOptions& global) {
    PrepareOptions options;
    for (const auto& dir : global.plugin_dirs) options.extra_plugin_dirs.emplace_back(dir);
    return options;
}

void print_problems(const std::vector<Diagnostic>& problems) {
    std::cerr << problems.size() << (problems.size() == 1 ? " problem" : " problems") << ":\n";
    for (const auto& problem : problems) std::cerr << "  " << redact(problem.to_string()) << '\n';
}

void print_summary(const RunSummary& summary) {
    spdlog::info("{} batches ({} failed), {} events, {} matches, {} alerts delivered, {} not delivered, "
                 "{} bad records, {} skipped documents, {} rule errors",
                 summary.batches, summary.batches_failed, summary.events, summary.matches,
                 summary.alerts_delivered, summary.alerts_failed, summary.record_errors,
                 summary.skipped_documents, summary.rule_errors);
    if (!summary.failures.empty()) {
        std::cerr << "failed batches:\n";
        for (const auto& failure : summary.failures) std::cerr << "  " << redact(failure) << '\n';
    }
}

// Loads and prepares a config; prints every problem and returns false if any.
bool load_prepared(const std::string& config_path, const GlobalOptions& global, PreparedConfig& out) {
    if (config_path.empty()) {
        std::cerr << "tattle: no config given (use --config FILE or set TATTLE_CONFIG)\n";
        return false;
    }
    Config config;
    try {
        config = load_config(config_path);
    } catch (const ConfigError& e) {
        print_problems(e.problems());
        return false;
    }
    out = prepare(config, prepare_options(global));
    if (!out.problems.empty()) {
        print_problems(out.problems);
        return false;
    }
    return true;
}

int command_run(const std::vector<std::string>& args, GlobalOptions& global) {
    std::string config_path = default_config_path();
    std::vector<std::string> inputs;
    auto options = global_options(global);
    options.add_options()
        ("config,c", po::value(&config_path), "config file (default: $TATTLE_CONFIG)")
        ("input", po::value(&inputs)->composing(), "files, directories, globs or - (instead of the config's sources)");
    po::positional_options_description positional;
    positional.add("input", -1);
    po::variables_map vm;
    po::store(po::command_line_parser(args).options(options).positional(positional).run(), vm);
    po::notify(vm);
    if (vm.count("help") != 0U) {
        std::cout << "usage: tattle run [--config FILE] [INPUT...]\n\n" << options;
        return kExitOk;
    }
    setup_logging(global.log_format == "json" ? LogFormat::Json : LogFormat::Text, global.log_level);
    PreparedConfig prepared;
    if (!load_prepared(config_path, global, prepared)) return kExitUsage;
    const RunSummary summary = run_pipeline(prepared, inputs);
    print_summary(summary);
    return summary.exit_code();
}

int command_check(const std::vector<std::string>& args, GlobalOptions& global) {
    std::string config_path = default_config_path();
    auto options = global_options(global);
    options.add_options()("config,c", po::value(&config_path), "config file (default: $TATTLE_CONFIG)");
    po::positional_options_description positional;
    positional.add("config", 1);
    po::variables_map vm;
    po::store(po::command_line_parser(args).options(options).positional(positional).run(), vm);
    po::notify(vm);
    if (vm.count("help") != 0U) {
        std::cout << "usage: tattle check [--config] FILE\n\n"
                     "Checks a config and prints what it found. Exit 0 when it is valid, 2 otherwise.\n\n"
                  << options;
        return kExitOk;
    }
    setup_logging(global.log_format == "json" ? LogFormat::Json : LogFormat::Text, global.log_level);
    if (config_path.empty()) {
        std::cerr << "tattle check: no config given (use --config FILE or set TATTLE_CONFIG)\n";
        return kExitUsage;
    }
    const auto started = std::chrono::steady_clock::now();
    Config config;
    try {
        config = load_config(config_path);
    } catch (const ConfigError& e) {
        print_problems(e.problems());
        return kExitUsage;
    }
    PreparedConfig prepared = prepare(config, prepare_options(global));
    const auto elapsed =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);

    std::cout << "config: " << config.path.string() << '\n';
    std::cout << "sources (" << config.sources.size() << "):\n";
    for (const auto& source : config.sources) std::cout << "  " << source.id << " (" << source.type << ")\n";
    std::cout << "destinations (" << config.destinations.size() << "):\n";
    for (const auto& destination : config.destinations) {
        std::cout << "  " << destination.id << " (" << destination.type << ")\n";
    }
    std::cout << "rules (" << config.rules.size() << "):\n";
    for (std::size_t i = 0; i < config.rules.size(); ++i) {
        const auto& rule = config.rules[i];
        std::cout << "  " << rule.name << (prepared.filter->compiled(i) ? "" : " [not compiled]") << " ->";
        for (const auto& destination : rule.destinations) std::cout << ' ' << destination << ';';
        std::cout << '\n';
    }
    std::cout << "checked in " << elapsed.count() << " ms\n";
    if (!prepared.problems.empty()) {
        print_problems(prepared.problems);
        return kExitUsage;
    }
    std::cout << "ok\n";
    return kExitOk;
}

int command_eval(const std::vector<std::string>& args, GlobalOptions& global) {
    std::string program;
    std::string format = "text";
    std::vector<std::string> inputs;
    auto options = global_options(global);
    options.add_options()
        ("format", po::value(&format)->default_value("text"), "text (one line per match) or json (alert documents)")
        ("program", po::value(&program), "the jq rule")
        ("input", po::value(&inputs)->composing(), "files, directories, globs or -");
    po::positional_options_description positional;
    positional.add("program", 1).add("input", -1);
    po::variables_map vm;
    po::store(po::command_line_parser(args).options(options).positional(positional).run(), vm);
    po::notify(vm);
    if (vm.count("help") != 0U || program.empty()) {
        std::cout << "usage: tattle eval [--format text|json] 'JQ' [INPUT...]\n\n"
                     "Runs one rule, with the same semantics and sandbox as configured rules, over\n"
                     "CloudTrail files (stdin if none) and prints every match with its annotation.\n\n"
                  << options;
        return vm.count("help") != 0U ? kExitOk : kExitUsage;
    }
    if (format != "text" && format != "json") {
        std::cerr << "tattle eval: --format must be text or json\n";
        return kExitUsage;
    }
    setup_logging(global.log_format == "json" ? LogFormat::Json : LogFormat::Text, global.log_level);
    if (inputs.empty()) inputs.emplace_back("-");

    Config config;
    config.path = "<command line>";
    RuleSpec rule;
    rule.name = "eval";
    rule.jq_match = program;
    rule.destinations = {"stdout"};
    rule.where.file = rule.jq_match_where.file = "<command line>";
    config.rules.push_back(rule);
    PluginInstanceSpec destination;
    destination.id = "stdout";
    destination.type = "stdout";
    destination.settings["format"] = format;
    destination.where.file = "<command line>";
    config.destinations.push_back(destination);

    PreparedConfig prepared = prepare(config, prepare_options(global));
    if (!prepared.problems.empty()) {
        print_problems(prepared.problems);
        return kExitUsage;
    }
    const RunSummary summary = run_pipeline(prepared, inputs);
    print_summary(summary);
    return summary.exit_code();
}

int command_plugins(const std::vector<std::string>& args, GlobalOptions& global) {
    bool as_json = false;
    auto options = global_options(global);
    options.add_options()("json", po::bool_switch(&as_json), "print one JSON document");
    po::variables_map vm;
    po::store(po::command_line_parser(args).options(options).run(), vm);
    po::notify(vm);
    if (vm.count("help") != 0U) {
        std::cout << "usage: tattle plugins [--json]\n\n" << options;
        return kExitOk;
    }
    setup_logging(global.log_format == "json" ? LogFormat::Json : LogFormat::Text, global.log_level);
    Config none;
    PreparedConfig prepared = prepare(none, prepare_options(global));
    boost::json::array listing;
    for (const auto& plugin : prepared.catalog->plugins()) {
        listing.push_back({{"kind", kind_name(plugin->kind)},
                           {"type", plugin->type_name},
                           {"version", plugin->version},
                           {"description", plugin->description},
                           {"location", plugin->location},
                           {"config_schema", plugin->config_schema}});
    }
    if (as_json) {
        std::cout << boost::json::serialize(boost::json::object{{"abi", TATTLE_PLUGIN_ABI_MAJOR},
                                                                {"plugins", listing},
                                                                {"refused", boost::json::value_from(prepared.plugin_refusals)}})
                  << '\n';
        return kExitOk;
    }
    for (const auto& plugin : prepared.catalog->plugins()) {
        std::cout << kind_name(plugin->kind) << ' ' << plugin->type_name << ' ' << plugin->version << "  "
                  << plugin->description << "\n  from: " << plugin->location
                  << "\n  config schema: " << boost::json::serialize(plugin->config_schema) << "\n\n";
    }
    for (const auto& refusal : prepared.plugin_refusals) std::cout << "refused: " << refusal << '\n';
    return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    GlobalOptions global;
    // The command is the first argument that is not an option (or an option's value).
    std::string command;
    std::size_t command_at = args.size();
    for (std::size_t i = 0; i < args.size(); ++i) {
        const auto& arg = args[i];
        if (arg == "--log-format" || arg == "--log-level" || arg == "--plugin-dir") {
            ++i;
            continue;
        }
        if (!arg.empty() && arg[0] != '-') {
            command = arg;
            command_at = i;
            break;
        }
    }
    if (command.empty()) {
        const bool asked = !args.empty() && (args[0] == "--help" || args[0] == "-h");
        (asked ? std::cout : std::cerr) << kUsage;
        return asked ? kExitOk : kExitUsage;
    }
    args.erase(args.begin() + static_cast<std::ptrdiff_t>(command_at));
    try {
        if (command == "run") return command_run(args, global);
        if (command == "check") return command_check(args, global);
        if (command == "eval") return command_eval(args, global);
        if (command == "plugins") return command_plugins(args, global);
        if (command == "version") {
            std::cout << "tattle " << TATTLE_VERSION << " (plugin ABI " << TATTLE_PLUGIN_ABI_MAJOR << '.'
                      << TATTLE_PLUGIN_ABI_MINOR << ")\n";
            return kExitOk;
        }
        std::cerr << "tattle: unknown command \"" << command << "\"\n\n" << kUsage;
        return kExitUsage;
    } catch (const po::error& e) {
        std::cerr << "tattle " << command << ": " << e.what() << " (see tattle " << command << " --help)\n";
        return kExitUsage;
    } catch (const ConfigError& e) {
        print_problems(e.problems());
        return kExitUsage;
    } catch (const std::exception& e) {
        std::cerr << "tattle " << command << ": " << redact(e.what()) << '\n';
        return kExitUsage;
    }
}
