#include "tattle/config.hpp"
#include "tattle/json_schema.hpp"

#include <toml++/toml.h>
#include <algorithm>
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
                                                "dedup_window_seconds", "dedup_max_entries"};
const std::vector<std::string> kRuleKeys = {"name", "jq_match", "description", "destinations"};

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

class ConfigParser {
public:
    explicit ConfigParser(std::filesystem::path path)
        : path_(std::move(path)), file_(path_.string()) {}

    Config parse(std::string_view toml_text) {
        toml::table document;
        try {
            document = toml::parse(toml_text, std::string_view(file_));
        } catch (const toml::parse_error& error) {
            // toml++ stops at the first syntax error, so this is the only problem we can report.
            throw ConfigError({Diagnostic{at(error.source()),
                                          "invalid TOML: " + std::string(error.description())}});
        }

        Config config;
        config.path = path_;
        for (auto&& [key, node] : document) {
            const std::string name(key.str());
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
            } else {
                report(key.source(),
                       with_hint("unknown top-level key " + quote_name(name), name, kTopLevelKeys));
            }
        }

        check_duplicates();
        check_rule_destinations(config);

        if (!problems_.empty()) {
            // toml++ tables are ordered by key, not by position; put problems back in file order.
            std::stable_sort(problems_.begin(), problems_.end(),
                             [](const Diagnostic& a, const Diagnostic& b) {
                                 return std::pair(a.where.line, a.where.column) <
                                        std::pair(b.where.line, b.where.column);
                             });
            throw ConfigError(std::move(problems_));
        }
        return config;
    }

private:
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

    static std::string entry_label(const std::string& kind, const toml::table& table,
                                   std::size_t index) {
        const char* name_key = kind == "rule" ? "name" : "id";
        if (const auto* name = table.get_as<std::string>(name_key);
            name != nullptr && !is_blank(name->get())) {
            return kind + " " + quote_name(name->get());
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

    void read_rule(const EntryContext& entry, Config& config) {
        RuleSpec rule;
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
            rule_names_.emplace_back(rule.name, at(entry.table->get("name")->source()));
        }
        if (auto jq_match = read_string(entry, "jq_match", true, true)) {
            rule.jq_match = std::move(*jq_match);
            rule.jq_match_where = at(entry.table->get("jq_match")->source());
        }
        if (auto description = read_string(entry, "description", false, false)) {
            rule.description = std::move(*description);
        }
        if (const toml::node* destinations = entry.table->get("destinations")) {
            read_rule_destinations(entry, *destinations, rule);
        }
        config.rules.push_back(std::move(rule));
        rule_destination_nodes_.push_back(entry.table->get_as<toml::array>("destinations"));
        rule_labels_.push_back(entry.label);
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
        if (auto id = read_string(entry, "id", true, true)) {
            instance.id = std::move(*id);
            ids.emplace_back(instance.id, at(entry.table->get("id")->source()));
        }
        if (auto type = read_string(entry, "type", true, true)) instance.type = std::move(*type);
        for (auto&& [key, node] : *entry.table) {
            const std::string name(key.str());
            if (name == "id" || name == "type") continue;
            if (is_destination && name == "delivery") {
                read_delivery(entry, node, instance);
                continue;
            }
            const std::string pointer = "/" + escape_pointer_token(name);
            instance.settings[name] = to_json(node, pointer, entry.label, instance.value_locations);
        }
        instances.push_back(std::move(instance));
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
        report_duplicates(rule_names_, "rule name");
        report_duplicates(destination_ids_, "destination id");
        report_duplicates(source_ids_, "source id");
    }

    void check_rule_destinations(const Config& config) {
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
    // Names and ids as written, for the duplicate checks.
    std::vector<std::pair<std::string, SourceLocation>> rule_names_;
    std::vector<std::pair<std::string, SourceLocation>> destination_ids_;
    std::vector<std::pair<std::string, SourceLocation>> source_ids_;
};

}  // namespace

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

Config parse_config(std::string_view toml_text, const std::filesystem::path& path) {
    return ConfigParser(path).parse(toml_text);
}

Config load_config(const std::filesystem::path& path) {
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
    return parse_config(text.str(), path);
}

}  // namespace tattle
