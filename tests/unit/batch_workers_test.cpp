// Batches decoded and filtered on several threads give what one thread gives.
#include "tattle/batch_workers.hpp"

#include "tattle/rule_sandbox.hpp"

#include "quiet_logs.hpp"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>
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

// Every match of a streamed batch, its parts' and its end's together; each part is
// shown to on_part as it arrives.
using PartCheck = std::function<void(const std::vector<EvaluatedMatch>&)>;
BatchEvaluation read_all(MatchStream& stream, const PartCheck& on_part = {}) {
    std::vector<EvaluatedMatch> matches;
    for (;;) {
        MatchStream::Piece piece = stream.read();
        auto& arrived = piece.end ? piece.end->matches : piece.matches;
        if (!piece.end && on_part) on_part(arrived);
        for (auto& match : arrived) matches.push_back(std::move(match));
        if (piece.end) {
            piece.end->matches = std::move(matches);
            return std::move(*piece.end);
        }
    }
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
    rendering.destinations = {"out", "out", "out"};
    // As for rules with a title or dedup. The first rule's match on an event comes before
    // the second's: the event handed over must still be what that alert is written from.
    rendering.router_needs_event = {true, false, true};
    const BatchEvaluation plain = evaluate_batch(filter, data, "batch0", every_rule);
    const BatchEvaluation rendered = evaluate_batch(filter, data, "batch0", every_rule, {}, &rendering);
    ASSERT_EQ(rows_of(rendered).size(), plain.matches.size());
    for (std::size_t i = 0; i < plain.matches.size(); ++i) {
        const EvaluatedMatch& expected = plain.matches[i];
        const EvaluatedMatch& match = rendered.matches[i];
        ASSERT_EQ(match.rule_index, expected.rule_index);
        ASSERT_TRUE(match.alert);
        EXPECT_EQ(match.event != nullptr, match.rule_index != 1) << "match " << i;
        EXPECT_FALSE(match.annotation) << "the annotation is in the alert text";
        boost::json::object alert = make_alert(rendering.rules[expected.rule_index], *expected.event,
                                               expected.annotation, {"src", "batch0", expected.event_index});
        alert["destination"] = "out";
        EXPECT_EQ(match.alert->text, boost::json::serialize(alert));
        alert["destination"] = "elsewhere";
        EXPECT_EQ(alert_json(*match.alert, "elsewhere", {}), boost::json::serialize(alert));
    }
    // Two rules' alerts for one event, the first of which hands the event to the router.
    EXPECT_EQ(rendered.matches[0].event_index, rendered.matches[1].event_index);
    EXPECT_EQ(rendered.matches[0].alert->event_text(), rendered.matches[1].alert->event_text());
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
        std::vector<std::shared_ptr<MatchStream>> results;
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
                results.push_back(workers.stream(batches[i], "b" + std::to_string(i), &every_rule));
            }
            for (std::size_t i = 0; i < results.size(); ++i) {
                EXPECT_EQ(rows_of(read_all(*results[i])), expected[i]) << worker_count << " workers, batch " << i;
            }
        }
        EXPECT_EQ(copies.load(), worker_count - 1);
    }
}

// ---------------------------------------------------------------------------
// Rules libjq decides, in the rule evaluator process: the batch worker goes on decoding
// while the evaluator decides a group of events, and must give what deciding every
// event on arrival gives.

using tattle::test_support::QuietLogs;

// Native rules and rules only libjq decides (range), with matches, annotations and
// runtime errors on both sides. The libjq rules are indexed on kind, so the events that
// need libjq (a third) are spread through the batch between events matched natively.
std::vector<FilterRule> mixed_rules() {
    return {{"native write", R"(select(.readOnly == false) | .eventName)", {}},
            {"libjq pairs", R"(select(.kind == "jq") | select([range(.n % 4)] | length == 2) | {n, name: .eventName})", {}},
            {"native errors", R"(.detail | ascii_downcase == "x")", {}},
            {"libjq errors", R"(select(.kind == "jq") | select([range(.n % 9)] | length == 4) | .detail + 1)", {}},
            {"libjq true", R"(select(.kind == "jq") | [range(.n % 13)] | length == 12)", {}}};
}

std::string mixed_batch(int batch, int events) {
    std::string text = R"({"Records":[)";
    for (int i = 0; i < events; ++i) {
        if (i > 0) text += ",";
        const int n = i + batch;
        text += R"({"eventName":"Call)" + std::to_string(batch) + "_" + std::to_string(i) + R"(","n":)" +
                std::to_string(n) + R"(,"kind":)" + (n % 3 == 1 ? R"("jq")" : R"("plain")") + R"(,"readOnly":)" + (n % 3 == 0 ? "false" : "true") + R"(,"detail":)" +
                (n % 5 == 0 ? "1" : "\"x\"") + "}";
    }
    return text + "]}";
}

FilterOptions isolated() { return FilterOptions{RuleCompilation::indexed, RuleBudget{}}; }
FilterOptions in_this_process() { return FilterOptions{RuleCompilation::indexed, std::nullopt}; }

// What deciding each event on arrival gives (FilterStage::evaluate, libjq in this
// process): rows in event order, then rule order, up to the alert limit, and how many
// records were read when the limit failed the batch (or all of them).
struct OnArrival {
    std::vector<Row> rows;
    std::size_t events = 0;
    bool limit_failed = false;
};

OnArrival decided_on_arrival(const std::string& batch, const std::vector<bool>& rules_to_run,
                             std::size_t max_alerts = InputLimits{}.max_alerts_per_batch) {
    std::vector<Diagnostic> problems;
    FilterStage reference(mixed_rules(), problems, in_this_process());
    reference.begin_batch("reference");
    OnArrival expected;
    const boost::json::value parsed = boost::json::parse(batch);
    for (const auto& record : parsed.at("Records").as_array()) {
        ++expected.events;
        for (const auto& match : reference.evaluate(record.as_object())) {
            if (!rules_to_run[match.rule_index]) continue;
            if (expected.rows.size() == max_alerts) {
                expected.limit_failed = true;
                return expected;
            }
            expected.rows.emplace_back(match.rule_index, expected.events - 1,
                                       match.annotation ? boost::json::serialize(*match.annotation) : "");
        }
    }
    return expected;
}

TEST(EvaluateBatchWithRuleEvaluator, TheRulesReallyNeedLibjq) {
    std::vector<Diagnostic> problems;
    FilterStage filter(mixed_rules(), problems, in_this_process());
    ASSERT_TRUE(problems.empty());
    EXPECT_EQ(filter.explain(0).evaluation, "native");
    for (const std::size_t rule : {1U, 3U, 4U}) {
        EXPECT_NE(filter.explain(rule).evaluation, "native");  // libjq decides, or makes the output
        EXPECT_TRUE(filter.explain(rule).indexed) << filter.explain(rule).index;
    }
}

TEST(EvaluateBatchWithRuleEvaluator, ManyGroupsGiveWhatDecidingEachEventOnArrivalGives) {
    QuietLogs quiet;
    set_rule_evaluator_program(TATTLE_BINARY);
    // A third of the events need libjq: groups fill up (256) or go out whenever the
    // evaluator is idle, between events matched natively.
    const std::string text = mixed_batch(0, 1500);
    const auto data = bytes_of(text);
    const std::vector<bool> rules_to_run{true, true, true, true, false};
    const OnArrival expected = decided_on_arrival(text, rules_to_run);
    ASSERT_GT(expected.rows.size(), 700U);

    std::vector<Diagnostic> problems;
    FilterStage filter(mixed_rules(), problems, isolated());
    for (int round = 0; round < 2; ++round) {  // the second batch finds the evaluator running
        const BatchEvaluation evaluation = evaluate_batch(filter, data, "mixed", rules_to_run);
        EXPECT_EQ(evaluation.events, 1500U);
        EXPECT_EQ(rows_of(evaluation), expected.rows) << "round " << round;
        // Runtime errors per rule: a numeric detail has no ascii_downcase (rule 2, found
        // natively, worded by libjq), a string detail cannot be added to 1 (rule 3).
        std::size_t native_errors = 0;
        std::size_t libjq_errors = 0;
        for (int n = 0; n < 1500; ++n) {
            native_errors += n % 5 == 0 ? 1 : 0;
            libjq_errors += (n % 3 == 1 && n % 9 == 4 && n % 5 != 0) ? 1 : 0;
        }
        EXPECT_EQ(evaluation.rule_errors,
                  (std::vector<std::pair<std::size_t, std::size_t>>{{2, native_errors}, {3, libjq_errors}}));
        EXPECT_TRUE(evaluation.disabled.empty());
        EXPECT_FALSE(evaluation.decode_error);
    }
}

TEST(EvaluateBatchWithRuleEvaluator, RenderedAlertsAreTheSameAsWithLibjqInThisProcess) {
    QuietLogs quiet;
    set_rule_evaluator_program(TATTLE_BINARY);
    const auto data = bytes_of(mixed_batch(1, 900));
    const std::vector<bool> every_rule(5, true);
    AlertRendering rendering;
    rendering.source_id = "src";
    for (const auto& rule : mixed_rules()) {
        rendering.rules.push_back({rule.name, "", "", "", "", {}, ""});
        rendering.destinations.push_back("out");
    }
    rendering.router_needs_event = {false, true, false, false, true};
    auto alerts_of = [&](FilterOptions options) {
        std::vector<Diagnostic> problems;
        FilterStage filter(mixed_rules(), problems, options);
        const BatchEvaluation evaluation = evaluate_batch(filter, data, "b", every_rule, {}, &rendering);
        std::vector<std::string> alerts;
        for (const auto& match : evaluation.matches) {
            EXPECT_EQ(match.event != nullptr, rendering.router_needs_event[match.rule_index]);
            alerts.push_back(alert_json(*match.alert, "out", {}));
        }
        return alerts;
    };
    const auto here = alerts_of(in_this_process());
    ASSERT_GT(here.size(), 400U);
    EXPECT_EQ(alerts_of(isolated()), here);
}

TEST(EvaluateBatchWithRuleEvaluator, TheAlertLimitFailsTheBatchAtTheSameRecord) {
    QuietLogs quiet;
    set_rule_evaluator_program(TATTLE_BINARY);
    const std::string text = mixed_batch(2, 800);
    const auto data = bytes_of(text);
    const std::vector<bool> rules_to_run{true, true, false, true, true};
    std::vector<Diagnostic> problems;
    FilterStage filter(mixed_rules(), problems, isolated());
    for (const std::size_t limit : {1U, 2U, 7U, 64U, 255U, 301U}) {
        const OnArrival expected = decided_on_arrival(text, rules_to_run, limit);
        ASSERT_TRUE(expected.limit_failed) << limit;
        InputLimits limits;
        limits.max_alerts_per_batch = limit;
        const BatchEvaluation evaluation = evaluate_batch(filter, data, "storm", rules_to_run, limits);
        EXPECT_EQ(evaluation.events, expected.events) << "limit " << limit;
        EXPECT_EQ(rows_of(evaluation), expected.rows) << "limit " << limit;
        ASSERT_TRUE(evaluation.decode_error.has_value());
        EXPECT_NE(evaluation.decode_error->find("max_alerts_per_batch"), std::string::npos);
        EXPECT_EQ(evaluation.limits_hit, std::vector<std::string>{"max_alerts_per_batch"});
    }
}

TEST(EvaluateBatchWithRuleEvaluator, ABatchThatCannotBeDecodedKeepsTheAlertsBeforeIt) {
    QuietLogs quiet;
    set_rule_evaluator_program(TATTLE_BINARY);
    std::string text = mixed_batch(3, 400);
    const OnArrival expected = decided_on_arrival(text, std::vector<bool>(5, true));
    text.resize(text.size() - 3);  // the last record is cut short: no '}', no "]}"
    std::vector<Diagnostic> problems;
    FilterStage filter(mixed_rules(), problems, isolated());
    const BatchEvaluation evaluation = evaluate_batch(filter, bytes_of(text), "cut", std::vector<bool>(5, true));
    ASSERT_TRUE(evaluation.decode_error.has_value());
    std::vector<Row> before_the_last;
    for (const auto& row : expected.rows) {
        if (std::get<1>(row) < 399U) before_the_last.push_back(row);
    }
    EXPECT_EQ(rows_of(evaluation), before_the_last);
}

TEST(BatchWorkersWithRuleEvaluator, SiblingStagesOnSeveralWorkersGiveWhatOneGives) {
    QuietLogs quiet;
    set_rule_evaluator_program(TATTLE_BINARY);
    std::vector<std::string> texts;
    for (int i = 0; i < 8; ++i) texts.push_back(mixed_batch(i, 400));
    std::vector<std::vector<std::uint8_t>> batches;
    for (const auto& text : texts) batches.push_back(bytes_of(text));
    const std::vector<bool> every_rule(5, true);
    std::vector<Diagnostic> problems;
    FilterStage first(mixed_rules(), problems, isolated());
    std::vector<std::shared_ptr<MatchStream>> results;
    {
        BatchWorkers workers(first, [&first] { return first.sibling(); }, 2);
        for (std::size_t i = 0; i < batches.size(); ++i) {
            results.push_back(workers.stream(batches[i], "b" + std::to_string(i), &every_rule));
        }
        for (std::size_t i = 0; i < results.size(); ++i) {
            EXPECT_EQ(rows_of(read_all(*results[i])), decided_on_arrival(texts[i], every_rule).rows) << "batch " << i;
        }
    }
}

TEST(BatchWorkersWithRuleEvaluator, WhenTheEvaluatorNeverGetsReadyLibjqRunsHereEvenInASibling) {
    QuietLogs quiet;
    // Starts, but is no rule evaluator: found at the first group, after decoding began.
    set_rule_evaluator_program("/bin/true");
    const std::string text = mixed_batch(4, 600);
    const auto data = bytes_of(text);
    const std::vector<bool> every_rule(5, true);
    const OnArrival expected = decided_on_arrival(text, every_rule);
    std::vector<Diagnostic> problems;
    FilterStage first(mixed_rules(), problems, isolated());
    // The sibling compiled no libjq programs: it compiles them now.
    const auto sibling = first.sibling();
    EXPECT_EQ(rows_of(evaluate_batch(first, data, "b", every_rule)), expected.rows);
    EXPECT_EQ(rows_of(evaluate_batch(*sibling, data, "b", every_rule)), expected.rows);
    EXPECT_EQ(rows_of(evaluate_batch(*sibling, data, "b", every_rule)), expected.rows);
    set_rule_evaluator_program(TATTLE_BINARY);
}

// ---------------------------------------------------------------------------
// A batch's matches streamed to the reader in parts while it is decoded.

std::vector<EvaluatedMatch> part_of(std::size_t first_event, std::size_t count) {
    std::vector<EvaluatedMatch> part(count);
    for (std::size_t i = 0; i < count; ++i) part[i].event_index = first_event + i;
    return part;
}

// A worker thread that is let go and joined however the test ends.
struct StreamWorker {
    MatchStream& stream;
    std::thread thread;
    ~StreamWorker() {
        stream.abandon();
        if (thread.joinable()) thread.join();
    }
};

// Waits (up to 10 s) for what the worker thread will come to.
template <typename Condition>
bool eventually(Condition condition) {
    for (int i = 0; i < 1000 && !condition(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return condition();
}

TEST(MatchStream, GivesThePartsInOrderThenTheEnd) {
    MatchStream stream;
    EXPECT_FALSE(stream.ready());
    stream.put(part_of(0, 2));
    stream.put(part_of(2, 1));
    BatchEvaluation end;
    end.events = 4;
    end.matches = part_of(3, 1);
    stream.finish(std::move(end));
    std::vector<std::size_t> events;
    for (;;) {
        ASSERT_TRUE(stream.ready());
        MatchStream::Piece piece = stream.read();
        if (piece.end) {
            EXPECT_TRUE(piece.matches.empty());
            EXPECT_EQ(piece.end->events, 4U);
            for (const auto& match : piece.end->matches) events.push_back(match.event_index);
            break;
        }
        for (const auto& match : piece.matches) events.push_back(match.event_index);
    }
    EXPECT_EQ(events, (std::vector<std::size_t>{0, 1, 2, 3}));
    EXPECT_EQ(stream.waits(), 0U);
}

TEST(MatchStream, TheWorkerWaitsWhileTheReaderIsBehind) {
    MatchStream stream(2);
    StreamWorker worker{stream, std::thread([&] {
                            for (std::size_t i = 0; i < 5; ++i) stream.put(part_of(i, 1));
                            stream.finish(BatchEvaluation{});
                        })};
    // The third part waits for room: two are unread, never more.
    ASSERT_TRUE(eventually([&] { return stream.waits() == 1; }));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(stream.waits(), 1U);
    EXPECT_EQ(stream.most_parts_waiting(), 2U);
    std::vector<std::size_t> events;
    for (MatchStream::Piece piece = stream.read(); !piece.end; piece = stream.read()) {
        for (const auto& match : piece.matches) events.push_back(match.event_index);
    }
    EXPECT_EQ(events, (std::vector<std::size_t>{0, 1, 2, 3, 4}));
    EXPECT_EQ(stream.most_parts_waiting(), 2U);
}

TEST(MatchStream, AReaderThatLeavesFreesAWaitingWorker) {
    MatchStream stream(1);
    std::promise<void> done;
    StreamWorker worker{stream, std::thread([&] {
                            for (std::size_t i = 0; i < 3; ++i) stream.put(part_of(i, 1));
                            stream.finish(BatchEvaluation{});
                            done.set_value();
                        })};
    ASSERT_TRUE(eventually([&] { return stream.waits() == 1; }));
    stream.abandon();
    const bool finished = done.get_future().wait_for(std::chrono::seconds(10)) == std::future_status::ready;
    EXPECT_TRUE(finished) << "the worker still waits for a reader that left";
}

TEST(MatchStream, TheWorkersFailureReachesTheReaderAfterItsParts) {
    MatchStream stream;
    stream.put(part_of(0, 1));
    stream.fail(std::make_exception_ptr(std::runtime_error("worker failed")));
    EXPECT_EQ(stream.read().matches.size(), 1U);
    EXPECT_THROW(stream.read(), std::runtime_error);
}

TEST(StreamedBatches, TakeTheOldestBatchFirstAndItsPartsAsTheyCome) {
    std::vector<std::string> log;
    StreamedBatches<int> batches({
        [&](int& batch) { log.push_back("begin " + std::to_string(batch)); },
        [&](int& batch, std::vector<EvaluatedMatch>& part) {
            log.push_back("part " + std::to_string(batch) + ":" + std::to_string(part.size()));
        },
        [&](int& batch, BatchEvaluation& end) {
            log.push_back("end " + std::to_string(batch) + ":" + std::to_string(end.matches.size()));
        },
    });
    auto first = std::make_shared<MatchStream>();
    auto second = std::make_shared<MatchStream>();
    batches.push(1, first);
    batches.push(2, second);
    second->put(part_of(0, 3));
    BatchEvaluation second_end;
    second_end.matches = part_of(3, 1);
    second->finish(std::move(second_end));

    batches.take_ready(10);  // the second batch is done, but waits for the first
    EXPECT_TRUE(log.empty());
    first->put(part_of(0, 2));
    batches.take_ready(10);
    EXPECT_EQ(log, (std::vector<std::string>{"begin 1", "part 1:2"}));
    EXPECT_EQ(batches.size(), 2U);
    first->finish(BatchEvaluation{});
    batches.take_ready(10);
    EXPECT_EQ(log, (std::vector<std::string>{"begin 1", "part 1:2", "end 1:0", "begin 2", "part 2:3", "end 2:1"}));
    EXPECT_TRUE(batches.empty());
}

TEST(StreamedBatches, LeavingEarlyLetsTheirWorkersGo) {
    auto stream = std::make_shared<MatchStream>(1);
    std::promise<void> done;
    StreamWorker worker{*stream, std::thread([&] {
                            for (std::size_t i = 0; i < 3; ++i) stream->put(part_of(i, 1));
                            stream->finish(BatchEvaluation{});
                            done.set_value();
                        })};
    {
        StreamedBatches<int> batches({[](int&) {}, [](int&, std::vector<EvaluatedMatch>&) {},
                                      [](int&, BatchEvaluation&) {}});
        batches.push(1, stream);
        ASSERT_TRUE(eventually([&] { return stream->waits() == 1; }));
    }  // as when an exception leaves the router
    const bool finished = done.get_future().wait_for(std::chrono::seconds(10)) == std::future_status::ready;
    EXPECT_TRUE(finished) << "the worker still waits for batches nobody takes";
}

// evaluate_batch with a stream, read on this thread while a worker thread decodes.
struct Streamed {
    BatchEvaluation evaluation;        // every match, parts and end together
    std::vector<std::size_t> part_sizes;
    std::size_t most_parts_waiting = 0;
};

Streamed evaluate_streamed(FilterStage& filter, const std::vector<std::uint8_t>& data, const std::vector<bool>& rules,
                           const InputLimits& limits = {}, const AlertRendering* rendering = nullptr,
                           const PartCheck& on_part = {}) {
    MatchStream stream;
    auto worker = std::async(std::launch::async, [&] {
        stream.finish(evaluate_batch(filter, data, "streamed", rules, limits, rendering, &stream));
    });
    Streamed streamed;
    streamed.evaluation = read_all(stream, [&](const std::vector<EvaluatedMatch>& part) {
        streamed.part_sizes.push_back(part.size());
        if (on_part) on_part(part);
    });
    worker.get();
    streamed.most_parts_waiting = stream.most_parts_waiting();
    return streamed;
}

TEST(EvaluateBatchWithRuleEvaluator, StreamedMatchesArriveInPartsAndAreWhatTheWholeBatchGives) {
    QuietLogs quiet;
    set_rule_evaluator_program(TATTLE_BINARY);
    const std::string text = mixed_batch(0, 1500);
    const auto data = bytes_of(text);
    const std::vector<bool> rules_to_run{true, true, true, true, true};
    const OnArrival expected = decided_on_arrival(text, rules_to_run);
    ASSERT_GT(expected.rows.size(), 3 * MatchStream::kMatchesPerPart);

    std::vector<Diagnostic> problems;
    FilterStage filter(mixed_rules(), problems, isolated());
    const Streamed streamed = evaluate_streamed(filter, data, rules_to_run);
    EXPECT_EQ(rows_of(streamed.evaluation), expected.rows);
    EXPECT_EQ(streamed.evaluation.events, 1500U);
    ASSERT_GE(streamed.part_sizes.size(), 3U);
    for (const std::size_t size : streamed.part_sizes) EXPECT_GE(size, MatchStream::kMatchesPerPart);
    EXPECT_LE(streamed.most_parts_waiting, MatchStream::kDefaultPartsWaiting);
    EXPECT_EQ(streamed.evaluation.rule_errors, evaluate_batch(filter, data, "whole", rules_to_run).rule_errors);
}

TEST(EvaluateBatch, APartOfLargeAlertsEndsAtItsSizeBeforeItsCount) {
    // Events of ~40 KiB, each matched: a part is cut once its alerts reach kPartBytes,
    // long before kMatchesPerPart of them.
    std::vector<Diagnostic> problems;
    FilterStage filter({{"every event", R"(select(.eventName != null))", {}}}, problems);
    const std::string padding(40 * 1024, 'x');
    std::string text = R"({"Records":[)";
    for (int i = 0; i < 200; ++i) {
        text += (i > 0 ? R"(,{"eventName":"E)" : R"({"eventName":"E)") + std::to_string(i) + R"(","requestParameters":")" +
                padding + R"("})";
    }
    const auto data = bytes_of(text + "]}");
    AlertRendering rendering;
    rendering.source_id = "src";
    rendering.rules = {{"every event", "", "", "", "", {}, ""}};
    rendering.destinations = {"out"};
    rendering.router_needs_event = {false};
    const Streamed streamed = evaluate_streamed(filter, data, {true}, {}, &rendering, [](const auto& part) {
        std::size_t bytes = 0;
        for (const auto& match : part) bytes += match.alert->text.size();
        EXPECT_GE(bytes, MatchStream::kPartBytes);
        EXPECT_LT(bytes - part.back().alert->text.size(), MatchStream::kPartBytes) << "cut one alert late";
    });
    EXPECT_EQ(streamed.evaluation.matches.size(), 200U);
    ASSERT_GE(streamed.part_sizes.size(), 5U);
    for (const std::size_t size : streamed.part_sizes) EXPECT_LT(size, MatchStream::kMatchesPerPart);
}

TEST(EvaluateBatchWithRuleEvaluator, TheAlertLimitCountsTheMatchesAlreadyStreamed) {
    QuietLogs quiet;
    set_rule_evaluator_program(TATTLE_BINARY);
    const std::string text = mixed_batch(2, 1500);
    const auto data = bytes_of(text);
    const std::vector<bool> rules_to_run(5, true);
    std::vector<Diagnostic> problems;
    FilterStage filter(mixed_rules(), problems, isolated());
    for (const std::size_t limit : {300U, 513U, 700U}) {
        const OnArrival expected = decided_on_arrival(text, rules_to_run, limit);
        ASSERT_TRUE(expected.limit_failed) << limit;
        InputLimits limits;
        limits.max_alerts_per_batch = limit;
        const Streamed streamed = evaluate_streamed(filter, data, rules_to_run, limits);
        EXPECT_EQ(rows_of(streamed.evaluation), expected.rows) << "limit " << limit;
        EXPECT_EQ(streamed.evaluation.events, expected.events) << "limit " << limit;
        ASSERT_TRUE(streamed.evaluation.decode_error.has_value()) << limit;
        EXPECT_NE(streamed.evaluation.decode_error->find("max_alerts_per_batch"), std::string::npos);
        EXPECT_FALSE(streamed.part_sizes.empty()) << limit;
    }
}

TEST(BatchWorkers, AStreamedBatchArrivesInFullPartsAndGivesWhatEvaluatingItWholeGives) {
    std::vector<Diagnostic> problems;
    FilterStage filter({{"every event", R"(.eventName)", {}}}, problems);
    std::string text = R"({"Records":[)";
    for (int i = 0; i < 1000; ++i) {
        text += (i > 0 ? R"(,{"eventName":"E)" : R"({"eventName":"E)") + std::to_string(i) + R"("})";
    }
    const auto data = bytes_of(text + "]}");
    const std::vector<bool> every_rule{true};
    const auto whole = rows_of(evaluate_batch(filter, data, "whole", every_rule));
    ASSERT_EQ(whole.size(), 1000U);

    BatchWorkers workers(filter, [&] { return filter.sibling(); }, 2);
    auto stream = workers.stream(data, "streamed", &every_rule);
    std::vector<std::size_t> part_sizes;
    const BatchEvaluation streamed =
        read_all(*stream, [&](const std::vector<EvaluatedMatch>& part) { part_sizes.push_back(part.size()); });
    EXPECT_EQ(streamed.events, 1000U);
    EXPECT_EQ(rows_of(streamed), whole);
    // One match per event: every part is full, the rest comes with the end.
    EXPECT_EQ(part_sizes, std::vector<std::size_t>(1000U / MatchStream::kMatchesPerPart, MatchStream::kMatchesPerPart));
}

TEST(BatchWorkers, ZeroMeansOnePerHardwareThread) {
    EXPECT_GE(resolve_worker_count(0), 1U);
    EXPECT_EQ(resolve_worker_count(3), 3U);
}

}  // namespace
}  // namespace tattle
