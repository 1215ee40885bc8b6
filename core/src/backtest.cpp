#include "tattle/backtest.hpp"

#include <glob.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <ostream>
#include <system_error>

#include "tattle/alert.hpp"
#include "tattle/alert_shaping.hpp"
#include "tattle/batch_workers.hpp"

namespace tattle {
namespace {

namespace fs = std::filesystem;

std::uint64_t bytes_under(const fs::path& path) {
    std::error_code ec;
    if (fs::is_regular_file(path, ec)) return fs::file_size(path, ec);
    std::uint64_t total = 0;
    if (fs::is_directory(path, ec)) {
        for (auto it = fs::recursive_directory_iterator(path, fs::directory_options::skip_permission_denied, ec);
             !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
            std::error_code size_error;
            if (it->is_regular_file(size_error)) {
                const auto size = it->file_size(size_error);
                if (!size_error) total += size;
            }
        }
    }
    return total;
}

std::vector<std::pair<std::string, std::size_t>> top_actors(const BacktestRuleStats& stats, std::size_t count) {
    std::vector<std::pair<std::string, std::size_t>> actors(stats.actors.begin(), stats.actors.end());
    std::sort(actors.begin(), actors.end(), [](const auto& a, const auto& b) {
        return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    if (actors.size() > count) actors.resize(count);
    return actors;
}

// Rules in the order a reader wants them: the noisiest first.
std::vector<const BacktestRuleStats*> by_matches(const BacktestReport& report) {
    std::vector<const BacktestRuleStats*> rows;
    for (const auto& stats : report.rules) rows.push_back(&stats);
    std::stable_sort(rows.begin(), rows.end(),
                     [](const auto* a, const auto* b) { return a->matches > b->matches; });
    return rows;
}

// Assumed-role ARNs run to 150 characters; the table keeps their start (account,
// role) and end (session) so a line stays readable.
std::string shortened(std::string text, std::size_t limit = 72) {
    for (const std::string_view prefix : {"arn:aws:iam::", "arn:aws:sts::"}) {
        if (text.starts_with(prefix)) text.erase(0, prefix.size());
    }
    if (text.size() <= limit) return text;
    const std::size_t keep_end = 12;
    std::size_t keep_start = limit - keep_end - 3;
    // Never cut inside a UTF-8 character.
    while (keep_start > 0 && (static_cast<unsigned char>(text[keep_start]) & 0xC0) == 0x80) --keep_start;
    std::size_t end_from = text.size() - keep_end;
    while (end_from < text.size() && (static_cast<unsigned char>(text[end_from]) & 0xC0) == 0x80) ++end_from;
    return text.substr(0, keep_start) + "..." + text.substr(end_from);
}

double seconds_of(std::chrono::steady_clock::duration duration) {
    return std::chrono::duration<double>(duration).count();
}

std::string with_thousands(std::uint64_t value) {
    const std::string digits = std::to_string(value);
    std::string text;
    text.reserve(digits.size() + digits.size() / 3);
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) text += ',';
        text += digits[i];
    }
    return text;
}

std::string clock_text(double seconds) {
    const auto total = static_cast<long long>(seconds + 0.5);
    char text[32];
    std::snprintf(text, sizeof text, "%lld:%02lld:%02lld", total / 3600, (total / 60) % 60, total % 60);
    return text;
}

}  // namespace

std::uint64_t local_input_bytes(const std::vector<std::string>& inputs) {
    std::uint64_t total = 0;
    for (const auto& input : inputs) {
        if (input.starts_with("s3://")) return 0;
        if (input == "-") return 0;
        if (input.find_first_of("*?[") != std::string::npos) {
            glob_t matches{};
            if (::glob(input.c_str(), 0, nullptr, &matches) == 0) {
                for (std::size_t i = 0; i < matches.gl_pathc; ++i) total += bytes_under(matches.gl_pathv[i]);
            }
            globfree(&matches);
            continue;
        }
        total += bytes_under(input);
    }
    return total;
}

BacktestReport run_backtest(PreparedConfig& prepared, const BacktestOptions& options) {
    BacktestReport report;
    const auto& rules = prepared.config.rules;
    report.rules.resize(rules.size());
    for (std::size_t i = 0; i < rules.size(); ++i) report.rules[i].rule_index = i;

    RunOptions sources_wanted;
    sources_wanted.input_paths = options.inputs;
    sources_wanted.inputs_since = options.since;
    sources_wanted.inputs_until = options.until;
    auto sources = make_sources(prepared, sources_wanted);

    BacktestProgress progress;
    progress.bytes_total = local_input_bytes(options.inputs);
    const auto started = std::chrono::steady_clock::now();

    // Every rule runs: disabled ones too, and team grants do not apply to inputs
    // named on the command line.
    const std::vector<bool> every_rule(rules.size(), true);
    // The config's input limits, but no alert storm limit: counting a storm is the point.
    InputLimits limits = prepared.config.limits;
    limits.max_alerts_per_batch = std::numeric_limits<std::size_t>::max();
    FilterStage& filter = *prepared.filter;
    BatchWorkers workers(
        filter,
        [&filter] { return filter.sibling(); },
        options.workers != 0 ? options.workers : prepared.config.workers);

    AlertShaper& shaper = *prepared.shaper;
    shaper.clear_state();
    std::vector<std::size_t> shaping_errors_before(rules.size());
    for (std::size_t i = 0; i < rules.size(); ++i) shaping_errors_before[i] = shaper.errors(i);

    struct InFlight {
        SourceInstance* source = nullptr;
        std::string origin;
        std::uint64_t batch_id = 0;
        std::size_t bytes = 0;
    };
    const std::size_t max_in_flight = 2 * workers.size();

    auto count_matches = [&](const std::vector<EvaluatedMatch>& matches) {
        for (const auto& match : matches) {
            auto& stats = report.rules[match.rule_index];
            ++stats.matches;
            ++stats.actors[actor_of(*match.event)];
            // In the order batches were read, as `run` decides.
            const ShapingDecision decision = shaper.decide(match.rule_index, *match.event);
            if (decision.dedup_key) stats.dedup_keys.insert(*decision.dedup_key);
            if (decision.threshold_key) stats.threshold_keys.insert(*decision.threshold_key);
            switch (decision.outcome) {
                case ShapingOutcome::alert: ++stats.alerts; break;
                case ShapingOutcome::deduplicated: ++stats.deduplicated; break;
                case ShapingOutcome::below_threshold: ++stats.below_threshold; break;
            }
        }
    };
    auto finish = [&](const InFlight& job, const BatchEvaluation& evaluation) {
        count_matches(evaluation.matches);
        report.events += evaluation.events;
        report.record_errors += evaluation.report.record_errors.size();
        for (const auto& error : evaluation.report.record_errors) spdlog::warn("bad record: {}", error);
        for (const auto& [rule_index, errors] : evaluation.rule_errors) report.rules[rule_index].runtime_errors += errors;
        if (evaluation.decode_error) {
            ++report.batches_failed;
            report.failures.push_back(*evaluation.decode_error);
            spdlog::warn("batch failed: {}", *evaluation.decode_error);
        }
        // Nothing was delivered, so there is nothing to keep: the batch is settled.
        if (auto error = job.source->ack(job.batch_id, true); !error.empty()) {
            spdlog::warn("source \"{}\": ack failed: {}", job.source->id(), error);
        }
        report.bytes_read += job.bytes;
        progress.batches = report.batches;
        progress.events = report.events;
        progress.bytes_read = report.bytes_read;
        progress.elapsed = std::chrono::steady_clock::now() - started;
        if (options.on_progress) options.on_progress(progress);
    };
    StreamedBatches<InFlight> in_flight({
        [&](InFlight& batch) { shaper.begin_batch(batch.origin); },
        [&](InFlight&, std::vector<EvaluatedMatch>& matches) { count_matches(matches); },
        [&](InFlight& batch, BatchEvaluation& evaluation) { finish(batch, evaluation); },
    });

    for (auto& source : sources) {
        for (;;) {
            in_flight.take_ready(max_in_flight);
            auto next = source->next();
            // A backtest reads what is there now; a queue saying "nothing now" is done.
            if (next.status == BatchSource::NextStatus::Exhausted ||
                next.status == BatchSource::NextStatus::NothingNow) {
                break;
            }
            ++report.batches;
            if (next.status == BatchSource::NextStatus::BatchUnreadable) {
                ++report.batches_failed;
                const std::string line =
                    (next.batch.origin.empty() ? source->id() : next.batch.origin) + ": " + next.error;
                spdlog::warn("cannot read batch: {}", line);
                report.failures.push_back(line);
                continue;
            }
            in_flight.push({source.get(), next.batch.origin, next.batch.id, next.batch.data.size()},
                           workers.stream(next.batch.data, next.batch.origin, &every_rule, limits));
        }
    }
    in_flight.take_all();
    for (std::size_t i = 0; i < rules.size(); ++i) report.rules[i].runtime_errors += shaper.errors(i) - shaping_errors_before[i];
    report.elapsed = std::chrono::steady_clock::now() - started;
    return report;
}

void print_backtest_table(const PreparedConfig& prepared, const BacktestReport& report, std::ostream& out,
                          std::size_t top_actor_count) {
    const auto& rules = prepared.config.rules;
    std::size_t id_width = 4;
    for (const auto& rule : rules) id_width = std::max(id_width, rule.key().size() + (rule.enabled ? 0 : 11));
    id_width = std::min<std::size_t>(id_width, 60);
    auto pad = [](std::string text, std::size_t width) {
        if (text.size() < width) text.append(width - text.size(), ' ');
        return text;
    };
    out << pad("RULE", id_width) << "  " << pad("SEVERITY", 8) << "  " << pad("MATCHES", 9) << "  "
        << pad("ALERTS", 9) << "  " << pad("KEYS", 7) << "  " << pad("ERRORS", 6) << "  TOP ACTORS\n";
    std::size_t total_alerts = 0;
    std::size_t total_matches = 0;
    std::size_t rules_matching = 0;
    for (const auto* stats : by_matches(report)) {
        const RuleSpec& rule = rules[stats->rule_index];
        total_matches += stats->matches;
        total_alerts += stats->alerts;
        // Distinct dedup keys, else threshold keys: how many different things the rule saw.
        const std::size_t keys = !stats->dedup_keys.empty() ? stats->dedup_keys.size() : stats->threshold_keys.size();
        if (stats->matches > 0) ++rules_matching;
        std::string actors;
        for (const auto& [actor, count] : top_actors(*stats, top_actor_count)) {
            if (!actors.empty()) actors += ", ";
            actors += (actor.empty() ? std::string("(unknown)") : shortened(actor)) + " (" + with_thousands(count) + ")";
        }
        const std::string id = rule.key() + (rule.enabled ? "" : " (disabled)");
        out << pad(id, id_width) << "  " << pad(rule.severity.empty() ? "-" : rule.severity, 8) << "  "
            << pad(with_thousands(stats->matches), 9) << "  " << pad(with_thousands(stats->alerts), 9) << "  "
            << pad(keys > 0 ? with_thousands(keys) : "-", 7) << "  " << pad(with_thousands(stats->runtime_errors), 6)
            << "  " << (actors.empty() ? "-" : actors) << "\n";
    }
    const double seconds = seconds_of(report.elapsed);
    out << "\n"
        << with_thousands(report.events) << " events in " << with_thousands(report.batches) << " batches ("
        << with_thousands(report.bytes_read) << " bytes) in " << clock_text(seconds);
    if (seconds > 0) {
        out << ", " << with_thousands(static_cast<std::uint64_t>(static_cast<double>(report.events) / seconds))
            << " events/s";
    }
    out << "\n"
        << with_thousands(total_matches) << " matches from " << rules_matching << " of " << rules.size()
        << " rules would have made " << with_thousands(total_alerts)
        << " alerts after dedup and threshold; nothing was sent\n";
    if (report.record_errors > 0) out << with_thousands(report.record_errors) << " records could not be read\n";
    if (!report.failures.empty()) {
        out << report.failures.size() << " batches could not be read:\n";
        for (const auto& failure : report.failures) out << "  " << failure << "\n";
    }
}

boost::json::object backtest_json(const PreparedConfig& prepared, const BacktestReport& report,
                                  std::size_t top_actor_count) {
    const auto& rules = prepared.config.rules;
    boost::json::array rows;
    for (const auto* stats : by_matches(report)) {
        const RuleSpec& rule = rules[stats->rule_index];
        boost::json::array actors;
        for (const auto& [actor, count] : top_actors(*stats, top_actor_count)) {
            actors.push_back(boost::json::object{{"actor", actor}, {"matches", count}});
        }
        rows.push_back(boost::json::object{{"rule", rule.key()},
                                           {"enabled", rule.enabled},
                                           {"severity", rule.severity},
                                           {"matches", stats->matches},
                                           {"alerts", stats->alerts},
                                           {"deduplicated", stats->deduplicated},
                                           {"below_threshold", stats->below_threshold},
                                           {"distinct_dedup_keys", stats->dedup_keys.size()},
                                           {"distinct_threshold_keys", stats->threshold_keys.size()},
                                           {"distinct_actors", stats->actors.size()},
                                           {"runtime_errors", stats->runtime_errors},
                                           {"top_actors", std::move(actors)}});
    }
    boost::json::array failures;
    for (const auto& failure : report.failures) failures.emplace_back(failure);
    return boost::json::object{{"events", report.events},
                               {"batches", report.batches},
                               {"batches_failed", report.batches_failed},
                               {"record_errors", report.record_errors},
                               {"bytes", report.bytes_read},
                               {"seconds", seconds_of(report.elapsed)},
                               {"rules", std::move(rows)},
                               {"failures", std::move(failures)}};
}

std::string backtest_progress_line(const BacktestProgress& progress, std::size_t width) {
    const double seconds = seconds_of(progress.elapsed);
    const double rate = seconds > 0 ? static_cast<double>(progress.events) / seconds : 0.0;
    std::string line = "\r";
    if (progress.bytes_total > 0) {
        const double done = std::min(1.0, static_cast<double>(progress.bytes_read) /
                                              static_cast<double>(progress.bytes_total));
        const auto filled = static_cast<std::size_t>(done * static_cast<double>(width));
        line += '[';
        line.append(filled, '#');
        line.append(width - filled, '.');
        line += "] ";
        line += std::to_string(static_cast<int>(done * 100)) + "%  ";
        line += with_thousands(progress.events) + " events  " +
                with_thousands(static_cast<std::uint64_t>(rate)) + " events/s";
        if (done > 0 && done < 1) line += "  ETA " + clock_text(seconds * (1 - done) / done);
    } else {
        line += with_thousands(progress.batches) + " batches  " + with_thousands(progress.events) + " events  " +
                with_thousands(static_cast<std::uint64_t>(rate)) + " events/s";
    }
    line += "\x1b[K";  // clear what a longer previous line left
    return line;
}

}  // namespace tattle
