#include "tattle/pipeline.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "tattle/alert.hpp"
#include "tattle/decoder.hpp"
#include "tattle/json_schema.hpp"
#include "tattle/secrets.hpp"

namespace tattle {
namespace {

std::string quoted_list(const std::vector<std::string>& names) {
    if (names.empty()) return "none";
    std::string out;
    for (const auto& name : names) {
        if (!out.empty()) out += ", ";
        out += name;
    }
    return out;
}

// A relative path in a config means relative to the config file, wherever tattle
// is started from. Plugins mark such strings with "format": "path" in their schema.
void resolve_relative_paths(const boost::json::value& schema, boost::json::value& instance,
                            const std::filesystem::path& base_dir) {
    if (!schema.is_object()) return;
    const auto& schema_object = schema.get_object();
    const auto* format = schema_object.if_contains("format");
    if (instance.is_string() && format != nullptr && format->is_string() && format->get_string() == "path") {
        const std::string value(instance.get_string());
        if (!value.empty() && value != "-" && std::filesystem::path(value).is_relative()) {
            instance = (base_dir / value).lexically_normal().string();
        }
        return;
    }
    if (instance.is_array()) {
        if (const auto* items = schema_object.if_contains("items")) {
            for (auto& item : instance.get_array()) resolve_relative_paths(*items, item, base_dir);
        }
        return;
    }
    if (instance.is_object()) {
        const auto* properties = schema_object.if_contains("properties");
        if (properties == nullptr || !properties->is_object()) return;
        for (auto& [key, value] : instance.get_object()) {
            if (const auto* property = properties->get_object().if_contains(key)) {
                resolve_relative_paths(*property, value, base_dir);
            }
        }
    }
}

void check_instances(PreparedConfig& prepared, const std::vector<PluginInstanceSpec>& specs,
                     tattle_plugin_kind kind, std::map<std::string, boost::json::object>& settings) {
    const char* section = kind == TATTLE_PLUGIN_KIND_SINK ? "destination" : "source";
    for (const auto& spec : specs) {
        auto plugin = prepared.catalog->find(kind, spec.type);
        if (!plugin) {
            std::string message = std::string(section) + " \"" + spec.id + "\": no plugin provides " +
                                  section + " type \"" + spec.type + "\"";
            const auto known = prepared.catalog->type_names(kind);
            if (auto hint = did_you_mean(spec.type, known); !hint.empty()) message += " (" + hint + ")";
            message += "; available " + std::string(section) + " types: " + quoted_list(known);
            prepared.problems.push_back({spec.where, message});
            continue;
        }
        boost::json::value validated = validate_instance(*plugin, spec, prepared.problems);
        resolve_secrets(plugin->config_schema, validated, spec,
                        std::string(section) + " \"" + spec.id + "\" (" + plugin->type_name + ")",
                        prepared.problems);
        if (!prepared.config.path.empty()) {
            resolve_relative_paths(plugin->config_schema, validated,
                                   std::filesystem::absolute(prepared.config.path).parent_path());
        }
        settings[spec.id] = validated.as_object();
    }
}

}  // namespace

boost::json::object validate_instance(const Plugin& plugin, const PluginInstanceSpec& spec,
                                      std::vector<Diagnostic>& problems) {
    boost::json::value instance = spec.settings;
    const auto violations = validate_and_fill_defaults(plugin.config_schema, instance);
    const char* section = plugin.kind == TATTLE_PLUGIN_KIND_SINK ? "destination" : "source";
    for (const auto& violation : violations) {
        problems.push_back({spec.locate(violation.pointer),
                            std::string(section) + " \"" + spec.id + "\" (" + plugin.type_name +
                                "): " + violation.message});
    }
    return instance.is_object() ? instance.get_object() : boost::json::object();
}

PreparedConfig prepare(const Config& config, const PrepareOptions& options) {
    PreparedConfig prepared;
    prepared.config = config;
    prepared.catalog = std::make_shared<PluginCatalog>();
    if (options.use_builtin_plugins) prepared.catalog->add_builtin_plugins();

    std::vector<std::filesystem::path> dirs;
    if (options.use_default_search_path) dirs = PluginCatalog::default_search_path();
    dirs.insert(dirs.end(), options.extra_plugin_dirs.begin(), options.extra_plugin_dirs.end());
    dirs.insert(dirs.end(), config.plugin_dirs.begin(), config.plugin_dirs.end());
    for (const auto& dir : dirs) {
        auto refusals = prepared.catalog->load_directory(dir);
        prepared.plugin_refusals.insert(prepared.plugin_refusals.end(), refusals.begin(), refusals.end());
    }
    for (const auto& refusal : prepared.plugin_refusals) spdlog::warn("plugin refused: {}", refusal);

    check_instances(prepared, config.destinations, TATTLE_PLUGIN_KIND_SINK, prepared.destination_settings);
    check_instances(prepared, config.sources, TATTLE_PLUGIN_KIND_SOURCE, prepared.source_settings);

    std::vector<FilterRule> rules;
    rules.reserve(config.rules.size());
    for (const auto& rule : config.rules) {
        rules.push_back({rule.name, rule.jq_match, rule.jq_match_where});
    }
    prepared.filter = std::make_unique<FilterStage>(std::move(rules), prepared.problems);
    return prepared;
}

int RunSummary::exit_code() const noexcept {
    if (alerts_failed > 0) return 3;
    if (batches_failed > 0 || record_errors > 0) return 1;
    return 0;
}

namespace {

// Delivers one alert to one sink. Until the outbox lands this is a short,
// bounded retry owned by the core: the sink itself never sleeps.
bool deliver(SinkInstance& sink, const std::string& alert_json, std::string& error) {
    constexpr int kAttempts = 3;
    std::chrono::milliseconds backoff(100);
    for (int attempt = 1; attempt <= kAttempts; ++attempt) {
        SendOutcome outcome = sink.send(alert_json);
        if (outcome.code == SendOutcome::Code::Ok) return true;
        error = outcome.message;
        if (outcome.code == SendOutcome::Code::Fail || attempt == kAttempts) break;
        std::this_thread::sleep_for(outcome.retry_after.value_or(backoff));
        backoff *= 2;
    }
    return false;
}

struct Destinations {
    std::map<std::string, std::unique_ptr<SinkInstance>> by_id;
};

}  // namespace

RunSummary run_pipeline(PreparedConfig& prepared, const std::vector<std::string>& input_paths) {
    RunSummary summary;
    const Config& config = prepared.config;

    Destinations destinations;
    for (const auto& spec : config.destinations) {
        auto plugin = prepared.catalog->find(TATTLE_PLUGIN_KIND_SINK, spec.type);
        destinations.by_id[spec.id] =
            std::make_unique<SinkInstance>(plugin, spec.id, prepared.destination_settings.at(spec.id));
    }

    std::vector<std::unique_ptr<SourceInstance>> sources;
    if (!input_paths.empty()) {
        auto plugin = prepared.catalog->find(TATTLE_PLUGIN_KIND_SOURCE, "file");
        if (!plugin) throw std::runtime_error("input files given but no \"file\" source plugin is available");
        boost::json::object settings;
        boost::json::array paths;
        for (const auto& path : input_paths) paths.emplace_back(path);
        settings["paths"] = std::move(paths);
        PluginInstanceSpec spec;
        spec.id = "cli";
        spec.type = "file";
        spec.settings = settings;
        spec.where.file = "command line";
        std::vector<Diagnostic> problems;
        auto validated = validate_instance(*plugin, spec, problems);
        if (!problems.empty()) throw ConfigError(problems);
        sources.push_back(std::make_unique<SourceInstance>(plugin, "cli", validated));
    } else {
        for (const auto& spec : config.sources) {
            auto plugin = prepared.catalog->find(TATTLE_PLUGIN_KIND_SOURCE, spec.type);
            sources.push_back(
                std::make_unique<SourceInstance>(plugin, spec.id, prepared.source_settings.at(spec.id)));
        }
    }
    if (sources.empty()) {
        throw std::runtime_error("nothing to read: give input files or add a [[source]] to the config");
    }

    FilterStage& filter = *prepared.filter;
    const auto& rules = config.rules;

    for (auto& source : sources) {
        for (;;) {
            auto next = source->next();
            if (next.status == SourceInstance::NextStatus::Exhausted) break;
            ++summary.batches;
            if (next.status == SourceInstance::NextStatus::BatchUnreadable) {
                ++summary.batches_failed;
                const std::string line = (next.batch.origin.empty() ? source->id() : next.batch.origin) +
                                         ": " + next.error;
                spdlog::error("cannot read batch: {}", line);
                summary.failures.push_back(line);
                continue;
            }
            const SourceBatch& batch = next.batch;
            filter.begin_batch(batch.origin);
            std::size_t undelivered = 0;
            std::map<std::string, bool> touched_sinks;
            EventOrigin origin{source->id(), batch.origin, 0};
            try {
                DecodeReport report = decode_batch(
                    batch.data, batch.origin, [&](boost::json::object&& event, std::size_t index) {
                        ++summary.events;
                        const auto matches = filter.evaluate(event);
                        for (const auto& match : matches) {
                            ++summary.matches;
                            const RuleSpec& rule = rules[match.rule_index];
                            origin.index = index;
                            boost::json::object alert =
                                make_alert({rule.name, rule.description}, event, match.annotation, origin);
                            for (const auto& destination_id : rule.destinations) {
                                auto found = destinations.by_id.find(destination_id);
                                if (found == destinations.by_id.end()) continue;
                                alert["destination"] = destination_id;
                                std::string error;
                                touched_sinks[destination_id] = true;
                                if (deliver(*found->second, boost::json::serialize(alert), error)) {
                                    ++summary.alerts_delivered;
                                } else {
                                    ++summary.alerts_failed;
                                    ++undelivered;
                                    spdlog::error("alert {} (rule \"{}\") not delivered to \"{}\": {}",
                                                  alert["alert_id"].as_string().c_str(), rule.name,
                                                  destination_id, error);
                                }
                            }
                        }
                    });
                summary.record_errors += report.record_errors.size();
                summary.skipped_documents += report.skipped_documents;
                for (const auto& reason : report.skip_reasons) spdlog::info("skipped {}", reason);
                for (const auto& error : report.record_errors) spdlog::error("bad record: {}", error);
            } catch (const DecodeError& e) {
                ++summary.batches_failed;
                summary.failures.emplace_back(e.what());
                spdlog::error("batch failed: {}", e.what());
                if (auto error = source->ack(batch.id, false); !error.empty()) {
                    spdlog::error("source \"{}\": release of {} failed: {}", source->id(), batch.origin, error);
                }
                continue;
            }
            for (const auto& [sink_id, touched] : touched_sinks) {
                if (auto error = destinations.by_id.at(sink_id)->flush(); !error.empty()) {
                    spdlog::error("destination \"{}\": flush failed: {}", sink_id, error);
                    ++undelivered;
                }
            }
            const bool settled = undelivered == 0;
            if (!settled) {
                ++summary.batches_failed;
                summary.failures.push_back(batch.origin + ": " + std::to_string(undelivered) +
                                           " alert(s) not delivered");
            }
            if (auto error = source->ack(batch.id, settled); !error.empty()) {
                spdlog::error("source \"{}\": ack of {} failed: {}", source->id(), batch.origin, error);
            }
        }
    }
    for (std::size_t i = 0; i < rules.size(); ++i) summary.rule_errors += filter.runtime_errors(i);
    return summary;
}

}  // namespace tattle
