#include "tattle/metrics.hpp"

#include "tattle/cpu_time.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <sstream>
#include <string>

namespace tattle {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;

const SteadyTime kStart{};

// The lines of one metric family, without its # HELP and # TYPE lines.
std::vector<std::string> samples_of(const std::string& text, const std::string& name) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (line.rfind(name, 0) == 0) lines.push_back(line);
    }
    return lines;
}

TEST(MetricsTest, EscapesLabelValuesAsTheExpositionFormatSays) {
    EXPECT_EQ(escape_label_value("plain rule"), "plain rule");
    EXPECT_EQ(escape_label_value(R"(say "root")"), R"(say \"root\")");
    EXPECT_EQ(escape_label_value("back\\slash"), "back\\\\slash");
    EXPECT_EQ(escape_label_value("two\nlines"), "two\\nlines");
}

TEST(MetricsTest, EveryFamilyHasHelpAndTypeAndEndsWithANewline) {
    PipelineMetrics metrics;
    const std::string text = metrics.render(kStart);
    for (const char* family :
         {"tattle_events_read_total counter", "tattle_rule_matches_total counter", "tattle_alerts_total counter",
          "tattle_delivery_retries_total counter", "tattle_batches_total counter",
          "tattle_batch_duration_seconds histogram", "tattle_rule_errors_total counter",
          "tattle_source_lag_seconds gauge", "tattle_config_reloads_total counter",
          "tattle_cpu_seconds_total counter", "process_cpu_seconds_total counter"}) {
        EXPECT_THAT(text, HasSubstr(std::string("# TYPE ") + family + "\n"));
        const std::string name = std::string(family).substr(0, std::string(family).find(' '));
        EXPECT_THAT(text, HasSubstr("# HELP " + name + " "));
    }
    ASSERT_FALSE(text.empty());
    EXPECT_EQ(text.back(), '\n');
}

TEST(MetricsTest, CpuTimeComesByKindOfThread) {
    PipelineMetrics metrics;
    std::string text;
    {
        // This thread's time from here on counts as the pipeline's.
        const CountedThread counted(ThreadRole::pipeline);
        const auto until = thread_cpu_time() + 20ms;
        while (thread_cpu_time() < until) {
        }
        text = metrics.render(kStart);
    }
    const auto cpu = samples_of(text, "tattle_cpu_seconds_total");
    ASSERT_EQ(cpu.size(), 3U) << text;
    EXPECT_THAT(cpu[0], ::testing::StartsWith(R"(tattle_cpu_seconds_total{threads="batch_workers"} )"));
    EXPECT_THAT(cpu[1], ::testing::StartsWith(R"(tattle_cpu_seconds_total{threads="delivery"} )"));
    EXPECT_THAT(cpu[2], ::testing::StartsWith(R"(tattle_cpu_seconds_total{threads="pipeline"} )"));
    const double pipeline = std::stod(cpu[2].substr(cpu[2].find(' ') + 1));
    EXPECT_GE(pipeline, 0.02);
    const auto process = samples_of(text, "process_cpu_seconds_total ");
    ASSERT_EQ(process.size(), 1U) << text;
    EXPECT_GE(std::stod(process[0].substr(process[0].find(' ') + 1)), pipeline);
}

TEST(MetricsTest, CountsWhatThePipelineReports) {
    PipelineMetrics metrics;
    metrics.run_started({"Root \"login\"", "quiet"}, {"slack"});
    for (int i = 0; i < 2; ++i) metrics.event_read();
    metrics.events_read(3);  // a batch at once
    metrics.rule_matched("Root \"login\"");
    metrics.rule_matched("Root \"login\"");
    metrics.alert_settled("slack", AlertOutcome::Delivered);
    metrics.alert_settled("slack", AlertOutcome::Spooled);
    metrics.alert_settled("slack", AlertOutcome::Suppressed);
    metrics.set_run_delivery_retries(3);
    metrics.set_run_rule_errors("quiet", 2);
    metrics.config_reloaded(false);
    const std::string text = metrics.render(kStart);

    EXPECT_THAT(text, HasSubstr("\ntattle_events_read_total 5\n"));
    EXPECT_THAT(text, HasSubstr("\ntattle_rule_matches_total{rule=\"Root \\\"login\\\"\"} 2\n"));
    EXPECT_THAT(text, HasSubstr("\ntattle_rule_matches_total{rule=\"quiet\"} 0\n"));
    EXPECT_THAT(text, HasSubstr("\ntattle_alerts_total{destination=\"slack\",outcome=\"delivered\"} 1\n"));
    EXPECT_THAT(text, HasSubstr("\ntattle_alerts_total{destination=\"slack\",outcome=\"spooled\"} 1\n"));
    EXPECT_THAT(text, HasSubstr("\ntattle_alerts_total{destination=\"slack\",outcome=\"failed\"} 0\n"));
    EXPECT_THAT(text, HasSubstr("\ntattle_alerts_total{destination=\"slack\",outcome=\"suppressed\"} 1\n"));
    EXPECT_THAT(text, HasSubstr("\ntattle_delivery_retries_total 3\n"));
    EXPECT_THAT(text, HasSubstr("\ntattle_rule_errors_total{rule=\"quiet\"} 2\n"));
    EXPECT_THAT(text, HasSubstr("\ntattle_config_reloads_total{result=\"ok\"} 0\n"));
    EXPECT_THAT(text, HasSubstr("\ntattle_config_reloads_total{result=\"failed\"} 1\n"));
}

TEST(MetricsTest, InputLimitHitsAreCountedPerLimitFromZero) {
    PipelineMetrics metrics;
    metrics.input_limit_hit("max_record_bytes");
    metrics.input_limit_hit("max_record_bytes");
    metrics.input_limit_hit("max_alerts_per_batch");
    const std::string text = metrics.render(kStart);
    EXPECT_THAT(text, HasSubstr("\n# TYPE tattle_input_limit_hits_total counter\n"));
    EXPECT_THAT(text, HasSubstr("\ntattle_input_limit_hits_total{limit=\"max_record_bytes\"} 2\n"));
    EXPECT_THAT(text, HasSubstr("\ntattle_input_limit_hits_total{limit=\"max_alerts_per_batch\"} 1\n"));
    EXPECT_THAT(text, HasSubstr("\ntattle_input_limit_hits_total{limit=\"max_depth\"} 0\n"));
}

TEST(MetricsTest, DisabledRulesAreCountedByRuleAndReason) {
    PipelineMetrics metrics;
    EXPECT_THAT(metrics.render(kStart), HasSubstr("\n# TYPE tattle_rules_disabled_total counter\n"));
    EXPECT_THAT(metrics.render(kStart), Not(HasSubstr("\ntattle_rules_disabled_total{")));
    metrics.rule_disabled("red/loops", "cpu");
    metrics.rule_disabled("red/hoards", "memory");
    metrics.rule_disabled("red/loops", "cpu");  // again after a reload
    const std::string text = metrics.render(kStart);
    EXPECT_THAT(text, HasSubstr("\ntattle_rules_disabled_total{rule=\"red/loops\",reason=\"cpu\"} 2\n"));
    EXPECT_THAT(text, HasSubstr("\ntattle_rules_disabled_total{rule=\"red/hoards\",reason=\"memory\"} 1\n"));
}

TEST(MetricsTest, PerRunTotalsAddUpAcrossRuns) {
    PipelineMetrics metrics;
    metrics.run_started({"r"}, {});
    metrics.set_run_delivery_retries(2);
    metrics.set_run_delivery_retries(4);  // a running total, not an increment
    metrics.set_run_rule_errors("r", 1);
    metrics.run_finished();
    metrics.run_started({"r"}, {});
    metrics.set_run_delivery_retries(1);
    metrics.set_run_rule_errors("r", 5);
    const std::string text = metrics.render(kStart);
    EXPECT_THAT(text, HasSubstr("\ntattle_delivery_retries_total 5\n"));
    EXPECT_THAT(text, HasSubstr("\ntattle_rule_errors_total{rule=\"r\"} 6\n"));
}

TEST(MetricsTest, BatchDurationsFillCumulativeBuckets) {
    PipelineMetrics metrics;
    metrics.batch_opened(1, kStart);
    metrics.batch_opened(2, kStart);
    metrics.batch_opened(3, kStart);
    // Durations with exact binary fractions, so that the sum prints exactly.
    metrics.batch_closed(1, BatchOutcome::Settled, kStart + 3906250ns);  // 1/256 s: <= 0.005
    metrics.batch_closed(2, BatchOutcome::Released, kStart + 750ms);     // <= 1
    metrics.batch_closed(3, BatchOutcome::Settled, kStart + 120s);       // +Inf only
    metrics.batch_unreadable();
    const std::string text = metrics.render(kStart + 200s);

    EXPECT_THAT(text, HasSubstr("\ntattle_batch_duration_seconds_bucket{le=\"0.005\"} 1\n"));
    EXPECT_THAT(text, HasSubstr("\ntattle_batch_duration_seconds_bucket{le=\"0.5\"} 1\n"));
    EXPECT_THAT(text, HasSubstr("\ntattle_batch_duration_seconds_bucket{le=\"1\"} 2\n"));
    EXPECT_THAT(text, HasSubstr("\ntattle_batch_duration_seconds_bucket{le=\"10\"} 2\n"));
    EXPECT_THAT(text, HasSubstr("\ntattle_batch_duration_seconds_bucket{le=\"60\"} 2\n"));
    EXPECT_THAT(text, HasSubstr("\ntattle_batch_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
    EXPECT_THAT(text, HasSubstr("\ntattle_batch_duration_seconds_count 3\n"));
    EXPECT_THAT(text, HasSubstr("\ntattle_batch_duration_seconds_sum 120.75390625\n"));
    EXPECT_EQ(samples_of(text, "tattle_batch_duration_seconds_bucket").size(),
              PipelineMetrics::kBatchDurationBuckets.size() + 1);
    EXPECT_THAT(text, HasSubstr("\ntattle_batches_total{outcome=\"settled\"} 2\n"));
    EXPECT_THAT(text, HasSubstr("\ntattle_batches_total{outcome=\"released\"} 1\n"));
    EXPECT_THAT(text, HasSubstr("\ntattle_batches_total{outcome=\"unreadable\"} 1\n"));
}

TEST(MetricsTest, SourceLagIsTheAgeOfTheOldestOpenBatch) {
    PipelineMetrics metrics;
    EXPECT_THAT(metrics.render(kStart + 10s), HasSubstr("\ntattle_source_lag_seconds 0\n"));
    metrics.batch_opened(7, kStart + 1s);
    metrics.batch_opened(8, kStart + 4s);
    EXPECT_THAT(metrics.render(kStart + 6500ms), HasSubstr("\ntattle_source_lag_seconds 5.5\n"));
    metrics.batch_closed(7, BatchOutcome::Settled, kStart + 7s);
    EXPECT_THAT(metrics.render(kStart + 7s), HasSubstr("\ntattle_source_lag_seconds 3\n"));
    metrics.batch_closed(8, BatchOutcome::Settled, kStart + 8s);
    EXPECT_THAT(metrics.render(kStart + 9s), HasSubstr("\ntattle_source_lag_seconds 0\n"));
}

TEST(MetricsTest, ReadinessFollowsTheRun) {
    PipelineMetrics metrics;
    EXPECT_FALSE(metrics.run_in_progress());
    metrics.run_started({}, {});
    EXPECT_TRUE(metrics.run_in_progress());
    metrics.run_finished();
    EXPECT_FALSE(metrics.run_in_progress());
    EXPECT_THAT(metrics.render(kStart), Not(HasSubstr("nan")));
}

}  // namespace
}  // namespace tattle
