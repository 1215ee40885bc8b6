// tattle: the command-line host. Subcommands run, check, eval, test, spool, plugins, version.
#include <spdlog/spdlog.h>

#include <boost/program_options.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <malloc.h>
#include <unistd.h>

#include "tattle/rule_sandbox.hpp"
#include "tattle/backtest.hpp"
#include "tattle/config.hpp"
#include "tattle/daemon.hpp"
#include "tattle/logging.hpp"
#include "tattle/lambda.hpp"
#include "tattle/pipeline.hpp"
#include "tattle/rule_test_targets.hpp"
#include "tattle/rule_tests.hpp"
#include "tattle/secrets.hpp"
#include "tattle/spool.hpp"
#include "tattle/text_safety.hpp"

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
  test     run the rules' [[rule.test]] cases and print a pass/fail table
  backtest run the rules over historical logs without sending, and show how noisy each is
  spool    list, replay or drop alerts parked in the dead-letter spool
  plugins  list the available plugins with their config schemas
  lambda   serve as an AWS Lambda custom runtime (automatic for a `bootstrap` binary)
  serve    run the configured sources continuously, with /healthz, /readyz and /metrics
  version  print the version and plugin ABI

Run `tattle COMMAND --help` for a command's options.

Exit status:
  0  success
  1  input problems: a file, object or record could not be read or decoded
  2  usage or config error (nothing was processed)
  3  some alerts could not be delivered: they are in the spool (tattle spool list),
     or the spool could not be written and their batches were not acknowledged;
     for `spool replay`: some alerts are still in the spool
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

// Bundles left out under on_bundle_error = "skip": loud, but not fatal.
void warn_skipped_bundles(const Config& config) {
    for (const auto& problem : config.skipped_bundles) {
        spdlog::error("bundle skipped (on_bundle_error = \"skip\"): {}", redact(problem.to_string()));
    }
}

void print_summary(const RunSummary& summary) {
    spdlog::info("{} batches ({} failed), {} events, {} matches, {} alerts delivered, {} spooled, "
                 "{} not delivered, {} duplicates suppressed, {} retries, {} bad records, "
                 "{} skipped documents, {} rule errors, {} input limits hit",
                 summary.batches, summary.batches_failed, summary.events, summary.matches,
                 summary.alerts_delivered, summary.alerts_spooled, summary.alerts_failed,
                 summary.alerts_suppressed, summary.delivery_retries, summary.record_errors,
                 summary.skipped_documents, summary.rule_errors, summary.limit_hits);
    spdlog::info("CPU seconds: {}", describe(summary.cpu));
    if (summary.matches_deduplicated > 0 || summary.matches_below_threshold > 0) {
        spdlog::info("alert shaping: {} matches deduplicated, {} below threshold (no alert sent for them)",
                     summary.matches_deduplicated, summary.matches_below_threshold);
    }
    if (summary.alerts_spooled > 0) {
        spdlog::warn("{} alert(s) could not be delivered and are in the spool {}: see `tattle spool list`, "
                     "send them again with `tattle spool replay`",
                     summary.alerts_spooled, summary.spool_dir.string());
    }
    if (!summary.failures.empty()) {
        std::cerr << "failed batches:\n";
        for (const auto& failure : summary.failures) std::cerr << "  " << printable_log_text(redact(failure)) << '\n';
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
    warn_skipped_bundles(config);
    out = prepare(config, prepare_options(global));
    if (!out.problems.empty()) {
        print_problems(out.problems);
        return false;
    }
    return true;
}

// A command's arguments into vm; with --help, prints usage and the options instead and
// returns false.
bool parse_arguments(const std::vector<std::string>& args, const po::options_description& options,
                     const po::positional_options_description* positional, std::string_view usage,
                     po::variables_map& vm) {
    po::command_line_parser parser(args);
    parser.options(options);
    if (positional != nullptr) parser.positional(*positional);
    po::store(parser.run(), vm);
    po::notify(vm);
    if (vm.count("help") == 0U) return true;
    std::cout << usage << options;
    return false;
}

int command_run(const std::vector<std::string>& args, GlobalOptions& global) {
    std::string config_path = default_config_path();
    RunOptions run;
    auto options = global_options(global);
    options.add_options()
        ("config,c", po::value(&config_path), "config file (default: $TATTLE_CONFIG)")
        ("since", po::value(&run.inputs_since), "s3:// inputs: first day to read (YYYY-MM-DD, by the key's date)")
        ("until", po::value(&run.inputs_until), "s3:// inputs: last day to read (YYYY-MM-DD, inclusive)")
        ("workers", po::value(&run.workers),
         "threads decoding and filtering batches (default: the config's workers, else one per CPU)")
        ("input", po::value(&run.input_paths)->composing(),
         "files, directories, globs, - or s3://bucket/prefix (instead of the config's sources)");
    po::positional_options_description positional;
    positional.add("input", -1);
    po::variables_map vm;
    if (!parse_arguments(
            args, options, &positional,
            "usage: tattle run [--config FILE] [--since DAY] [--until DAY] [--workers N] [INPUT...]\n\n",
            vm)) {
        return kExitOk;
    }
    const bool any_s3_input =
        std::any_of(run.input_paths.begin(), run.input_paths.end(),
                    [](const std::string& input) { return input.starts_with("s3://"); });
    if ((vm.count("since") != 0U || vm.count("until") != 0U) && !any_s3_input) {
        std::cerr << "tattle run: --since and --until select days of s3://bucket/prefix inputs; "
                     "none is given\n";
        return kExitUsage;
    }
    setup_logging(global.log_format == "json" ? LogFormat::Json : LogFormat::Text,
                  global.log_level);
    PreparedConfig prepared;
    if (!load_prepared(config_path, global, prepared)) return kExitUsage;
    const RunSummary summary = run_pipeline(prepared, run);
    print_summary(summary);
    return summary.exit_code();
}

int command_test(const std::vector<std::string>& args, GlobalOptions& global) {
    std::vector<std::string> targets;
    std::string junit_path;
    auto options = global_options(global);
    options.add_options()
        ("config,c", po::value(&targets)->composing(), "a config file (default: $TATTLE_CONFIG); repeatable")
        ("junit", po::value(&junit_path), "also write the results as JUnit XML to this file");
    po::positional_options_description positional;
    positional.add("config", -1);
    po::variables_map vm;
    if (!parse_arguments(
            args, options, &positional,
            "usage: tattle test [--junit FILE] [CONFIG | BUNDLE | DIRECTORY]...\n\n"
            "Runs the [[rule.test]] cases through the rules (disabled rules included) and prints\n"
            "a table. Each argument is a config file (all its rules and bundles), a bundle file\n"
            "(its own rules, loaded through the root config beside it or one directory up that\n"
            "names it, else on its own), or a directory (its root config if exactly one file in\n"
            "it sets `bundles`, else every *.toml in it as bundles). Exit 0 when all pass, 1 when\n"
            "a test fails, 2 when a config or a rule's jq is invalid.\n\n",
            vm))
        return kExitOk;
    setup_logging(global.log_format == "json" ? LogFormat::Json : LogFormat::Text,
                  global.log_level);
    if (targets.empty() && !default_config_path().empty()) targets.push_back(default_config_path());
    if (targets.empty()) {
        std::cerr << "tattle test: nothing to test (give configs, bundles or directories, or set TATTLE_CONFIG)\n";
        return kExitUsage;
    }
    std::vector<RuleTestTarget> resolved;
    try {
        resolved = resolve_rule_test_targets(std::vector<std::filesystem::path>(targets.begin(), targets.end()));
    } catch (const ConfigError& e) {
        print_problems(e.problems());
        return kExitUsage;
    }
    RuleTestReport report;
    std::set<std::string> seen;  // a rule test named twice (a bundle and its root) runs once
    for (const auto& target : resolved) {
        warn_skipped_bundles(target.config);
        RuleTestReport part = run_rule_tests(rules_declared_in(target.config, target.only_files));
        for (auto& result : part.results) {
            if (seen.insert(rule_test_identity(result.rule, result.where)).second) {
                report.results.push_back(std::move(result));
            }
        }
        report.problems.insert(report.problems.end(), part.problems.begin(), part.problems.end());
    }
    if (report.results.empty()) {
        std::cout << "no rule tests found (add [[rule.test]] tables under a [[rule]])\n";
    } else {
        print_rule_test_table(report, std::cout);
    }
    if (!junit_path.empty()) {
        std::ofstream junit(junit_path, std::ios::binary | std::ios::trunc);
        junit << rule_tests_junit_xml(report);
        junit.close();
        if (!junit) {
            std::cerr << "tattle test: cannot write the JUnit file " << junit_path << '\n';
            return kExitUsage;
        }
    }
    if (!report.problems.empty()) {
        print_problems(report.problems);
        return kExitUsage;
    }
    return report.failed() > 0 ? 1 : kExitOk;
}

int command_backtest(const std::vector<std::string>& args, GlobalOptions& global) {
    std::string config_path = default_config_path();
    BacktestOptions backtest;
    bool as_json = false;
    std::string progress_choice = "auto";
    std::size_t top_actor_count = 3;
    auto options = global_options(global);
    options.add_options()
        ("config,c", po::value(&config_path), "config file (default: $TATTLE_CONFIG)")
        ("since", po::value(&backtest.since), "s3:// inputs: first day to read (YYYY-MM-DD, by the key's date)")
        ("until", po::value(&backtest.until), "s3:// inputs: last day to read (YYYY-MM-DD, inclusive)")
        ("workers", po::value(&backtest.workers), "threads decoding and filtering (default: one per CPU)")
        ("top", po::value(&top_actor_count), "actors shown per rule (default 3)")
        ("json", po::bool_switch(&as_json), "print the summary as one JSON document")
        ("progress", po::value(&progress_choice), "auto (on a terminal), always or never")
        ("input", po::value(&backtest.inputs)->composing(), "files, directories, globs or s3://bucket/prefix");
    po::positional_options_description positional;
    positional.add("input", -1);
    po::variables_map vm;
    if (!parse_arguments(
            args, options, &positional,
            "usage: tattle backtest [--config FILE] [--since DAY] [--until DAY] [--json] "
            "INPUT...\n\n"
            "Runs every rule of the config and its bundles (disabled ones included) over\n"
            "historical logs and prints, per rule, how often it would have matched and who\n"
            "caused it. Nothing is sent. Exit 0, 1 when a batch could not be read.\n\n",
            vm))
        return kExitOk;
    if (backtest.inputs.empty()) {
        std::cerr << "tattle backtest: give the logs to read (files, directories or "
                     "s3://bucket/prefix)\n";
        return kExitUsage;
    }
    if (progress_choice != "auto" && progress_choice != "always" && progress_choice != "never") {
        std::cerr << "tattle backtest: --progress must be auto, always or never\n";
        return kExitUsage;
    }
    setup_logging(global.log_format == "json" ? LogFormat::Json : LogFormat::Text, global.log_level);
    PreparedConfig prepared;
    if (!load_prepared(config_path, global, prepared)) return kExitUsage;
    const bool show_progress =
        progress_choice == "always" || (progress_choice == "auto" && ::isatty(STDERR_FILENO) == 1);
    if (show_progress) {
        auto last_drawn = std::chrono::steady_clock::time_point{};
        backtest.on_progress = [last_drawn](const BacktestProgress& progress) mutable {
            const auto now = std::chrono::steady_clock::now();
            if (now - last_drawn < std::chrono::milliseconds(200)) return;
            last_drawn = now;
            std::cerr << backtest_progress_line(progress) << std::flush;
        };
    }
    const BacktestReport report = run_backtest(prepared, backtest);
    if (show_progress) std::cerr << "\r\x1b[K" << std::flush;
    if (as_json) {
        std::cout << boost::json::serialize(backtest_json(prepared, report, top_actor_count)) << '\n';
    } else {
        print_backtest_table(prepared, report, std::cout, top_actor_count);
    }
    return report.exit_code();
}

int command_check(const std::vector<std::string>& args, GlobalOptions& global) {
    std::string config_path = default_config_path();
    auto options = global_options(global);
    options.add_options()("config,c", po::value(&config_path), "config file (default: $TATTLE_CONFIG)")(
        "explain", "per rule: native or libjq evaluation, and what the rule index learned");
    po::positional_options_description positional;
    positional.add("config", 1);
    po::variables_map vm;
    if (!parse_arguments(
            args, options, &positional,
            "usage: tattle check [--explain] [--config] FILE\n\n"
            "Checks a config and prints what it found. Exit 0 when it is valid, 2 otherwise.\n\n",
            vm))
        return kExitOk;
    setup_logging(global.log_format == "json" ? LogFormat::Json : LogFormat::Text,
                  global.log_level);
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
    warn_skipped_bundles(config);
    PreparedConfig prepared = prepare(config, prepare_options(global));
    const auto elapsed =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);

    std::cout << "config: " << config.path.string() << '\n';
    std::cout << "sources (" << config.sources.size() << "):\n";
    for (const auto& source : config.sources) std::cout << "  " << source.id << " (" << source.type << ")\n";
    std::cout << "destinations (" << config.destinations.size() << "):\n";
    for (const auto& destination : config.destinations) {
        std::cout << "  " << destination.id << " (" << destination.type << ")";
        if (auto found = prepared.delivery_settings.find(destination.id); found != prepared.delivery_settings.end()) {
            std::cout << ": " << describe(found->second);
        }
        std::cout << '\n';
    }
    std::cout << "rules (" << config.rules.size() << "):\n";
    for (std::size_t i = 0; i < config.rules.size(); ++i) {
        const auto& rule = config.rules[i];
        std::cout << "  " << rule.key() << (prepared.filter->compiled(i) ? "" : " [not compiled]")
                  << (rule.enabled ? "" : " [disabled]") << " ->";
        for (const auto& destination : rule.destinations) std::cout << ' ' << destination << ';';
        std::cout << '\n';
        if (vm.count("explain") != 0U && prepared.filter->compiled(i)) {
            const RuleExplanation explanation = prepared.filter->explain(i);
            std::cout << "      evaluation: " << explanation.evaluation << "\n      index: " << explanation.index
                      << '\n';
        }
    }
    std::cout << "checked in " << elapsed.count() << " ms\n";
    if (!prepared.problems.empty()) {
        print_problems(prepared.problems);
        return kExitUsage;
    }
    // A rule that never ends on its own test events would stall alerting once deployed:
    // run them under the rule budget `run` and `serve` apply.
    if (std::any_of(config.rules.begin(), config.rules.end(), [](const RuleSpec& r) { return !r.tests.empty(); })) {
        const auto tests_started = std::chrono::steady_clock::now();
        const RuleTestReport tested = run_rule_tests(config);
        const auto tests_elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - tests_started);
        std::cout << "rule budget (" << config.limits.max_rule_cpu_ms << " ms CPU, "
                  << (config.limits.max_rule_memory_bytes >> 20) << " MiB per rule and event): "
                  << tested.results.size() << " test cases run in " << tests_elapsed.count() << " ms\n";
        if (!tested.stopped.empty()) {
            print_problems(tested.stopped);
            return kExitUsage;
        }
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
    rule.id = "eval";
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

constexpr const char* kSpoolUsage = R"(usage: tattle spool list   [--config FILE] [--spool-dir DIR] [--json]
       tattle spool replay [--config FILE] [--spool-dir DIR] [--destination ID]... [ID...]
       tattle spool drop   [--config FILE] [--spool-dir DIR] (ID... | --all)

An alert that a destination refused, or that could not be delivered within its
retry budget, is parked in the spool: one JSON file per alert and destination.
The spool directory is $TATTLE_SPOOL_DIR (or --spool-dir), else the config's
spool_dir, else $XDG_STATE_HOME/tattle/spool or ~/.local/state/tattle/spool
(/tmp/tattle/spool inside AWS Lambda).

  list     one line per parked alert: id, destination, rule, attempts, last error
  replay   send parked alerts again through the same outboxes (rate limit, retries,
           budget); a delivered alert leaves the spool, one that still fails stays
           with its attempts and last error updated. Needs the config.
  drop     delete parked alerts for good

ID is a prefix (4 characters or more) of a spool id or of an alert id.

Exit status: 0 done; 2 usage or config error, or an ID that names no parked alert;
3 (replay) some alerts are still in the spool.
)";

// Alert fields come from events, which attackers write: no terminal escapes or
// line breaks in a table meant for people.
std::string one_line(std::string_view text, std::size_t max_length) {
    std::string out;
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        out += (byte < 0x20 || byte == 0x7f) ? ' ' : c;
    }
    if (out.size() > max_length) out = out.substr(0, max_length - 3) + "...";
    return out;
}

void print_spool_listing(const Spool::Listing& listing, const std::filesystem::path& directory, bool as_json) {
    if (as_json) {
        boost::json::array entries;
        for (const auto& entry : listing.entries) {
            boost::system::error_code ec;
            entries.push_back({{"id", entry.id},
                               {"destination", entry.destination},
                               {"alert_id", entry.alert_id},
                               {"rule", entry.rule},
                               {"attempts", entry.attempts},
                               {"first_attempt", format_utc(entry.first_attempt)},
                               {"last_attempt", format_utc(entry.last_attempt)},
                               {"spooled_at", format_utc(entry.spooled_at)},
                               {"last_error", redact(entry.last_error)},
                               {"file", entry.file.string()},
                               {"alert", boost::json::parse(entry.alert_json, ec)}});
        }
        std::cout << boost::json::serialize(boost::json::object{
                         {"spool_dir", directory.string()},
                         {"entries", std::move(entries)},
                         {"unreadable", boost::json::value_from(listing.unreadable)}})
                  << '\n';
        return;
    }
    std::cout << "spool " << directory.string() << ": " << listing.entries.size()
              << (listing.entries.size() == 1 ? " alert\n" : " alerts\n");
    if (!listing.entries.empty()) {
        struct Row {
            std::string id, destination, rule, attempts, spooled_at, last_error;
        };
        std::vector<Row> rows{{"ID", "DESTINATION", "RULE", "ATTEMPTS", "SPOOLED AT", "LAST ERROR"}};
        for (const auto& entry : listing.entries) {
            rows.push_back({entry.id.substr(0, 12), one_line(entry.destination, 30), one_line(entry.rule, 40),
                            std::to_string(entry.attempts), format_utc(entry.spooled_at),
                            one_line(redact(entry.last_error), 160)});
        }
        std::size_t destination_width = 0;
        std::size_t rule_width = 0;
        for (const auto& row : rows) {
            destination_width = std::max(destination_width, row.destination.size());
            rule_width = std::max(rule_width, row.rule.size());
        }
        for (const auto& row : rows) {
            std::cout << std::left << std::setw(14) << row.id << std::setw(static_cast<int>(destination_width + 2))
                      << row.destination << std::setw(static_cast<int>(rule_width + 2)) << row.rule << std::setw(10)
                      << row.attempts << std::setw(26) << row.spooled_at << row.last_error << '\n';
        }
    }
    for (const auto& unreadable : listing.unreadable) std::cerr << "unreadable: " << unreadable << '\n';
}

int command_spool(std::vector<std::string> args, GlobalOptions& global) {
    // The action is the first word that is not an option; global options may come before it.
    std::size_t action_at = args.size();
    for (std::size_t i = 0; i < args.size(); ++i) {
        if (args[i] == "--log-format" || args[i] == "--log-level" || args[i] == "--plugin-dir") {
            ++i;
        } else if (!args[i].empty() && args[i][0] != '-') {
            action_at = i;
            break;
        }
    }
    if (action_at == args.size()) {
        const bool asked = std::find(args.begin(), args.end(), "--help") != args.end() ||
                           std::find(args.begin(), args.end(), "-h") != args.end();
        (asked ? std::cout : std::cerr) << kSpoolUsage;
        return asked ? kExitOk : kExitUsage;
    }
    const std::string action = args[action_at];
    args.erase(args.begin() + static_cast<std::ptrdiff_t>(action_at));
    if (action != "list" && action != "replay" && action != "drop") {
        std::cerr << "tattle spool: unknown command \"" << action << "\" (list, replay or drop)\n\n" << kSpoolUsage;
        return kExitUsage;
    }
    std::string config_path = default_config_path();
    std::string spool_dir;
    bool as_json = false;
    bool all = false;
    std::vector<std::string> ids;
    std::vector<std::string> destinations;
    auto options = global_options(global);
    options.add_options()
        ("config,c", po::value(&config_path), "config file (default: $TATTLE_CONFIG)")
        ("spool-dir", po::value(&spool_dir), "the spool directory (default: see above)");
    po::positional_options_description positional;
    if (action == "list") {
        options.add_options()("json", po::bool_switch(&as_json), "print one JSON document, alerts included");
    } else {
        options.add_options()("id", po::value(&ids)->composing(), "spool id or alert id (prefix)");
        positional.add("id", -1);
    }
    if (action == "replay") {
        options.add_options()("destination", po::value(&destinations)->composing(),
                              "only alerts for this destination (repeatable)");
    }
    if (action == "drop") options.add_options()("all", po::bool_switch(&all), "drop every parked alert");
    po::variables_map vm;
    if (!parse_arguments(args, options, &positional, std::string(kSpoolUsage) + "\n", vm))
        return kExitOk;
    setup_logging(global.log_format == "json" ? LogFormat::Json : LogFormat::Text,
                  global.log_level);
    // Same precedence as the environment variable, for this process and what it runs.
    if (!spool_dir.empty()) ::setenv("TATTLE_SPOOL_DIR", spool_dir.c_str(), 1);

    if (action == "replay") {
        PreparedConfig prepared;
        if (!load_prepared(config_path, global, prepared)) return kExitUsage;
        for (const auto& destination : destinations) {
            if (prepared.destination_settings.count(destination) == 0) {
                std::cerr << "tattle spool replay: the config defines no destination \"" << destination << "\"\n";
                return kExitUsage;
            }
        }
        ReplayOptions replay_options;
        replay_options.destinations = destinations;
        replay_options.selectors = ids;
        const ReplaySummary result = replay_spool(prepared, replay_options);
        for (const auto& problem : result.selection_problems) {
            std::cerr << "tattle spool replay: " << problem << '\n';
        }
        if (!result.selection_problems.empty()) return result.exit_code();
        for (const auto& problem : result.problems) std::cerr << "  " << redact(problem) << '\n';
        std::cout << "replayed " << result.selected << " alert(s) from " << result.spool_dir.string() << ": "
                  << result.delivered << " delivered, " << result.already_delivered << " delivered before, "
                  << result.still_failing + result.kept_unknown_destination << " still in the spool\n";
        return result.exit_code();
    }

    Config config;
    if (!config_path.empty()) {
        try {
            config = load_config(config_path);
        } catch (const ConfigError& e) {
            print_problems(e.problems());
            return kExitUsage;
        }
    }
    const Spool spool(resolve_spool_dir(config));
    const auto listing = spool.list();
    if (action == "list") {
        print_spool_listing(listing, spool.directory(), as_json);
        return kExitOk;
    }
    if (all == !ids.empty()) {
        std::cerr << "tattle spool drop: give the IDs of the alerts to drop, or --all\n";
        return kExitUsage;
    }
    std::vector<std::string> problems;
    const auto selected = all ? listing.entries : select_spool_entries(listing.entries, ids, {}, problems);
    for (const auto& problem : problems) std::cerr << "tattle spool drop: " << problem << '\n';
    if (!problems.empty()) return kExitUsage;
    for (const auto& entry : selected) {
        if (spool.remove(entry.id)) {
            std::cout << "dropped " << entry.id.substr(0, 12) << " (" << one_line(entry.destination, 60) << ", "
                      << one_line(entry.rule, 60) << ")\n";
        }
    }
    return kExitOk;
}

int command_plugins(const std::vector<std::string>& args, GlobalOptions& global) {
    bool as_json = false;
    auto options = global_options(global);
    options.add_options()("json", po::bool_switch(&as_json), "print one JSON document");
    po::variables_map vm;
    if (!parse_arguments(args, options, nullptr, "usage: tattle plugins [--json]\n\n", vm))
        return kExitOk;
    setup_logging(global.log_format == "json" ? LogFormat::Json : LogFormat::Text,
                  global.log_level);
    Config none;
    PrepareOptions every = prepare_options(global);
    every.every_plugin = true;
    PreparedConfig prepared = prepare(none, every);
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

int command_lambda(const std::vector<std::string>& args, GlobalOptions& global) {
    lambda::RuntimeOptions runtime;
    runtime.config_path = default_config_path();
    const char* api = std::getenv("AWS_LAMBDA_RUNTIME_API");
    runtime.runtime_api = api != nullptr ? api : "";
    auto options = global_options(global);
    options.add_options()
        ("config,c", po::value(&runtime.config_path),
         "config file (default: $TATTLE_CONFIG, S3_CONFIG_BUCKET/S3_CONFIG_PATH, $LAMBDA_TASK_ROOT/tattle.toml)")
        ("runtime-api", po::value(&runtime.runtime_api), "host:port of the Runtime API (default: $AWS_LAMBDA_RUNTIME_API)")
        ("max-invocations", po::value(&runtime.max_invocations), "exit after this many invocations (tests)");
    po::variables_map vm;
    if (!parse_arguments(
            args, options, nullptr,
            "usage: tattle lambda [--config FILE]\n\n"
            "Runs as an AWS Lambda custom runtime (the function's bootstrap). A binary named\n"
            "`bootstrap` started with AWS_LAMBDA_RUNTIME_API set does this without arguments.\n\n",
            vm))
        return kExitOk;
    if (runtime.runtime_api.empty()) {
        std::cerr
            << "tattle lambda: AWS_LAMBDA_RUNTIME_API is not set (and no --runtime-api given)\n";
        return kExitUsage;
    }
    runtime.plugin_dirs = global.plugin_dirs;
    // Lambda keeps stdout and stderr; JSON lines are what CloudWatch Logs Insights reads best.
    const bool text_asked = !vm["log-format"].defaulted() && global.log_format == "text";
    setup_logging(text_asked ? LogFormat::Text : LogFormat::Json, global.log_level);
    return lambda::run_runtime(runtime);
}

int command_serve(const std::vector<std::string>& args, GlobalOptions& global) {
    daemon::ServeOptions serve;
    serve.config_path = default_config_path();
    double grace_seconds = 30;
    double poll_seconds = 1;
    auto options = global_options(global);
    options.add_options()
        ("config,c", po::value(&serve.config_path), "config file (default: $TATTLE_CONFIG)")
        ("listen", po::value(&serve.listen)->default_value(serve.listen),
         "HOST:PORT of /healthz, /readyz, /metrics and POST /-/reload (port 0: any free port)")
        ("grace-period", po::value(&grace_seconds)->default_value(grace_seconds),
         "seconds from SIGTERM/SIGINT to exit: in-flight alerts settle or are spooled, unsettled batches released")
        ("poll-interval", po::value(&poll_seconds)->default_value(poll_seconds),
         "seconds to wait before asking sources that had nothing again");
    po::variables_map vm;
    if (!parse_arguments(
            args, options, nullptr,
            "usage: tattle serve [--config FILE] [--listen 127.0.0.1:9464] [--grace-period 30]\n\n"
            "Runs the configured sources continuously. SIGHUP or POST /-/reload loads the config\n"
            "again (a bad one is rejected and the running one stays); SIGTERM/SIGINT stop "
            "gracefully.\n\n",
            vm))
        return kExitOk;
    if (serve.config_path.empty()) {
        std::cerr << "tattle serve: no config given (use --config FILE or set TATTLE_CONFIG)\n";
        return kExitUsage;
    }
    if (!(grace_seconds >= 1 && grace_seconds <= 3600) ||
        !(poll_seconds >= 0.01 && poll_seconds <= 3600)) {
        std::cerr << "tattle serve: --grace-period must be 1 to 3600 seconds, --poll-interval 0.01 "
                     "to 3600\n";
        return kExitUsage;
    }
    serve.grace_period = std::chrono::milliseconds(static_cast<long long>(grace_seconds * 1000));
    serve.idle_poll_interval = std::chrono::milliseconds(static_cast<long long>(poll_seconds * 1000));
    serve.plugin_dirs = global.plugin_dirs;
    setup_logging(global.log_format == "json" ? LogFormat::Json : LogFormat::Text, global.log_level);
    return daemon::serve(serve);
}

}  // namespace

#if defined(__clang__) && __clang_major__ < 17
#if __has_feature(address_sanitizer)
// clang 14's LeakSanitizer misreads glibc 2.36's dynamic TLS blocks (those of dlopen'ed
// plugins) and its tracer dies with SIGSEGV at exit, now and then (LLVM fixed it in 17,
// D147459). Without intercepting __tls_get_addr it does not scan those blocks, and a
// sanitized tattle checks its leaks reliably whatever environment a test gives it.
extern "C" const char* __asan_default_options();  // NOLINT(bugprone-reserved-identifier)
extern "C" const char* __asan_default_options() { return "intercept_tls_get_addr=0"; }
#endif
#endif

namespace {

// glibc gives memory at the top of a heap back to the system once 128 KiB of it are
// free, and maps each block of 128 KiB or more on its own, raising both thresholds
// only as freed blocks show it larger ones are in use. Batches come and go all the
// time here: each batch's buffers, and its alerts, made on a worker and freed on a
// delivery thread, were faulted in again and again (12,700 page faults in the
// 60-rule bench run, 2,700 with these settings, ~10% of its time). Set from the
// start to what glibc grows them to at most: 32 MiB mapped alone, twice that kept.
// GLIBC_TUNABLES naming a malloc setting is left to decide.
void keep_freed_memory_for_reuse() {
    if (const char* tunables = std::getenv("GLIBC_TUNABLES");
        tunables != nullptr && std::string_view(tunables).find("glibc.malloc.") != std::string_view::npos) {
        return;
    }
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
}

// Alerts to stdout come in bursts of whole documents of a few KiB, and the stdout sink
// flushes after each burst: with stdio's default block (4 KiB for a file or pipe) that
// was a write call per 4 KiB, 22,000 in the 60-rule bench run, now one per burst. A
// terminal keeps its line buffering. (glibc takes the size only with a buffer given.)
void buffer_stdout_by_bursts() {
    static char buffer[256 << 10];
    if (isatty(STDOUT_FILENO) == 0) std::setvbuf(stdout, buffer, _IOFBF, sizeof buffer);
}

}  // namespace

int main(int argc, char** argv) {
    keep_freed_memory_for_reuse();
    buffer_stdout_by_bursts();
    if (argc == 2 && argv[1] == tattle::kRuleEvaluatorCommand) return tattle::run_rule_evaluator(3);
    // libjq runs in a child process of this same binary (rule_sandbox.hpp).
    tattle::set_rule_evaluator_program("/proc/self/exe");
    std::vector<std::string> args(argv + 1, argv + argc);
    GlobalOptions global;
    // As a Lambda function's bootstrap: no arguments, the Runtime API in the environment.
    if (args.empty() && std::getenv("AWS_LAMBDA_RUNTIME_API") != nullptr &&
        std::filesystem::path(argv[0]).filename() == "bootstrap") {
        args.emplace_back("lambda");
    }
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
        if (command == "test") return command_test(args, global);
        if (command == "backtest") return command_backtest(args, global);
        if (command == "spool") return command_spool(args, global);
        if (command == "plugins") return command_plugins(args, global);
        if (command == "lambda") return command_lambda(args, global);
        if (command == "serve") return command_serve(args, global);
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
