#include "tattle/config.hpp"
#include "tattle/json_schema.hpp"

#include <fnmatch.h>
#include <toml++/toml.h>
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string_view>
#include <utility>

namespace tattle {

SourceLocation PluginInstanceSpec::locate(const std::string& json_pointer) const {
    std::string pointer = json_pointer;
    while (!pointer.empty()) {
        if (const auto found = value_locations.find(pointer); found != value_locations.end()) {
            return found->second;
        }
        const auto last_slash = pointer.rfind('/');
        if (last_slash == std::string::npos) break;
        pointer.erase(last_slash);
    }
    return where;
}

namespace {

const std::vector<std::string> kTopLevelKeys = {"rule",      "destination", "source",
                                                "plugin_dirs", "spool_dir", "state_dir",
                                                "dedup_window_seconds", "dedup_max_entries",
                                                "bundles", "on_bundle_error", "workers", "lists", "macros", "limits"};
const std::vector<std::string> kBundleTopLevelKeys = {"team", "rule", "destination", "defaults", "lists",
                                                      "macros"};
const std::vector<std::string> kRuleKeys = {"name",     "jq_match", "description", "destinations",
                                            "id",       "enabled",  "severity",    "tags",
                                            "runbook",  "title",    "dedup",       "threshold",
                                            "test"};
// The rule keys a bundle's [defaults] may set for all of its rules.
const std::vector<std::string> kRuleDefaultKeys = {"destinations", "enabled", "severity", "tags",
                                                   "runbook",      "title",   "dedup",    "threshold"};
const std::vector<std::string> kRuleTestKeys = {"event",     "event_file", "match",       "annotation",
                                                "title",     "dedup_key",  "events",      "event_files",
                                                "alerts"};
const std::vector<std::string> kDedupKeys = {"key", "window"};
const std::vector<std::string> kThresholdKeys = {"key", "count", "window"};
// Windows up to a year: state is kept in memory, a longer window would only grow it.
constexpr std::int64_t kMaxWindowSeconds = 365LL * 86400;
// Words a definition may not be named: jq's keywords, and the builtins the sandbox
// refuses (rules using those names are refused). Shadowing other builtins is
// checked against libjq's own list when the config is prepared (alert_shaping.cpp).
const std::set<std::string, std::less<>> kReservedDefinitionNames = {
    "def",     "if",    "then",  "elif",  "else",    "end",   "as",             "reduce",
    "foreach", "try",   "catch", "label", "import",  "include", "and",          "or",
    "__loc__", "env",   "input", "inputs", "_input", "input_filename", "input_line_number",
    "modulemeta", "get_search_list", "get_prog_origin", "get_jq_origin", "halt", "halt_error",
    "debug",   "stderr"};

// Names in messages are quoted JSON-style so that odd characters stay visible.
std::string quote_name(std::string_view text) {
    return boost::json::serialize(boost::json::string(text));
}


bool is_blank(std::string_view text) {
    return std::all_of(text.begin(), text.end(),
                       [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; });
}

template <typename T>
std::string print_toml_value(const T& value) {
    std::ostringstream out;
    out << value;
    return out.str();
}

// Reads one number of a delivery table; nullopt (with a problem) when it is not a
// number in [minimum, maximum], or not an integer where one is required.
template <typename T>
std::optional<T> read_delivery_number(const boost::json::value& value, const std::string& key,
                                      double minimum, double maximum, bool integer_only,
                                      std::vector<DeliveryProblem>& problems) {
    const std::string pointer = "/" + escape_pointer_token(key);
    std::optional<double> number;
    if (value.is_int64()) {
        number = static_cast<double>(value.get_int64());
    } else if (value.is_uint64()) {
        number = static_cast<double>(value.get_uint64());
    } else if (value.is_double() && !integer_only) {
        number = value.get_double();
    }
    auto format_bound = [](double bound) {
        std::ostringstream out;
        out << bound;
        return out.str();
    };
    if (!number || *number < minimum || *number > maximum) {
        problems.push_back({pointer, "delivery." + key + " must be " +
                                         (integer_only ? "an integer" : "a number") + " from " +
                                         format_bound(minimum) + " to " + format_bound(maximum)});
        return std::nullopt;
    }
    return static_cast<T>(*number);
}


// the label used for it in messages.
struct EntryContext {
    std::string label;  // `rule "Create User"`, or `rule #2` when it has no usable name
    const toml::table* table = nullptr;
};

// What a bundle parser knows of the root config and the bundles accepted before it.
struct BundleContext {
    const std::vector<PluginInstanceSpec>* root_destinations = nullptr;
    const std::set<std::string>* accepted_destination_ids = nullptr;
    const std::set<std::string>* accepted_rule_ids = nullptr;
};

// What one bundle file gave: its team, and rules and destinations with ids
// already qualified (`team/name`), or the problems that make it unusable.
struct ParsedBundle {
    std::string team;
    std::vector<RuleSpec> rules;
    std::vector<PluginInstanceSpec> destinations;
    JqDefinitions definitions;
    std::vector<Diagnostic> problems;
};

std::string team_of_qualified_id(const std::string& id) {
    const auto slash = id.find('/');
    return slash == std::string::npos ? std::string() : id.substr(0, slash);
}

bool names_team(const std::vector<std::string>& teams, const std::string& team) {
    return std::find(teams.begin(), teams.end(), "*") != teams.end() ||
           std::find(teams.begin(), teams.end(), team) != teams.end();
}

class ConfigParser {
public:
    explicit ConfigParser(std::filesystem::path path)
        : path_(std::move(path)), file_(path_.string()) {}

    Config parse(std::string_view toml_text, bool skip_broken_bundles_by_default = false) {
        toml::table document = parse_toml(toml_text);

        Config config;
        config.path = path_;
        config.skip_broken_bundles = skip_broken_bundles_by_default;
        read_definitions(document);
        if (definitions_) config.definition_sets.push_back(definitions_);
        for (auto&& [key, node] : document) {
            const std::string name(key.str());
            if (name == "lists" || name == "macros") continue;  // read above: rules need them
            if (name == "rule") {
                for_each_entry(node, "rule",
                               [&](const EntryContext& entry) { read_rule(entry, config); });
            } else if (name == "destination") {
                for_each_entry(node, "destination", [&](const EntryContext& entry) {
                    read_plugin_instance(entry, config.destinations, destination_ids_, true);
                });
            } else if (name == "source") {
                for_each_entry(node, "source", [&](const EntryContext& entry) {
                    read_plugin_instance(entry, config.sources, source_ids_, false);
                });
            } else if (name == "plugin_dirs") {
                read_plugin_dirs(node, config);
            } else if (name == "spool_dir") {
                config.spool_dir = read_directory(node, name);
            } else if (name == "state_dir") {
                config.state_dir = read_directory(node, name);
            } else if (name == "dedup_window_seconds") {
                // Up to ten years: the window is added to timestamps, which must not overflow.
                config.dedup_window_seconds = read_top_level_integer(node, name, 0, 315'360'000);
            } else if (name == "dedup_max_entries") {
                config.dedup_max_entries = read_top_level_integer(node, name, 1, 100'000'000);
            } else if (name == "workers") {
                // 0: one per hardware thread.
                if (const auto workers = read_top_level_integer(node, name, 0, 256)) config.workers = static_cast<std::size_t>(*workers);
            } else if (name == "bundles") {
                read_bundle_patterns(node, config);
            } else if (name == "limits") {
                read_limits(node, config.limits);
            } else if (name == "on_bundle_error") {
                const auto* choice = node.as_string();
                if (choice == nullptr || (choice->get() != "skip" && choice->get() != "fail")) {
                    report(node.source(), "on_bundle_error must be \"skip\" or \"fail\"");
                } else {
                    config.skip_broken_bundles = choice->get() == "skip";
                }
            } else {
                report(key.source(),
                       with_hint("unknown top-level key " + quote_name(name), name, kTopLevelKeys));
            }
        }

        check_duplicates();
        check_rule_destinations(config);
        sort_problems();
        load_bundles(config);
        check_granted_teams(config);

        if (!problems_.empty()) throw ConfigError(std::move(problems_));
        return config;
    }

    // A root config with nothing of its own around the given bundle files (for
    // `tattle test BUNDLE...`): they load as `bundles = [...]` would load them.
    Config parse_bundle_set(std::vector<std::filesystem::path> files) {
        Config config;
        config.path = path_;
        config.bundle_files = std::move(files);
        load_bundles(config);
        if (!problems_.empty()) throw ConfigError(std::move(problems_));
        return config;
    }

    // Parses one bundle file: `team`, [defaults], [[rule]]s and [[destination]]s.
    ParsedBundle parse_bundle(std::string_view toml_text, const BundleContext& context) {
        ParsedBundle bundle;
        bundle_ = &context;
        toml::table document;
        try {
            document = parse_toml(toml_text);
        } catch (const ConfigError& error) {
            bundle.problems = error.problems();
            return bundle;
        }
        if (const toml::node* team = document.get("team")) {
            const auto* text = team->as_string();
            if (text == nullptr || !valid_team_name(text->get())) {
                report(team->source(), "team must be a non-empty string of letters, digits, '-', '_' "
                                       "or '.' (it prefixes the ids of the bundle's rules and destinations)");
            } else {
                team_ = text->get();
                bundle.team = team_;
            }
        } else {
            report(document.source(), "a bundle must declare its team, e.g. team = \"payments\"");
        }
        if (const toml::node* defaults = document.get("defaults")) {
            defaults_ = defaults->as_table();
            if (defaults_ == nullptr) {
                report(defaults->source(), "defaults must be a table ([defaults])");
            } else {
                for (auto&& [key, node] : *defaults_) {
                    const std::string name(key.str());
                    if (std::find(kRuleDefaultKeys.begin(), kRuleDefaultKeys.end(), name) ==
                        kRuleDefaultKeys.end()) {
                        report(key.source(), with_hint("defaults: unknown key " + quote_name(name) +
                                                           " (a bundle's defaults may set destinations, "
                                                           "enabled, severity, tags, runbook, title, "
                                                           "dedup, threshold)",
                                                       name, kRuleDefaultKeys));
                    }
                }
            }
        }
        read_definitions(document);
        bundle.definitions = definitions_;
        Config config;
        for (auto&& [key, node] : document) {
            const std::string name(key.str());
            if (name == "team" || name == "defaults" || name == "lists" || name == "macros") continue;
            if (name == "rule") {
                for_each_entry(node, "rule",
                               [&](const EntryContext& entry) { read_rule(entry, config); });
            } else if (name == "destination") {
                for_each_entry(node, "destination", [&](const EntryContext& entry) {
                    read_plugin_instance(entry, config.destinations, destination_ids_, true);
                });
            } else {
                std::string message = "unknown key " + quote_name(name) + " in a bundle";
                if (name == "source" || name == "bundles" || name == "plugin_dirs") {
                    message += " (only the root config may set " + name + ")";
                }
                report(key.source(), with_hint(std::move(message), name, kBundleTopLevelKeys));
            }
        }
        check_duplicates();
        check_rule_destinations(config);
        sort_problems();
        bundle.rules = std::move(config.rules);
        bundle.destinations = std::move(config.destinations);
        bundle.problems = std::move(problems_);
        return bundle;
    }

private:
    toml::table parse_toml(std::string_view toml_text) const {
        try {
            return toml::parse(toml_text, std::string_view(file_));
        } catch (const toml::parse_error& error) {
            // toml++ stops at the first syntax error, so this is the only problem we can report.
            throw ConfigError({Diagnostic{at(error.source()),
                                          "invalid TOML: " + std::string(error.description())}});
        }
    }

    static bool valid_team_name(std::string_view name) {
        return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.';
        });
    }

    bool in_bundle() const { return bundle_ != nullptr; }

    // toml++ tables are ordered by key, not by position; put problems back in file order.
    void sort_problems() {
        std::stable_sort(problems_.begin(), problems_.end(), [](const Diagnostic& a, const Diagnostic& b) {
            return std::pair(a.where.line, a.where.column) < std::pair(b.where.line, b.where.column);
        });
    }

    void read_bundle_patterns(const toml::node& node, Config& config) {
        const std::string message = "bundles must be an array of strings (file names, directories or "
                                    "globs such as \"teams/*.toml\", relative to this file)";
        const auto* list = node.as_array();
        if (list == nullptr) {
            report(node.source(), message);
            return;
        }
        std::set<std::filesystem::path> seen;
        for (const toml::node& element : *list) {
            const auto* pattern = element.as_string();
            if (pattern == nullptr || is_blank(pattern->get())) {
                report(element.source(), message);
                continue;
            }
            std::vector<std::filesystem::path> files = expand_bundle_pattern(pattern->get());
            if (files.empty()) {
                report(element.source(), "bundles: " + quote_name(pattern->get()) + " matches no file");
            }
            for (auto& file : files) {
                if (seen.insert(file).second) config.bundle_files.push_back(std::move(file));
            }
        }
    }

    // A file, a directory (its *.toml files) or a glob (`*`, `?`, `[...]` in any
    // path component), relative to the config's directory; sorted so that
    // bundles always load in the same order.
    std::vector<std::filesystem::path> expand_bundle_pattern(const std::string& pattern) const {
        namespace fs = std::filesystem;
        const fs::path relative(pattern);
        std::vector<fs::path> candidates{relative.is_absolute() ? relative.root_path()
                                                                : path_.parent_path()};
        for (const auto& component : relative.relative_path()) {
            const std::string part = component.string();
            std::vector<fs::path> next;
            for (const auto& base : candidates) {
                if (part.find_first_of("*?[") == std::string::npos) {
                    next.push_back(base / component);
                    continue;
                }
                std::error_code ec;
                for (fs::directory_iterator it(base.empty() ? fs::path(".") : base, ec), end;
                     !ec && it != end; it.increment(ec)) {
                    const std::string entry = it->path().filename().string();
                    if (fnmatch(part.c_str(), entry.c_str(), FNM_PERIOD) == 0) {
                        next.push_back(base / entry);
                    }
                }
            }
            candidates = std::move(next);
        }
        std::vector<fs::path> files;
        for (const auto& candidate : candidates) {
            std::error_code ec;
            if (fs::is_directory(candidate, ec)) {
                for (fs::directory_iterator it(candidate, ec), end; !ec && it != end; it.increment(ec)) {
                    if (it->path().extension() == ".toml" && it->is_regular_file(ec)) {
                        files.push_back(it->path().lexically_normal());
                    }
                }
            } else if (fs::is_regular_file(candidate, ec)) {
                files.push_back(candidate.lexically_normal());
            }
        }
        std::sort(files.begin(), files.end());
        return files;
    }

    static ParsedBundle read_bundle_file(const std::filesystem::path& file, const BundleContext& context) {
        std::ifstream in(file, std::ios::binary);
        std::ostringstream text;
        if (in) text << in.rdbuf();
        if (!in || in.bad()) {
            ParsedBundle unreadable;
            unreadable.problems.push_back(
                Diagnostic{SourceLocation{file.string(), 0, 0}, "cannot read the bundle file"});
            return unreadable;
        }
        return ConfigParser(file).parse_bundle(text.str(), context);
    }

    // Loads every bundle in order; each is checked against the root config and
    // the bundles accepted before it. A broken one is either a config problem or,
    // with on_bundle_error = "skip", left out and recorded.
    void load_bundles(Config& config) {
        std::set<std::string> destination_ids;
        for (const auto& destination : config.destinations) destination_ids.insert(destination.id);
        std::set<std::string> rule_ids;
        for (const auto& rule : config.rules) rule_ids.insert(rule.id);
        for (const auto& file : config.bundle_files) {
            ParsedBundle bundle =
                read_bundle_file(file, BundleContext{&config.destinations, &destination_ids, &rule_ids});
            if (!bundle.team.empty()) declared_teams_.insert(bundle.team);
            if (bundle.problems.empty()) {
                for (auto& destination : bundle.destinations) {
                    destination_ids.insert(destination.id);
                    config.destinations.push_back(std::move(destination));
                }
                for (auto& rule : bundle.rules) {
                    rule_ids.insert(rule.id);
                    config.rules.push_back(std::move(rule));
                }
                if (bundle.definitions) config.definition_sets.push_back(bundle.definitions);
                loaded_teams_.insert(bundle.team);
                continue;
            }
            auto& into = config.skip_broken_bundles ? config.skipped_bundles : problems_;
            into.insert(into.end(), bundle.problems.begin(), bundle.problems.end());
        }
    }

    // Every team a root source grants or a root destination is shared with must
    // be a team some bundle declares: a misspelt team would silently see nothing.
    void check_granted_teams(const Config& config) {
        std::vector<std::string> known(declared_teams_.begin(), declared_teams_.end());
        auto check = [&](const std::vector<std::string>& teams, const PluginInstanceSpec& instance,
                         const std::string& key, const std::string& kind) {
            for (std::size_t index = 0; index < teams.size(); ++index) {
                const std::string& team = teams[index];
                if (team == "*" || declared_teams_.count(team) != 0) continue;
                std::string message = kind + " " + quote_name(instance.id) + ": " + key + " names team " +
                                      quote_name(team) + ", which no bundle declares";
                problems_.push_back(Diagnostic{instance.locate("/" + key + "/" + std::to_string(index)),
                                               with_hint(std::move(message), team, known)});
            }
        };
        for (const auto& source : config.sources) {
            if (source.teams) check(*source.teams, source, "teams", "source");
        }
        for (const auto& destination : config.destinations) {
            if (destination.team.empty()) check(destination.share_with, destination, "share_with", "destination");
        }
    }

    SourceLocation at(const toml::source_region& region) const {
        return SourceLocation{file_, static_cast<int>(region.begin.line),
                              static_cast<int>(region.begin.column)};
    }

    void report(const toml::source_region& region, std::string message) {
        problems_.push_back(Diagnostic{at(region), std::move(message)});
    }

    static std::string with_hint(std::string message, const std::string& given,
                                 const std::vector<std::string>& known) {
        const std::string hint = did_you_mean(given, known);
        if (!hint.empty()) message += " (" + hint + ")";
        return message;
    }

    // Calls read_entry for every table of an array of tables. A single table
    // ([rule] instead of [[rule]]) is reported, then read anyway so that the
    // problems inside it are found in the same run.
    template <typename ReadEntry>
    void for_each_entry(const toml::node& node, const std::string& kind, ReadEntry read_entry) {
        if (const auto* single = node.as_table()) {
            report(single->source(), quote_name(kind) + " must be an array of tables: write [[" +
                                         kind + "]], not [" + kind + "]");
            read_entry(EntryContext{entry_label(kind, *single, 0), single});
            return;
        }
        const auto* entries = node.as_array();
        if (entries == nullptr) {
            report(node.source(),
                   quote_name(kind) + " must be an array of tables ([[" + kind + "]])");
            return;
        }
        for (std::size_t index = 0; index < entries->size(); ++index) {
            const toml::node& entry_node = (*entries)[index];
            const auto* table = entry_node.as_table();
            if (table == nullptr) {
                report(entry_node.source(),
                       kind + " #" + std::to_string(index + 1) + " must be a table");
                continue;
            }
            read_entry(EntryContext{entry_label(kind, *table, index), table});
        }
    }

    // In a bundle, rules and destinations are named with their team: `rule "payments/x"`.
    std::string entry_label(const std::string& kind, const toml::table& table,
                            std::size_t index) const {
        const char* name_key = kind == "rule" ? "name" : "id";
        if (const auto* name = table.get_as<std::string>(name_key);
            name != nullptr && !is_blank(name->get())) {
            return kind + " " + quote_name(kind == "source" ? name->get() : qualified(name->get()));
        }
        return kind + " #" + std::to_string(index + 1);
    }

    // A required or optional string key of an entry; reports a wrong type,
    // absence (when required) and blankness (when it must not be empty).
    std::optional<std::string> read_string(const EntryContext& entry, const std::string& key,
                                           bool required, bool must_not_be_empty) {
        const toml::node* node = entry.table->get(key);
        if (node == nullptr) {
            if (required)
                report(entry.table->source(),
                       entry.label + ": missing required key " + quote_name(key));
            return std::nullopt;
        }
        const auto* text = node->as_string();
        if (text == nullptr) {
            report(node->source(), entry.label + ": " + key + " must be a string");
            return std::nullopt;
        }
        if (must_not_be_empty && is_blank(text->get())) {
            report(node->source(), entry.label + ": " + key + " must not be empty");
            return std::nullopt;
        }
        return text->get();
    }

    // A rule's own value for key, else its bundle's default.
    const toml::node* rule_value(const EntryContext& entry, const std::string& key) const {
        if (const toml::node* own = entry.table->get(key)) return own;
        return defaults_ != nullptr ? defaults_->get(key) : nullptr;
    }

    std::string qualified(const std::string& id) const { return team_.empty() ? id : team_ + "/" + id; }

    void read_rule(const EntryContext& entry, Config& config) {
        RuleSpec rule;
        rule.team = team_;
        rule.where = at(entry.table->source());
        for (auto&& [key, node] : *entry.table) {
            const std::string name(key.str());
            if (std::find(kRuleKeys.begin(), kRuleKeys.end(), name) == kRuleKeys.end()) {
                report(key.source(), with_hint(entry.label + ": unknown key " + quote_name(name),
                                               name, kRuleKeys));
            }
        }
        if (auto name = read_string(entry, "name", true, true)) {
            rule.name = std::move(*name);
        }
        if (auto id = read_string(entry, "id", false, true)) {
            if (id->find('/') != std::string::npos) {
                report(entry.table->get("id")->source(),
                       entry.label + ": id must not contain '/' (a bundle prefixes it with its team)");
            } else {
                rule.id = qualified(*id);
                rule_ids_.push_back({rule.id, at(entry.table->get("id")->source()), "rule id"});
            }
        } else if (!rule.name.empty()) {
            rule.id = qualified(rule.name);
            rule_ids_.push_back({rule.id, at(entry.table->get("name")->source()), "rule name"});
        }
        if (!team_.empty()) entry_labels_id(entry, rule);
        read_rule_extras(entry, rule);
        if (auto jq_match = read_string(entry, "jq_match", true, true)) {
            rule.jq_match = std::move(*jq_match);
            rule.jq_match_where = at(entry.table->get("jq_match")->source());
        }
        if (auto description = read_string(entry, "description", false, false)) {
            rule.description = std::move(*description);
        }
        const toml::node* destinations = rule_value(entry, "destinations");
        if (destinations != nullptr) read_rule_destinations(entry, *destinations, rule);
        config.rules.push_back(std::move(rule));
        rule_destination_nodes_.push_back(destinations != nullptr ? destinations->as_array() : nullptr);
        rule_labels_.push_back(current_rule_label_.empty() ? entry.label : current_rule_label_);
        current_rule_label_.clear();
    }

    // In a bundle, messages name a rule by its full id, which says which team it is in.
    void entry_labels_id(const EntryContext& entry, const RuleSpec& rule) {
        current_rule_label_ = rule.id.empty() ? entry.label : "rule " + quote_name(rule.id);
    }

    void read_rule_extras(const EntryContext& entry, RuleSpec& rule) {
        const std::string& label = current_rule_label_.empty() ? entry.label : current_rule_label_;
        if (const toml::node* enabled = rule_value(entry, "enabled")) {
            if (const auto* flag = enabled->as_boolean()) {
                rule.enabled = flag->get();
            } else {
                report(enabled->source(), label + ": enabled must be true or false");
            }
        }
        if (const toml::node* severity = rule_value(entry, "severity")) {
            const auto* text = severity->as_string();
            const auto& known = rule_severities();
            if (text != nullptr && std::find(known.begin(), known.end(), text->get()) != known.end()) {
                rule.severity = text->get();
            } else {
                std::string message = label + ": severity must be one of info, low, medium, high, critical";
                if (text != nullptr) message = with_hint(std::move(message), text->get(), known);
                report(severity->source(), std::move(message));
            }
        }
        if (const toml::node* tags = rule_value(entry, "tags")) {
            const std::string message = label + ": tags must be an array of non-empty strings";
            if (const auto* list = tags->as_array()) {
                for (const toml::node& element : *list) {
                    const auto* tag = element.as_string();
                    if (tag == nullptr || is_blank(tag->get())) {
                        report(element.source(), message);
                    } else {
                        rule.tags.push_back(tag->get());
                    }
                }
            } else {
                report(tags->source(), message);
            }
        }
        if (const toml::node* runbook = rule_value(entry, "runbook")) {
            const auto* text = runbook->as_string();
            if (text == nullptr || !(text->get().rfind("https://", 0) == 0 || text->get().rfind("http://", 0) == 0)) {
                report(runbook->source(), label + ": runbook must be a URL (http:// or https://)");
            } else {
                rule.runbook = text->get();
            }
        }
        if (const toml::node* title = rule_value(entry, "title")) {
            const auto* text = title->as_string();
            if (text == nullptr || is_blank(text->get())) {
                report(title->source(), label + ": title must be a jq expression giving a string, e.g. "
                                                "'\"\\(.userIdentity.arn) created an access key\"'");
            } else {
                rule.title = text->get();
                rule.title_where = at(title->source());
            }
        }
        if (const toml::node* dedup = rule_value(entry, "dedup")) {
            rule.dedup = read_shaping(label, "dedup", *dedup);
        }
        if (const toml::node* threshold = rule_value(entry, "threshold")) {
            rule.threshold = read_shaping(label, "threshold", *threshold);
        }
        rule.definitions = definitions_;
        if (const toml::node* tests = entry.table->get("test")) {
            const auto* list = tests->as_array();
            if (list == nullptr) {
                report(tests->source(), label + ": test must be an array of tables: write [[rule.test]]");
                return;
            }
            for (std::size_t index = 0; index < list->size(); ++index) {
                const toml::node& element = (*list)[index];
                const std::string test_label = label + ", test #" + std::to_string(index + 1);
                if (const auto* table = element.as_table()) {
                    read_rule_test(test_label, *table, rule);
                } else {
                    report(element.source(), test_label + " must be a table ([[rule.test]])");
                }
            }
        }
    }

    void read_rule_test(const std::string& label, const toml::table& table, RuleSpec& rule) {
        RuleTestCase test;
        test.where = at(table.source());
        bool usable = true;
        for (auto&& [key, node] : table) {
            const std::string name(key.str());
            if (std::find(kRuleTestKeys.begin(), kRuleTestKeys.end(), name) == kRuleTestKeys.end()) {
                report(key.source(), with_hint(label + ": unknown key " + quote_name(name), name, kRuleTestKeys));
            }
        }
        if (table.get("events") != nullptr || table.get("event_files") != nullptr || table.get("alerts") != nullptr) {
            if (read_rule_sequence_test(label, table, test)) rule.tests.push_back(std::move(test));
            return;
        }
        const toml::node* event = table.get("event");
        const toml::node* event_file = table.get("event_file");
        if ((event == nullptr) == (event_file == nullptr)) {
            report(table.source(), label + ": give exactly one of event (inline JSON) or event_file");
            usable = false;
        } else if (event != nullptr) {
            const auto* text = event->as_string();
            boost::system::error_code ec;
            const boost::json::value parsed =
                text != nullptr ? boost::json::parse(text->get(), ec) : boost::json::value();
            if (text == nullptr || ec || !parsed.is_object()) {
                report(event->source(), label + ": event must be a string holding a JSON object" +
                                            (text != nullptr && ec ? " (" + ec.message() + ")" : ""));
                usable = false;
            } else {
                test.event_json = text->get();
            }
        } else {
            const auto* text = event_file->as_string();
            if (text == nullptr || is_blank(text->get())) {
                report(event_file->source(), label + ": event_file must be a file name (relative to " +
                                                 path_.filename().string() + ")");
                usable = false;
            } else {
                test.event_file = (path_.parent_path() / text->get()).lexically_normal();
            }
        }
        if (const toml::node* match = table.get("match")) {
            if (const auto* flag = match->as_boolean()) {
                test.match = flag->get();
            } else {
                report(match->source(), label + ": match must be true or false");
                usable = false;
            }
        } else {
            report(table.source(), label + ": missing required key \"match\" (true or false)");
            usable = false;
        }
        for (const char* key : {"annotation", "title", "dedup_key"}) {
            const toml::node* expected = table.get(key);
            if (expected == nullptr) continue;
            if (const auto* text = expected->as_string()) {
                (key == std::string_view("annotation") ? test.annotation
                 : key == std::string_view("title") ? test.title
                                                    : test.dedup_key) = text->get();
            } else {
                report(expected->source(), label + ": " + key + " must be a string");
                usable = false;
            }
        }
        if ((test.title || test.dedup_key) && !test.match) {
            report(table.source(), label + ": title and dedup_key are expectations of a match (match = true)");
            usable = false;
        }
        if (usable) rule.tests.push_back(std::move(test));
    }

    // The sequence form: events = ['{...}', ...] or event_files = [...], and alerts = N.
    bool read_rule_sequence_test(const std::string& label, const toml::table& table, RuleTestCase& test) {
        bool usable = true;
        for (const char* single : {"event", "event_file", "match", "annotation", "title", "dedup_key"}) {
            if (const toml::node* node = table.get(single)) {
                report(node->source(), label + ": " + single + " belongs to a single-event test; a sequence "
                                                                "test has events (or event_files) and alerts");
                usable = false;
            }
        }
        const toml::node* events = table.get("events");
        const toml::node* event_files = table.get("event_files");
        if ((events == nullptr) == (event_files == nullptr)) {
            report(table.source(), label + ": a sequence test needs exactly one of events (inline JSON objects) "
                                           "or event_files");
            usable = false;
        }
        const toml::node* listed = events != nullptr ? events : event_files;
        if (listed != nullptr) {
            const auto* list = listed->as_array();
            const std::string what = events != nullptr ? "events" : "event_files";
            if (list == nullptr || list->empty()) {
                report(listed->source(), label + ": " + what + " must be a non-empty array of " +
                                             (events != nullptr ? "strings holding JSON objects" : "file names"));
                usable = false;
            } else {
                for (std::size_t index = 0; index < list->size(); ++index) {
                    const toml::node& element = (*list)[index];
                    const auto* text = element.as_string();
                    const std::string element_label = label + ": " + what + "[" + std::to_string(index) + "]";
                    if (events != nullptr) {
                        boost::system::error_code ec;
                        const boost::json::value parsed =
                            text != nullptr ? boost::json::parse(text->get(), ec) : boost::json::value();
                        if (text == nullptr || ec || !parsed.is_object()) {
                            report(element.source(), element_label + " must be a string holding a JSON object" +
                                                         (text != nullptr && ec ? " (" + ec.message() + ")" : ""));
                            usable = false;
                        } else {
                            test.events_json.push_back(text->get());
                        }
                    } else if (text == nullptr || is_blank(text->get())) {
                        report(element.source(), element_label + " must be a file name (relative to " +
                                                     path_.filename().string() + ")");
                        usable = false;
                    } else {
                        test.event_files.push_back((path_.parent_path() / text->get()).lexically_normal());
                    }
                }
            }
        }
        if (const toml::node* alerts = table.get("alerts")) {
            const auto* number = alerts->as_integer();
            if (number == nullptr || number->get() < 0) {
                report(alerts->source(), label + ": alerts must be the number of alerts the events make (0 or more)");
                usable = false;
            } else {
                test.alerts = number->get();
            }
        } else {
            report(table.source(), label + ": a sequence test needs alerts (how many alerts the events make "
                                           "after dedup and threshold)");
            usable = false;
        }
        return usable;
    }

    static bool valid_definition_name(std::string_view name) {
        if (name.empty() || name.rfind("__", 0) == 0) return false;
        if (!(std::isalpha(static_cast<unsigned char>(name.front())) != 0 || name.front() == '_')) return false;
        return std::all_of(name.begin(), name.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
        });
    }

    // [lists] name = [...] and [macros] name = 'jq expression': jq definitions for
    // this file's rules. Names are shared between the two tables.
    void read_definitions(const toml::table& document) {
        auto definitions = std::make_shared<std::vector<JqDefinition>>();
        std::map<std::string, SourceLocation> seen;
        for (const char* table_name : {"lists", "macros"}) {
            const toml::node* node = document.get(table_name);
            if (node == nullptr) continue;
            const bool is_list = std::string_view(table_name) == "lists";
            const auto* table = node->as_table();
            if (table == nullptr) {
                report(node->source(), std::string(table_name) + " must be a table ([" + table_name + "])");
                continue;
            }
            // toml++ orders a table by key; a macro may use those written before it, so go by position.
            std::vector<std::pair<const toml::key*, const toml::node*>> entries;
            for (auto&& [key, value] : *table) entries.emplace_back(&key, &value);
            std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
                return std::pair(a.first->source().begin.line, a.first->source().begin.column) <
                       std::pair(b.first->source().begin.line, b.first->source().begin.column);
            });
            for (const auto& [key_pointer, value_pointer] : entries) {
                const toml::key& key = *key_pointer;
                const toml::node& value = *value_pointer;
                const std::string name(key.str());
                const std::string label = std::string(table_name) + "." + name;
                if (!valid_definition_name(name)) {
                    report(key.source(), label + ": a " + (is_list ? "list" : "macro") +
                                             " name must be a jq identifier (letters, digits and '_', "
                                             "not starting with a digit or \"__\")");
                    continue;
                }
                if (kReservedDefinitionNames.count(name) != 0) {
                    report(key.source(), label + ": " + quote_name(name) +
                                             " is a jq keyword or a builtin rules may not use; choose another name");
                    continue;
                }
                if (const auto [first, inserted] = seen.emplace(name, at(key.source())); !inserted) {
                    report(key.source(), label + ": " + quote_name(name) + " is already defined at line " +
                                             std::to_string(first->second.line) +
                                             " (lists and macros share one set of names)");
                    continue;
                }
                JqDefinition definition;
                definition.name = name;
                definition.is_list = is_list;
                definition.where = at(value.source());
                if (is_list) {
                    if (!value.is_array()) {
                        report(value.source(), label + ": a list must be an array, e.g. [\"alice\", \"bob\"]");
                        continue;
                    }
                    std::map<std::string, SourceLocation> locations;
                    definition.body = boost::json::serialize(to_json(value, "", label, locations));
                } else {
                    const auto* text = value.as_string();
                    if (text == nullptr || is_blank(text->get())) {
                        report(value.source(), label + ": a macro must be a non-empty string holding a jq "
                                                       "expression, e.g. '.eventType == \"AwsConsoleSignIn\"'");
                        continue;
                    }
                    if (text->get().find('\0') != std::string::npos) {
                        report(value.source(), label + ": the macro contains a NUL character");
                        continue;
                    }
                    definition.body = text->get();
                }
                definitions->push_back(std::move(definition));
            }
        }
        definitions_ = definitions->empty() ? nullptr : JqDefinitions(std::move(definitions));
    }

    // A rule's dedup = { key, window } or threshold = { key, count, window }.
    std::optional<ShapingSpec> read_shaping(const std::string& label, const std::string& what,
                                            const toml::node& node) {
        const bool is_threshold = what == "threshold";
        const std::string example = is_threshold ? "threshold = { key = \".sourceIPAddress\", count = 5, "
                                                   "window = \"10m\" }"
                                                 : "dedup = { key = \".userIdentity.arn\", window = \"1h\" }";
        const auto* table = node.as_table();
        if (table == nullptr) {
            report(node.source(), label + ": " + what + " must be a table, e.g. " + example);
            return std::nullopt;
        }
        const auto& known = is_threshold ? kThresholdKeys : kDedupKeys;
        bool usable = true;
        for (auto&& [key, value] : *table) {
            const std::string name(key.str());
            if (std::find(known.begin(), known.end(), name) == known.end()) {
                report(key.source(), with_hint(label + ": " + what + ": unknown key " + quote_name(name), name, known));
                usable = false;
            }
        }
        ShapingSpec spec;
        spec.where = at(node.source());
        if (const toml::node* key = table->get("key")) {
            const auto* text = key->as_string();
            if (text == nullptr || is_blank(text->get())) {
                report(key->source(), label + ": " + what + ".key must be a jq expression (a string), e.g. "
                                                           "'.sourceIPAddress'");
                usable = false;
            } else {
                spec.key = text->get();
                spec.key_where = at(key->source());
            }
        }
        if (const toml::node* window = table->get("window")) {
            std::optional<std::int64_t> seconds;
            if (const auto* number = window->as_integer()) {
                if (number->get() >= 1) seconds = number->get();
            } else if (const auto* text = window->as_string()) {
                seconds = parse_window_seconds(text->get());
            }
            if (!seconds || *seconds > kMaxWindowSeconds) {
                report(window->source(), label + ": " + what + ".window must be a duration such as \"30s\", "
                                                              "\"10m\", \"1h\", \"1d\" or a number of seconds, "
                                                              "from 1 second to 365 days");
                usable = false;
            } else {
                spec.window_seconds = *seconds;
            }
        } else {
            report(node.source(), label + ": " + what + " needs a window, e.g. " + example);
            usable = false;
        }
        if (is_threshold) {
            if (const toml::node* count = table->get("count")) {
                const auto* number = count->as_integer();
                if (number == nullptr || number->get() < 1 || number->get() > 1'000'000) {
                    report(count->source(), label + ": threshold.count must be an integer from 1 to 1000000");
                    usable = false;
                } else {
                    spec.count = number->get();
                }
            } else {
                report(node.source(), label + ": threshold needs a count, e.g. " + example);
                usable = false;
            }
        }
        if (!usable) return std::nullopt;
        return spec;
    }

    void read_rule_destinations(const EntryContext& entry, const toml::node& node, RuleSpec& rule) {
        const std::string message = entry.label + ": destinations must be an array of strings";
        const auto* list = node.as_array();
        if (list == nullptr) {
            report(node.source(), message);
            return;
        }
        for (const toml::node& element : *list) {
            if (const auto* id = element.as_string()) {
                rule.destinations.push_back(id->get());
            } else {
                report(element.source(), message);
            }
        }
    }

    void read_plugin_instance(const EntryContext& entry, std::vector<PluginInstanceSpec>& instances,
                              std::vector<std::pair<std::string, SourceLocation>>& ids,
                              bool is_destination) {
        PluginInstanceSpec instance;
        instance.where = at(entry.table->source());
        instance.team = team_;
        if (auto id = read_string(entry, "id", true, true)) {
            if (id->find('/') != std::string::npos) {
                report(entry.table->get("id")->source(),
                       entry.label + ": id must not contain '/' (it is reserved for team/id)");
            } else {
                instance.id = qualified(*id);
                ids.emplace_back(instance.id, at(entry.table->get("id")->source()));
            }
        }
        if (auto type = read_string(entry, "type", true, true)) instance.type = std::move(*type);
        for (auto&& [key, node] : *entry.table) {
            const std::string name(key.str());
            if (name == "id" || name == "type") continue;
            // Keys the core owns: which teams may use a root destination or see a root source.
            const bool team_key = is_destination ? name == "share_with" : name == "teams";
            if (team_key) {
                if (in_bundle()) {
                    report(key.source(), entry.label + ": " + name + " may only be set in the root config");
                    continue;
                }
                auto teams = read_team_list(entry, name, node, instance);
                if (is_destination) {
                    instance.share_with = std::move(teams);
                } else {
                    instance.teams = std::move(teams);
                }
                continue;
            }
            if (is_destination && name == "delivery") {
                read_delivery(entry, node, instance);
                continue;
            }
            const std::string pointer = "/" + escape_pointer_token(name);
            instance.settings[name] = to_json(node, pointer, entry.label, instance.value_locations);
        }
        instances.push_back(std::move(instance));
    }

    std::vector<std::string> read_team_list(const EntryContext& entry, const std::string& key,
                                            const toml::node& node, PluginInstanceSpec& instance) {
        const std::string message = entry.label + ": " + key + " must be an array of team names (\"*\" = every team)";
        std::vector<std::string> teams;
        instance.value_locations["/" + key] = at(node.source());
        const auto* list = node.as_array();
        if (list == nullptr) {
            report(node.source(), message);
            return teams;
        }
        for (const toml::node& element : *list) {
            instance.value_locations["/" + key + "/" + std::to_string(teams.size())] = at(element.source());
            const auto* team = element.as_string();
            if (team == nullptr || (team->get() != "*" && !valid_team_name(team->get()))) {
                report(element.source(), message);
                continue;
            }
            teams.push_back(team->get());
        }
        return teams;
    }

    // The core's own table of a destination: how it is delivered to. The plugin never sees it.
    void read_delivery(const EntryContext& entry, const toml::node& node, PluginInstanceSpec& instance) {
        const auto* table = node.as_table();
        if (table == nullptr) {
            report(node.source(), entry.label + ": delivery must be a table, e.g. delivery = { "
                                                "rate_per_second = 1, burst = 5 }");
            return;
        }
        std::map<std::string, SourceLocation> locations;
        const boost::json::value json = to_json(node, "", entry.label, locations);
        for (const auto& problem : read_delivery_overrides(json.as_object(), instance.delivery)) {
            const auto found = locations.find(problem.pointer);
            const SourceLocation where = found != locations.end() ? found->second : at(node.source());
            problems_.push_back(Diagnostic{where, entry.label + ": " + problem.message});
        }
    }

    std::optional<std::filesystem::path> read_directory(const toml::node& node, const std::string& key) {
        const auto* text = node.as_string();
        if (text == nullptr || is_blank(text->get())) {
            report(node.source(), key + " must be a non-empty string (a directory)");
            return std::nullopt;
        }
        // Relative means "next to the config", wherever tattle is started from; absolute
        // so that messages and `tattle spool list` name the directory unambiguously.
        std::error_code ec;
        const std::filesystem::path base = std::filesystem::absolute(path_, ec).parent_path();
        return ((ec ? path_.parent_path() : base) / text->get()).lexically_normal();
    }

    // [limits]: every key a positive integer within a range that keeps the arithmetic
    // on it safe; unknown keys get a "did you mean".
    void read_limits(const toml::node& node, InputLimits& limits) {
        const auto* table = node.as_table();
        if (table == nullptr) {
            report(node.source(), "limits must be a table ([limits])");
            return;
        }
        constexpr std::int64_t max_bytes = std::int64_t{1} << 50;
        const std::vector<std::pair<std::string, std::size_t*>> fields = {
            {"max_batch_bytes", &limits.max_batch_bytes},
            {"max_decompressed_bytes", &limits.max_decompressed_bytes},
            {"max_record_bytes", &limits.max_record_bytes},
            {"max_depth", &limits.max_depth},
            {"max_records_per_batch", &limits.max_records_per_batch},
            {"max_alerts_per_batch", &limits.max_alerts_per_batch},
            {"max_rule_cpu_ms", &limits.max_rule_cpu_ms},
            {"max_rule_memory_bytes", &limits.max_rule_memory_bytes}};
        for (auto&& [key, value] : *table) {
            const std::string name(key.str());
            const auto field = std::find_if(fields.begin(), fields.end(),
                                            [&](const auto& known) { return known.first == name; });
            if (field == fields.end()) {
                report(key.source(), with_hint("limits: unknown key " + quote_name(name), name, limit_keys()));
                continue;
            }
            // A record needs room for one real CloudTrail event; the parser's own
            // recursion must stay far from the stack's end.
            // A rule's budget has room for the slowest legitimate rule on a large record,
            // and memory for the evaluator to hold one.
            std::int64_t minimum = 1;
            std::int64_t maximum = max_bytes;
            if (name == "max_record_bytes") minimum = 1024;
            if (name == "max_depth") maximum = 1'000;
            if (name == "max_rule_cpu_ms") {
                minimum = 10;
                maximum = 600'000;
            }
            if (name == "max_rule_memory_bytes") minimum = std::int64_t{16} << 20;
            if (auto number = read_top_level_integer(value, "limits." + name, minimum, maximum)) {
                *field->second = static_cast<std::size_t>(*number);
            }
        }
    }

    std::optional<std::int64_t> read_top_level_integer(const toml::node& node, const std::string& key,
                                                       std::int64_t minimum, std::int64_t maximum) {
        const auto* number = node.as_integer();
        if (number == nullptr || number->get() < minimum || number->get() > maximum) {
            report(node.source(), key + " must be an integer from " + std::to_string(minimum) + " to " +
                                      std::to_string(maximum));
            return std::nullopt;
        }
        return number->get();
    }

    // Converts a plugin's TOML value to JSON and records where each value was.
    // Values are never quoted in messages: plugin settings hold secrets.
    boost::json::value to_json(const toml::node& node, const std::string& pointer,
                               const std::string& label,
                               std::map<std::string, SourceLocation>& locations) {
        locations[pointer] = at(node.source());
        switch (node.type()) {
            case toml::node_type::table: {
                boost::json::object object;
                for (auto&& [key, child] : *node.as_table()) {
                    const std::string name(key.str());
                    object[name] = to_json(child, pointer + "/" + escape_pointer_token(name), label,
                                           locations);
                }
                return object;
            }
            case toml::node_type::array: {
                boost::json::array array;
                const auto& elements = *node.as_array();
                for (std::size_t index = 0; index < elements.size(); ++index) {
                    array.push_back(to_json(elements[index], pointer + "/" + std::to_string(index),
                                            label, locations));
                }
                return array;
            }
            case toml::node_type::string:
                return boost::json::string(node.as_string()->get());
            case toml::node_type::integer:
                return boost::json::value(node.as_integer()->get());
            case toml::node_type::floating_point: {
                const double number = node.as_floating_point()->get();
                if (!std::isfinite(number)) {
                    // JSON has no NaN or infinity; a plugin could not be given this value.
                    report(node.source(), label + ": the value at " + quote_name(pointer) +
                                              " must be a finite number");
                    return nullptr;
                }
                return boost::json::value(number);
            }
            case toml::node_type::boolean:
                return boost::json::value(node.as_boolean()->get());
            case toml::node_type::date:
                return boost::json::string(print_toml_value(node.as_date()->get()));
            case toml::node_type::time:
                return boost::json::string(print_toml_value(node.as_time()->get()));
            case toml::node_type::date_time:
                return boost::json::string(print_toml_value(node.as_date_time()->get()));
            case toml::node_type::none:
                break;
        }
        return nullptr;
    }

    void read_plugin_dirs(const toml::node& node, Config& config) {
        const std::string message = "plugin_dirs must be an array of strings";
        const auto* list = node.as_array();
        if (list == nullptr) {
            report(node.source(), message);
            return;
        }
        for (const toml::node& element : *list) {
            const auto* dir = element.as_string();
            if (dir == nullptr) {
                report(element.source(), message);
            } else if (is_blank(dir->get())) {
                report(element.source(), "plugin_dirs entries must not be empty");
            } else {
                // A relative directory means "next to the config", wherever tattle is started from.
                config.plugin_dirs.push_back((path_.parent_path() / dir->get()).lexically_normal());
            }
        }
    }

    // names: each entry's name (empty when missing or invalid, already
    // reported) and where that name was written.
    void report_duplicates(const std::vector<std::pair<std::string, SourceLocation>>& names,
                           const std::string& what) {
        std::map<std::string, SourceLocation> first_seen;
        for (const auto& [name, where] : names) {
            if (name.empty()) continue;
            const auto [first, inserted] = first_seen.emplace(name, where);
            if (!inserted) {
                problems_.push_back(Diagnostic{where, "duplicate " + what + " " + quote_name(name) +
                                                          " (first defined at line " +
                                                          std::to_string(first->second.line) +
                                                          ")"});
            }
        }
    }

    void check_duplicates() {
        // A rule's id is its name unless it sets one; say which the clash is in.
        std::map<std::string, SourceLocation> first_rule;
        for (const auto& [id, where, what] : rule_ids_) {
            const bool taken_earlier = in_bundle() && bundle_->accepted_rule_ids->count(id) != 0;
            const auto [first, inserted] = first_rule.emplace(id, where);
            if (taken_earlier) {
                problems_.push_back(Diagnostic{where, "duplicate " + what + " " + quote_name(id) +
                                                          " (already defined by an earlier bundle)"});
            } else if (!inserted) {
                problems_.push_back(Diagnostic{where, "duplicate " + what + " " + quote_name(id) +
                                                          " (first defined at line " +
                                                          std::to_string(first->second.line) + ")"});
            }
        }
        if (in_bundle()) {
            for (const auto& [id, where] : destination_ids_) {
                if (bundle_->accepted_destination_ids->count(id) != 0) {
                    problems_.push_back(Diagnostic{where, "duplicate destination id " + quote_name(id) +
                                                              " (already defined by an earlier bundle)"});
                }
            }
        }
        report_duplicates(destination_ids_, "destination id");
        report_duplicates(source_ids_, "source id");
    }

    // A bundle rule may name its team's destinations (plain or `team/id`) and root
    // destinations shared with its team; resolves names to full ids in place.
    void check_bundle_rule_destinations(Config& config) {
        if (team_.empty()) return;  // the missing team is reported; ids cannot be resolved
        std::vector<std::string> own_ids;
        for (const auto& destination : config.destinations) {
            if (!destination.id.empty()) own_ids.push_back(destination.id.substr(team_.size() + 1));
        }
        const std::set<std::string> own(own_ids.begin(), own_ids.end());
        std::vector<std::string> usable = own_ids;
        for (const auto& root : *bundle_->root_destinations) {
            if (names_team(root.share_with, team_)) usable.push_back(root.id);
        }
        for (std::size_t index = 0; index < config.rules.size(); ++index) {
            RuleSpec& rule = config.rules[index];
            const toml::array* listed = rule_destination_nodes_[index];
            if (listed == nullptr) continue;
            const std::string& label = rule_labels_[index];
            std::vector<std::string> resolved;
            std::size_t position = 0;
            for (const toml::node& element : *listed) {
                const auto* id = element.as_string();
                if (id == nullptr) continue;  // reported while reading the rule
                ++position;
                const std::string& name = id->get();
                const std::string other_team = team_of_qualified_id(name);
                std::string local = other_team == team_ ? name.substr(team_.size() + 1) : name;
                if (!other_team.empty() && other_team != team_) {
                    report(element.source(), label + " of team " + quote_name(team_) +
                                                 " may not name destination " + quote_name(name) +
                                                 " of team " + quote_name(other_team) +
                                                 " (a team's rules use its own destinations and root "
                                                 "destinations shared with it)");
                    continue;
                }
                std::string full;
                if (own.count(local) != 0) {
                    full = team_ + "/" + local;
                } else if (other_team.empty()) {
                    const auto& roots = *bundle_->root_destinations;
                    const auto root = std::find_if(roots.begin(), roots.end(),
                                                   [&](const PluginInstanceSpec& d) { return d.id == name; });
                    if (root != roots.end() && names_team(root->share_with, team_)) {
                        full = name;
                    } else if (root != roots.end()) {
                        report(element.source(), label + " of team " + quote_name(team_) +
                                                     " may not name destination " + quote_name(name) +
                                                     " of the root config: it is not shared with team " +
                                                     quote_name(team_) + " (add it to the destination's share_with)");
                        continue;
                    }
                }
                if (full.empty()) {
                    std::string message = label + ": unknown destination " + quote_name(name);
                    message = usable.empty() ? message + " (team " + quote_name(team_) +
                                                   " has no destination and none is shared with it)"
                                             : with_hint(std::move(message), local, usable);
                    report(element.source(), std::move(message));
                    continue;
                }
                if (std::find(resolved.begin(), resolved.end(), full) != resolved.end()) {
                    report(element.source(), label + ": destination " + quote_name(name) + " is listed twice");
                    continue;
                }
                resolved.push_back(std::move(full));
            }
            rule.destinations = std::move(resolved);
        }
    }

    void check_rule_destinations(Config& config) {
        if (in_bundle()) {
            check_bundle_rule_destinations(config);
            return;
        }
        std::vector<std::string> known_ids;
        for (const auto& destination : config.destinations) {
            if (!destination.id.empty()) known_ids.push_back(destination.id);
        }
        const std::set<std::string> known(known_ids.begin(), known_ids.end());

        for (std::size_t index = 0; index < config.rules.size(); ++index) {
            const toml::array* listed = rule_destination_nodes_[index];
            if (listed == nullptr) continue;
            std::set<std::string> seen;
            for (const toml::node& element : *listed) {
                const auto* id = element.as_string();
                if (id == nullptr) continue;  // reported while reading the rule
                const std::string& name = id->get();
                if (!seen.insert(name).second) {
                    report(element.source(), rule_labels_[index] + ": destination " +
                                                 quote_name(name) + " is listed twice");
                } else if (known.count(name) == 0) {
                    std::string message =
                        rule_labels_[index] + ": unknown destination " + quote_name(name);
                    if (known_ids.empty()) {
                        message += " (no [[destination]] is defined)";
                    } else {
                        message = with_hint(std::move(message), name, known_ids);
                    }
                    report(element.source(), std::move(message));
                }
            }
        }
    }

    std::filesystem::path path_;
    std::string file_;
    std::vector<Diagnostic> problems_;
    // Parallel to Config::rules: the TOML list of destination ids (for their
    // positions) and the rule's label in messages.
    std::vector<const toml::array*> rule_destination_nodes_;
    std::vector<std::string> rule_labels_;
    std::string current_rule_label_;
    // Rule ids (full), where they were written and whether from `id` or `name`.
    struct RuleIdEntry {
        std::string id;
        SourceLocation where;
        std::string what;
    };
    std::vector<RuleIdEntry> rule_ids_;
    // Bundle mode: set while parsing a bundle file.
    const BundleContext* bundle_ = nullptr;
    std::string team_;
    const toml::table* defaults_ = nullptr;
    // This file's [lists] and [macros] (null when it has none).
    JqDefinitions definitions_;
    // Root mode: teams declared by any bundle (even a broken one) and by loaded ones.
    std::set<std::string> declared_teams_;
    std::set<std::string> loaded_teams_;
    // Ids as written, for the duplicate checks.
    std::vector<std::pair<std::string, SourceLocation>> destination_ids_;
    std::vector<std::pair<std::string, SourceLocation>> source_ids_;
};

}  // namespace

const std::vector<std::string>& rule_severities() {
    static const std::vector<std::string> severities = {"info", "low", "medium", "high", "critical"};
    return severities;
}

bool rule_runs_on(const RuleSpec& rule, const PluginInstanceSpec& source) {
    if (!rule.enabled) return false;
    if (rule.team.empty() || !source.teams) return true;
    return names_team(*source.teams, rule.team);
}

const std::vector<std::string>& delivery_keys() {
    static const std::vector<std::string> keys = {
        "rate_per_second",    "burst",           "concurrency",       "queue_size",
        "max_attempts",       "max_retry_seconds", "initial_backoff_ms", "max_backoff_ms"};
    return keys;
}

std::vector<DeliveryProblem> read_delivery_overrides(const boost::json::object& table,
                                                     DeliveryOverrides& out) {
    constexpr double kOneDayMs = 86'400'000;
    std::vector<DeliveryProblem> problems;
    for (const auto& [key_view, value] : table) {
        const std::string key(key_view);
        if (key == "rate_per_second") {
            out.rate_per_second = read_delivery_number<double>(value, key, 0, 1e6, false, problems);
        } else if (key == "burst") {
            out.burst = read_delivery_number<std::int64_t>(value, key, 1, 1e6, true, problems);
        } else if (key == "concurrency") {
            out.concurrency = read_delivery_number<std::int64_t>(value, key, 1, 64, true, problems);
        } else if (key == "queue_size") {
            out.queue_size = read_delivery_number<std::int64_t>(value, key, 1, 1e7, true, problems);
        } else if (key == "max_attempts") {
            out.max_attempts = read_delivery_number<std::int64_t>(value, key, 1, 1000, true, problems);
        } else if (key == "max_retry_seconds") {
            out.max_retry_seconds =
                read_delivery_number<double>(value, key, 0, 7 * 86400, false, problems);
        } else if (key == "initial_backoff_ms") {
            out.initial_backoff_ms =
                read_delivery_number<std::int64_t>(value, key, 0, kOneDayMs, true, problems);
        } else if (key == "max_backoff_ms") {
            out.max_backoff_ms =
                read_delivery_number<std::int64_t>(value, key, 0, kOneDayMs, true, problems);
        } else {
            std::string message = "unknown delivery key " + quote_name(key);
            if (auto hint = did_you_mean(key, delivery_keys()); !hint.empty()) {
                message += " (" + hint + ")";
            } else {
                message += " (known: rate_per_second, burst, concurrency, queue_size, max_attempts, "
                           "max_retry_seconds, initial_backoff_ms, max_backoff_ms)";
            }
            problems.push_back({"/" + escape_pointer_token(key), std::move(message)});
        }
    }
    if (out.initial_backoff_ms && out.max_backoff_ms && *out.max_backoff_ms < *out.initial_backoff_ms) {
        problems.push_back({"/max_backoff_ms", "delivery.max_backoff_ms must not be less than "
                                               "delivery.initial_backoff_ms"});
    }
    return problems;
}

std::optional<std::int64_t> parse_window_seconds(std::string_view text) {
    if (text.empty() || std::isdigit(static_cast<unsigned char>(text.front())) == 0) return std::nullopt;
    std::int64_t number = 0;
    std::size_t position = 0;
    while (position < text.size() && std::isdigit(static_cast<unsigned char>(text[position])) != 0) {
        number = number * 10 + (text[position] - '0');
        if (number > kMaxWindowSeconds) return std::nullopt;
        ++position;
    }
    std::int64_t unit = 1;
    const std::string_view suffix = text.substr(position);
    if (suffix == "s" || suffix.empty()) {
        unit = 1;
    } else if (suffix == "m") {
        unit = 60;
    } else if (suffix == "h") {
        unit = 3600;
    } else if (suffix == "d") {
        unit = 86400;
    } else {
        return std::nullopt;
    }
    if (number < 1) return std::nullopt;
    return number * unit;
}

Config parse_config(std::string_view toml_text, const std::filesystem::path& path) {
    return ConfigParser(path).parse(toml_text);
}

Config parse_config(std::string_view toml_text, const std::filesystem::path& path, const ConfigLoadOptions& options) {
    return ConfigParser(path).parse(toml_text, options.skip_broken_bundles_by_default);
}

Config load_bundle_set(const std::vector<std::filesystem::path>& bundle_files,
                       const std::filesystem::path& named_as) {
    std::vector<std::filesystem::path> files;
    for (const auto& file : bundle_files) files.push_back(file.lexically_normal());
    return ConfigParser(named_as).parse_bundle_set(std::move(files));
}

Config load_config(const std::filesystem::path& path) { return load_config(path, ConfigLoadOptions{}); }

Config load_config(const std::filesystem::path& path, const ConfigLoadOptions& options) {
    std::error_code error;
    if (std::filesystem::is_directory(path, error)) {
        throw ConfigError(
            {Diagnostic{SourceLocation{path.string(), 0, 0}, "the config path is a directory"}});
    }
    std::ifstream file(path, std::ios::binary);
    if (!file) {
        throw ConfigError(
            {Diagnostic{SourceLocation{path.string(), 0, 0}, "cannot open the config file"}});
    }
    std::ostringstream text;
    text << file.rdbuf();
    if (file.bad()) {
        throw ConfigError(
            {Diagnostic{SourceLocation{path.string(), 0, 0}, "cannot read the config file"}});
    }
    return parse_config(text.str(), path, options);
}

}  // namespace tattle
