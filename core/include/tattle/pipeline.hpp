#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tattle/alert_shaping.hpp"
#include "tattle/config.hpp"
#include "tattle/diagnostics.hpp"
#include "tattle/filter.hpp"
#include "tattle/outbox.hpp"
#include "tattle/plugin_catalog.hpp"

namespace tattle {

class PipelineMetrics;

// A config checked against the plugins and compiled: what `check` reports and
// `run` executes. Plugin objects are not created yet.
struct PreparedConfig {
    Config config;
    std::shared_ptr<PluginCatalog> catalog;
    std::vector<std::string> plugin_refusals;  // plugin files that could not be loaded
    std::vector<std::filesystem::path> plugin_dirs;  // where plugins were looked for, in order
    std::vector<Diagnostic> problems;          // everything wrong, with file:line
    std::unique_ptr<FilterStage> filter;
    // Titles, dedup and threshold. Its keys live as long as the PreparedConfig: across
    // the runs of a daemon and the invocations of a warm Lambda container.
    std::unique_ptr<AlertShaper> shaper;
    // Each instance's config after schema validation, with defaults filled in.
    std::map<std::string, boost::json::object> destination_settings;
    std::map<std::string, boost::json::object> source_settings;
    // How each destination is delivered to: core defaults < the plugin's suggestion < the config.
    std::map<std::string, DeliverySettings> delivery_settings;
};

struct PrepareOptions {
    std::vector<std::filesystem::path> extra_plugin_dirs;  // --plugin-dir
    bool use_builtin_plugins = true;                       // the static registry
    bool use_default_search_path = true;                   // next to the binary, TATTLE_PLUGIN_PATH
    // Every plugin in the directories (`tattle plugins`), not only the ones the config
    // names (PluginCatalog::load_wanted).
    bool every_plugin = false;
};

// Loads the plugins the config names (default search path, then the config's plugin_dirs), validates
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
    std::size_t matches_deduplicated = 0;   // held back by a rule's dedup
    std::size_t matches_below_threshold = 0;// held back by a rule's threshold
    std::size_t alerts_delivered = 0;
    std::size_t alerts_spooled = 0;    // given up on and parked in the spool (their batches are settled)
    std::size_t alerts_failed = 0;     // neither delivered nor spooled (their batches are released)
    std::size_t alerts_suppressed = 0; // delivered before (duplicate suppression), not sent again
    std::size_t delivery_retries = 0;  // sends tried again after a RETRY
    std::size_t rule_errors = 0;       // jq runtime errors, all rules (titles and keys included)
    std::size_t limit_hits = 0;        // records skipped and batches failed for [limits]
    std::vector<std::string> failures; // one line per failed batch
    std::filesystem::path spool_dir;   // where spooled alerts went
    // The run's CPU time by kind of thread, for sizing `workers` (and a Lambda function's
    // memory, which its CPU share follows): when the main thread (reading and routing) or
    // delivery keeps a CPU as busy as the run is long, more workers cannot help.
    struct CpuUse {
        std::chrono::nanoseconds batch_workers{0};  // decoding, filtering, rendering alerts
        std::chrono::nanoseconds delivery{0};       // the outboxes' workers and their sinks
        std::chrono::nanoseconds main_thread{0};    // reading, routing
        std::chrono::nanoseconds process{0};        // every thread of the process, during the run
        std::size_t batch_worker_threads = 0;
        std::size_t delivery_threads = 0;
    } cpu;

    // Exit status of `tattle run`: 0 all good, 1 input problems, 3 alerts spooled
    // or not delivered.
    int exit_code() const noexcept;
};

// "batch workers 0.904 (2 threads), delivery 0.036 (1 thread), main thread 0.046
// (reading, routing), all threads 0.985": seconds, for the logs.
std::string describe(const RunSummary::CpuUse& cpu);

struct RunOptions {
    // When not empty, replace the configured sources: s3://bucket/prefix inputs by s3
    // sources (listing mode), the others by one file source.
    std::vector<std::string> input_paths;
    // `tattle run --since/--until` (YYYY-MM-DD, inclusive): the days the s3:// inputs read.
    std::string inputs_since;
    std::string inputs_until;
    // When not empty, read these instead (not owned; input_paths is then ignored).
    std::vector<BatchSource*> sources;
    // No batch is read from this time on (a Lambda invocation's deadline comes): what a
    // source has not handed out yet stays with it.
    std::optional<SteadyTime> stop_reading_at;
    // An alert not delivered by then is given up on at once (spooled, or lost when it
    // cannot be), so that the run ends before a Lambda invocation's deadline.
    std::optional<SteadyTime> give_up_delivery_at;
    // False: a batch with a spooled alert is released, not acknowledged (in Lambda the
    // spool lives in /tmp, which dies with the sandbox, so the event source must retry).
    bool spooled_settles_batch = true;
    // `tattle serve`: once *stop_requested is true no batch is read any more, and alerts
    // not delivered within stop_grace are given up on (spooled, else their batches are
    // released), so that the run ends within the daemon's grace period.
    const std::atomic<bool>* stop_requested = nullptr;
    std::chrono::milliseconds stop_grace{std::chrono::seconds(25)};
    // `tattle serve`: an exhausted source is asked again (after idle_poll_interval when no
    // source had anything) instead of ending the run, which then ends only when stopped.
    // A source that answers "nothing now" is asked again in any case.
    bool keep_polling = false;
    std::chrono::milliseconds idle_poll_interval{std::chrono::seconds(1)};
    // Threads that decode and filter batches (`--workers`); 0: the config's `workers`.
    std::size_t workers = 0;
    PipelineMetrics* metrics = nullptr;        // fed while running when set
    Clock* clock = nullptr;                    // the real clocks when null
    std::optional<std::uint64_t> random_seed;  // fixed backoff jitter (tests)
};

// The sources a run reads: options.input_paths (s3://bucket/prefix inputs become s3
// sources in listing mode, the others one file source), else the config's [[source]]s.
// Throws std::runtime_error (or ConfigError for invalid inputs) when there is nothing to read.
std::vector<std::unique_ptr<SourceInstance>> make_sources(PreparedConfig& prepared, const RunOptions& options);

// Runs every source until exhausted: decode, filter, route to the rules'
// destinations through one outbox per destination. Alerts are delivered while the
// next batches are decoded; a batch is acknowledged to its source (from this
// thread) once every alert born from it is settled: delivered, suppressed as a
// duplicate, or durably spooled. A batch with an alert that could be neither
// delivered nor spooled is released. Returns when everything is settled.
RunSummary run_pipeline(PreparedConfig& prepared, const RunOptions& options);
RunSummary run_pipeline(PreparedConfig& prepared, const std::vector<std::string>& input_paths);

struct ReplayOptions {
    std::vector<std::string> destinations;  // only entries for these (all when empty)
    std::vector<std::string> selectors;     // spool id or alert id prefixes (all when empty)
    Clock* clock = nullptr;
    std::optional<std::uint64_t> random_seed;
};

struct ReplaySummary {
    std::filesystem::path spool_dir;
    std::size_t selected = 0;
    std::size_t delivered = 0;          // sent; their files are removed
    std::size_t already_delivered = 0;  // the dedup state says so; their files are removed
    std::size_t still_failing = 0;      // kept, with attempts and last error updated
    std::size_t kept_unknown_destination = 0;
    std::vector<std::string> selection_problems;  // nothing was replayed when there are any
    std::vector<std::string> problems;            // unreadable files, unknown destinations, ...

    // 0 every selected alert delivered, 2 a selector names nothing, 3 some alerts remain.
    int exit_code() const noexcept;
};

// Sends spooled alerts again through the same outboxes (rate limits, retries, budget).
// A delivered alert's file is removed; one that still fails stays in the spool with
// its attempts and last error updated.
ReplaySummary replay_spool(PreparedConfig& prepared, const ReplayOptions& options);

}  // namespace tattle
