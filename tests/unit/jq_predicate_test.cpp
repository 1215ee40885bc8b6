// The native rule reader, evaluator and index: what it reads and refuses, how
// it routes events, and that its answers are libjq's on the edge cases
// (null paths, '?', type errors, 1 vs 1.0, unicode, cross-type ordering).
#include "jq_predicate.hpp"
#include "tattle/filter.hpp"

#include "quiet_logs.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace tattle {
namespace {

using ::testing::HasSubstr;
using jq_native::read_rule;
using jq_native::RuleForm;
using jq_native::Verdict;

using tattle::test_support::QuietLogs;

boost::json::object event(std::string_view json) { return boost::json::parse(json).as_object(); }

// ---------------------------------------------------------------------------
// The reader.

TEST(JqReader, ReadsTheSupportedForms) {
    const std::vector<std::pair<std::string, RuleForm>> accepted{
        {R"(select(.eventName == "X"))", RuleForm::select_only},
        {"select(.eventName == \"X\") | \"user \\(.userIdentity.arn)\"", RuleForm::select_then_rest},
        {R"(.errorCode == "AccessDenied")", RuleForm::bare},
        {R"(if .a == 1 then {x: .b} else empty end)", RuleForm::bare},
        {R"(if .a == 1 then .b[] else empty end)", RuleForm::bare},
        {R"(if .a == 1 then .b | ltrimstr("x") else empty end)", RuleForm::select_then_rest},
        {R"(select(.a.b[0]? != null and (.c // "d" | test("^x"; "i"))))", RuleForm::select_only},
        {R"(select(.["odd key"] | IN("a", "b")))", RuleForm::select_only},
        {R"(select(IN(.a; 1, 2.5, -3, true, null)))", RuleForm::select_only},
        {R"(select((.x | tostring | ascii_downcase | length) > 2 or (.y | type) == "object"))",
         RuleForm::select_only},
        {R"(select(.x | startswith("a") and endswith("b") and contains("c")))", RuleForm::select_only},
        {R"(select(has("x") | not))", RuleForm::select_only},
        {"def admins: \"alice\", \"bob\";\nselect(.user | IN(admins))", RuleForm::select_only},
        {"# comment\nselect(.a == 1) # trailing", RuleForm::select_only},
        {R"(select(.a == 1) | select(.b == 2))", RuleForm::select_only},
        {R"(select(.tags | contains(["a"])))", RuleForm::select_only},
        // Bindings, generators and what consumes them.
        {R"(. as $e | select($e.a == 1) | {a: $e.b})", RuleForm::bare},
        {R"(select(.a == 1) | (.b // "") as $u | select($u != "" and ("/" + $u | endswith("x"))))",
         RuleForm::select_then_rest},
        {R"(select(any(.a[]?; .b == 1 or (.c.d? // 9) <= 7)))", RuleForm::select_only},
        {R"(select(any(.a | if type == "array" then .[] else . end | objects; .x)))", RuleForm::select_only},
        {R"(select(.a == 1) | .names[]?)", RuleForm::select_then_rest},
        {R"(select(.a == 1) | [.l[] | strings | select(test("^x"))] | unique | select(length > 0) | join(", "))",
         RuleForm::select_then_rest},
        {R"(select(((.doc // "") | fromjson? // {}) | .Statement | arrays | length > 0))", RuleForm::select_only},
        {R"jq(select(.a == 1) | "\(.x // "?") on \((.ids // []) | join(","))")jq", RuleForm::select_then_rest},
        {R"(select(.a == 1) | (.x, .y) | values)", RuleForm::select_then_rest},
        {R"(.a as $x | .b as $y | $x + $y)", RuleForm::bare},
    };
    for (const auto& [program, form] : accepted) {
        const auto rule = read_rule(program);
        EXPECT_TRUE(rule.native) << program << ": " << rule.not_native_reason;
        EXPECT_EQ(rule.form, form) << program;
    }
}

TEST(JqReader, RefusesWhatItDoesNotModelAndSaysWhere) {
    const std::vector<std::pair<std::string, std::string>> refused{
        {R"(select(any(.a[]?; (.b, .c))))", "any/2 with a condition that has several outputs"},
        {R"(select(any((.a[])?; .b)))", "any/2 over a generator holding a try"},
        {R"(select(.a[] == 1))", "an operand of '==' with several outputs"},
        {R"(select(.a | startswith(.b[])))", "an operand of startswith/1 with several outputs"},
        {R"(select((.a | fromjson?) == 1))", "an operand of '==' with several outputs (or a try"},
        {R"(select($x == 1))", "variable $x (not bound by 'as' in the rule) at line 1, column 8"},
        {R"(. as $x | $__loc__)", "variable $__loc__"},
        {R"(. as [$a] | $a)", "a destructuring 'as' pattern"},
        {R"(. as {a: $a} | $a)", "a destructuring 'as' pattern"},
        {R"(. as $if | $if)", "variable name $if"},
        {R"(. as $m::x | 1)", "variable name $m::x"},
        {R"(select($and == 1))", "variable name $and"},
        {R"(select(-1 as $x | $x))", "'-' before an 'as' binding"},
        {R"(select(.a - 1 == 2))", "arithmetic '-' at line 1, column 11"},
        {R"(select(.a == (1, 2)))", "an operand of '==' with several outputs"},
        {R"(select(.a | join(.b) == ""))", "join/1 with a separator that is not a string literal"},
        {R"(select(.a == 1) | .b | ltrimstr("x") | .[] )", ""},  // native condition, rest for libjq
        {R"(select(.a[] == 1) | .b | ltrimstr("x"))", "an operand of '=='"},
        {R"(select(.a[]) | .b | ltrimstr("x"))", "a condition with several outputs (or a try) before a rest"},
        {"select(.a == 1)\n| .b | ltrimstr(\"x\") | select(. == \"y\")", ""},  // native, rest for libjq
        {R"(select(.a | test(.b)))", "test() with a regex that is not a string literal"},
        {R"(select(.a | test("(")))", "does not compile"},
        {R"(select(.a | test("x"; "q")))", "flags \"q\" are not valid"},
        {"def f(x): x; select(f(.a))", "definition \"f\" has parameters"},
        {"def r: r; select(r)", "definition \"r\" is recursive"},
        {"select(.a == \"\\(.b as $x | $x)\")", "an operand of '==' with several outputs"},
        {R"(select(.a == {b: . as $x | $x}))", "object construction"},
        {"select(.a == \"\\(.b # comment )\n)\")", "a comment inside an interpolation"},
        {R"(select(.a == {(.b): .c}))", "object construction"},
        {R"(select(.a == {b: .c, b: .d}))", "object construction"},
        {R"(select(.a == {b: .c // 1}))", "object construction"},
        {R"(select(.a == {b: if .c then 1 else 2 end}))", "object construction"},
        {R"(select(.a | split("") | length > 1))", "split/1 with a separator"},
        {R"(select(.a == 1) as $x)", "'|' expected"},
        {R"(reduce .[] as $x (0; . + $x))", "'reduce'"},
        {R"(select(.a < .b < .c))", "chained comparisons"},
        {R"((.a)?.b)", "unexpected 'b' at line 1, column 6"},
    };
    for (const auto& [program, reason] : refused) {
        const auto rule = read_rule(program);
        if (reason.empty()) {
            EXPECT_TRUE(rule.native) << program;
            EXPECT_FALSE(rule.fully_read) << program;
            continue;
        }
        EXPECT_FALSE(rule.native) << program;
        EXPECT_FALSE(rule.fully_read) << program;
        EXPECT_THAT(rule.not_native_reason, HasSubstr(reason)) << program;
    }
}

TEST(JqReader, DefinitionsShadowBuiltinsByNameAndArity) {
    // A zero-argument `test` does not hide test/1; a one-argument one does.
    EXPECT_TRUE(read_rule("def test: 1; select(.a | test(\"x\"))").native);
    EXPECT_FALSE(read_rule("def test(r): true; select(.a | test(\"x\"))").native);
    // true/false/null are constants in jq 1.6 whatever is defined.
    EXPECT_TRUE(read_rule("def true: false; select(true)").native);
    // An unread definition that is not used keeps the rule native, but libjq
    // must still check it at load.
    const auto rule = read_rule("def unused: reduce .[] as $x (0; .); select(.a == 1)");
    EXPECT_TRUE(rule.native);
    EXPECT_FALSE(rule.fully_read);
}

// ---------------------------------------------------------------------------
// Index conditions.

std::string condition_of(std::string_view program) {
    const auto rule = read_rule(program);
    return rule.condition ? rule.condition->text() : "none: " + rule.not_indexed_reason;
}

TEST(JqIndexConditions, EqualityInListsAndOrBranches) {
    EXPECT_EQ(condition_of(R"(select(.eventSource == "iam.amazonaws.com" and .eventName == "CreateAccessKey"))"),
              "eventName = CreateAccessKey");
    EXPECT_EQ(condition_of(R"(select(.eventName | IN("A", "B")))"), "eventName \xE2\x88\x88 {A, B}");
    EXPECT_EQ(condition_of(R"(select(IN(.userIdentity.type; "Root")))"), "userIdentity.type = Root");
    EXPECT_EQ(condition_of(R"(select(.eventName == "A" or .eventSource == "s3.amazonaws.com"))"),
              "eventName = A or eventSource = s3.amazonaws.com");
    EXPECT_EQ(condition_of(R"(select(.a == 1 or .a == 2))"), "a \xE2\x88\x88 {1, 2}");
    EXPECT_EQ(condition_of(R"("x" == .["odd key"])"), "[\"odd key\"] = x");
    EXPECT_EQ(condition_of(R"(if .resources[0].type == null then 1 else empty end)"), "resources[0].type = null");
    EXPECT_EQ(condition_of("def names: \"A\", \"B\"; select(.eventName | IN(names))"),
              "eventName \xE2\x88\x88 {A, B}");
}

TEST(JqIndexConditions, RefusesWhatDoesNotRequireAValue) {
    EXPECT_THAT(condition_of(R"(select(.eventName != "A"))"), HasSubstr("none"));
    EXPECT_THAT(condition_of(R"(select(.eventName == "A" or (.x | test("y"))))"), HasSubstr("none"));
    EXPECT_THAT(condition_of(R"(select((.eventName == "A") | not))"), HasSubstr("none"));
    EXPECT_THAT(condition_of(R"(select(.eventName == .eventSource))"), HasSubstr("none"));
    // `.eventName == "A"` comes after a term that may fail: on an event where
    // it fails, jq reports an error the index would hide.
    EXPECT_THAT(condition_of(R"(select((.a | test("x")) and .eventName == "A"))"), HasSubstr("none"));
    // ... but not after one that cannot fail.
    EXPECT_EQ(condition_of(R"(select(.readOnly == false and .eventName == "A"))"), "eventName = A");
    EXPECT_EQ(condition_of(R"(select((.a // "x") == "y" and .eventName == "A"))"), "eventName = A");
    // jq 1.6's '//' does not catch an error on its left.
    EXPECT_THAT(condition_of(R"(select((.a.b // "x") == "y" and .eventName == "A"))"), HasSubstr("none"));
    // A default that is itself a match, a rest that is true or fails on null, a
    // comparison with something other than null: every event may match.
    EXPECT_THAT(condition_of(R"(select(.a // "default"))"), HasSubstr("none"));
    EXPECT_THAT(condition_of(R"(select((.errorCode // "") | startswith("")))"), HasSubstr("none"));
    EXPECT_THAT(condition_of(R"(select((.errorCode // "AccessDenied") | test("^Access")))"), HasSubstr("none"));
    EXPECT_THAT(condition_of(R"(select(.errorCode | test("x")))"), HasSubstr("none"));  // fails on null
    EXPECT_THAT(condition_of(R"(select(.readOnly | not))"), HasSubstr("none"));
    EXPECT_THAT(condition_of(R"(select(.a != "x"))"), HasSubstr("none"));
    EXPECT_THAT(condition_of(R"(select((.a | length) > 0))"), HasSubstr("none"));
    // A rest that looks at a binding is not decided at load.
    EXPECT_THAT(condition_of(R"(.b as $b | select((.a // "") | . == $b))"), HasSubstr("none"));
}

TEST(JqIndexConditions, NotNullWhereTheRestOfAPipeRejectsNull) {
    constexpr std::string_view not_null = " \xE2\x89\xA0 null";
    EXPECT_EQ(condition_of(R"(select(((.errorCode // "") | test("UnauthorizedOperation$|^AccessDenied")) and )"
                           R"(.sourceIPAddress != "delivery.logs.amazonaws.com" and .eventName != "HeadBucket"))"),
              "errorCode" + std::string(not_null));
    EXPECT_EQ(condition_of(R"(select(.errorCode != null))"), "errorCode" + std::string(not_null));
    EXPECT_EQ(condition_of(R"(select(null != .a.b))"), "a.b" + std::string(not_null));
    EXPECT_EQ(condition_of(R"(select(.errorCode | strings | startswith("Access")))"),
              "errorCode" + std::string(not_null));
    EXPECT_EQ(condition_of(R"(select((.userAgent // "") | ascii_downcase | contains("terraform")))"),
              "userAgent" + std::string(not_null));
    EXPECT_EQ(condition_of(R"(select((.resources // []) | length > 0))"), "resources" + std::string(not_null));
    // A bare path, or one whose default is not truthy, is truthy only where the path is.
    EXPECT_EQ(condition_of(R"(select(.errorCode))"), "errorCode" + std::string(not_null));
    EXPECT_EQ(condition_of(R"(select(.a.b? // false))"), "a.b" + std::string(not_null));
    EXPECT_EQ(condition_of(R"(.eventName)"), "eventName" + std::string(not_null));
    // An equality routes more narrowly, whichever comes first.
    EXPECT_EQ(condition_of(R"(select(.errorCode != null and .eventName == "A"))"), "eventName = A");
    // In 'or', not null on a path takes in that path's values.
    EXPECT_EQ(condition_of(R"(select(.a == "x" or .a != null))"), "a" + std::string(not_null));
    EXPECT_EQ(condition_of(R"(select(.a != null or .b == 1))"), "a" + std::string(not_null) + " or b = 1");
}

// The rules (of the first rule_count) the index routes the event in json to.
std::vector<int> routed_rules(jq_native::RuleIndex& index, std::string_view json, std::size_t rule_count) {
    std::vector<std::uint64_t> bits;
    index.candidates(event(json), bits);
    std::vector<int> rules;
    for (std::size_t i = 0; i < rule_count; ++i) {
        if ((bits[i / 64] >> (i % 64)) & 1U) rules.push_back(static_cast<int>(i));
    }
    return rules;
}

TEST(JqRuleIndex, RoutesByValueAndKeepsRulesWhosePathsFail) {
    std::vector<std::optional<jq_native::IndexCondition>> conditions{
        read_rule(R"(select(.eventName == "A"))").condition,
        read_rule(R"(select(.eventName | IN("A", "B")))").condition,
        std::nullopt,  // runs on every event
        read_rule(R"(select(.userIdentity.type == "Root"))").condition,
        read_rule(R"(select(.n == 1))").condition,
    };
    jq_native::RuleIndex index(conditions);
    EXPECT_EQ(index.indexed_rules(), 4U);
    std::vector<std::uint64_t> bits;
    auto routed = [&](std::string_view json) { return routed_rules(index, json, conditions.size()); };
    EXPECT_EQ(routed(R"({"eventName": "A"})"), (std::vector<int>{0, 1, 2}));
    EXPECT_EQ(routed(R"({"eventName": "B", "userIdentity": {"type": "Root"}})"), (std::vector<int>{1, 2, 3}));
    EXPECT_EQ(routed(R"({"eventName": "C", "userIdentity": null})"), (std::vector<int>{2}));
    // .userIdentity.type on a string fails in jq: the rule must run to report it.
    EXPECT_EQ(routed(R"({"userIdentity": "x"})"), (std::vector<int>{2, 3}));
    // 1 and 1.0 are the same number to jq.
    EXPECT_EQ(routed(R"({"n": 1.0})"), (std::vector<int>{2, 4}));
    EXPECT_EQ(routed(R"({"n": "1"})"), (std::vector<int>{2}));
    // An eventName that is not UTF-8 is U+FFFD-replaced by libjq: let the rules decide.
    boost::json::object invalid;
    invalid["eventName"] = boost::json::string("A\xFF");
    index.candidates(invalid, bits);
    EXPECT_EQ(bits[0] & 0x3U, 0x3U);
}

TEST(JqRuleIndex, RoutesNotNullTermsByPresenceAndKeepsRulesWhosePathsFail) {
    std::vector<std::optional<jq_native::IndexCondition>> conditions{
        read_rule(R"(select(.errorCode != null))").condition,
        read_rule(R"(select((.a.b // "") | test("^x")))").condition,
    };
    ASSERT_TRUE(conditions[0] && conditions[1]);
    jq_native::RuleIndex index(conditions);
    auto routed = [&](std::string_view json) { return routed_rules(index, json, conditions.size()); };
    EXPECT_EQ(routed(R"({})"), (std::vector<int>{}));
    EXPECT_EQ(routed(R"({"errorCode": null, "a": {"b": null}})"), (std::vector<int>{}));
    EXPECT_EQ(routed(R"({"errorCode": false})"), (std::vector<int>{0}));
    EXPECT_EQ(routed(R"({"errorCode": "AccessDenied"})"), (std::vector<int>{0}));
    EXPECT_EQ(routed(R"({"a": {"b": "y"}})"), (std::vector<int>{1}));
    EXPECT_EQ(routed(R"({"a": {"b": 0}})"), (std::vector<int>{1}));
    // .a.b on a string fails in jq: the rule must run to report it.
    EXPECT_EQ(routed(R"({"a": "text"})"), (std::vector<int>{1}));
}

// ---------------------------------------------------------------------------
// Native answers against libjq's, rule by rule and event by event.

struct Case {
    std::string program;
    std::string event;
};

void expect_like_libjq(const std::vector<Case>& cases, bool all_native_decided) {
    QuietLogs quiet;
    for (const auto& c : cases) {
        SCOPED_TRACE(c.program + " on " + c.event);
        std::vector<FilterRule> rules{{"r", c.program, SourceLocation{"t.toml", 1, 0}}};
        std::vector<Diagnostic> problems_native;
        std::vector<Diagnostic> problems_reference;
        FilterStage native(rules, problems_native, RuleCompilation::indexed);
        FilterStage reference(rules, problems_reference, RuleCompilation::per_rule);
        ASSERT_TRUE(problems_reference.empty());
        ASSERT_TRUE(problems_native.empty());
        EXPECT_TRUE(native.explain(0).native);
        const auto e = event(c.event);
        const auto got = native.evaluate(e);
        const auto expected = reference.evaluate(e);
        ASSERT_EQ(got.size(), expected.size());
        if (!got.empty()) {
            // Byte for byte: key order and number kinds count, not just JSON equality.
            ASSERT_EQ(got[0].annotation.has_value(), expected[0].annotation.has_value());
            if (got[0].annotation) {
                EXPECT_EQ(boost::json::serialize(*got[0].annotation), boost::json::serialize(*expected[0].annotation));
            }
        }
        EXPECT_EQ(native.runtime_errors(0), reference.runtime_errors(0));
        if (all_native_decided) {
            const auto rule = read_rule(c.program);
            EXPECT_NE(jq_native::decide(rule, e), Verdict::ask_libjq);
        }
    }
}

TEST(JqNativeSemantics, DecidesLikeLibjqWithoutAskingIt) {
    expect_like_libjq(
        {
            {R"(select(.a.b.c == null))", R"({"a": null})"},
            {R"(select(.a.b == null))", R"({})"},
            {R"(select(.a[5] == null))", R"({"a": [1]})"},
            {R"(select(.a[-1] == 3))", R"({"a": [1, 2, 3]})"},
            {R"(select(.a.b? == null))", R"({"a": "s"})"},
            {R"(select(.a.b? != 1))", R"({"a": "s"})"},
            {R"(select(.n == 1))", R"({"n": 1.0})"},
            {R"(select(.n == 1.5))", R"({"n": 1.5})"},
            {R"(select(.n == 100000000000000000000))", R"({"n": 1e20})"},
            {R"(select(.n < "a"))", R"({"n": 99})"},
            {R"(select(.n > null))", R"({"n": false})"},
            {R"(select(.n < true))", R"({"n": false})"},
            {R"(select(.s < "b"))", R"({"s": "ab"})"},
            {R"(select(.s > "é"))", R"({"s": "z"})"},
            {R"(select(.s == "é"))", R"({"s": "\u00e9"})"},
            {R"(select(.l == [1, "a"]))", R"({"l": [1, "a"]})"},
            {R"(select(.l < [1, "b"]))", R"({"l": [1, "a", 3]})"},
            {R"(select(.o == null))", R"({"o": {"x": 1}})"},
            {R"(select(.s | length == 3))", R"({"s": "h\u00e9!"})"},
            {R"(select(.n | length == 2))", R"({"n": -2})"},
            {R"(select(.x | length == 0))", R"({})"},
            {R"(select(.s | test("^[a-z]+$"; "x")))", R"({"s": "abc"})"},
            {R"(select(.s | test("É"; "i")))", R"({"s": "\u00e9"})"},
            {R"(select(.s | test("a.c")))", R"({"s": "a\nc"})"},
            {R"(select(.s | test("a.c"; "s")))", R"({"s": "a\nc"})"},
            // The empty string's answer is worked out once per regex: both answers.
            {R"(select(.e // "" | test("^$")))", R"({})"},
            {R"(select(.e // "" | test("x*")))", R"({"e": ""})"},
            {R"(select(.e // "" | test("^AccessDenied|Unauthorized$")))", R"({})"},
            {R"(select(.e // "" | test("a"; "n")))", R"({})"},
            {R"(select(.e // "" | test(""; "n")))", R"({"e": null})"},
            {R"(select(.x // "d" | startswith("d")))", R"({"x": false})"},
            {R"(select(.s | contains("b")))", R"({"s": "abc"})"},
            {R"(select(.l | contains(["a"])))", R"({"l": ["abc", 1]})"},
            {R"(select(.o | contains({"a": "b"})))", R"({"o": {"a": "xbx", "c": 1}})"},
            {R"(select(.n | tostring == "12"))", R"({"n": 12.0})"},
            {R"(select(.n | tostring == "null"))", R"({})"},
            {R"(select(.s | ascii_downcase == "abc"))", R"({"s": "AbC"})"},
            {R"(select(has("a") and (.a | type) == "null"))", R"({"a": null})"},
            {R"(select(.a | not))", R"({"a": false})"},
            {R"(select(.a and .b))", R"({"a": true, "b": 0})"},
            {R"(select(.a or .b))", R"({"a": null, "b": null})"},
            {R"(.a == 1)", R"({"a": 1})"},
            {R"(.a == 1)", R"({"a": 2})"},
            {R"(select(.a | IN(1, "1")))", R"({"a": 1.0})"},
            {R"(select(IN(.a; "x", "y")))", R"({"a": "y"})"},
            {R"(if .a == 1 then . else empty end)", R"({"a": 1})"},
            {R"(select(.a == 1) | select(.b == 2))", R"({"a": 1, "b": 2})"},
            {R"(select(.x | empty))", R"({})"},
            {"def big: .n > 10; select(big)", R"({"n": 11})"},
            // Scalar annotations are computed natively, as libjq converts them.
            {R"(select(.a == 1) | .b)", R"({"a": 1, "b": "note"})"},
            {R"(select(.a == 1) | .n)", R"({"a": 1, "n": 2.0})"},
            {R"(select(.a == 1) | .n)", R"({"a": 1, "n": 2.5})"},
            {R"(select(.a == 1) | .b)", R"({"a": 1, "b": null})"},
            {R"(select(.a == 1) | .)", R"({"a": 1})"},
            {R"(select(.a == 1) | "fixed")", R"({"a": 1})"},
            {R"(.s)", R"({"s": "hé"})"},
            {R"(if .a == 1 then .b else empty end)", R"({"a": 1, "b": 7})"},
            // Objects, arrays and strings built natively, as libjq's path returns them.
            {R"(select(.a == 1) | .o)", R"({"a": 1, "o": {"z": 1.0, "b": [2.5, {"y": 1e3}], "a": null}})"},
            {R"(.a)", R"({"a": ["value", 10000000000000000000, -0.0, 9007199254740993]})"},
            {R"(select(.a == 1) | {z: .b, a: .n, m: {q: .a, "with space": "lit"}, l: [1, 2.0]})",
             R"({"a": 1, "b": "x", "n": 3.0})"},
            {R"(select(.a == 1) | {b, missing, e: (.b // .n // "none")})", R"({"a": 1, "b": false, "n": 4, "z": 0})"},
            {R"(select(.a == 1) | {e: .x | ascii_downcase | startswith("q")})", R"({"a": 1, "x": "Q"})"},
            {R"(select(.a == 1) | {e: .b, f: empty})", R"({"a": 1, "b": 2})"},
            {R"(select(.a == 1) | {e: .})", R"({"a": 1, "b": {"c": [true]}})"},
            {"select(.a == 1) | \"\\(.s) \\(.n) \\(.m) \\(.t) \\(.z) [\\(.s | ascii_upcase)]\"",
             R"({"a": 1, "s": "h\u00e9", "n": 12.0, "m": -7, "t": true, "z": null})"},
            {"select(.a == 1) | \"x\\(\"in\\(.a)ner\")y\\(.a // \"d\")\"", R"({"a": 1})"},
            {"select(.a == 1) | \"\\(.b)\\(empty)\"", R"({"a": 1, "b": "x"})"},
            {R"(select(.a == 1) | .s | split("/"))", R"({"a": 1, "s": "a//b/"})"},
            {R"(select(.a == 1) | .s | split("/") | last)", R"({"a": 1, "s": "role/i-0abc"})"},
            {R"(select(.a == 1) | .s | split("::") | last)", R"({"a": 1, "s": ""})"},
            {R"(select(.a == 1) | .s | split("/") | .[0])", R"({"a": 1, "s": "/x"})"},
            {R"(select(.a == 1) | {i: (.s | split("/") | last), n: .n})", R"({"a": 1, "s": "x/y", "n": 1e2})"},
            {R"(select(.n | tostring == "-0"))", R"({"n": 0})"},
        },
        true);
}

TEST(JqNativeSemantics, HandsErrorsAndAnnotationsToLibjq) {
    // Errors (jq's message and count), annotations and values it does not model
    // go to libjq, whose answer is then the rule's.
    expect_like_libjq(
        {
            {R"(select(.a.b == 1))", R"({"a": "s"})"},
            {R"(select(.a[0] == 1))", R"({"a": {"b": 1}})"},
            {R"(select(.a | test("x")))", R"({"a": 1})"},
            {R"(select(.a | startswith("x")))", R"({"a": null})"},
            {R"(select(.a | ascii_downcase == "x"))", R"({"a": true})"},
            {R"(select(.a | length > 1))", R"({"a": true})"},
            {R"(select(.a | contains("x")))", R"({"a": ["x"]})"},
            {R"(select(.n | tostring == "1.5"))", R"({"n": 1.5})"},
            {R"(select(.n | tostring == "-0"))", R"({"n": -0.0})"},
            // An object as large as the event may be the event: no annotation then.
            {R"(select(.a == 1) | {a: .a})", R"({"a": 1})"},
            {R"(select(.a == 1) | {b: .a})", R"({"a": 1})"},
            {"select(.a == 1) | \"\\(.o)\"", R"({"a": 1, "o": {"k": 1}})"},
            {"select(.a == 1) | \"\\(.n)\"", R"({"a": 1, "n": 1.5})"},
            {"select(.a == 1) | \"\\(.n)\"", R"({"a": 1, "n": -0.0})"},
            {"select(.a == 1) | \"\\(.s | test(1))\"", R"({"a": 1, "s": "x"})"},
            {R"(select(.a == 1) | {e: .s | split("/")})", R"({"a": 1, "s": 3})"},
            {R"(select(.a == 1) | .s | last)", R"({"a": 1, "s": "str"})"},
            {R"(select(.o < .p))", R"({"o": {"b": 1}, "p": {"a": 2}})"},
            {R"(select(.x.y // "d" | startswith("d")))", R"({"x": "s"})"},
            {R"(select(.x.y? // "d" | startswith("d")))", R"({"x": "s"})"},
            {R"((.a // "x") | ascii_downcase)", R"({"a": 5})"},
        },
        false);
}

// Rules of the kinds tattle ships (bindings, generators, any/2, collect, unique,
// join, fromjson?) decided natively, as libjq 1.6 decides them: first outputs,
// errors that never happen because the first output or any/2's break comes
// first, and the 1.6 try that also catches errors raised after its output.
TEST(JqNativeSemantics, BindingsAndGeneratorsLikeLibjq) {
    const std::string access_key =
        R"(select(.a == 1) | . as $e | ($e.k.u // $e.p.u // "") as $u | )"
        R"(select($u != "" and (($e.arn // "") | endswith("/" + $u) | not)) | {target: $u, actor: $e.arn})";
    const std::string trust =
        R"(select(.a == 1) | . as $e | ($e.self // "") as $self | )"
        R"([ ($e.doc // $e.doc2 // "" | fromjson? // {}) | .Statement | if type == "array" then .[] else . end )"
        R"(| objects | .Principal | objects | .AWS | if type == "array" then .[] else . end | strings )"
        R"(| select(test("^arn:aws:iam::[0-9]{12}:|^[0-9]{12}$") and (contains($self) | not)) ] )"
        R"jq(| unique | select(length > 0) | "trusts \(join(", "))")jq";
    const std::string admin =
        R"(select(.a == 1) | ((.doc // "") | fromjson? // {}) as $doc )"
        R"(| select(any($doc.Statement | if type == "array" then .[] else . end | objects | select(.Effect == "Allow") )"
        R"jq(| .Action | if type == "array" then .[] else . end; . == "*" or . == "*:*")) | "admin \(.n // "")")jq";
    const std::string selectors =
        R"jq(select(.a == 1 and any(.s[]?; .m == false or (.r // "All") != "All")) | "trail \(.t)")jq";
    const std::string lifecycle =
        R"(select(any(.r | if type == "array" then .[] else . end | objects; (.e.d? // 9999) <= 7)))";
    const std::string send = R"jq(select(.a == 1) | "\(.d // "?") on \((.ids // []) | join(","))")jq";
    expect_like_libjq(
        {
            {access_key, R"({"a": 1, "k": {"u": "bob"}, "arn": "arn:aws:iam::1:user/alice"})"},
            {access_key, R"({"a": 1, "p": {"u": "bob"}, "arn": "arn:aws:iam::1:user/bob"})"},
            {access_key, R"({"a": 1, "arn": "arn:aws:iam::1:user/bob"})"},
            {access_key, R"({"a": 1, "k": {"u": "bob"}, "x": 0})"},
            {trust, R"({"a": 1, "self": "111111111111", "doc": "{\"Statement\": [{\"Principal\": {\"AWS\": )"
                    R"([\"arn:aws:iam::222222222222:root\", \"111111111111\", \"333333333333\", )"
                    R"(\"arn:aws:iam::222222222222:root\", 7]}}, \"x\", {\"Principal\": \"*\"}]}"})"},
            {trust, R"({"a": 1, "self": "1", "doc2": "{\"Statement\": {\"Principal\": {\"AWS\": \"999999999999\"}}}"})"},
            {trust, R"({"a": 1, "doc": "%7B%22Statement%22%3A%5B%5D%7D"})"},
            {trust, R"({"a": 1, "doc": "5"})"},  // .Statement fails: the try of fromjson? catches it
            {trust, R"({"a": 1, "doc": {"Statement": []}})"},
            {trust, R"({"a": 1})"},
            {admin, R"({"a": 1, "n": "p", "doc": "{\"Statement\": [{\"Effect\": \"Allow\", \"Action\": [\"s3:Get\", \"*\"]}]}"})"},
            {admin, R"({"a": 1, "doc": "{\"Statement\": {\"Effect\": \"Allow\", \"Action\": \"*:*\"}}"})"},
            {admin, R"({"a": 1, "doc": "{\"Statement\": [{\"Effect\": \"Deny\", \"Action\": \"*\"}]}"})"},
            {admin, R"({"a": 1, "doc": "[1, 2]"})"},  // $doc.Statement fails, caught by fromjson?'s try
            {admin, R"({"a": 1, "doc": " \t"})"},
            {selectors, R"({"a": 1, "t": "x", "s": [{"m": true, "r": "All"}, {"m": false}]})"},
            {selectors, R"({"a": 1, "t": "x", "s": [{"m": true, "r": "All"}]})"},
            {selectors, R"({"a": 1, "t": "x", "s": "not a list"})"},
            {selectors, R"({"a": 1, "t": "x", "s": [{"r": "ReadOnly"}, 5]})"},  // breaks before 5
            {lifecycle, R"({"r": [{"e": {"d": 3}}]})"},
            {lifecycle, R"({"r": {"e": {"d": 30}}})"},
            {lifecycle, R"({"r": [1, "x", {"e": "s"}]})"},
            {send, R"({"a": 1, "d": "AWS-RunShellScript", "ids": ["i-1", "i-2"]})"},
            {send, R"({"a": 1, "ids": [1, null, true, false, "x"]})"},
            {send, R"({"a": 1, "ids": []})"},
            {send, R"({"a": 1})"},
            {R"(select(.a == 1) | .names[]?)", R"({"a": 1, "names": ["p1", "p2"]})"},
            {R"(select(.a == 1) | .names[]?)", R"({"a": 1, "names": []})"},
            {R"(select(.a == 1) | .names[]?)", R"({"a": 1, "names": "s"})"},
            {R"(select(.a == 1) | .names[]?)", R"({"a": 1})"},
            {R"(select(.a == 1) | [.l[]] | unique)", R"({"a": 1, "l": [3, "b", 1, "a", null, true, false, [1], 3, 1.0]})"},
            {R"(select(.a == 1) | .l | unique)", R"({"a": 1, "l": [-0.0, 0]})"},
            {R"(.a, .b.c)", R"({"a": "x", "b": "s"})"},  // the error after the first output never happens
            {R"((.l[] | select(. != 1)) // "none")", R"({"l": [1, false, 2]})"},
            {R"((.l[] | select(. != 1)) // "none")", R"({"l": [1, false]})"},
            {R"((.l[] | .x) // "n")", R"({"l": [{"x": null}, {"x": 5}, "s"]})"},
            {R"(select(.a == 1) | (.l | fromjson?) | .x)", R"({"a": 1, "l": "5"})"},
            {R"((.s | fromjson?), "after")", R"({"s": "%7B"})"},
            {R"((.s | fromjson?), "after")", R"({"s": "{\"k\": [1, {\"n\": null}]}", "x": 0})"},
            {R"(.a as $x | .b as $y | $x + $y)", R"({"a": 1, "b": 2.5})"},
            {R"(.a as $x | .b as $y | $x + $y)", R"({"a": "x", "b": "y"})"},
            {R"(.a as $x | .b as $y | $x + $y)", R"({"a": [1], "b": ["y"]})"},
            {R"(.a as $x | .b as $y | $x + $y)", R"({"b": "y"})"},
            {R"(. as $e | $e)", R"({"a": 1})"},
            {R"(. as $e | select(any(.l[]; . == $e.want)))", R"({"l": [1, 2], "want": 2})"},
            {R"(. as $e | .l[] | select(. > $e.min))", R"({"l": [1, 5, 9], "min": 4})"},
            // What follows a binding's body is outside its scope, though it runs inside it.
            {R"(. as $a | (.l[] as $b | $b) | $a.n)", R"({"l": [5], "n": "outer"})"},
            {R"(. as $a | select(any(.l[] as $b | $b; . == $a.n)) | $a.n)", R"({"l": [1, 2], "n": 2})"},
            {R"(. as $x | (.l[] as $x | $x) as $y | [$x.n, $y])", R"({"l": [7], "n": "x"})"},
            {"def inner: . as $v | $v.l; . as $o | inner | [.[0], $o.n]", R"({"l": [3], "n": "o"})"},
            {R"(if .l[] then "t" else "f" end)", R"({"l": [false, 1]})"},
            {R"(.l[] and .b)", R"({"l": [1, null], "b": true})"},
            {R"(.l[] or .b[])", R"({"l": [null], "b": [0, false]})"},
            {R"(select(any(.l[] | .x; .)))", R"({"l": [{"x": true}, {"x": false}, "s"]})"},
            {R"(select(any(.l[]; .x)))", R"({"l": [{"x": null}]})"},
            {R"(.l[]? | strings)", R"({"l": [1, "two"]})"},
            {R"(.l | .[0]?, .x?)", R"({"l": "s"})"},
            {R"([.l[] | numbers] | length)", R"({"l": [1, "x", 2]})"},
            {R"(select(.a == 1) | [.l[] | {n: .}])", R"({"a": 1, "l": ["x", 2]})"},
            {R"(.s | fromjson | .k)", R"({"s": "{\"k\": \"v\", \"n\": 12345678901234567890}"})"},
        },
        true);
    expect_like_libjq(
        {
            // Errors (in jq 1.6's order) and what the evaluator does not model go to libjq.
            {send, R"({"a": 1, "ids": [[1]]})"},
            {send, R"({"a": 1, "ids": "i-1"})"},
            {send, R"({"a": 1, "ids": [1.5]})"},
            {selectors, R"({"a": 1, "t": "x", "s": [5, {"m": false}]})"},
            {R"(select(any(.l[] | .x; .)))", R"({"l": [{"x": true}, "s"]})"},  // 1.6 pulls one more
            {R"(.l[] | .x)", R"({"l": ["s", {"x": 1}]})"},
            {R"((.l[] | .x) // "n")", R"({"l": [{"x": null}, "s", {"x": 5}]})"},
            {R"(.a as $x | .b as $y | $x + $y)", R"({"a": "x", "b": 1})"},
            {R"(.a as $x | .b as $y | $x + $y)", R"({"a": {"x": 1}, "b": {"y": 1}})"},
            {R"(select(.a == 1) | .o[])", R"({"a": 1, "o": {"x": 1}})"},
            {R"(select(.a == 1) | .l | unique)", R"({"a": 1, "l": [{"b": 1}, {"a": 2}]})"},
            {R"(.s | fromjson)", R"({"s": "{\"a\": 1, \"a\": 2}"})"},
            {R"(.s | fromjson)", R"({"s": "[1.5]"})"},
            {R"(.s | fromjson)", R"({"s": "nan"})"},
            {R"(.s | fromjson)", R"({"s": "[-0]"})"},
            {R"(.s | fromjson)", R"({"s": "\"\\ud83d\\ude00\""})"},
            {R"(.s | fromjson)", R"({"s": 1})"},
            {R"(.s | fromjson)", R"({"s": "1 2"})"},
            {trust, R"({"a": 1, "doc": "{\"Statement\": {\"Principal\": {\"AWS\": \"123456789012\"}}, \"v\": 1.5}"})"},
            {admin, R"({"a": 1, "doc": "not json"})"},  // jq fails; which texts fail exactly is libjq's
        },
        false);
}

// libjq takes a rule's first output with `first(rule)`; in jq 1.6 a try still
// open in the rule catches first's break, the rule runs on, and a later error
// makes the rule fail where one jq_next would have matched. The evaluator
// leaves those events to libjq and decides the others.
TEST(JqNativeSemantics, FirstOutputUnderAnOpenTryIsTheAnswerWhateverFailsAfterIt) {
    const std::string program = R"(((.s // "1") | fromjson?), .n.y)";
    const auto rule = read_rule(program);
    ASSERT_TRUE(rule.native) << rule.not_native_reason;
    EXPECT_EQ(jq_native::decide(rule, event(R"({"n": "x"})")), Verdict::match);
    expect_like_libjq({{program, R"({"n": {"y": 2}})"},
                       {program, R"({"s": "[2]", "n": null})"},
                       {program, R"({"n": "x"})"}},
                      true);

    // libjq's answer is its first output whichever way the rules are compiled: in a
    // combined program jq 1.6 would let the `?` catch first()'s break and then fail
    // on .n.y, so such a rule runs in a program of its own.
    QuietLogs quiet;
    std::vector<FilterRule> rules{{"r", program, SourceLocation{"t.toml", 1, 0}},
                                  {"same without try", R"((.s // "1" | fromjson), .n.y)", SourceLocation{"t.toml", 2, 0}}};
    std::vector<Diagnostic> problems;
    FilterStage indexed(rules, problems, RuleCompilation::indexed);
    FilterStage combined(rules, problems, RuleCompilation::combined);
    FilterStage per_rule(rules, problems, RuleCompilation::per_rule);
    ASSERT_TRUE(problems.empty());
    const auto failing = event(R"({"n": "x"})");
    for (FilterStage* stage : {&indexed, &combined, &per_rule}) {
        const auto matches = stage->evaluate(failing);
        ASSERT_EQ(matches.size(), 2U);
        for (const auto& match : matches) {
            ASSERT_TRUE(match.annotation);
            EXPECT_EQ(boost::json::serialize(*match.annotation), "1");
        }
        EXPECT_EQ(stage->runtime_errors(0), 0U);
        EXPECT_EQ(stage->runtime_errors(1), 0U);
    }
}

TEST(JqNativeSemantics, StringsThatAreNotUtf8GoToLibjq) {
    boost::json::object invalid;
    invalid["s"] = boost::json::string("caf\xE9");
    for (const char* program : {R"(select(.s == "caf"))", R"(select(.s | test("caf")))",
                                R"(select(.s | length == 4))", R"(select(.s < "d"))"}) {
        EXPECT_EQ(jq_native::decide(read_rule(program), invalid), Verdict::ask_libjq) << program;
    }
}

TEST(JqNativeSemantics, ABadByteAnywhereInAStringGoesToLibjq) {
    // The ASCII test reads strings a word at a time, the last word overlapping the one
    // before it: a byte that is not ASCII must be seen at every length and position.
    const auto rule = read_rule(R"(select(.s == "x"))");
    for (std::size_t length = 1; length <= 20; ++length) {
        boost::json::object ascii;
        ascii["s"] = boost::json::string(std::string(length, 'a'));
        EXPECT_EQ(jq_native::decide(rule, ascii), Verdict::no_match) << length;
        for (std::size_t position = 0; position < length; ++position) {
            std::string text(length, 'a');
            text[position] = '\xE9';
            boost::json::object invalid;
            invalid["s"] = boost::json::string(text);
            EXPECT_EQ(jq_native::decide(rule, invalid), Verdict::ask_libjq) << length << " " << position;
        }
    }
}

TEST(JqNativeSemantics, FindsMembersByNamesThatDifferInOneByte) {
    // Members are found by comparing keys a word at a time, the last word overlapping
    // the one before it, and in objects of more than 32 members through Boost.JSON's
    // table: names that differ from the one asked for in their first, middle or last
    // byte, at every size, at the top level and below it, in small and large objects,
    // by the evaluator and by the rule index.
    for (std::size_t length = 1; length <= 20; ++length) {
        const std::string name(length, 'k');
        const auto top = read_rule("select(." + name + " == 1)");
        const auto nested = read_rule("select(.o." + name + " == 1)");
        ASSERT_TRUE(top.native && top.condition && nested.native && nested.condition);
        jq_native::RuleIndex index({top.condition, nested.condition});
        std::vector<std::uint64_t> bits;
        for (std::size_t padding : {std::size_t{0}, std::size_t{20}, std::size_t{40}}) {
            boost::json::object object;
            for (std::size_t position : {std::size_t{0}, length / 2, length - 1}) {
                std::string other = name;
                other[position] = 'j';
                object[other] = 1;
            }
            for (std::size_t i = 0; i < padding; ++i) object["pad" + std::to_string(i)] = 1;
            for (bool present : {false, true}) {
                SCOPED_TRACE(std::to_string(length) + " " + std::to_string(padding) + (present ? " present" : ""));
                if (present) object[name] = 1;
                boost::json::object outer;
                outer["o"] = object;
                const Verdict expected = present ? Verdict::match : Verdict::no_match;
                EXPECT_EQ(jq_native::decide(top, object), expected);
                EXPECT_EQ(jq_native::decide(nested, outer), expected);
                index.candidates(object, bits);
                EXPECT_EQ(bits[0] & 1U, present ? 1U : 0U);
                index.candidates(outer, bits);
                EXPECT_EQ((bits[0] >> 1) & 1U, present ? 1U : 0U);
            }
        }
    }
}

TEST(JqNativeSemantics, ExplainSaysWhatWasLearned) {
    std::vector<FilterRule> rules{
        {"a", R"(select(.eventSource == "iam.amazonaws.com" and .eventName == "CreateAccessKey"))", {}},
        {"b", R"(select(.resources - 1))", {}},
        {"c", "select(.eventName == \"X\") | .requestParameters.names | ltrimstr(\"x\")", {}},
        {"d", "select(.eventName == \"X\") | .requestParameters.names[]?", {}}};
    std::vector<Diagnostic> problems;
    FilterStage stage(rules, problems, RuleCompilation::indexed);
    EXPECT_TRUE(stage.explain(0).native);
    EXPECT_EQ(stage.explain(0).evaluation, "native");
    EXPECT_EQ(stage.explain(0).index, "eventName = CreateAccessKey");
    EXPECT_FALSE(stage.explain(1).native);
    EXPECT_EQ(stage.explain(1).evaluation, "libjq: arithmetic '-' at line 1, column 19");
    EXPECT_FALSE(stage.explain(1).indexed);
    EXPECT_THAT(stage.explain(1).index, HasSubstr("every event"));
    EXPECT_THAT(stage.explain(2).evaluation, HasSubstr("libjq computes the annotation"));
    EXPECT_EQ(stage.explain(3).evaluation, "native");
}

}  // namespace
}  // namespace tattle
