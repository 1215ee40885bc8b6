#include "tattle/pipeline.hpp"

#include <spdlog/fmt/fmt.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

#include "tattle/alert.hpp"
#include "tattle/batch_workers.hpp"
#include "tattle/cpu_time.hpp"
#include "tattle/decoder.hpp"
#include "tattle/dedup.hpp"
#include "tattle/json_schema.hpp"
#include "tattle/metrics.hpp"
#include "tattle/secrets.hpp"
#include "tattle/spool.hpp"
#include "tattle/text_safety.hpp"

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

// Each destination's delivery settings: the core's defaults, the plugin's
// "x-tattle-delivery" suggestion, then the config's delivery table.
void resolve_delivery(PreparedConfig& prepared) {
    for (const auto& spec : prepared.config.destinations) {
        auto plugin = prepared.catalog->find(TATTLE_PLUGIN_KIND_SINK, spec.type);
        if (!plugin) continue;  // reported by check_instances
        const std::string label = "destination \"" + spec.id + "\" (" + plugin->type_name + ")";
        DeliveryOverrides suggestion;
        for (const auto& problem : plugin_delivery_suggestion(plugin->config_schema, suggestion)) {
            prepared.problems.push_back({spec.where, label + ": the plugin's x-tattle-delivery" + problem.pointer +
                                                         ": " + problem.message + " (" + plugin->location + ")"});
        }
        std::vector<std::string> problems;
        prepared.delivery_settings[spec.id] = resolve_delivery_settings(suggestion, spec.delivery, problems);
        for (const auto& problem : problems) prepared.problems.push_back({spec.where, label + ": " + problem});
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

    auto& dirs = prepared.plugin_dirs;
    if (options.use_default_search_path) dirs = PluginCatalog::default_search_path();
    dirs.insert(dirs.end(), options.extra_plugin_dirs.begin(), options.extra_plugin_dirs.end());
    dirs.insert(dirs.end(), config.plugin_dirs.begin(), config.plugin_dirs.end());
    if (options.every_plugin) {
        prepared.plugin_refusals = prepared.catalog->load_directories(dirs);
    } else {
        std::vector<PluginCatalog::Wanted> wanted;
        for (const auto& spec : config.destinations) wanted.push_back({TATTLE_PLUGIN_KIND_SINK, spec.type});
        for (const auto& spec : config.sources) wanted.push_back({TATTLE_PLUGIN_KIND_SOURCE, spec.type});
        prepared.plugin_refusals = prepared.catalog->load_wanted(dirs, wanted);
    }
    for (const auto& refusal : prepared.plugin_refusals) spdlog::warn("plugin refused: {}", refusal);

    check_instances(prepared, config.destinations, TATTLE_PLUGIN_KIND_SINK, prepared.destination_settings);
    check_instances(prepared, config.sources, TATTLE_PLUGIN_KIND_SOURCE, prepared.source_settings);
    resolve_delivery(prepared);

    const std::size_t first_filter_problem = prepared.problems.size();
    prepared.filter =
        std::make_unique<FilterStage>(filter_rules_for(config.rules), prepared.problems, filter_options(config.limits));
    correct_filter_line_numbers(prepared.problems, first_filter_problem, config.rules);
    ShapingOptions shaping;
    shaping.isolation = filter_options(config.limits).isolation;
    prepared.shaper = std::make_unique<AlertShaper>(config, prepared.problems, shaping);
    return prepared;
}

std::string describe(const RunSummary::CpuUse& cpu) {
    const auto seconds = [](std::chrono::nanoseconds time) { return std::chrono::duration<double>(time).count(); };
    const auto threads = [](std::size_t count) { return std::to_string(count) + (count == 1 ? " thread" : " threads"); };
    return fmt::format("batch workers {:.3f} ({}), delivery {:.3f} ({}), main thread {:.3f} (reading, routing), "
                       "all threads {:.3f}",
                       seconds(cpu.batch_workers), threads(cpu.batch_worker_threads), seconds(cpu.delivery),
                       threads(cpu.delivery_threads), seconds(cpu.main_thread), seconds(cpu.process));
}

int RunSummary::exit_code() const noexcept {
    if (alerts_failed > 0 || alerts_spooled > 0) return 3;
    if (batches_failed > 0 || record_errors > 0) return 1;
    return 0;
}

int ReplaySummary::exit_code() const noexcept {
    if (!selection_problems.empty()) return 2;
    if (still_failing > 0 || kept_unknown_destination > 0 || !problems.empty()) return 3;
    return 0;
}

namespace {

// The event behind an alert saying what the rule budget stopped: a rule (RuleDisabled) or
// one of its title and key expressions (RuleExpressionDisabled, with "expression" naming
// which). Its id is a hash of the rule, the problem and the day: with a state directory
// the same stop alerts once a day, not at every restart.
boost::json::object disabled_rule_event(const std::string& rule_key, const std::string& expression,
                                        const std::string& problem, const std::string& origin, WallTime now) {
    const std::time_t now_seconds = std::chrono::system_clock::to_time_t(now);
    std::tm utc{};
    gmtime_r(&now_seconds, &utc);
    char event_time[32];
    std::strftime(event_time, sizeof event_time, "%Y-%m-%dT%H:%M:%SZ", &utc);
    char event_id[17];
    std::snprintf(event_id, sizeof event_id, "%016zx",
                  std::hash<std::string>{}(rule_key + '\n' + problem + '\n' + std::string(event_time, 10)));
    boost::json::object about{{"rule", rule_key}, {"problem", problem}, {"origin", origin}};
    if (!expression.empty()) about["expression"] = expression;
    return boost::json::object{
        {"eventVersion", "tattle"},
        {"eventSource", "tattle.internal"},
        {"eventName", expression.empty() ? "RuleDisabled" : "RuleExpressionDisabled"},
        {"eventTime", event_time},
        {"eventID", std::string(expression.empty() ? "rule-disabled-" : "expression-disabled-") + event_id},
        {"tattle", std::move(about)}};
}

// What a rule's alerts lose while one of its expressions is stopped (alert_shaping.cpp
// sends them without it).
std::string without_expression(const std::string& part) {
    if (part == "title") return "its alerts go out without a title";
    if (part == "dedup.key") return "its alerts go out without deduplication";
    if (part == "threshold.key") return "every match of the rule alerts, without its threshold";
    return "its alerts go out without it";
}

// A run keeps at most this many batches waiting for their alerts before it reads
// the next: a source holds each unacknowledged batch's bytes (and an SQS message's
// visibility) until the ack.
constexpr std::size_t kMaxOpenBatches = 64;

// Results of the outboxes' workers, handed to the pipeline thread, which alone
// talks to sources (a SourceInstance is not thread-safe).
class CompletionQueue {
public:
    void push(DeliveryCompletion&& completion) {
        {
            std::lock_guard lock(mutex_);
            completions_.push_back(std::move(completion));
        }
        arrived_.notify_one();
    }
    // Everything that has arrived; with wait, blocks until something has.
    std::deque<DeliveryCompletion> take(bool wait) {
        std::unique_lock lock(mutex_);
        if (wait) arrived_.wait(lock, [&] { return !completions_.empty(); });
        return std::exchange(completions_, {});
    }
    // Everything that has arrived, waiting at most `longest` for something to.
    std::deque<DeliveryCompletion> take_within(std::chrono::milliseconds longest) {
        std::unique_lock lock(mutex_);
        arrived_.wait_for(lock, longest, [&] { return !completions_.empty(); });
        return std::exchange(completions_, {});
    }

private:
    std::mutex mutex_;
    std::condition_variable arrived_;
    std::deque<DeliveryCompletion> completions_;
};

// The outboxes of one run, with the spool and the duplicate memory they share.
class Deliveries {
public:
    // only: the destinations to open (all when null).
    Deliveries(const PreparedConfig& prepared, Clock& clock, std::optional<std::uint64_t> random_seed,
               const std::set<std::string>* only, std::optional<SteadyTime> give_up_at = std::nullopt)
        : spool_(resolve_spool_dir(prepared.config)) {
        const Config& config = prepared.config;
        const DedupSettings dedup = dedup_settings(config);
        if (const auto state_dir = resolve_state_dir(config); state_dir && dedup.window.count() > 0) {
            dedup_ = std::make_unique<DedupStore>(dedup, *state_dir, clock.wall_now());
            spdlog::debug("duplicate suppression: {} ({} delivered alerts remembered, window {} s)",
                          dedup_->log_file()->string(), dedup_->size(), dedup.window.count());
        }
        spdlog::debug("spool: {}", spool_.directory().string());
        for (const auto& spec : config.destinations) {
            if (only != nullptr && only->count(spec.id) == 0) continue;
            auto plugin = prepared.catalog->find(TATTLE_PLUGIN_KIND_SINK, spec.type);
            const boost::json::object& settings = prepared.destination_settings.at(spec.id);
            OutboxServices services;
            services.clock = &clock;
            services.spool = &spool_;
            services.dedup = dedup_.get();
            services.on_complete = [this](DeliveryCompletion&& completion) {
                completions_.push(std::move(completion));
            };
            services.random_seed = random_seed;
            services.give_up_at = give_up_at;
            // One sink instance per worker: a plugin never sees concurrent calls.
            auto make_sink = [plugin, &spec, &settings] {
                return std::make_unique<SinkInstance>(plugin, spec.id, settings);
            };
            outboxes_[spec.id] =
                std::make_unique<Outbox>(spec.id, prepared.delivery_settings.at(spec.id), make_sink, services);
        }
    }

    Outbox* find(const std::string& destination) {
        const auto found = outboxes_.find(destination);
        return found != outboxes_.end() ? found->second.get() : nullptr;
    }
    DedupStore* dedup() noexcept { return dedup_.get(); }
    const Spool& spool() const noexcept { return spool_; }
    CompletionQueue& completions() noexcept { return completions_; }
    // Waits until every outbox has settled everything it was given.
    void close() {
        hand_over();
        for (auto& [id, outbox] : outboxes_) outbox->close();
    }
    // Queues an alert for the outbox (one of ours). It is handed over with the others
    // for the same outbox, kHandOverGroup at a time or at hand_over(): one lock of the
    // outbox per group rather than per alert, which its sending worker takes too.
    void queue(Outbox& outbox, DeliveryItem item) {
        auto group = std::find_if(staged_.begin(), staged_.end(),
                                  [&](const auto& staged) { return staged.first == &outbox; });
        if (group == staged_.end()) group = staged_.insert(staged_.end(), {&outbox, {}});
        group->second.push_back(std::move(item));
        if (group->second.size() >= kHandOverGroup) hand_over(*group);
    }
    // Hands every queued alert to its outbox and wakes their workers.
    void hand_over() {
        for (auto& group : staged_) hand_over(group);
        for (auto& [id, outbox] : outboxes_) outbox->wake();
    }
    void give_up_from(SteadyTime at) {
        for (auto& [id, outbox] : outboxes_) outbox->give_up_from(at);
    }
    std::size_t retries() const {
        std::size_t total = 0;
        for (const auto& [id, outbox] : outboxes_) total += outbox->retries();
        return total;
    }
    // How many workers the outboxes have.
    std::size_t worker_count() const {
        std::size_t total = 0;
        for (const auto& [id, outbox] : outboxes_) total += outbox->settings().concurrency;
        return total;
    }

private:
    static constexpr std::size_t kHandOverGroup = 64;
    using StagedGroup = std::pair<Outbox*, std::vector<DeliveryItem>>;
    static void hand_over(StagedGroup& group) {
        if (group.second.empty()) return;
        group.first->enqueue_all(std::move(group.second), true);
        group.second.clear();
    }
    Spool spool_;
    std::unique_ptr<DedupStore> dedup_;
    CompletionQueue completions_;
    std::vector<StagedGroup> staged_;  // see queue()
    // Last, so that their workers stop before what they use goes.
    std::map<std::string, std::unique_ptr<Outbox>> outboxes_;
};

// Which batches still wait for alerts, and their acknowledgement once they do not.
class BatchLedger {
public:
    BatchLedger(RunSummary& summary, DedupStore* dedup, bool spooled_settles_batch, PipelineMetrics* metrics,
                Clock& clock)
        : summary_(summary), dedup_(dedup), spooled_settles_batch_(spooled_settles_batch), metrics_(metrics),
          clock_(clock) {}

    std::uint64_t open(BatchSource& source, const SourceBatch& batch) {
        const std::uint64_t ticket = next_ticket_++;
        batches_[ticket] = OpenBatch{&source, batch.id, batch.origin};
        if (metrics_ != nullptr) metrics_->batch_opened(ticket, clock_.now());
        return ticket;
    }
    void add_alert(std::uint64_t ticket) { ++batches_.at(ticket).pending; }
    // No more alerts will come from the batch.
    void seal(std::uint64_t ticket, bool decode_failed) {
        OpenBatch& batch = batches_.at(ticket);
        batch.sealed = true;
        batch.decode_failed = decode_failed;
        settle_ready();
    }
    void apply(std::deque<DeliveryCompletion>&& completions) {
        if (completions.empty()) return;
        for (auto& completion : completions) {
            OpenBatch& batch = batches_.at(completion.ticket);
            --batch.pending;
            if (metrics_ != nullptr) metrics_->alert_settled(completion.destination, alert_outcome(completion.status));
            switch (completion.status) {
                case DeliveryStatus::Delivered: ++summary_.alerts_delivered; break;
                case DeliveryStatus::Duplicate:
                    ++summary_.alerts_suppressed;
                    spdlog::debug("alert {} for \"{}\" suppressed: delivered before", completion.alert_id,
                                  completion.destination);
                    break;
                case DeliveryStatus::Spooled:
                    ++summary_.alerts_spooled;
                    if (!spooled_settles_batch_) ++batch.lost;
                    break;
                case DeliveryStatus::Lost:
                    ++summary_.alerts_failed;
                    ++batch.lost;
                    break;
            }
        }
        settle_ready();
    }
    std::size_t open_count() const noexcept { return batches_.size(); }

private:
    struct OpenBatch {
        BatchSource* source = nullptr;
        std::uint64_t batch_id = 0;
        std::string origin;
        std::size_t pending = 0;
        std::size_t lost = 0;
        bool sealed = false;
        bool decode_failed = false;
    };

    void settle_ready() {
        std::vector<std::uint64_t> ready;
        bool any_settled = false;
        for (const auto& [ticket, batch] : batches_) {
            if (!batch.sealed || batch.pending > 0) continue;
            ready.push_back(ticket);
            any_settled = any_settled || (!batch.decode_failed && batch.lost == 0);
        }
        // What was delivered must be remembered durably before the source forgets the batch.
        if (any_settled && dedup_ != nullptr) dedup_->sync();
        for (const auto ticket : ready) {
            const OpenBatch& batch = batches_.at(ticket);
            const bool settled = !batch.decode_failed && batch.lost == 0;
            if (batch.lost > 0) {
                ++summary_.batches_failed;
                summary_.failures.push_back(batch.origin + ": " + std::to_string(batch.lost) +
                                            " alert(s) neither delivered nor spooled");
            }
            if (auto error = batch.source->ack(batch.batch_id, settled); !error.empty()) {
                spdlog::error("source \"{}\": {} of {} failed: {}", batch.source->id(), settled ? "ack" : "release",
                              batch.origin, error);
            }
            if (metrics_ != nullptr) {
                metrics_->batch_closed(ticket, settled ? BatchOutcome::Settled : BatchOutcome::Released, clock_.now());
            }
            batches_.erase(ticket);
        }
    }

    static AlertOutcome alert_outcome(DeliveryStatus status) noexcept {
        switch (status) {
            case DeliveryStatus::Delivered: return AlertOutcome::Delivered;
            case DeliveryStatus::Duplicate: return AlertOutcome::Suppressed;
            case DeliveryStatus::Spooled: return AlertOutcome::Spooled;
            case DeliveryStatus::Lost: return AlertOutcome::Failed;
        }
        return AlertOutcome::Failed;
    }

    RunSummary& summary_;
    DedupStore* dedup_;
    bool spooled_settles_batch_;
    PipelineMetrics* metrics_;
    Clock& clock_;
    std::map<std::uint64_t, OpenBatch> batches_;
    std::uint64_t next_ticket_ = 1;
};

// The destination a rule's alerts are written for on the workers; the router rewrites
// them for the others.
std::string first_destination(const RuleSpec& rule) {
    return rule.destinations.empty() ? std::string() : rule.destinations.front();
}

}  // namespace

// A source the command line asks for, validated against its plugin's schema like a
// [[source]] table.
static std::unique_ptr<SourceInstance> make_command_line_source(PreparedConfig& prepared, const std::string& type,
                                                         const std::string& id, boost::json::object settings) {
    for (const auto& refusal : prepared.catalog->load_wanted(prepared.plugin_dirs, {{TATTLE_PLUGIN_KIND_SOURCE, type}})) {
        spdlog::warn("plugin refused: {}", refusal);
        prepared.plugin_refusals.push_back(refusal);
    }
    auto plugin = prepared.catalog->find(TATTLE_PLUGIN_KIND_SOURCE, type);
    if (!plugin) {
        throw std::runtime_error("the command line's inputs need a \"" + type + "\" source plugin, and none is available");
    }
    PluginInstanceSpec spec;
    spec.id = id;
    spec.type = type;
    spec.settings = std::move(settings);
    spec.where.file = "command line";
    std::vector<Diagnostic> problems;
    auto validated = validate_instance(*plugin, spec, problems);
    if (!problems.empty()) throw ConfigError(problems);
    return std::make_unique<SourceInstance>(plugin, id, validated);
}

// s3://bucket/prefix → the s3 source's listing settings.
static boost::json::object s3_listing_settings(const std::string& uri, const RunOptions& options) {
    const std::string_view rest = std::string_view(uri).substr(std::string_view("s3://").size());
    const std::size_t slash = rest.find('/');
    const std::string_view bucket = rest.substr(0, slash);
    if (bucket.empty()) throw std::runtime_error("input " + uri + ": no bucket (expected s3://bucket/prefix)");
    boost::json::object settings;
    settings["bucket"] = bucket;
    if (slash != std::string_view::npos && slash + 1 < rest.size()) settings["prefix"] = rest.substr(slash + 1);
    if (!options.inputs_since.empty()) settings["since"] = options.inputs_since;
    if (!options.inputs_until.empty()) settings["until"] = options.inputs_until;
    return settings;
}

std::vector<std::unique_ptr<SourceInstance>> make_sources(PreparedConfig& prepared, const RunOptions& options) {
    std::vector<std::unique_ptr<SourceInstance>> sources;
    const auto& input_paths = options.input_paths;
    if (!input_paths.empty()) {
        boost::json::array paths;
        for (const auto& path : input_paths) {
            if (path.starts_with("s3://")) {
                sources.push_back(make_command_line_source(prepared, "s3", path, s3_listing_settings(path, options)));
            } else {
                paths.emplace_back(path);
            }
        }
        if (!paths.empty()) {
            boost::json::object settings;
            settings["paths"] = std::move(paths);
            sources.push_back(make_command_line_source(prepared, "file", "cli", std::move(settings)));
        }
    } else {
        for (const auto& spec : prepared.config.sources) {
            auto plugin = prepared.catalog->find(TATTLE_PLUGIN_KIND_SOURCE, spec.type);
            sources.push_back(
                std::make_unique<SourceInstance>(plugin, spec.id, prepared.source_settings.at(spec.id)));
        }
    }
    if (sources.empty()) {
        throw std::runtime_error("nothing to read: give input files or add a [[source]] to the config");
    }
    return sources;
}

RunSummary run_pipeline(PreparedConfig& prepared, const std::vector<std::string>& input_paths) {
    RunOptions options;
    options.input_paths = input_paths;
    return run_pipeline(prepared, options);
}

RunSummary run_pipeline(PreparedConfig& prepared, const RunOptions& options) {
    // The process's clock first and the roles' second here, the other way round at the
    // end: the roles' parts then lie within the process's. The run's own are the
    // differences (running threads are read live): a process runs one pipeline at a time.
    const auto process_cpu_at_start = process_cpu_time();
    const CpuByRole roles_at_start = cpu_time_by_role();
    const CountedThread counted(ThreadRole::pipeline);
    RunSummary summary;
    const Config& config = prepared.config;
    Clock& clock = options.clock != nullptr ? *options.clock : real_clock();

    Deliveries deliveries(prepared, clock, options.random_seed, nullptr, options.give_up_delivery_at);
    summary.spool_dir = deliveries.spool().directory();
    std::vector<std::unique_ptr<SourceInstance>> configured_sources;
    std::vector<BatchSource*> sources = options.sources;
    if (sources.empty()) {
        configured_sources = make_sources(prepared, options);
        for (auto& source : configured_sources) sources.push_back(source.get());
    }
    DedupStore* dedup = deliveries.dedup();
    PipelineMetrics* metrics = options.metrics;
    BatchLedger ledger(summary, dedup, options.spooled_settles_batch, metrics, clock);
    auto settle_arrived = [&](bool wait) { ledger.apply(deliveries.completions().take(wait)); };

    FilterStage& filter = *prepared.filter;
    AlertShaper& shaper = *prepared.shaper;
    const auto& rules = config.rules;
    std::size_t enqueued = 0;
    // Per source id: which rules run on its events (rule_runs_on). Inputs not
    // declared as a [[source]] (files on the command line) grant every team.
    // std::map: the vectors stay where they are while batches in flight point at them.
    std::map<std::string, std::vector<bool>> rules_by_source_id;
    auto rules_by_source = [&](const std::string& source_id) -> const std::vector<bool>& {
        auto found = rules_by_source_id.find(source_id);
        if (found != rules_by_source_id.end()) return found->second;
        PluginInstanceSpec undeclared;
        const auto declared = std::find_if(config.sources.begin(), config.sources.end(),
                                           [&](const PluginInstanceSpec& s) { return s.id == source_id; });
        const PluginInstanceSpec& source = declared != config.sources.end() ? *declared : undeclared;
        std::vector<bool> runs(rules.size());
        for (std::size_t i = 0; i < rules.size(); ++i) runs[i] = rule_runs_on(rules[i], source);
        return rules_by_source_id.emplace(source_id, std::move(runs)).first->second;
    };
    // Per source id: what the workers need to write its alerts (std::map, as above).
    std::map<std::string, AlertRendering> rendering_by_source_id;
    auto rendering_for = [&](const std::string& source_id) -> const AlertRendering& {
        auto found = rendering_by_source_id.find(source_id);
        if (found != rendering_by_source_id.end()) return found->second;
        AlertRendering rendering;
        rendering.source_id = source_id;
        for (std::size_t i = 0; i < rules.size(); ++i) {
            const RuleSpec& rule = rules[i];
            rendering.rules.push_back(
                {rule.name, rule.description, rule.key(), rule.team, rule.severity, rule.tags, rule.runbook});
            rendering.destinations.push_back(first_destination(rule));
            rendering.router_needs_event.push_back(shaper.shapes(i) || shaper.has_title(i));
        }
        return rendering_by_source_id.emplace(source_id, std::move(rendering)).first->second;
    };
    std::vector<std::size_t> rule_errors(rules.size(), 0);
    auto publish_run_totals = [&] {
        if (metrics == nullptr) return;
        metrics->set_run_delivery_retries(deliveries.retries());
        for (std::size_t i = 0; i < rules.size(); ++i) {
            metrics->set_run_rule_errors(rules[i].key(), rule_errors[i] + shaper.errors(i));
        }
    };
    if (metrics != nullptr) {
        std::vector<std::string> rule_names;
        std::vector<std::string> destination_ids;
        for (const auto& rule : rules) rule_names.push_back(rule.key());
        for (const auto& destination : config.destinations) destination_ids.push_back(destination.id);
        metrics->run_started(rule_names, destination_ids);
    }
    auto stop_requested = [&] { return options.stop_requested != nullptr && options.stop_requested->load(); };

    const std::size_t worker_count = resolve_worker_count(options.workers != 0 ? options.workers : config.workers);
    BatchWorkers workers(
        filter,
        [&filter] { return filter.sibling(); },
        worker_count);
    // A batch being decoded and filtered (see in_flight below).
    struct InFlight {
        std::uint64_t ticket = 0;
        std::string source_id;
        std::string origin;
    };
    const std::size_t max_in_flight = 2 * workers.size();
    // Hands one alert to each of the rule's destinations (unless delivered before); the
    // last one takes the alert's text over.
    auto send = [&](AlertText& alert, const boost::json::object& shaping_fields, const RuleSpec& rule,
                    std::uint64_t ticket) {
        for (std::size_t i = 0; i < rule.destinations.size(); ++i) {
            const std::string& destination_id = rule.destinations[i];
            Outbox* outbox = deliveries.find(destination_id);
            if (outbox == nullptr) continue;
            if (dedup != nullptr && dedup->contains(delivery_key(destination_id, alert.alert_id), clock.wall_now())) {
                ++summary.alerts_suppressed;
                if (metrics != nullptr) metrics->alert_settled(destination_id, AlertOutcome::Suppressed);
                spdlog::debug("alert {} for \"{}\" suppressed: delivered before", alert.alert_id, destination_id);
                continue;
            }
            ledger.add_alert(ticket);
            DeliveryItem item;
            if (i + 1 == rule.destinations.size()) {
                item.alert_json = alert_json(std::move(alert), destination_id, shaping_fields);
                item.alert_id = std::move(alert.alert_id);
            } else {
                item.alert_json = alert_json(alert, destination_id, shaping_fields);
                item.alert_id = alert.alert_id;
            }
            item.rule = rule.key();
            item.ticket = ticket;
            // Handed over in groups, and its workers woken at the end of the batch
            // rather than for every alert; waits there while the destination is behind.
            deliveries.queue(*outbox, std::move(item));
            // A batch with many alerts must not pile up completions (and
            // keep earlier batches unacknowledged) until it ends.
            if (++enqueued % 256 == 0) settle_arrived(false);
        }
    };
    // What the rule budget stopped, a rule or one of its expressions: the rule's own
    // destinations hear it from tattle, as an alert of that rule (high severity, not
    // deduplicated or thresholded: those belong to its matches).
    auto announce_stop = [&](const RuleSpec& rule, const std::string& expression, const std::string& problem,
                             const std::string& stopped_on, const std::string& title, const EventOrigin& batch,
                             std::uint64_t ticket) {
        const boost::json::object event = disabled_rule_event(rule.key(), expression, problem, stopped_on, clock.wall_now());
        AlertText alert =
            render_alert({rule.name, rule.description, rule.key(), rule.team, "high", rule.tags, rule.runbook}, event,
                         boost::json::value(boost::json::object{{"problem", problem}}), batch,
                         first_destination(rule), event_json(event));
        send(alert, boost::json::object{{"title", title}}, rule, ticket);
    };
    auto announce_disabled = [&](const DisabledRule& disabled, const EventOrigin& batch, std::uint64_t ticket) {
        const RuleSpec& rule = rules[disabled.rule_index];
        if (metrics != nullptr) metrics->rule_disabled(rule.key(), stop_cause_label(disabled.cause));
        const std::string problem = "the rule was disabled: it " + disabled.reason + " (an event from " +
                                    disabled.origin + "). The other rules keep running; fix this one and reload.";
        announce_stop(rule, "", problem, disabled.origin, "tattle disabled the rule \"" + rule.name + "\"", batch,
                      ticket);
    };
    auto announce_stopped_expression = [&](const StoppedExpression& stopped, const EventOrigin& batch,
                                           std::uint64_t ticket) {
        const RuleSpec& rule = rules[stopped.rule_index];
        const std::string problem = "the rule's " + stopped.part + " was disabled: it " + stopped.reason +
                                    " (an event from " + stopped.origin + "). Until it is fixed and reloaded, " +
                                    without_expression(stopped.part) + "; the rule and the others keep running.";
        announce_stop(rule, stopped.part, problem, stopped.origin,
                      "tattle disabled the " + stopped.part + " of the rule \"" + rule.name + "\"", batch, ticket);
    };
    boost::json::object shaping_fields;
    auto route_matches = [&](const InFlight& job, std::vector<EvaluatedMatch>& matches) {
        for (auto& match : matches) {
            const RuleSpec& rule = rules[match.rule_index];
            ++summary.matches;
            if (metrics != nullptr) metrics->rule_matched(rule.key());
            // Dedup and threshold state follows the order batches were read, as with one worker.
            // Only the rules with shaping or a title have their event here (AlertRendering).
            ShapingDecision shaping;
            std::optional<std::string> title;
            if (match.event) {
                shaping = shaper.decide(match.rule_index, *match.event);
                if (shaping.outcome == ShapingOutcome::deduplicated) {
                    ++summary.matches_deduplicated;
                    continue;
                }
                if (shaping.outcome == ShapingOutcome::below_threshold) {
                    ++summary.matches_below_threshold;
                    continue;
                }
                title = shaper.title(match.rule_index, *match.event);
            }
            shaping_fields.clear();
            shaper.annotate_alert(shaping_fields, match.rule_index, shaping, title);
            send(*match.alert, shaping_fields, rule, job.ticket);
        }
    };
    // The batch's end, once its last part is routed.
    auto end_routing = [&](const InFlight& job, BatchEvaluation& evaluation) {
        route_matches(job, evaluation.matches);
        summary.events += evaluation.events;
        if (metrics != nullptr) metrics->events_read(evaluation.events);
        for (const auto& [rule_index, errors] : evaluation.rule_errors) rule_errors[rule_index] += errors;
        const EventOrigin origin{job.source_id, job.origin, 0};
        for (const auto& disabled : evaluation.disabled) announce_disabled(disabled, origin, job.ticket);
        for (const auto& stopped : shaper.take_newly_stopped()) announce_stopped_expression(stopped, origin, job.ticket);
        summary.record_errors += evaluation.report.record_errors.size();
        summary.limit_hits += evaluation.limits_hit.size();
        if (metrics != nullptr) {
            for (const auto& limit : evaluation.limits_hit) metrics->input_limit_hit(limit);
        }
        summary.skipped_documents += evaluation.report.skipped_documents;
        for (const auto& reason : evaluation.report.skip_reasons) spdlog::info("skipped {}", reason);
        for (const auto& error : evaluation.report.record_errors) spdlog::error("bad record: {}", error);
        const bool decode_failed = evaluation.decode_error.has_value();
        if (decode_failed) {
            ++summary.batches_failed;
            summary.failures.push_back(*evaluation.decode_error);
            spdlog::error("batch failed: {}", *evaluation.decode_error);
            // released once the alerts it already gave are settled
        }
        deliveries.hand_over();
        ledger.seal(job.ticket, decode_failed);
        publish_run_totals();
    };
    // Their alerts are routed in the order the batches were read, whichever worker
    // finishes first.
    StreamedBatches<InFlight> in_flight({
        [&](InFlight& batch) { shaper.begin_batch(batch.origin); },
        [&](InFlight& batch, std::vector<EvaluatedMatch>& matches) {
            route_matches(batch, matches);
            deliveries.hand_over();  // a long batch's alerts go out as it goes
        },
        [&](InFlight& batch, BatchEvaluation& evaluation) { end_routing(batch, evaluation); },
    });

    // Between two rounds over the sources in which none had a batch: settle what arrives.
    auto wait_idle = [&] {
        in_flight.take_all();
        const SteadyTime until = clock.now() + options.idle_poll_interval;
        while (!stop_requested() && clock.now() < until) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - clock.now());
            // Short slices: a stop request is a flag, not something this wait can be woken by.
            ledger.apply(deliveries.completions().take_within(std::clamp(left, std::chrono::milliseconds(1),
                                                                         std::chrono::milliseconds(100))));
        }
    };

    // One source after the other; a source with nothing now is asked again once the
    // others had their turn (after idle_poll_interval when none had anything). A daemon
    // (keep_polling) moves on after every batch so that a busy source starves none.
    std::vector<BatchSource*> readable = sources;
    std::size_t turn = 0;
    bool any_batch_this_round = false;
    while (!readable.empty()) {
        {
            settle_arrived(false);
            in_flight.take_ready(max_in_flight);
            while (ledger.open_count() >= kMaxOpenBatches) {
                if (!in_flight.empty()) {
                    in_flight.take_from_oldest(true);
                } else {
                    settle_arrived(true);
                }
            }
            if (options.stop_reading_at && clock.now() >= *options.stop_reading_at) break;
            if (stop_requested()) {
                deliveries.give_up_from(clock.now() + options.stop_grace);
                break;
            }
            if (turn >= readable.size()) {
                if (!any_batch_this_round) wait_idle();
                turn = 0;
                any_batch_this_round = false;
                continue;
            }
            BatchSource* source = readable[turn];
            auto next = source->next();
            if (next.status == BatchSource::NextStatus::Exhausted && !options.keep_polling) {
                readable.erase(readable.begin() + static_cast<std::ptrdiff_t>(turn));
                continue;
            }
            if (next.status == BatchSource::NextStatus::Exhausted ||
                next.status == BatchSource::NextStatus::NothingNow) {
                ++turn;
                continue;
            }
            any_batch_this_round = true;
            if (options.keep_polling) ++turn;
            ++summary.batches;
            if (next.status == BatchSource::NextStatus::BatchUnreadable) {
                if (metrics != nullptr) metrics->batch_unreadable();
                ++summary.batches_failed;
                const std::string line = (next.batch.origin.empty() ? source->id() : next.batch.origin) +
                                         ": " + next.error;
                spdlog::error("cannot read batch: {}", line);
                summary.failures.push_back(line);
                continue;
            }
            const SourceBatch& batch = next.batch;
            const std::uint64_t ticket = ledger.open(*source, batch);
            in_flight.push({ticket, source->id(), batch.origin},
                           workers.stream(batch.data, batch.origin, &rules_by_source(source->id()), config.limits,
                                          &rendering_for(source->id())));
        }
    }
    in_flight.take_all();
    while (ledger.open_count() > 0) settle_arrived(true);
    deliveries.close();
    summary.delivery_retries = deliveries.retries();
    const CpuByRole roles_at_end = cpu_time_by_role();
    summary.cpu.batch_workers = roles_at_end.batch_workers - roles_at_start.batch_workers;
    summary.cpu.batch_worker_threads = workers.size();
    summary.cpu.delivery = roles_at_end.delivery - roles_at_start.delivery;
    summary.cpu.delivery_threads = deliveries.worker_count();
    summary.cpu.main_thread = roles_at_end.pipeline - roles_at_start.pipeline;
    summary.cpu.process = process_cpu_time() - process_cpu_at_start;
    for (std::size_t i = 0; i < rules.size(); ++i) summary.rule_errors += rule_errors[i] + shaper.errors(i);
    publish_run_totals();
    if (metrics != nullptr) metrics->run_finished();
    return summary;
}

ReplaySummary replay_spool(PreparedConfig& prepared, const ReplayOptions& options) {
    ReplaySummary summary;
    Clock& clock = options.clock != nullptr ? *options.clock : real_clock();
    const Spool spool(resolve_spool_dir(prepared.config));
    summary.spool_dir = spool.directory();
    auto listing = spool.list();
    for (const auto& unreadable : listing.unreadable) summary.problems.push_back("unreadable: " + unreadable);
    const auto selected =
        select_spool_entries(listing.entries, options.selectors, options.destinations, summary.selection_problems);
    if (!summary.selection_problems.empty()) return summary;
    summary.selected = selected.size();

    std::vector<const SpoolEntry*> runnable;
    std::set<std::string> needed;
    for (const auto& entry : selected) {
        if (prepared.destination_settings.count(entry.destination) == 0) {
            ++summary.kept_unknown_destination;
            summary.problems.push_back("spooled alert " + entry.id.substr(0, 12) + " is for destination \"" +
                                       entry.destination + "\", which the config does not define; kept");
            continue;
        }
        needed.insert(entry.destination);
        runnable.push_back(&entry);
    }
    if (runnable.empty()) return summary;

    Deliveries deliveries(prepared, clock, options.random_seed, &needed);
    // Enqueued from a thread of its own: the outboxes' queues are bounded, and the
    // completions must be handled (files removed) as they come.
    std::thread feeder([&] {
        for (std::size_t index = 0; index < runnable.size(); ++index) {
            const SpoolEntry& entry = *runnable[index];
            DeliveryItem item;
            item.alert_json = entry.alert_json;
            item.alert_id = entry.alert_id;
            item.rule = entry.rule;
            item.ticket = index;
            item.previous_attempts = entry.attempts;
            item.first_attempt = entry.first_attempt;
            deliveries.find(entry.destination)->enqueue(std::move(item));
        }
    });
    std::size_t settled = 0;
    while (settled < runnable.size()) {
        for (auto& completion : deliveries.completions().take(true)) {
            ++settled;
            const SpoolEntry& entry = *runnable.at(completion.ticket);
            switch (completion.status) {
                case DeliveryStatus::Delivered:
                case DeliveryStatus::Duplicate:
                    if (completion.status == DeliveryStatus::Delivered) {
                        ++summary.delivered;
                    } else {
                        ++summary.already_delivered;
                    }
                    if (deliveries.dedup() != nullptr) deliveries.dedup()->sync();
                    try {
                        spool.remove(entry.id);
                    } catch (const SpoolError& e) {
                        summary.problems.push_back(std::string(e.what()) +
                                                   " (delivered; remove it with `tattle spool drop`)");
                    }
                    break;
                case DeliveryStatus::Spooled: ++summary.still_failing; break;
                case DeliveryStatus::Lost:
                    ++summary.still_failing;
                    summary.problems.push_back("spooled alert " + entry.id.substr(0, 12) +
                                               " failed again and its file could not be updated: " + completion.error);
                    break;
            }
        }
    }
    feeder.join();
    deliveries.close();
    return summary;
}

}  // namespace tattle
