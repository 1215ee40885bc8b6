#include "tattle/filter.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <cstdint>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace tattle {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// Routes spdlog's default logger into a string for the life of the object.
class LogCapture {
public:
    LogCapture() : previous_(spdlog::default_logger()) {
        auto sink = std::make_shared<spdlog::sinks::ostream_sink_st>(stream_);
        auto logger = std::make_shared<spdlog::logger>("filter_test_capture", std::move(sink));
        logger->set_level(spdlog::level::trace);
        logger->set_pattern("%l %v");
        spdlog::set_default_logger(std::move(logger));
    }
    ~LogCapture() { spdlog::set_default_logger(previous_); }
    LogCapture(const LogCapture&) = delete;
    LogCapture& operator=(const LogCapture&) = delete;

    std::string text() const { return stream_.str(); }

    std::size_t count_lines(std::string_view level, std::string_view needle) const {
        std::istringstream lines(stream_.str());
        std::size_t count = 0;
        for (std::string line; std::getline(lines, line);) {
            if (line.rfind(std::string(level) + " ", 0) == 0 &&
                line.find(needle) != std::string::npos) {
                ++count;
            }
        }
        return count;
    }

private:
    std::ostringstream stream_;
    std::shared_ptr<spdlog::logger> previous_;
};

FilterRule rule(std::string name, std::string program, int line = 1) {
    return FilterRule{std::move(name), std::move(program), SourceLocation{"rules.toml", line, 0}};
}

boost::json::object sample_event() {
    return boost::json::parse(R"({
        "eventName": "CreateUser",
        "eventSource": "iam.amazonaws.com",
        "x": 2,
        "nested": {"a": [1, 2, 3]}
    })")
        .as_object();
}

std::vector<std::size_t> matched_indexes(const std::vector<RuleMatch>& matches) {
    std::vector<std::size_t> indexes;
    for (const auto& match : matches) indexes.push_back(match.rule_index);
    return indexes;
}

// ---------------------------------------------------------------------------
// Match semantics, one rule at a time.

struct SemanticsCase {
    std::string program;
    bool matches;
    // JSON text of the expected annotation; empty = a match without annotation.
    std::string annotation;
};

void PrintTo(const SemanticsCase& c, std::ostream* out) { *out << c.program; }

class FilterSemantics : public ::testing::TestWithParam<SemanticsCase> {};

TEST_P(FilterSemantics, FirstOutputDecides) {
    const SemanticsCase& c = GetParam();
    std::vector<Diagnostic> problems;
    FilterStage stage({rule("r", c.program)}, problems);
    ASSERT_TRUE(problems.empty()) << problems.front().to_string();
    ASSERT_TRUE(stage.compiled(0));

    stage.begin_batch("test");
    const auto matches = stage.evaluate(sample_event());
    EXPECT_EQ(stage.runtime_errors(0), 0U);
    if (!c.matches) {
        EXPECT_TRUE(matches.empty());
        return;
    }
    ASSERT_EQ(matches.size(), 1U);
    EXPECT_EQ(matches[0].rule_index, 0U);
    if (c.annotation.empty()) {
        EXPECT_FALSE(matches[0].annotation.has_value())
            << boost::json::serialize(*matches[0].annotation);
    } else {
        ASSERT_TRUE(matches[0].annotation.has_value());
        EXPECT_EQ(*matches[0].annotation, boost::json::parse(c.annotation))
            << boost::json::serialize(*matches[0].annotation);
    }
}

INSTANTIATE_TEST_SUITE_P(
    Tattletail, FilterSemantics,
    ::testing::Values(
        SemanticsCase{R"(select(.eventName == "CreateUser"))", true, ""},
        SemanticsCase{R"(select(.eventName == "DeleteUser"))", false, ""},
        SemanticsCase{"true", true, ""}, SemanticsCase{"false", false, ""},
        SemanticsCase{"null", false, ""}, SemanticsCase{"empty", false, ""},
        SemanticsCase{".", true, ""}, SemanticsCase{".missing", false, ""},
        SemanticsCase{".eventName", true, R"("CreateUser")"},
        SemanticsCase{"false, true", false, ""}, SemanticsCase{"null, true", false, ""},
        SemanticsCase{R"("x", true)", true, R"("x")"},
        SemanticsCase{"true, error(\"never reached\")", true, ""},
        SemanticsCase{". == .", true, ""},
        // A value equal to the event (not just the same one) is no annotation.
        SemanticsCase{". + {}", true, ""},
        SemanticsCase{".x = 1", true,
                      R"({"eventName":"CreateUser","eventSource":"iam.amazonaws.com","x":1,)"
                      R"("nested":{"a":[1,2,3]}})"},
        SemanticsCase{"0", true, "0"}, SemanticsCase{R"("")", true, R"("")"},
        SemanticsCase{"[]", true, "[]"}, SemanticsCase{"{}", true, "{}"},
        SemanticsCase{".nested.a", true, "[1,2,3]"},
        SemanticsCase{".nested", true, R"({"a":[1,2,3]})"},
        SemanticsCase{".x / 4", true, "0.5"},
        SemanticsCase{"[nan]", true, "[null]"},
        // User definitions still work behind the sandbox prelude.
        SemanticsCase{"def f: .eventName; f", true, R"("CreateUser")"},
        SemanticsCase{"def pick(f): f; pick(.x)", true, "2"},
        SemanticsCase{"# leading comment\n.x", true, "2"},
        SemanticsCase{R"jq("user: \(.eventName)")jq", true, R"("user: CreateUser")"}));

TEST(FilterStageTest, IntegralNumbersComeBackAsIntegers) {
    std::vector<Diagnostic> problems;
    FilterStage stage({rule("times", ".x * 1.5"), rule("half", ".x / 4"),
                       rule("big", "12345678901"), rule("smallest", "-9223372036854775808"),
                       rule("too_big", "9223372036854775808"), rule("inf", "infinite")},
                      problems);
    ASSERT_TRUE(problems.empty());
    const auto matches = stage.evaluate(sample_event());
    ASSERT_EQ(matches.size(), 6U);
    EXPECT_TRUE(matches[0].annotation->is_int64());
    EXPECT_EQ(matches[0].annotation->as_int64(), 3);
    EXPECT_TRUE(matches[1].annotation->is_double());
    EXPECT_EQ(matches[2].annotation->as_int64(), 12345678901);
    EXPECT_EQ(matches[3].annotation->as_int64(), std::numeric_limits<std::int64_t>::min());
    EXPECT_TRUE(matches[4].annotation->is_double());
    EXPECT_EQ(matches[5].annotation->as_double(), std::numeric_limits<double>::max());
}

TEST(FilterStageTest, EventNumbersOfEveryKindReachJq) {
    std::vector<Diagnostic> problems;
    FilterStage stage({rule("sum", ".i + .u + .d"), rule("types", "[.[] | type]")}, problems);
    ASSERT_TRUE(problems.empty());
    boost::json::object event;
    event["i"] = std::int64_t{-5};
    event["u"] = std::uint64_t{10};
    event["d"] = 0.25;
    event["s"] = "text";
    event["b"] = true;
    event["n"] = nullptr;
    const auto matches = stage.evaluate(event);
    ASSERT_EQ(matches.size(), 2U);
    EXPECT_EQ(matches[0].annotation->as_double(), 5.25);
    EXPECT_EQ(*matches[1].annotation,
              boost::json::parse(R"(["number","number","number","string","boolean","null"])"));
}

TEST(FilterStageTest, AnnotationKeepsTheRuleAuthorsKeyOrder) {
    std::vector<Diagnostic> problems;
    FilterStage stage({rule("ordered", "{zeta: 1, alpha: .eventName, mid: [true, null]}")},
                      problems);
    ASSERT_TRUE(problems.empty());
    const auto matches = stage.evaluate(sample_event());
    ASSERT_EQ(matches.size(), 1U);
    EXPECT_EQ(boost::json::serialize(*matches[0].annotation),
              R"({"zeta":1,"alpha":"CreateUser","mid":[true,null]})");
}

TEST(FilterStageTest, StringsWithNulAndUnicodeSurviveTheRoundTrip) {
    std::vector<Diagnostic> problems;
    FilterStage stage({rule("echo", ".s")}, problems);
    ASSERT_TRUE(problems.empty());
    boost::json::object event;
    event["s"] = boost::json::string(std::string("a\0b \xC3\xA9", 6));
    const auto matches = stage.evaluate(event);
    ASSERT_EQ(matches.size(), 1U);
    EXPECT_EQ(matches[0].annotation->as_string(), boost::json::string_view("a\0b \xC3\xA9", 6));
}

TEST(FilterStageTest, EventsWithManyDistinctKeysConvertCompletely) {
    std::vector<Diagnostic> problems;
    FilterStage stage({rule("count", "keys | length"), rule("last", ".k5999")}, problems);
    ASSERT_TRUE(problems.empty());
    boost::json::object event;
    for (int i = 0; i < 6000; ++i) event["k" + std::to_string(i)] = i;
    for (int pass = 0; pass < 2; ++pass) {  // the second pass meets the cached keys
        const auto matches = stage.evaluate(event);
        ASSERT_EQ(matches.size(), 2U);
        EXPECT_EQ(*matches[0].annotation, boost::json::value(6000));
        EXPECT_EQ(*matches[1].annotation, boost::json::value(5999));
    }
}

TEST(FilterStageTest, RuntimeErrorIsCountedLoggedOncePerBatchAndOtherRulesStillRun) {
    LogCapture log;
    std::vector<Diagnostic> problems;
    FilterStage stage({rule("boom", R"(error("boom"))"), rule("always", "true"),
                       rule("type_error", ".eventName + 1"),
                       rule("object_error", "error({code: 7})")},
                      problems);
    ASSERT_TRUE(problems.empty());

    stage.begin_batch("s3://trail-bucket/first.json.gz");
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(matched_indexes(stage.evaluate(sample_event())), std::vector<std::size_t>{1});
    }
    EXPECT_EQ(stage.runtime_errors(0), 3U);
    EXPECT_EQ(stage.runtime_errors(1), 0U);
    EXPECT_EQ(stage.runtime_errors(2), 3U);
    EXPECT_EQ(stage.runtime_errors(3), 3U);
    EXPECT_EQ(log.count_lines("warning", "rule \"boom\""), 1U);
    EXPECT_EQ(log.count_lines("warning", "rule \"type_error\""), 1U);
    EXPECT_THAT(log.text(), HasSubstr("s3://trail-bucket/first.json.gz"));
    EXPECT_THAT(log.text(), HasSubstr(": boom"));
    EXPECT_THAT(log.text(), HasSubstr("cannot be added"));
    EXPECT_THAT(log.text(), HasSubstr(R"({"code":7} (not a string))"));

    stage.begin_batch("s3://trail-bucket/second.json.gz");
    stage.evaluate(sample_event());
    EXPECT_EQ(stage.runtime_errors(0), 4U);
    EXPECT_EQ(log.count_lines("warning", "rule \"boom\""), 2U);
    EXPECT_EQ(log.count_lines("warning", "second.json.gz"), 3U);
}

TEST(FilterStageTest, AnnotationTooDeepIsARuntimeErrorNotACrash) {
    LogCapture log;
    std::vector<Diagnostic> problems;
    FilterStage stage({rule("deep", "reduce range(1000) as $i (0; [.])"), rule("ok", "true")},
                      problems);
    ASSERT_TRUE(problems.empty());
    EXPECT_EQ(matched_indexes(stage.evaluate(sample_event())), std::vector<std::size_t>{1});
    EXPECT_EQ(stage.runtime_errors(0), 1U);
    EXPECT_THAT(log.text(), HasSubstr("nested too deeply"));
}

TEST(FilterStageTest, SyntaxErrorNamesTheRuleAndOtherRulesCompile) {
    std::vector<Diagnostic> problems;
    testing::internal::CaptureStderr();
    FilterStage stage({rule("first", "."), rule("broken", ".a |", 7), rule("last", "true")},
                      problems);
    const std::string stderr_text = testing::internal::GetCapturedStderr();
    EXPECT_EQ(stderr_text, "");  // libjq's messages come back as diagnostics only

    ASSERT_EQ(problems.size(), 1U);
    EXPECT_EQ(problems[0].where.file, "rules.toml");
    EXPECT_EQ(problems[0].where.line, 7);
    EXPECT_THAT(problems[0].message, StartsWith("rule \"broken\": jq: syntax error"));
    EXPECT_THAT(problems[0].message, HasSubstr("unexpected $end"));
    EXPECT_THAT(problems[0].message, HasSubstr("line 1"));
    // The sandbox prelude and the shell hint stay out of the message.
    EXPECT_THAT(problems[0].message, Not(HasSubstr("def env")));
    EXPECT_THAT(problems[0].message, Not(HasSubstr("Unix shell")));

    EXPECT_TRUE(stage.compiled(0));
    EXPECT_FALSE(stage.compiled(1));
    EXPECT_TRUE(stage.compiled(2));
    EXPECT_EQ(stage.rules().size(), 3U);
    EXPECT_EQ(matched_indexes(stage.evaluate(sample_event())), (std::vector<std::size_t>{0, 2}));
}

TEST(FilterStageTest, CompileErrorsKeepTheProgramsLineNumbers) {
    std::vector<Diagnostic> problems;
    FilterStage stage({rule("second_line", "true |\n  foo("), rule("unknown", "nosuchfn(1)")},
                      problems);
    ASSERT_EQ(problems.size(), 2U);
    EXPECT_THAT(problems[0].message, HasSubstr("line 2"));
    EXPECT_THAT(problems[1].message, HasSubstr("rule \"unknown\": jq: nosuchfn/1 is not defined"));
}

TEST(FilterStageTest, LocationBuiltinSeesTheUsersLines) {
    std::vector<Diagnostic> problems;
    FilterStage stage({rule("first_line", "$__loc__"), rule("third_line", "\n\n$__loc__.line")},
                      problems);
    ASSERT_TRUE(problems.empty());
    const auto matches = stage.evaluate(sample_event());
    ASSERT_EQ(matches.size(), 2U);
    EXPECT_EQ(*matches[0].annotation, boost::json::parse(R"({"file":"<top-level>","line":1})"));
    EXPECT_EQ(*matches[1].annotation, boost::json::value(3));
}

TEST(FilterStageTest, SandboxRefusalIsADiagnosticNamingTheRule) {
    std::vector<Diagnostic> problems;
    FilterStage stage({rule("leaky", "$ENV.AWS_SECRET_ACCESS_KEY", 12), rule("fine", "true")},
                      problems);
    ASSERT_EQ(problems.size(), 1U);
    EXPECT_EQ(problems[0].where.line, 12);
    EXPECT_THAT(problems[0].message, StartsWith("rule \"leaky\": uses \"$ENV\""));
    EXPECT_FALSE(stage.compiled(0));
    EXPECT_TRUE(stage.compiled(1));
}

TEST(FilterStageTest, ProgramWithNulCharacterIsRefused) {
    std::vector<Diagnostic> problems;
    FilterStage stage({rule("nul", std::string("true\0env", 8))}, problems);
    ASSERT_EQ(problems.size(), 1U);
    EXPECT_THAT(problems[0].message, HasSubstr("NUL"));
    EXPECT_FALSE(stage.compiled(0));
}

TEST(FilterStageTest, BlankProgramIsRefusedRatherThanMatchingEverything) {
    std::vector<Diagnostic> problems;
    FilterStage stage({rule("blank", ""), rule("comment_only", "  # nothing here\n\t")}, problems);
    ASSERT_EQ(problems.size(), 2U);
    EXPECT_EQ(problems[0].message, "rule \"blank\": the jq program is empty");
    EXPECT_EQ(problems[1].message, "rule \"comment_only\": the jq program is empty");
    EXPECT_TRUE(stage.evaluate(sample_event()).empty());
}

TEST(FilterStageTest, WithoutCompiledRulesNothingMatches) {
    std::vector<Diagnostic> problems;
    FilterStage empty_stage({}, problems);
    EXPECT_TRUE(empty_stage.evaluate(sample_event()).empty());
    EXPECT_FALSE(empty_stage.compiled(0));
    EXPECT_EQ(empty_stage.runtime_errors(0), 0U);

    FilterStage all_broken({rule("broken", "(")}, problems);
    EXPECT_TRUE(all_broken.evaluate(sample_event()).empty());
}

TEST(FilterStageTest, MovedStageKeepsItsRules) {
    std::vector<Diagnostic> problems;
    FilterStage original({rule("name", ".eventName")}, problems);
    FilterStage moved(std::move(original));
    auto matches = moved.evaluate(sample_event());
    ASSERT_EQ(matches.size(), 1U);
    EXPECT_EQ(*matches[0].annotation, boost::json::value("CreateUser"));

    FilterStage assigned({rule("other", "false")}, problems);
    assigned = std::move(moved);
    EXPECT_EQ(assigned.rules().at(0).name, "name");
    EXPECT_EQ(assigned.evaluate(sample_event()).size(), 1U);
}

TEST(FilterStageTest, EveryRuleSeesTheSameUnchangedEvent) {
    std::vector<Diagnostic> problems;
    // The first rule builds a changed copy; jq values are immutable, so the
    // shared event the later rules get must be untouched.
    FilterStage stage({rule("changes", ".x = 99 | .x"), rule("reads", ".x")}, problems);
    ASSERT_TRUE(problems.empty());
    const auto matches = stage.evaluate(sample_event());
    ASSERT_EQ(matches.size(), 2U);
    EXPECT_EQ(*matches[0].annotation, boost::json::value(99));
    EXPECT_EQ(*matches[1].annotation, boost::json::value(2));
}

// tattletail's own example rule over tattletail's own test data.
TEST(FilterStageTest, TattletailCreateUserExample) {
    std::ifstream file(std::string(TATTLE_SHARED_DATA_DIR) + "/tattletail/testdata-1.json");
    ASSERT_TRUE(file) << "missing tattletail test data";
    std::stringstream contents;
    contents << file.rdbuf();
    const boost::json::value document = boost::json::parse(contents.str());

    std::vector<Diagnostic> problems;
    FilterStage stage(
        {rule("create_user",
              R"jq(select(.eventName == "CreateUser") | "username: \(.responseElements.user.userName)")jq")},
        problems);
    ASSERT_TRUE(problems.empty());
    stage.begin_batch("testdata-1.json");

    std::vector<RuleMatch> all_matches;
    const auto& records = document.at("Records").as_array();
    ASSERT_EQ(records.size(), 3U);
    for (const auto& record : records) {
        for (auto& match : stage.evaluate(record.as_object())) all_matches.push_back(match);
    }
    ASSERT_EQ(all_matches.size(), 1U);
    ASSERT_TRUE(all_matches[0].annotation.has_value());
    EXPECT_EQ(*all_matches[0].annotation, boost::json::value("username: user1"));
    EXPECT_EQ(stage.runtime_errors(0), 0U);
}

}  // namespace
}  // namespace tattle
