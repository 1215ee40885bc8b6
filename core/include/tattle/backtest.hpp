#pragma once

#include <boost/json.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "tattle/pipeline.hpp"

namespace tattle {

// How far a backtest has come, for a progress display.
struct BacktestProgress {
    std::size_t batches = 0;
    std::size_t events = 0;
    std::uint64_t bytes_read = 0;
    // Sum of the sizes of the local input files; 0 when unknown (s3:// inputs), and then
    // there is no ETA.
    std::uint64_t bytes_total = 0;
    std::chrono::steady_clock::duration elapsed{};
};

struct BacktestOptions {
    std::vector<std::string> inputs;  // files, directories, globs, s3://bucket/prefix
    std::string since;                // s3:// inputs: YYYY-MM-DD
    std::string until;
    std::size_t workers = 0;          // 0: the config's workers
    // Called from the calling thread after each batch.
    std::function<void(const BacktestProgress&)> on_progress;
};

struct BacktestRuleStats {
    std::size_t rule_index = 0;
    std::size_t matches = 0;
    // What dedup and threshold would have made of the matches (all alerts without them).
    std::size_t alerts = 0;
    std::size_t deduplicated = 0;
    std::size_t below_threshold = 0;
    std::set<std::string> dedup_keys;      // distinct keys seen
    std::set<std::string> threshold_keys;
    std::size_t runtime_errors = 0;        // the rule's jq, its title and its keys
    std::map<std::string, std::size_t> actors;  // who caused the matches
};

// What the rules would have done over the inputs. Nothing is sent; disabled rules run
// too, since a backtest is how one decides to enable a rule.
struct BacktestReport {
    std::size_t batches = 0;
    std::size_t batches_failed = 0;
    std::size_t events = 0;
    std::size_t record_errors = 0;
    std::uint64_t bytes_read = 0;
    std::chrono::steady_clock::duration elapsed{};
    std::vector<std::string> failures;  // one line per batch that could not be read or decoded
    std::vector<BacktestRuleStats> rules;  // one per rule of the config, in config order

    // 0, or 1 when a batch could not be read (the numbers then miss its events).
    int exit_code() const noexcept { return batches_failed > 0 ? 1 : 0; }
};

// The total size of the local files the inputs name (what the file source will read):
// files, directories (recursively) and globs; s3:// inputs make it 0 (unknown).
std::uint64_t local_input_bytes(const std::vector<std::string>& inputs);

BacktestReport run_backtest(PreparedConfig& prepared, const BacktestOptions& options);

// The summary table: per rule, sorted by matches: severity, matches, runtime errors,
// and the top actors; then totals and throughput.
void print_backtest_table(const PreparedConfig& prepared, const BacktestReport& report, std::ostream& out,
                          std::size_t top_actors = 3);
boost::json::object backtest_json(const PreparedConfig& prepared, const BacktestReport& report,
                                  std::size_t top_actors = 3);

// A one-line progress bar for a terminal ("\r" + text, no newline).
std::string backtest_progress_line(const BacktestProgress& progress, std::size_t width = 30);

}  // namespace tattle
