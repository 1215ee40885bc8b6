// The rule sandbox: sandbox_violation refuses every route to the environment,
// files, other inputs and stderr, and the prelude compiled in front of every
// rule blocks them again on its own. A canary secret in the environment must
// never come back out of a rule, however the rule is written.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "tattle/filter.hpp"

#include "libjq.hpp"

namespace tattle {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kCanary = "CANARY-7f3a9c-do-not-leak";

class ScopedEnvironmentSecret {
public:
    ScopedEnvironmentSecret() {
        const char* previous = std::getenv("AWS_SECRET_ACCESS_KEY");
        if (previous != nullptr) previous_ = previous;
        setenv("AWS_SECRET_ACCESS_KEY", kCanary, 1);
    }
    ~ScopedEnvironmentSecret() {
        if (previous_) {
            setenv("AWS_SECRET_ACCESS_KEY", previous_->c_str(), 1);
        } else {
            unsetenv("AWS_SECRET_ACCESS_KEY");
        }
    }
    ScopedEnvironmentSecret(const ScopedEnvironmentSecret&) = delete;
    ScopedEnvironmentSecret& operator=(const ScopedEnvironmentSecret&) = delete;

private:
    std::optional<std::string> previous_;
};

class SandboxLogCapture {
public:
    SandboxLogCapture() : previous_(spdlog::default_logger()) {
        auto sink = std::make_shared<spdlog::sinks::ostream_sink_st>(stream_);
        auto logger = std::make_shared<spdlog::logger>("sandbox_test_capture", std::move(sink));
        logger->set_level(spdlog::level::trace);
        spdlog::set_default_logger(std::move(logger));
    }
    ~SandboxLogCapture() { spdlog::set_default_logger(previous_); }
    SandboxLogCapture(const SandboxLogCapture&) = delete;
    SandboxLogCapture& operator=(const SandboxLogCapture&) = delete;

    std::string text() const { return stream_.str(); }

private:
    std::ostringstream stream_;
    std::shared_ptr<spdlog::logger> previous_;
};

// Every route to the secret, the files or stderr we could think of. The
// sandbox must refuse each one.
const std::vector<std::string>& forbidden_programs() {
    static const std::vector<std::string> programs = {
        // $ENV, however spelt
        "$ENV.AWS_SECRET_ACCESS_KEY",
        "$ENV",
        "$ENV | tostring",
        "$ENV | to_entries[] | select(.key | test(\"SECRET\")) | .value",
        "$ ENV.AWS_SECRET_ACCESS_KEY",
        "$\tENV",
        "$\n  ENV",
        "$#comment\nENV",
        "$ # comment\n # another\n ENV.AWS_SECRET_ACCESS_KEY",
        "{$ENV}",
        "{a: $ENV}",
        ". as $ENV | $ENV",
        "\"\\($ENV)\"",
        "\"\\($ENV.AWS_SECRET_ACCESS_KEY)\"",
        "[$ENV][0]",
        "$ENV as $e | $e",
        "getpath([\"a\"]) // $ENV",
        // env, however reached
        "env.AWS_SECRET_ACCESS_KEY",
        "env",
        "env | tostring",
        "env|.AWS_SECRET_ACCESS_KEY",
        "\"\\(env)\"",
        "\"prefix \\(env.AWS_SECRET_ACCESS_KEY) suffix\"",
        "\"a\\(\"b\\(\"c\\(env)\")\")\"",       // nested interpolation
        "\"\\(.x + \"\\($ENV)\")\"",            // nested, $ENV inside
        "\"x\\\\\\(env)\"",                     // \\ then a real \( in jq source
        "@text \"\\(env)\"",
        "@base64 \"\\(env)\"",
        "[env][0]",
        "[1, env][1]",
        "env as $e | $e",
        "{a: env}",
        "{a: 1, b: env}",
        "{\"k\": env}",
        "{(env | tostring): 1}",
        "{env: env}",
        "{\"\\(env)\": 1}",
        "(env)",
        "env?",
        "try env catch .",
        ".[env]",
        ".a | env",
        "..|env",
        ". env",
        "..env",  // jq lexes ".." then a call
        "1.env",  // jq lexes the number "1." then a call
        "reduce env as $x (0; .)",
        "if true then env else 0 end",
        "def f: env; f",
        "def f(g): g; f(env)",
        "def env: 1; env",  // refused though harmless: the scanner does not track scope
        "select(.a)\n|\nenv",
        "# comment\nenv",
        "# comment\renv",
        ".a # comment\n | env",
        "{env}",  // shorthand keys are refused on purpose
        // the program's arguments
        "$__prog_args",
        "$ __prog_args",
        // other inputs
        "input",
        "inputs",
        "[inputs]",
        "_input",
        "first(inputs)",
        "input_filename",
        "input_line_number",
        "{a: input}",
        // files and paths
        "import \"x\" as y; .",
        "import \"x\" as $y; .",
        "include \"x\"; .",
        "\"x\" | modulemeta",
        "modulemeta",
        "get_search_list",
        "get_prog_origin",
        "get_jq_origin",
        // halting and stderr
        "halt",
        "halt_error",
        "\"x\" | halt_error(1)",
        "debug",
        "debug | true",
        "stderr",
        ".eventName | stderr | true",
    };
    return programs;
}

// Programs that only look like a forbidden one.
const std::vector<std::string>& allowed_programs() {
    static const std::vector<std::string> programs = {
        ".env",
        ".env.x",
        ".\"env\"",
        ".[\"env\"]",
        ".\"\\(.env)\"",
        "{env: .x}",
        "{input: .x}",
        "{a: 1, env: 2}",
        "{import: 1, include: 2, env: 3}",
        "{\"env\": 1}",
        "\"env\"",
        "\"$ENV\"",
        "\"\\\\(env)\"",  // an escaped backslash, then plain text "(env)"
        "\"\\\"env\"",
        ".requestParameters.input",
        ".requestParameters.inputs",
        ".input_filename",
        "# env in a comment\n.",
        ". # $ENV and env",
        "$__loc__",
        "$__loc__.file",
        ".a as $env | $env",
        ".a as $input | $input",
        "$ENVIRONMENT_IS_NOT_ENV",
        "def f: .; f",
        "def environment: 1; environment",
        "envelope",
        "inputs_seen",
        "builtins | length",
        "getpath([\"ENV\"])",
        ".ENV",
        "{\"ENV\": 1}",
        "@base64 \"\\(.eventName)\"",
        "[.eventName | splits(\"e\")]",
        "select(.eventName == \"CreateUser\")",
        ".eventName | ltrimstr(\"env\")",  // on a non-string, libjq 1.6 leaks its error
        ".x as {env: $e} | $e",
        "1e3",
        ".5",
    };
    return programs;
}

TEST(SandboxViolation, ForbiddenProgramsAreRefused) {
    for (const auto& program : forbidden_programs()) {
        EXPECT_TRUE(sandbox_violation(program).has_value()) << "not refused: " << program;
    }
}

TEST(SandboxViolation, LookAlikesAreAllowed) {
    for (const auto& program : allowed_programs()) {
        const auto violation = sandbox_violation(program);
        EXPECT_FALSE(violation.has_value()) << program << " refused: " << violation.value_or("");
    }
}

TEST(SandboxViolation, MessagesNameTheCulpritAndTheReason) {
    EXPECT_EQ(sandbox_violation("env.HOME"),
              "uses \"env\", which could read the process environment (secrets); rules cannot "
              "read the environment, files or other inputs");
    EXPECT_THAT(sandbox_violation("$ ENV").value_or(""), HasSubstr("uses \"$ENV\""));
    EXPECT_THAT(sandbox_violation("[inputs]").value_or(""),
                HasSubstr("uses \"inputs\", which could read events other than"));
    EXPECT_THAT(sandbox_violation("include \"x\"; .").value_or(""),
                HasSubstr("uses \"include\", which could read files"));
    EXPECT_THAT(sandbox_violation("stderr").value_or(""),
                HasSubstr("rules cannot halt jq or write to stderr"));
    EXPECT_THAT(sandbox_violation("halt").value_or(""), HasSubstr("would stop jq"));
}

TEST(SandboxViolation, FirstViolationIsReported) {
    EXPECT_THAT(sandbox_violation(".a | input | env").value_or(""), HasSubstr("\"input\""));
}

TEST(SandboxViolation, UnterminatedInputDoesNotConfuseTheScanner) {
    EXPECT_FALSE(sandbox_violation("\"abc").has_value());
    EXPECT_FALSE(sandbox_violation("\"abc\\").has_value());
    EXPECT_TRUE(sandbox_violation("\"\\(env").has_value());
    EXPECT_TRUE(sandbox_violation(")))] env").has_value());
    EXPECT_FALSE(sandbox_violation("$").has_value());
    EXPECT_FALSE(sandbox_violation("").has_value());
    EXPECT_TRUE(sandbox_violation("{{{{ , env").has_value());
}

// The secret never leaves through the filter stage: refused programs produce a
// diagnostic without it, allowed ones evaluate without it.
TEST(SandboxCanary, NoRuleOutputErrorOrLogContainsTheSecret) {
    ScopedEnvironmentSecret secret;
    SandboxLogCapture log;

    std::vector<FilterRule> rules;
    for (const auto& program : forbidden_programs()) {
        rules.push_back({"forbidden " + std::to_string(rules.size()), program, {"t.toml", 1, 0}});
    }
    for (const auto& program : allowed_programs()) {
        rules.push_back({"allowed " + std::to_string(rules.size()), program, {"t.toml", 1, 0}});
    }
    std::vector<Diagnostic> problems;
    testing::internal::CaptureStderr();
    FilterStage stage(rules, problems);

    std::string everything;
    for (const auto& problem : problems) everything += problem.to_string() + "\n";
    for (std::size_t i = 0; i < forbidden_programs().size(); ++i) {
        EXPECT_FALSE(stage.compiled(i)) << "compiled: " << rules[i].jq_program;
    }

    boost::json::object event = boost::json::parse(R"({"eventName": "CreateUser",
        "a": true, "x": {"env": "not-a-secret"}, "env": "field",
        "requestParameters": {"input": 1}})")
                                    .as_object();
    stage.begin_batch("canary-batch");
    for (const auto& match : stage.evaluate(event)) {
        if (match.annotation) everything += boost::json::serialize(*match.annotation) + "\n";
    }
    everything += log.text();
    everything += testing::internal::GetCapturedStderr();

    EXPECT_THAT(everything, Not(HasSubstr(kCanary)));
    EXPECT_THAT(everything, Not(HasSubstr("AWS_SECRET_ACCESS_KEY\":")));
}

// ---------------------------------------------------------------------------
// The second line of defence: the prelude alone, with the scanner bypassed.

struct JqRun {
    bool compiled = false;
    std::string outputs;  // every output and error, as text
};

void collect_message(void* data, jv message) {
    auto* text = static_cast<std::string*>(data);
    jv formatted = jq_format_error(message);
    if (jv_get_kind(formatted) == JV_KIND_STRING) *text += jv_string_value(formatted);
    *text += "\n";
    jv_free(formatted);
}

JqRun run_sandboxed_directly(const std::string& program) {
    JqRun run;
    jq_state* state = jq_init();
    jq_set_nomem_handler(state, nullptr, nullptr);
    jq_set_input_cb(state, nullptr, nullptr);
    jq_set_debug_cb(state, nullptr, nullptr);
    jq_set_error_cb(state, collect_message, &run.outputs);
    run.compiled = jq_compile(state, sandboxed_jq_program(program).c_str()) != 0;
    if (run.compiled) {
        jq_start(state, jv_parse("{\"eventName\": \"CreateUser\", \"a\": 1}"), 0);
        // Drain a few outputs: more than the filter stage ever looks at.
        for (int i = 0; i < 5; ++i) {
            jv out = jq_next(state);
            if (jv_get_kind(out) == JV_KIND_INVALID) {
                if (jv_invalid_has_msg(jv_copy(out))) {
                    jv dumped = jv_dump_string(jv_invalid_get_msg(out), 0);
                    run.outputs += std::string("error: ") + jv_string_value(dumped) + "\n";
                    jv_free(dumped);
                } else {
                    jv_free(out);
                }
                break;
            }
            jv dumped = jv_dump_string(out, 0);
            run.outputs += std::string(jv_string_value(dumped)) + "\n";
            jv_free(dumped);
        }
    }
    jq_teardown(&state);
    return run;
}

TEST(SandboxPrelude, BlocksEveryRouteEvenWithoutTheScanner) {
    ScopedEnvironmentSecret secret;
    for (const auto& program : forbidden_programs()) {
        testing::internal::CaptureStderr();
        const JqRun run = run_sandboxed_directly(program);
        const std::string stderr_text = testing::internal::GetCapturedStderr();
        EXPECT_THAT(run.outputs, Not(HasSubstr(kCanary))) << program;
        EXPECT_EQ(stderr_text, "") << program;
        EXPECT_THAT(run.outputs, Not(HasSubstr("\"PATH\""))) << program;
    }
}

TEST(SandboxPrelude, ShadowsTheEnvironmentAndTheBuiltins) {
    ScopedEnvironmentSecret secret;
    EXPECT_EQ(run_sandboxed_directly("$ENV").outputs, "null\n");
    EXPECT_EQ(run_sandboxed_directly("$ ENV").outputs, "null\n");
    EXPECT_EQ(run_sandboxed_directly("{$ENV}").outputs, "{\"ENV\":null}\n");
    EXPECT_EQ(run_sandboxed_directly("$__prog_args").outputs, "null\n");
    EXPECT_EQ(run_sandboxed_directly("env").outputs,
              "error: \"env is not available to rules\"\n");
    EXPECT_EQ(run_sandboxed_directly("[inputs]").outputs,
              "error: \"inputs is not available to rules\"\n");
    EXPECT_EQ(run_sandboxed_directly("\"x\" | halt_error(1)").outputs,
              "error: \"halt_error is not available to rules\"\n");
    EXPECT_EQ(run_sandboxed_directly("stderr").outputs,
              "error: \"stderr is not available to rules\"\n");
}

// libjq 1.6 aborts the process on any import without a library path; behind
// the prelude a directive is a syntax error instead.
TEST(SandboxPrelude, MakesDirectivesASyntaxError) {
    for (const std::string program :
         {"import \"x\" as y; .", "import \"x\" as $y; .", "include \"x\"; .",
          "module {a: 1}; ."}) {
        const JqRun run = run_sandboxed_directly(program);
        EXPECT_FALSE(run.compiled) << program;
        EXPECT_THAT(run.outputs, HasSubstr("syntax error")) << program;
    }
}

TEST(SandboxPrelude, KeepsOrdinaryProgramsWorking) {
    EXPECT_EQ(run_sandboxed_directly("def f: .a; f").outputs, "1\n");
    EXPECT_EQ(run_sandboxed_directly("1, 2").outputs, "1\n2\n");
    EXPECT_EQ(run_sandboxed_directly(".a as $x | $x + 1").outputs, "2\n");
    EXPECT_EQ(run_sandboxed_directly("-1").outputs, "-1\n");
    EXPECT_EQ(run_sandboxed_directly(".a = 5 | .a").outputs, "5\n");
    EXPECT_EQ(run_sandboxed_directly("\n\n$__loc__.line").outputs, "3\n");
    EXPECT_EQ(run_sandboxed_directly("# only a comment\n.a").outputs, "1\n");
    EXPECT_EQ(run_sandboxed_directly(".a # trailing comment").outputs, "1\n");
}

}  // namespace
}  // namespace tattle
