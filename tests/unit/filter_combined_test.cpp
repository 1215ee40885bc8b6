// The combined rule program (every rule in one libjq program) against the
// one-program-per-rule reference: same matches, annotations, runtime-error
// counts and compile problems, on every rule set in the repository and on rules
// written to stress the combination.
#include "tattle/config.hpp"
#include "tattle/decoder.hpp"
#include "tattle/filter.hpp"
#include "tattle/rule_sandbox.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace tattle {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// Keeps the differential runs' expected jq errors out of the test output.
class QuietLogs {
public:
    QuietLogs() : previous_(spdlog::default_logger()) {
        auto sink = std::make_shared<spdlog::sinks::ostream_sink_st>(stream_);
        auto logger = std::make_shared<spdlog::logger>("filter_combined_test", std::move(sink));
        logger->set_level(spdlog::level::trace);
        logger->set_pattern("%l %v");
        spdlog::set_default_logger(std::move(logger));
    }
    ~QuietLogs() { spdlog::set_default_logger(previous_); }
    QuietLogs(const QuietLogs&) = delete;
    QuietLogs& operator=(const QuietLogs&) = delete;

    std::string text() const { return stream_.str(); }

private:
    std::ostringstream stream_;
    std::shared_ptr<spdlog::logger> previous_;
};

FilterRule rule(std::string name, std::string program) {
    return FilterRule{std::move(name), std::move(program), SourceLocation{"rules.toml", 1, 0}};
}

struct Batch {
    std::string origin;
    std::vector<boost::json::object> events;
};

std::vector<std::uint8_t> read_bytes(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

bool is_log_file(const fs::path& path) {
    const std::string name = path.filename().string();
    return name.ends_with(".json") || name.ends_with(".json.gz");
}

// Every CloudTrail event of the shared data, one batch per file, in a fixed order.
const std::vector<Batch>& cloudtrail_batches() {
    static const std::vector<Batch> batches = [] {
        std::vector<fs::path> files;
        for (const auto& entry :
             fs::recursive_directory_iterator(fs::path(TATTLE_SHARED_DATA_DIR) / "cloudtrail")) {
            if (entry.is_regular_file() && is_log_file(entry.path())) files.push_back(entry.path());
        }
        std::sort(files.begin(), files.end());
        std::vector<Batch> result;
        for (const auto& file : files) {
            Batch batch{file.string(), {}};
            const auto bytes = read_bytes(file);
            decode_batch(bytes, batch.origin, [&](boost::json::object&& event, std::size_t) {
                batch.events.push_back(std::move(event));
            });
            result.push_back(std::move(batch));
        }
        return result;
    }();
    return batches;
}

std::vector<std::string> problem_texts(const std::vector<Diagnostic>& problems) {
    std::vector<std::string> texts;
    for (const auto& problem : problems) texts.push_back(problem.to_string());
    return texts;
}

std::string describe(const std::vector<RuleMatch>& matches, const std::vector<FilterRule>& rules) {
    std::string text;
    for (const auto& match : matches) {
        text += rules[match.rule_index].name;
        text += match.annotation ? " -> " + boost::json::serialize(*match.annotation) : "";
        text += "; ";
    }
    return text;
}

struct DifferentialOutcome {
    std::size_t events = 0;
    std::size_t matches = 0;
    std::size_t runtime_errors = 0;
    std::size_t compiled_rules = 0;
};

// The variants compared with the per-rule reference: how rules are compiled, and
// whether libjq runs in the rule evaluator process (rule_sandbox.hpp) or in this one.
struct Variant {
    RuleCompilation compilation = RuleCompilation::indexed;
    bool isolated = false;

    FilterOptions options() const {
        FilterOptions chosen{compilation, std::nullopt};
        if (isolated) chosen.isolation = RuleBudget{};
        return chosen;
    }
};

const char* compilation_text(RuleCompilation compilation) {
    switch (compilation) {
        case RuleCompilation::indexed:
            return "indexed";
        case RuleCompilation::combined:
            return "combined";
        case RuleCompilation::per_rule:
            break;
    }
    return "per rule";
}

std::string compilation_text(const Variant& variant) {
    return std::string(compilation_text(variant.compilation)) + (variant.isolated ? ", in the rule evaluator" : "");
}

// Runs each compilation under test and the per-rule reference (once) over all
// events and fails on the first difference: matches, annotations, compile
// problems and each rule's runtime error count.
DifferentialOutcome expect_same_results(const std::vector<FilterRule>& rules, const std::string& what,
                                        const std::vector<Variant>& under_test) {
    tattle::set_rule_evaluator_program(TATTLE_BINARY);
    QuietLogs quiet;
    std::vector<Diagnostic> reference_problems;
    FilterStage reference(rules, reference_problems, RuleCompilation::per_rule);
    std::vector<std::unique_ptr<FilterStage>> stages;
    for (const Variant& variant : under_test) {
        std::vector<Diagnostic> problems;
        stages.push_back(std::make_unique<FilterStage>(rules, problems, variant.options()));
        EXPECT_EQ(problem_texts(problems), problem_texts(reference_problems))
            << what << " (" << compilation_text(variant) << ")";
    }

    DifferentialOutcome outcome;
    for (std::size_t index = 0; index < rules.size(); ++index) {
        for (std::size_t k = 0; k < stages.size(); ++k) {
            EXPECT_EQ(stages[k]->compiled(index), reference.compiled(index))
                << what << " (" << compilation_text(under_test[k]) << "): " << rules[index].name;
        }
        if (reference.compiled(index)) ++outcome.compiled_rules;
    }
    for (const auto& batch : cloudtrail_batches()) {
        reference.begin_batch(batch.origin);
        for (auto& stage : stages) stage->begin_batch(batch.origin);
        for (std::size_t position = 0; position < batch.events.size(); ++position) {
            const auto& event = batch.events[position];
            const auto expected = reference.evaluate(event);
            ++outcome.events;
            outcome.matches += expected.size();
            for (std::size_t k = 0; k < stages.size(); ++k) {
                const auto got = stages[k]->evaluate(event);
                bool same = got.size() == expected.size();
                for (std::size_t i = 0; same && i < got.size(); ++i) {
                    // The annotation's text, not only its JSON value: key order and
                    // 1 vs 1.0 reach the alert.
                    same = got[i].rule_index == expected[i].rule_index &&
                           got[i].annotation.has_value() == expected[i].annotation.has_value() &&
                           (!got[i].annotation ||
                            boost::json::serialize(*got[i].annotation) == boost::json::serialize(*expected[i].annotation));
                }
                if (!same) {
                    ADD_FAILURE() << what << ": event " << position << " of " << batch.origin
                                  << "\n  " << compilation_text(under_test[k]) << ": " << describe(got, rules)
                                  << "\n  per rule: " << describe(expected, rules);
                    return outcome;
                }
            }
        }
    }
    for (std::size_t index = 0; index < rules.size(); ++index) {
        for (std::size_t k = 0; k < stages.size(); ++k) {
            EXPECT_EQ(stages[k]->runtime_errors(index), reference.runtime_errors(index))
                << what << " (" << compilation_text(under_test[k]) << "): rule " << rules[index].name;
        }
        outcome.runtime_errors += reference.runtime_errors(index);
    }
    return outcome;
}

std::vector<FilterRule> rules_of(const fs::path& config_path) {
    const Config config = load_config(config_path);
    std::vector<FilterRule> rules;
    for (const auto& spec : config.rules) rules.push_back({spec.key(), spec.jq_match, spec.jq_match_where});
    return rules;
}

std::vector<fs::path> repository_rule_sets() {
    const fs::path source(TATTLE_SOURCE_DIR);
    std::vector<fs::path> sets{source / "configs" / "demo.toml"};
    std::vector<fs::path> found;
    for (const auto& dir : {source / "configs" / "rules", fs::path(TATTLE_SHARED_DATA_DIR) / "tattletail"}) {
        if (!fs::is_directory(dir)) continue;
        for (const auto& entry : fs::directory_iterator(dir)) {
            if (entry.path().extension() == ".toml") found.push_back(entry.path());
        }
    }
    std::sort(found.begin(), found.end());
    sets.insert(sets.end(), found.begin(), found.end());
    return sets;
}

TEST(CombinedRulesDifferential, DataIsThere) {
    std::size_t events = 0;
    for (const auto& batch : cloudtrail_batches()) events += batch.events.size();
    EXPECT_GT(events, 1000U);
    EXPECT_GE(repository_rule_sets().size(), 3U);
}

const std::vector<Variant> kUnderTest{{RuleCompilation::combined, false},
                                      {RuleCompilation::indexed, false},
                                      {RuleCompilation::indexed, true}};

TEST(RulesDifferential, EveryRepositoryRuleSetOverAllCloudTrailData) {
    for (const auto& path : repository_rule_sets()) {
        SCOPED_TRACE(path.string());
        const auto rules = rules_of(path);
        ASSERT_FALSE(rules.empty());
        const auto outcome = expect_same_results(rules, path.string(), kUnderTest);
        EXPECT_EQ(outcome.compiled_rules, rules.size());
        EXPECT_GT(outcome.matches, 0U);
        if (path.filename() == "cloudtrail.toml") {
            EXPECT_GT(outcome.matches, 100U);
        }
    }
}

// Rules written to find differences: errors before and after the first output,
// definitions, bindings, comments, labels, reduce, and texts that try to reach
// past their own definition in the combined program.
std::vector<FilterRule> stress_rules() {
    return {
        rule("select", R"(select(.eventName == "ConsoleLogin"))"),
        rule("type-error-sometimes", R"(.requestParameters.userName | ascii_downcase | . == "admin")"),
        rule("always-error", R"(error("boom"))"),
        rule("object-error", R"(error({"why": .eventName}))"),
        rule("null-error", "error(null)"),
        rule("error-after-first", R"(.eventName, error("never reached"))"),
        rule("error-then-value", R"(if .eventName == "GetObject" then error("x") else .eventSource end)"),
        rule("defs", "def is_iam: .eventSource == \"iam.amazonaws.com\";\n"
                     "def user($n): .userIdentity.userName == $n;\n"
                     "select(is_iam) | {user: .userIdentity.userName}"),
        rule("comments", "# a comment first\n.eventName # after the path\n| startswith(\"Get\") # end"),
        rule("trailing-comment-no-newline", "select(.readOnly == false) # no newline after me"),
        rule("binding", ".eventName as $name | .eventSource as $source | "
                        "select($source | test(\"^s3\")) | \"\\($name) on \\($source)\""),
        rule("destructuring", ". as {eventName: $n, userIdentity: {type: $t}} | select($t == \"Root\") | $n"),
        rule("reduce", "reduce (.resources // [])[] as $r (0; . + 1) | select(. > 0)"),
        rule("label", "label $done | (.userIdentity | to_entries[] | select(.key == \"arn\") | .value, break $done)"),
        rule("foreach", "[foreach (.eventName | explode[]) as $c (0; . + 1)] | length > 10"),
        rule("try-inside", "try (.requestParameters | keys | length) catch \"no keys\""),
        rule("optional", ".responseElements?.credentials?.accessKeyId? // false"),
        rule("whole-event", "select(.eventType == \"AwsApiCall\")"),
        rule("modified-event", "select(.eventName == \"ListBuckets\") | .extra = 1"),
        rule("many-outputs", ".userIdentity | .. | numbers"),
        rule("interpolated-parens", "\"(\\(.eventName))\" | test(\"^\\\\(Get\")"),
        rule("location", "$__loc__ | .line == 1"),
        rule("calls-another-rule", "__tattle_rule_0"),
        rule("unbalanced-close", ".eventName) | (.eventSource"),
        rule("unterminated-string", "\"abc"),
        rule("closes-the-string", "\" | true"),
        rule("syntax-error", "select(.eventName == )"),
        rule("undefined-function", "no_such_function(1)"),
        rule("semicolon", ".a; .b"),
        rule("def-only", "def f: .;"),
        rule("limit", "limit(1; .resources[]?.ARN)"),
        rule("carriage-return", "# comment\r select(true) | .eventName"),
        rule("deep-annotation", "[range(300)] | reduce .[] as $x (null; [.])"),
        rule("last", "select(.eventName | test(\"Describe\")) | true"),
        rule("generator-then-error", ".resources[]?.ARN, .eventName.x"),
        rule("binding-any-collect", ". as $e | select(any(.resources[]?; .accountId == $e.recipientAccountId)) | "
                                    "[.resources[]?.type] | unique | join(\",\")"),
    };
}

TEST(RulesDifferential, StressRulesOverAllCloudTrailData) {
    const auto rules = stress_rules();
    const auto outcome = expect_same_results(rules, "stress rules", kUnderTest);
    EXPECT_GT(outcome.matches, 1000U);
    EXPECT_GT(outcome.runtime_errors, 1000U);
    EXPECT_LT(outcome.compiled_rules, rules.size());  // the broken ones are refused
}

// Random rules from a grammar of the forms the native reader and the index
// handle (bindings, generators and what consumes them among them), mixed with
// forms they must leave to libjq and with paths and generators that fail in jq
// on real events. Seeded, so every run checks the same rules.
class RuleGrammar {
public:
    explicit RuleGrammar(std::uint64_t seed) : state_(seed) {}

    std::string rule() {
        switch (pick(10)) {
            case 0:
            case 1:
            case 2:
                return "select(" + predicate(0) + ")";
            case 3:
            case 4:
                return "select(" + predicate(0) + ") | " + annotation();
            case 5:
                return predicate(0);
            case 6:
                return "if " + predicate(0) + " then " + annotation() + " else empty end";
            case 7:
                return "select(" + predicate(1) + ") | select(" + predicate(1) + ")";
            case 8:
                return "def names: " + literal_list(kEventNames) + ";\ndef is_source: .eventSource == " +
                       one(kEventSources) + ";\nselect((.eventName | IN(names)) or (is_source and " +
                       predicate(1) + "))";
            default:
                return "select(" + predicate(0) + " and " + predicate(1) + ")";
        }
    }

private:
    struct Field {
        std::string path;
        std::vector<std::string> values;
    };

    inline static const std::vector<std::string> kEventNames{
        "\"Decrypt\"", "\"DescribeRouteTables\"", "\"GetUser\"", "\"ConsoleLogin\"", "\"CreateAccessKey\"",
        "\"ListBuckets\"", "\"AssumeRole\"", "\"GetParameter\"", "\"PutBucketPolicy\"", "\"NoSuchEvent\""};
    inline static const std::vector<std::string> kEventSources{
        "\"ec2.amazonaws.com\"", "\"ssm.amazonaws.com\"", "\"iam.amazonaws.com\"",
        "\"s3.amazonaws.com\"",  "\"kms.amazonaws.com\"", "\"sts.amazonaws.com\""};

    std::uint64_t next() {
        // splitmix64: the same sequence on every platform.
        std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30U)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27U)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31U);
    }
    std::size_t pick(std::size_t n) { return static_cast<std::size_t>(next() % n); }
    const std::string& one(const std::vector<std::string>& options) { return options[pick(options.size())]; }

    std::string literal_list(const std::vector<std::string>& options) {
        const std::size_t count = 1 + pick(4);
        std::string text;
        for (std::size_t i = 0; i < count; ++i) text += (i > 0 ? ", " : "") + one(options);
        return text;
    }

    const Field& field() {
        static const std::vector<Field> fields{
            {".eventName", kEventNames},
            {".eventSource", kEventSources},
            {".errorCode", {"null", "\"ThrottlingException\"", "\"Client.UnauthorizedOperation\"", "\"AccessDenied\""}},
            {".userIdentity.type", {"\"IAMUser\"", "\"AssumedRole\"", "\"AWSService\"", "\"Root\"", "null"}},
            {".readOnly", {"true", "false", "null", "\"true\""}},
            {".awsRegion", {"\"us-east-1\"", "\"us-east-2\""}},
            {".eventType", {"\"AwsApiCall\"", "\"AwsServiceEvent\"", "null"}},
            {".sourceIPAddress", {"\"192.168.10.20\"", "\"AWS Internal\""}},
            {".requestParameters.bucketName", {"null", "\"x\""}},
            {".[\"eventVersion\"]", {"\"1.08\"", "\"1.05\"", "1.08"}},
            {".userIdentity.sessionContext.attributes.mfaAuthenticated", {"\"true\"", "\"false\""}},
            {".additionalEventData.MFAUsed", {"\"Yes\"", "\"No\""}},
            {".resources[0].type", {"\"AWS::S3::Bucket\"", "\"AWS::KMS::Key\"", "null"}},
            {".resources[-1].accountId", {"\"811596193553\"", "null"}},
            {".requestParameters.maxResults", {"1000", "1000.0", "\"1000\"", "5"}},
            // Paths jq fails on for some or all events.
            {".eventName.x", {"null", "\"x\""}},
            {".eventName[0]", {"null"}},
            {".resources.ARN", {"null"}},
            {".requestParameters.filterSet.items[0].name", {"\"vpc-id\"", "null"}},
            {".userIdentity[0]", {"null"}},
            // ... and the same made optional.
            {".eventName.x?", {"null", "\"x\""}},
            {".resources.ARN?", {"null"}},
            {".eventName[0]?", {"null"}},
        };
        return fields[pick(fields.size())];
    }

    std::string indexable_atom() {
        const Field& f = field();
        switch (pick(4)) {
            case 0:
                return f.path + " == " + one(f.values);
            case 1:
                return one(f.values) + " == " + f.path;
            case 2:
                return f.path + " | IN(" + literal_list(f.values) + ")";
            default:
                return "IN(" + f.path + "; " + literal_list(f.values) + ")";
        }
    }

    std::string native_atom() {
        const Field& f = field();
        static const std::vector<std::string> regexes{"\"^Get\"", "\"Describe\"", "\"(?i)list\"",
                                                      "\"amazonaws\\\\.com$\"", "\"^[A-Z][a-z]+[A-Z]\"",
                                                      "\"terraform|boto\""};
        static const std::vector<std::string> affixes{"\"Get\"", "\"s\"", "\".com\"", "\"\"", "\"Root\""};
        static const std::vector<std::string> policies{
            ".requestParameters.policyDocument", ".requestParameters.assumeRolePolicyDocument",
            ".requestParameters.policy", ".requestParameters.bucketName", ".requestParameters"};
        switch (pick(29)) {
            case 27:
                return f.path;  // truthy where the path is
            case 28:
                return "(" + f.path + " // []) | length > " + std::to_string(pick(2));
            case 16:
                // any/2 over optional and failing iterations; a condition that fails on some items.
                return "any(.resources" + std::string(pick(4) == 0 ? "[]" : "[]?") + "; " +
                       std::string(pick(2) == 0 ? ".type == \"AWS::S3::Bucket\"" : ".ARN | test(\"s3\")") + ")";
            case 17:
                return "any(.resources | if type == \"array\" then .[] else . end | objects; "
                       "(.accountId? // \"none\") != .ARN)";
            case 18:
                return "([.resources[]? | .type] | unique | length) > " + std::to_string(pick(2));
            case 19:
                return "((.requestParameters.instancesSet.items // []) | [.[] | .instanceId] | join(\",\") | "
                       "length) > " + std::to_string(pick(2) * 12);
            case 20:
                return ". as $e | ($e.userIdentity.arn // \"\") | endswith(\"/\" + ($e.userIdentity.userName // "
                       "\"x\"))";
            case 21:
                return "((" + one(policies) + " // \"\") | fromjson? // {}) as $doc | any($doc.Statement | "
                       "if type == \"array\" then .[] else . end | objects | .Effect; . == \"Allow\")";
            case 22:
                return pick(2) == 0 ? ".userIdentity | objects | .type == \"Root\""
                                    : ".errorCode | strings | startswith(\"Access\")";
            case 23:
                return ".resources[]? | .type == \"AWS::KMS::Key\"";
            case 24:
                return "if (.resources | type) == \"array\" then (.resources | length) > 1 else .readOnly end";
            case 25:
                // Fails on the events whose resources have no accountId: errors for libjq to report.
                return "any(.resources[]?; .accountId | startswith(\"8\"))";
            case 26:
                return f.path + " as $v | ([$v, .eventName] | join(\"-\") | length) > 14";
            case 0:
                return f.path + " != " + one(f.values);
            case 1:
                return f.path + " < " + one(f.values);
            case 2:
                return f.path + " >= " + one(f.values);
            case 3:
                return "(" + f.path + " // \"none\") | test(" + one(regexes) + ")";
            case 4:
                return f.path + " | test(" + one(regexes) + "; \"" + std::string(pick(2) == 0 ? "i" : "x") + "\")";
            case 5:
                return "(" + f.path + " // \"\") | startswith(" + one(affixes) + ")";
            case 6:
                return f.path + " | endswith(" + one(affixes) + ")";
            case 7:
                return "(" + f.path + " // \"\") | contains(" + one(affixes) + ")";
            case 8:
                return "(" + f.path + " | tostring) == " + one(f.values);
            case 9:
                return "(" + f.path + " | ascii_downcase) == \"getuser\"";
            case 10:
                return f.path + " | length > " + std::to_string(pick(12));
            case 11:
                return ".requestParameters | has(\"bucketName\")";
            case 12:
                return "(" + f.path + " | type) == \"" +
                       std::string(pick(2) == 0 ? "string" : "null") + "\"";
            case 13:
                return "(" + f.path + ") | not";
            case 14:
                return "(.resources | length) == " + std::string(pick(2) == 0 ? "1" : "1.0");
            default:
                return f.path + " // " + one(f.values);
        }
    }

    std::string libjq_atom() {
        static const std::vector<std::string> atoms{
            "(.eventName | ltrimstr(\"Get\") | length) > 5",
            ".eventName == (\"GetUser\", \"Decrypt\")",
            "any(.resources[]?; (.type, .ARN) == \"x\")",
            "(.userIdentity[] | strings) == \"Root\"",
            "(.eventName - 1) == 0",
            "first(.resources[]?.ARN) != null",
            "(.userIdentity | keys | length) > 3",
            ".resources[]?.type == \"AWS::KMS::Key\"",
            "(.requestParameters | tostring | length) > 100",
        };
        return one(atoms);
    }

    std::string predicate(int depth) {
        const std::size_t choice = depth >= 2 ? pick(3) : pick(7);
        switch (choice) {
            case 0:
                return indexable_atom();
            case 1:
                return native_atom();
            case 2:
                return pick(3) == 0 ? libjq_atom() : indexable_atom();
            case 3:
            case 4:
                return "(" + predicate(depth + 1) + ") and (" + predicate(depth + 1) + ")";
            case 5:
                return "(" + predicate(depth + 1) + ") or (" + predicate(depth + 1) + ")";
            default:
                return "select(" + predicate(depth + 1) + ") | not";
        }
    }

    std::string annotation() {
        static const std::vector<std::string> annotations{
            ".eventName", "\"\\(.eventName) by \\(.userIdentity.arn)\"", "{e: .eventName, t: .eventTime}",
            ".requestParameters", ".errorCode", "true", "false", "null", "empty", ".readOnly",
            "error(\"in the annotation\")", ".", ".eventName | ascii_downcase",
            // Built natively where it can be: objects, interpolation, split, whole subtrees.
            "{event: .eventName, error: .errorCode, principal: (.userIdentity.arn // .userIdentity.invokedBy // "
            "\"unknown\")}",
            "\"\\(.eventName): \\(.requestParameters.keyId // \"none\") \\(.readOnly) \\(.eventVersion) "
            "\\(.requestParameters.maxResults)\"",
            "{instance: (.userIdentity.arn | split(\"/\") | last), ip: .sourceIPAddress, at: .eventTime}",
            "{eventName, eventTime, r: .resources, p: .requestParameters}", ".userIdentity", ".resources",
            "\"\\(.userIdentity.sessionContext)\"", ".userAgent | split(\" \")",
            "{e: .eventName | ascii_downcase, n: (.eventName | length), t: (.responseElements | type)}",
            "{whole: .}", "{e: .eventName, never: empty}", "\"\\(.eventName.x)\"",
            "{k: .requestParameters.instancesSet.items[0].instanceId, c: .requestParameters.maxResults}",
            "\"\\(.eventID | split(\"-\") | .[1]) \\(.eventSource | split(\".\") | last)\"",
            // First outputs of generators, bindings, collections (some fail, some are libjq's).
            ".resources[]?.ARN", ".resources[]", ".resources[]? | .type, .ARN", ".userIdentity | .arn, .accountId",
            "[.resources[]? | .ARN] | unique | join(\", \")",
            ". as $e | .resources[]? | select(.accountId != $e.recipientAccountId) | .ARN",
            "\"\\(.eventName) \\([.resources[]?.type] | join(\",\"))\"",
            "(.requestParameters | fromjson?) // \"not a string\"",
            "((.requestParameters.policyDocument // .requestParameters.policy // \"{}\") | fromjson? // {}) | "
            ".Statement | if type == \"array\" then .[] else . end | objects | .Action",
            ". as $e | ($e.userIdentity.userName // $e.userIdentity.invokedBy // \"\") as $u | "
            "{u: $u, same: ($u == $e.requestParameters.userName), n: (\"/\" + $u)}",
            ".userIdentity[]", "[.resources[]? | .accountId] | unique",
            "(.requestParameters.instancesSet.items // []) | [.[] | .instanceId] | join(\",\")"};
        return one(annotations);
    }

    std::uint64_t state_;
};

TEST(RulesDifferential, GeneratedRulesIndexedNativeAgainstPerRule) {
    RuleGrammar grammar(20261127);
    std::vector<FilterRule> rules;
    for (int i = 0; i < 500; ++i) rules.push_back(rule("generated-" + std::to_string(i), grammar.rule()));
    const auto outcome = expect_same_results(rules, "generated rules", {{RuleCompilation::indexed, false}});
    EXPECT_EQ(outcome.compiled_rules, rules.size());
    EXPECT_GT(outcome.matches, 10000U);
    EXPECT_GT(outcome.runtime_errors, 1000U);

    // The grammar reaches every path through the filter.
    std::vector<Diagnostic> problems;
    FilterStage stage(rules, problems, RuleCompilation::indexed);
    std::size_t native = 0;
    std::size_t indexed = 0;
    std::size_t native_generators = 0;  // bindings, iterations, any/2 decided natively
    std::size_t routed_by_not_null = 0;
    for (std::size_t i = 0; i < rules.size(); ++i) {
        const auto explanation = stage.explain(i);
        native += explanation.native ? 1 : 0;
        indexed += explanation.indexed ? 1 : 0;
        if (explanation.index.find("\xE2\x89\xA0 null") != std::string::npos) ++routed_by_not_null;
        const std::string& text = rules[i].jq_program;
        if (explanation.native && (text.find("[]") != std::string::npos || text.find(" as $") != std::string::npos ||
                                   text.find("any(") != std::string::npos)) {
            ++native_generators;
        }
    }
    EXPECT_GT(native_generators, rules.size() / 10);
    EXPECT_GT(native, rules.size() / 2);
    EXPECT_LT(native, rules.size());
    EXPECT_GT(indexed, rules.size() / 4);
    EXPECT_LT(indexed, rules.size());
    EXPECT_GT(routed_by_not_null, rules.size() / 20);
}

// ---------------------------------------------------------------------------
// The combined program on its own.

boost::json::object event_named(std::string_view name) {
    boost::json::object event;
    event["eventName"] = name;
    event["eventSource"] = "iam.amazonaws.com";
    return event;
}

TEST(CombinedRules, RuntimeErrorsStayWithTheirRule) {
    QuietLogs logs;
    std::vector<Diagnostic> problems;
    FilterStage stage({rule("before", "true"), rule("fails", ".eventName | ltrimstr(1) | .[0]"),
                       rule("after", ".eventName")},
                      problems, RuleCompilation::combined);
    ASSERT_TRUE(problems.empty());
    stage.begin_batch("b1");
    for (int i = 0; i < 3; ++i) {
        const auto matches = stage.evaluate(event_named("CreateUser"));
        ASSERT_EQ(matches.size(), 2U);
        EXPECT_EQ(matches[0].rule_index, 0U);
        EXPECT_EQ(matches[1].rule_index, 2U);
        EXPECT_EQ(*matches[1].annotation, boost::json::value("CreateUser"));
    }
    EXPECT_EQ(stage.runtime_errors(0), 0U);
    EXPECT_EQ(stage.runtime_errors(1), 3U);
    EXPECT_EQ(stage.runtime_errors(2), 0U);
    EXPECT_THAT(logs.text(), HasSubstr("warning rule \"fails\": jq error on an event from b1: Cannot index string"));
}

TEST(CombinedRules, ErrorNullIsNoOutputAndNoError) {
    std::vector<Diagnostic> problems;
    FilterStage stage({rule("null", "error(null)"), rule("t", "true")}, problems);
    stage.begin_batch("b");
    const auto matches = stage.evaluate(event_named("X"));
    ASSERT_EQ(matches.size(), 1U);
    EXPECT_EQ(matches[0].rule_index, 1U);
    EXPECT_EQ(stage.runtime_errors(0), 0U);
}

TEST(CombinedRules, SyntaxErrorAmongGoodRulesIsReportedAsAlone) {
    QuietLogs logs;
    std::vector<FilterRule> rules{rule("a", ".eventName == \"A\""), rule("bad", "select(.x == )"),
                                  rule("b", ".eventName == \"B\""), rule("bad2", "nope(1)"),
                                  rule("c", "true")};
    std::vector<Diagnostic> combined_problems;
    std::vector<Diagnostic> reference_problems;
    FilterStage stage(rules, combined_problems);
    FilterStage reference(rules, reference_problems, RuleCompilation::per_rule);
    ASSERT_EQ(combined_problems.size(), 2U);
    EXPECT_EQ(problem_texts(combined_problems), problem_texts(reference_problems));
    EXPECT_THAT(combined_problems[0].to_string(), HasSubstr("rule \"bad\": jq: syntax error"));
    EXPECT_THAT(combined_problems[1].to_string(), HasSubstr("rule \"bad2\": jq: nope/1 is not defined"));
    EXPECT_TRUE(stage.compiled(0));
    EXPECT_FALSE(stage.compiled(1));
    EXPECT_TRUE(stage.compiled(2));
    EXPECT_FALSE(stage.compiled(3));
    EXPECT_TRUE(stage.compiled(4));
    stage.begin_batch("b");
    const auto matches = stage.evaluate(event_named("B"));
    ASSERT_EQ(matches.size(), 2U);
    EXPECT_EQ(matches[0].rule_index, 2U);
    EXPECT_EQ(matches[1].rule_index, 4U);
}

TEST(CombinedRules, DefinitionsCommentsAndBindingsKeepTheirMeaning) {
    std::vector<Diagnostic> problems;
    FilterStage stage(
        {rule("defs", "def f: .eventName;\ndef g($x): $x + \"!\";\ng(f)"),
         rule("comment", "# nothing here matters: ) ] } \"\n.eventName == \"X\" # trailing"),
         rule("binding", ".eventName as $n | .eventSource as $s | [$n, $s]"),
         rule("reduce", "reduce (1, 2, 3) as $i (0; . + $i)"),
         rule("label", "label $out | (1, 2) | ., break $out"),
         rule("same-def-name", "def f: 42; f")},
        problems);
    ASSERT_TRUE(problems.empty()) << problems.front().to_string();
    stage.begin_batch("b");
    const auto matches = stage.evaluate(event_named("X"));
    ASSERT_EQ(matches.size(), 6U);
    EXPECT_EQ(*matches[0].annotation, boost::json::value("X!"));
    EXPECT_FALSE(matches[1].annotation.has_value());
    EXPECT_EQ(*matches[2].annotation, boost::json::parse(R"(["X","iam.amazonaws.com"])"));
    EXPECT_EQ(*matches[3].annotation, boost::json::value(6));
    EXPECT_EQ(*matches[4].annotation, boost::json::value(1));
    EXPECT_EQ(*matches[5].annotation, boost::json::value(42));
}

// A rule's text must not be able to close its own definition and change another's.
TEST(CombinedRules, ARuleCannotReachPastItsDefinition) {
    std::vector<Diagnostic> problems;
    FilterStage stage({rule("opens-string", "\"abc"), rule("closes-string", "\" | true"),
                       rule("closes-paren", "true) | (false"), rule("calls-rule", "__tattle_rule_0"),
                       rule("good", "true")},
                      problems);
    const auto texts = problem_texts(problems);
    ASSERT_EQ(texts.size(), 4U) << ::testing::PrintToString(texts);
    EXPECT_THAT(texts[0], HasSubstr("\"opens-string\""));
    EXPECT_THAT(texts[1], HasSubstr("\"closes-string\""));
    EXPECT_THAT(texts[2], HasSubstr("\"closes-paren\""));
    EXPECT_THAT(texts[3], HasSubstr("\"calls-rule\": jq: __tattle_rule_0/0 is not defined"));
    EXPECT_TRUE(stage.compiled(4));
}

TEST(CombinedRules, ManyRulesWithOneBrokenAllCompileButThatOne) {
    std::vector<FilterRule> rules;
    for (int i = 0; i < 200; ++i) {
        rules.push_back(rule("r" + std::to_string(i),
                             i == 137 ? "select(" : "select(.eventName == \"E" + std::to_string(i) + "\")"));
    }
    std::vector<Diagnostic> problems;
    FilterStage stage(rules, problems);
    ASSERT_EQ(problems.size(), 1U);
    EXPECT_THAT(problems[0].to_string(), HasSubstr("rule \"r137\": jq: syntax error"));
    stage.begin_batch("b");
    for (int i : {0, 136, 138, 199}) {
        const auto matches = stage.evaluate(event_named("E" + std::to_string(i)));
        ASSERT_EQ(matches.size(), 1U) << i;
        EXPECT_EQ(matches[0].rule_index, static_cast<std::size_t>(i));
    }
    EXPECT_TRUE(stage.evaluate(event_named("E137")).empty());
}

}  // namespace
}  // namespace tattle
