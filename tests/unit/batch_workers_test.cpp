// Batches decoded and filtered on several threads give what one thread gives.
#include "tattle/batch_workers.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <string>
#include <tuple>
#include <vector>

namespace tattle {
namespace {

std::vector<std::uint8_t> bytes_of(const std::string& text) { return {text.begin(), text.end()}; }

std::vector<FilterRule> rules_for_test() {
    return {{"write", R"(select(.readOnly == false) | .eventName)", {}},
            {"fails on strings", R"(.detail | ascii_downcase == "x")", {}},
            {"kept out", R"(select(.eventName != null))", {}}};
}

// Each batch: events whose names and readOnly flags depend on the batch number.
std::string batch_text(int batch) {
    std::string text = R"({"Records":[)";
    for (int i = 0; i < 50; ++i) {
        if (i > 0) text += ",";
        text += R"({"eventName":"Call)" + std::to_string(batch) + "_" + std::to_string(i) + R"(","readOnly":)" +
                ((i + batch) % 3 == 0 ? "false" : "true") + R"(,"detail":)" + (i % 7 == 0 ? "1" : "\"x\"") + "}";
    }
    return text + "]}";
}

using Row = std::tuple<std::size_t, std::size_t, std::string>;

std::vector<Row> rows_of(const BatchEvaluation& evaluation) {
    std::vector<Row> rows;
    for (const auto& match : evaluation.matches) {
        rows.emplace_back(match.rule_index, match.event_index,
                          match.annotation ? boost::json::serialize(*match.annotation) : "");
    }
    return rows;
}

TEST(EvaluateBatch, KeepsOnlyRulesToRunAndCountsRuntimeErrorsOfTheBatch) {
    std::vector<Diagnostic> problems;
    FilterStage filter(rules_for_test(), problems);
    ASSERT_TRUE(problems.empty());
    const auto data = bytes_of(batch_text(0));
    const BatchEvaluation evaluation = evaluate_batch(filter, data, "batch0", {true, true, false});
    EXPECT_EQ(evaluation.events, 50U);
    std::size_t writes = 0;
    for (const auto& match : evaluation.matches) {
        EXPECT_NE(match.rule_index, 2U) << "a rule left out must not show up";
        if (match.rule_index == 0) {
            ++writes;
            EXPECT_EQ(match.annotation->as_string(), match.event->at("eventName").as_string());
        }
    }
    EXPECT_EQ(writes, 17U);  // i % 3 == 0 for i in 0..49
    // `1 | ascii_downcase` is a jq error: 8 events (i % 7 == 0) count against rule 1 only.
    ASSERT_EQ(evaluation.rule_errors.size(), 1U);
    EXPECT_EQ(evaluation.rule_errors[0], (std::pair<std::size_t, std::size_t>{1, 8}));
    EXPECT_FALSE(evaluation.decode_error);
}

TEST(EvaluateBatch, WithRenderingMakesEachAlertAndKeepsTheEventOnlyWhereTheRouterNeedsIt) {
    std::vector<Diagnostic> problems;
    FilterStage filter(rules_for_test(), problems);
    const auto data = bytes_of(batch_text(0));
    const std::vector<bool> every_rule(3, true);
    AlertRendering rendering;
    rendering.source_id = "src";
    rendering.rules = {{"write", "d", "team/write", "team", "", {}, ""}, {"fails on strings", "", "", "", "", {}, ""},
                       {"kept out", "", "", "", "", {}, ""}};
    rendering.router_needs_event = {false, false, true};  // as for a rule with a title or dedup
    const BatchEvaluation plain = evaluate_batch(filter, data, "batch0", every_rule);
    const BatchEvaluation rendered = evaluate_batch(filter, data, "batch0", every_rule, {}, &rendering);
    ASSERT_EQ(rows_of(rendered).size(), plain.matches.size());
    for (std::size_t i = 0; i < plain.matches.size(); ++i) {
        const EvaluatedMatch& expected = plain.matches[i];
        const EvaluatedMatch& match = rendered.matches[i];
        ASSERT_EQ(match.rule_index, expected.rule_index);
        ASSERT_TRUE(match.alert && match.event_json);
        EXPECT_EQ(match.event != nullptr, match.rule_index == 2) << "match " << i;
        EXPECT_FALSE(match.annotation) << "the annotation is in the alert text";
        boost::json::object alert = make_alert(rendering.rules[expected.rule_index], *expected.event,
                                               expected.annotation, {"src", "batch0", expected.event_index});
        alert["destination"] = "out";
        EXPECT_EQ(alert_json(*match.alert, "out", *match.event_json, {}), boost::json::serialize(alert));
    }
    // Alerts for one event share its text.
    EXPECT_EQ(rendered.matches[0].event_index, rendered.matches[1].event_index);
    EXPECT_EQ(rendered.matches[0].event_json, rendered.matches[1].event_json);
}

TEST(EvaluateBatch, ReportsABatchThatCannotBeDecoded) {
    std::vector<Diagnostic> problems;
    FilterStage filter(rules_for_test(), problems);
    const auto data = bytes_of("\x1f\x8b\x08\x00 not gzip");
    const BatchEvaluation evaluation = evaluate_batch(filter, data, "broken.gz", {true, true, true});
    ASSERT_TRUE(evaluation.decode_error.has_value());
    EXPECT_NE(evaluation.decode_error->find("broken.gz"), std::string::npos);
}

TEST(BatchWorkers, ManyWorkersGiveWhatOneGivesBatchForBatch) {
    std::vector<std::vector<std::uint8_t>> batches;
    for (int i = 0; i < 40; ++i) batches.push_back(bytes_of(batch_text(i)));
    const std::vector<bool> every_rule(3, true);

    std::vector<Diagnostic> problems;
    FilterStage reference_filter(rules_for_test(), problems);
    std::vector<std::vector<Row>> expected;
    for (std::size_t i = 0; i < batches.size(); ++i) {
        expected.push_back(rows_of(evaluate_batch(reference_filter, batches[i], "b" + std::to_string(i), every_rule)));
    }

    for (const std::size_t worker_count : {1U, 2U, 4U}) {
        std::vector<Diagnostic> first_problems;
        FilterStage first(rules_for_test(), first_problems);
        std::atomic<std::size_t> copies = 0;
        std::vector<std::future<BatchEvaluation>> results;
        {
            BatchWorkers workers(
                first,
                [&copies] {
                    ++copies;  // called on the worker threads, each before its first job
                    std::vector<Diagnostic> ignored;
                    return std::make_unique<FilterStage>(rules_for_test(), ignored);
                },
                worker_count);
            EXPECT_EQ(workers.size(), worker_count);
            for (std::size_t i = 0; i < batches.size(); ++i) {
                results.push_back(workers.submit(batches[i], "b" + std::to_string(i), &every_rule));
            }
            for (std::size_t i = 0; i < results.size(); ++i) {
                EXPECT_EQ(rows_of(results[i].get()), expected[i]) << worker_count << " workers, batch " << i;
            }
        }
        EXPECT_EQ(copies.load(), worker_count - 1);
    }
}

TEST(BatchWorkers, ZeroMeansOnePerHardwareThread) {
    EXPECT_GE(resolve_worker_count(0), 1U);
    EXPECT_EQ(resolve_worker_count(3), 3U);
}

}  // namespace
}  // namespace tattle
