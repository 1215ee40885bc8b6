#include "tattle/json_schema.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace tattle {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// Violations of instance against schema as "pointer: message".
std::vector<std::string> violations_of(const std::string& schema_text,
                                       const std::string& instance_text) {
    const boost::json::value schema = boost::json::parse(schema_text);
    check_schema(schema);  // every schema used here must be one plugins may ship
    boost::json::value instance = boost::json::parse(instance_text);
    std::vector<std::string> lines;
    for (const auto& violation : validate_and_fill_defaults(schema, instance)) {
        lines.push_back(violation.pointer + ": " + violation.message);
    }
    return lines;
}

// The instance after validation, with defaults filled in.
boost::json::value filled(const std::string& schema_text, const std::string& instance_text) {
    boost::json::value instance = boost::json::parse(instance_text);
    const auto violations = validate_and_fill_defaults(boost::json::parse(schema_text), instance);
    EXPECT_THAT(violations, IsEmpty());
    return instance;
}

std::string check_schema_error(const std::string& schema_text) {
    try {
        check_schema(boost::json::parse(schema_text));
    } catch (const std::invalid_argument& error) {
        return error.what();
    }
    return "accepted";
}

struct TypeCase {
    const char* type;
    const char* fitting;
    const char* unfitting;
    const char* message;
};

TEST(JsonSchemaTest, TypeAcceptsItsKindAndRefusesOthers) {
    const std::vector<TypeCase> cases = {
        {"object", R"({"a": 1})", "[1]", "\"v\" must be an object"},
        {"array", "[1, 2]", R"({"a": 1})", "\"v\" must be an array"},
        {"string", R"("text")", "1", "\"v\" must be a string"},
        {"integer", "-7", "1.5", "\"v\" must be an integer"},
        {"number", "1.5", R"("1.5")", "\"v\" must be a number"},
        {"boolean", "false", "0", "\"v\" must be a boolean"},
        {"null", "null", "false", "\"v\" must be null"},
    };
    for (const auto& type_case : cases) {
        SCOPED_TRACE(type_case.type);
        const std::string schema =
            std::string(R"({"properties": {"v": {"type": ")") + type_case.type + R"("}}})";
        EXPECT_THAT(violations_of(schema, std::string(R"({"v": )") + type_case.fitting + "}"),
                    IsEmpty());
        EXPECT_THAT(violations_of(schema, std::string(R"({"v": )") + type_case.unfitting + "}"),
                    ElementsAre(std::string("/v: ") + type_case.message));
    }
}

TEST(JsonSchemaTest, IntegerIsANumberWithoutFractionalPart) {
    const std::string schema = R"({"type": "integer"})";
    EXPECT_THAT(violations_of(schema, "3"), IsEmpty());
    EXPECT_THAT(violations_of(schema, "18446744073709551615"), IsEmpty());
    EXPECT_THAT(violations_of(schema, "3.0"), IsEmpty());
    EXPECT_THAT(violations_of(schema, "3.25"), ElementsAre(": the config must be an integer"));
    // A whole float is handed to the plugin as an integer.
    EXPECT_TRUE(filled(schema, "3.0").is_int64());
    EXPECT_TRUE(filled(R"({"type": "number"})", "3.0").is_double());
}

TEST(JsonSchemaTest, TypeListAcceptsAnyOfItsTypes) {
    const std::string schema = R"({"properties": {"to": {"type": ["string", "array"]}}})";
    EXPECT_THAT(violations_of(schema, R"({"to": "a@example.com"})"), IsEmpty());
    EXPECT_THAT(violations_of(schema, R"({"to": ["a@example.com"]})"), IsEmpty());
    EXPECT_THAT(violations_of(schema, R"({"to": 5})"),
                ElementsAre("/to: \"to\" must be a string or an array"));
}

TEST(JsonSchemaTest, RequiredKeysMustBePresent) {
    const std::string schema = R"({"type": "object", "required": ["path", "mode"],
                                   "properties": {"inner": {"type": "object", "required": ["x"]}}})";
    EXPECT_THAT(violations_of(schema, R"({"path": "/tmp", "mode": "a"})"), IsEmpty());
    EXPECT_THAT(
        violations_of(schema, R"({"mode": "a", "inner": {}})"),
        ElementsAre("/inner: missing required key \"inner.x\"", ": missing required key \"path\""));
}

TEST(JsonSchemaTest, UnknownKeyGetsADidYouMeanHint) {
    const std::string schema = R"({"type": "object", "additionalProperties": false,
                                   "properties": {"webhook_url": {"type": "string"}, "channel": {"type": "string"}}})";
    EXPECT_THAT(violations_of(schema, R"({"webhook_url": "x", "channel": "y"})"), IsEmpty());
    EXPECT_THAT(
        violations_of(schema, R"({"webhok_url": "x", "zzz": 1})"),
        ElementsAre("/webhok_url: unknown key \"webhok_url\" (did you mean \"webhook_url\"?)",
                    "/zzz: unknown key \"zzz\""));
}

TEST(JsonSchemaTest, UnknownKeyInANestedObjectNamesItsParent) {
    const std::string schema =
        R"({"properties": {"retry": {"type": "object", "additionalProperties": false,
                                   "properties": {"attempts": {"type": "integer"}}}}})";
    EXPECT_THAT(
        violations_of(schema, R"({"retry": {"attempt": 3}})"),
        ElementsAre(
            "/retry/attempt: unknown key \"attempt\" in \"retry\" (did you mean \"attempts\"?)"));
}

TEST(JsonSchemaTest, AdditionalPropertiesMayBeASchema) {
    const std::string schema = R"({"properties": {"headers": {"type": "object",
                                   "additionalProperties": {"type": "string"}}}})";
    EXPECT_THAT(violations_of(schema, R"({"headers": {"X-A": "1"}})"), IsEmpty());
    EXPECT_THAT(violations_of(schema, R"({"headers": {"X-A": 1, "a/b": true}})"),
                ElementsAre("/headers/X-A: \"headers.X-A\" must be a string",
                            "/headers/a~1b: \"headers.a/b\" must be a string"));
}

TEST(JsonSchemaTest, ItemsAppliesToEveryElement) {
    const std::string schema =
        R"({"properties": {"to_emails": {"type": "array", "items": {"type": "string"}}}})";
    EXPECT_THAT(violations_of(schema, R"({"to_emails": ["a", "b"]})"), IsEmpty());
    EXPECT_THAT(violations_of(schema, R"({"to_emails": "a"})"),
                ElementsAre("/to_emails: \"to_emails\" must be an array"));
    EXPECT_THAT(violations_of(schema, R"({"to_emails": ["a", 2, null]})"),
                ElementsAre("/to_emails/1: \"to_emails[1]\" must be a string",
                            "/to_emails/2: \"to_emails[2]\" must be a string"));
}

TEST(JsonSchemaTest, EnumListsTheAllowedValues) {
    const std::string schema = R"({"properties": {"format": {"enum": ["json", "text"]},
                                                  "level": {"enum": [1, 2.5, null]}}})";
    EXPECT_THAT(violations_of(schema, R"({"format": "text", "level": 1.0})"), IsEmpty());
    EXPECT_THAT(violations_of(schema, R"({"format": "xml", "level": 2})"),
                ElementsAre("/format: \"format\" must be one of \"json\", \"text\" (got \"xml\")",
                            "/level: \"level\" must be one of 1, 2.5, null (got 2)"));
}

TEST(JsonSchemaTest, ConstRequiresThatExactValue) {
    const std::string schema =
        R"({"properties": {"version": {"const": 1}, "shape": {"const": {"a": [1]}}}})";
    EXPECT_THAT(violations_of(schema, R"({"version": 1, "shape": {"a": [1]}})"), IsEmpty());
    EXPECT_THAT(violations_of(schema, R"({"version": 2, "shape": {"a": [2]}})"),
                ElementsAre("/version: \"version\" must be 1 (got 2)",
                            "/shape: \"shape\" must be {\"a\": [1]} (got {\"a\": [2]})"));
}

TEST(JsonSchemaTest, NumericBounds) {
    const std::string schema = R"({"properties": {
        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
        "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}}})";
    EXPECT_THAT(violations_of(schema, R"({"port": 1, "ratio": 0.5})"), IsEmpty());
    EXPECT_THAT(violations_of(schema, R"({"port": 65535, "ratio": 0.999})"), IsEmpty());
    EXPECT_THAT(violations_of(schema, R"({"port": 0, "ratio": 0})"),
                ElementsAre("/port: \"port\" must be at least 1 (got 0)",
                            "/ratio: \"ratio\" must be greater than 0 (got 0)"));
    EXPECT_THAT(violations_of(schema, R"({"port": 70000, "ratio": 1.0})"),
                ElementsAre("/port: \"port\" must be at most 65535 (got 70000)",
                            "/ratio: \"ratio\" must be less than 1 (got 1)"));
}

TEST(JsonSchemaTest, StringLengthCountsCharactersNotBytes) {
    const std::string schema =
        R"({"properties": {"name": {"type": "string", "minLength": 2, "maxLength": 3},
                                                  "id": {"type": "string", "minLength": 1}}})";
    EXPECT_THAT(violations_of(schema, R"({"name": "été", "id": "x"})"),
                IsEmpty());  // 3 characters, 5 bytes
    EXPECT_THAT(violations_of(schema, R"({"name": "a", "id": ""})"),
                ElementsAre("/name: \"name\" must be at least 2 characters long",
                            "/id: \"id\" must not be empty"));
    EXPECT_THAT(violations_of(schema, R"({"name": "abcd"})"),
                ElementsAre("/name: \"name\" must be at most 3 characters long"));
}

TEST(JsonSchemaTest, ArraySizeBounds) {
    const std::string schema =
        R"({"properties": {"to": {"type": "array", "minItems": 1, "maxItems": 2},
                                                  "cc": {"type": "array", "minItems": 2}}})";
    EXPECT_THAT(violations_of(schema, R"({"to": ["a"], "cc": ["b", "c"]})"), IsEmpty());
    EXPECT_THAT(
        violations_of(schema, R"({"to": [], "cc": ["b"]})"),
        ElementsAre("/to: \"to\" must not be empty", "/cc: \"cc\" must have at least 2 items"));
    EXPECT_THAT(violations_of(schema, R"({"to": [1, 2, 3]})"),
                ElementsAre("/to: \"to\" must have at most 2 items"));
}

TEST(JsonSchemaTest, UniqueItems) {
    const std::string schema = R"({"properties": {"ids": {"type": "array", "uniqueItems": true}}})";
    EXPECT_THAT(violations_of(schema, R"({"ids": [1, 2, "1"]})"), IsEmpty());
    EXPECT_THAT(violations_of(schema, R"({"ids": [1, 2, 1.0]})"),
                ElementsAre("/ids/2: \"ids[2]\" repeats \"ids[0]\""));
}

TEST(JsonSchemaTest, PatternSearchesAnywhereUnlessAnchored) {
    const std::string schema =
        R"({"properties": {"region": {"type": "string", "pattern": "^[a-z]+-[a-z]+-[0-9]$"},
                                                  "arn": {"type": "string", "pattern": "sns"}}})";
    EXPECT_THAT(
        violations_of(schema, R"({"region": "us-east-1", "arn": "arn:aws:sns:us-east-1:1:t"})"),
        IsEmpty());
    EXPECT_THAT(
        violations_of(schema, R"({"region": "us-east-1x", "arn": "arn:aws:sqs:x"})"),
        ElementsAre("/region: \"region\" must match the pattern \"^[a-z]+-[a-z]+-[0-9]$\" (got "
                    "\"us-east-1x\")",
                    "/arn: \"arn\" must match the pattern \"sns\" (got \"arn:aws:sqs:x\")"));
}

TEST(JsonSchemaTest, LongValuesAreShortenedInMessages) {
    const std::string schema = R"({"properties": {"v": {"enum": ["a"]}}})";
    const std::string long_value(500, 'x');
    const auto lines = violations_of(schema, R"({"v": ")" + long_value + R"("})");
    ASSERT_EQ(lines.size(), 1U);
    EXPECT_THAT(lines[0], Not(HasSubstr(long_value)));
    EXPECT_THAT(lines[0], HasSubstr("...)"));
}

TEST(JsonSchemaTest, AnyOfAcceptsAnyFittingAlternative) {
    const std::string schema = R"({"properties": {"to": {"anyOf": [
        {"type": "string", "minLength": 3},
        {"type": "array", "items": {"type": "string"}}]}}})";
    EXPECT_THAT(violations_of(schema, R"({"to": "abc"})"), IsEmpty());
    EXPECT_THAT(violations_of(schema, R"({"to": ["abc"]})"), IsEmpty());
    // No alternative has that type: say which types would do.
    EXPECT_THAT(violations_of(schema, R"({"to": 5})"),
                ElementsAre("/to: \"to\" must be a string or an array"));
    // One alternative has the type: its complaint is the useful one.
    EXPECT_THAT(violations_of(schema, R"({"to": "ab"})"),
                ElementsAre("/to: \"to\" must be at least 3 characters long"));
    EXPECT_THAT(violations_of(schema, R"({"to": [1]})"),
                ElementsAre("/to/0: \"to[0]\" must be a string"));
}

TEST(JsonSchemaTest, AnyOfWithSeveralFittingTypesListsEachReason) {
    const std::string schema =
        R"({"anyOf": [{"type": "string", "pattern": "^a"}, {"type": "string", "pattern": "^b"}]})";
    EXPECT_THAT(
        violations_of(schema, R"("cat")"),
        ElementsAre(": the config matches none of the allowed forms: the config must match the "
                    "pattern \"^a\" "
                    "(got \"cat\"); or the config must match the pattern \"^b\" (got \"cat\")"));
}

TEST(JsonSchemaTest, OneOfNeedsExactlyOneFittingAlternative) {
    const std::string schema =
        R"({"oneOf": [{"type": "integer"}, {"type": "number", "maximum": 10}]})";
    EXPECT_THAT(violations_of(schema, "2.5"), IsEmpty());
    EXPECT_THAT(violations_of(schema, "100"), IsEmpty());
    EXPECT_THAT(violations_of(schema, "5"),
                ElementsAre(": the config matches more than one of the allowed forms (1 and 2); it "
                            "must match exactly one"));
    EXPECT_THAT(violations_of(schema, "10.5"),
                ElementsAre(": the config must be at most 10 (got 10.5)"));
    EXPECT_THAT(violations_of(schema, R"("x")"),
                ElementsAre(": the config must be an integer or a number"));
}

TEST(JsonSchemaTest, AllOfAndNot) {
    const std::string schema =
        R"({"allOf": [{"type": "string"}, {"maxLength": 2}], "not": {"const": "no"}})";
    EXPECT_THAT(violations_of(schema, R"("ok")"), IsEmpty());
    EXPECT_THAT(violations_of(schema, R"("too long")"),
                ElementsAre(": the config must be at most 2 characters long"));
    EXPECT_THAT(violations_of(schema, R"("no")"),
                ElementsAre(": the config has a value that is not allowed here (got \"no\")"));
}

TEST(JsonSchemaTest, BooleanSchemas) {
    const std::string schema = R"({"properties": {"anything": true, "nothing": false}})";
    EXPECT_THAT(violations_of(schema, R"({"anything": [1, {}]})"), IsEmpty());
    EXPECT_THAT(violations_of(schema, R"({"nothing": 1})"),
                ElementsAre("/nothing: \"nothing\" is not allowed"));
}

TEST(JsonSchemaTest, DefaultsFillAbsentPropertiesRecursively) {
    const std::string schema = R"({"type": "object", "properties": {
        "format": {"type": "string", "default": "json"},
        "retry": {"type": "object", "properties": {
            "attempts": {"type": "integer", "default": 3},
            "backoff": {"type": "object", "default": {}, "properties": {"base_ms": {"type": "integer", "default": 100}}}}},
        "tls": {"type": "object", "properties": {"verify": {"type": "boolean", "default": true}}},
        "list": {"type": "array", "items": {"type": "object", "properties": {"weight": {"default": 1}}}}}})";
    EXPECT_EQ(filled(schema, R"({"format": "text", "retry": {}, "list": [{}, {"weight": 5}]})"),
              boost::json::parse(R"({"format": "text",
                                     "retry": {"attempts": 3, "backoff": {"base_ms": 100}},
                                     "list": [{"weight": 1}, {"weight": 5}]})"));
    // An absent object without a default of its own is not invented.
    EXPECT_FALSE(filled(schema, "{}").as_object().contains("tls"));
    EXPECT_EQ(filled(schema, "{}").at("format"), "json");
}

TEST(JsonSchemaTest, DefaultsComeOnlyFromTheAcceptedAlternative) {
    const std::string schema = R"({"anyOf": [
        {"type": "object", "required": ["url"], "properties": {"url": {"type": "string"}, "method": {"default": "POST"}}},
        {"type": "object", "required": ["arn"], "properties": {"arn": {"type": "string"}, "region": {"default": "us-east-1"}}}]})";
    EXPECT_EQ(filled(schema, R"({"arn": "a"})"),
              boost::json::parse(R"({"arn": "a", "region": "us-east-1"})"));
}

TEST(JsonSchemaTest, SecretValuesAreNeverQuoted) {
    const std::string secret = "https://hooks.slack.com/services/T0/B0/SUPERSECRETTOKEN";
    const std::string schema = R"({"type": "object", "properties": {
        "webhook_url": {"type": "string", "x-secret": true, "pattern": "^https://hooks\\.example\\.com/",
                        "maxLength": 10, "not": {"const": "x"}},
        "keys": {"type": "array", "x-secret": true, "items": {"enum": ["a", "b"]}},
        "token": {"x-secret": true, "anyOf": [{"type": "string", "pattern": "^t"}, {"type": "string", "pattern": "^u"}]},
        "auth": {"type": "object", "x-secret": true, "properties": {"password": {"const": "p"}}}}})";
    const std::string instance = R"({"webhook_url": ")" + secret + R"(", "keys": [")" + secret +
                                 R"("], "token": ")" + secret + R"(", "auth": {"password": ")" +
                                 secret + R"("}})";
    const std::vector<std::string> lines = violations_of(schema, instance);
    EXPECT_EQ(lines.size(), 5U);
    for (const auto& line : lines) {
        EXPECT_THAT(line, Not(HasSubstr("SUPERSECRETTOKEN")));
    }
    EXPECT_THAT(lines, ::testing::Contains(HasSubstr("(got <redacted>)")));
    EXPECT_THAT(lines, ::testing::Contains(
                           "/keys/0: \"keys[0]\" must be one of \"a\", \"b\" (got <redacted>)"));
}

TEST(JsonSchemaTest, ReportsEveryViolationAtOnce) {
    const std::string schema =
        R"({"type": "object", "additionalProperties": false, "required": ["from_email", "to_emails"],
        "properties": {
            "from_email": {"type": "string"},
            "to_emails": {"type": "array", "minItems": 1, "items": {"type": "string"}},
            "format": {"enum": ["json", "text"]},
            "region": {"type": "string"}}})";
    EXPECT_THAT(
        violations_of(
            schema,
            R"({"to_emails": [1, "a", false], "format": "xml", "regoin": "x", "region": 5})"),
        ElementsAre("/to_emails/0: \"to_emails[0]\" must be a string",
                    "/to_emails/2: \"to_emails[2]\" must be a string",
                    "/format: \"format\" must be one of \"json\", \"text\" (got \"xml\")",
                    "/regoin: unknown key \"regoin\" (did you mean \"region\"?)",
                    "/region: \"region\" must be a string",
                    ": missing required key \"from_email\""));
}

TEST(JsonSchemaTest, CheckSchemaAcceptsAPluginSchema) {
    EXPECT_NO_THROW(check_schema(boost::json::parse(R"({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "ses", "description": "Amazon SES destination",
        "type": "object", "additionalProperties": false, "required": ["to_emails", "from_email"],
        "properties": {
            "to_emails": {"type": "array", "items": {"type": "string", "format": "email"}, "minItems": 1},
            "from_email": {"type": "string"},
            "region": {"type": ["string", "null"], "default": null},
            "timeout_ms": {"type": "integer", "minimum": 1, "default": 5000},
            "token": {"type": "string", "x-secret": true, "x-env": "TOKEN"},
            "mode": {"oneOf": [{"const": "a"}, {"const": "b"}], "default": "a"}}})")));
}

TEST(JsonSchemaTest, CheckSchemaRefusesMalformedSchemas) {
    EXPECT_THAT(check_schema_error(R"([1])"), HasSubstr("a schema must be an object or a boolean"));
    EXPECT_THAT(check_schema_error(R"({"type": 5})"),
                HasSubstr("\"type\" must be a string or an array of strings"));
    EXPECT_THAT(check_schema_error(R"({"type": []})"),
                HasSubstr("\"type\" must not be an empty array"));
    EXPECT_THAT(check_schema_error(R"({"properties": {"a": {"type": "strin"}}})"),
                HasSubstr("at /properties/a: unknown type \"strin\" (did you mean \"string\"?)"));
    EXPECT_THAT(check_schema_error(R"({"properties": []})"),
                HasSubstr("\"properties\" must be an object"));
    EXPECT_THAT(check_schema_error(R"({"required": "a"})"),
                HasSubstr("\"required\" must be an array of strings"));
    EXPECT_THAT(check_schema_error(R"({"additionalProperties": 1})"),
                HasSubstr("at /additionalProperties"));
    EXPECT_THAT(check_schema_error(R"({"items": [{}]})"), HasSubstr("tuple form is not supported"));
    EXPECT_THAT(check_schema_error(R"({"enum": []})"),
                HasSubstr("\"enum\" must be a non-empty array"));
    EXPECT_THAT(check_schema_error(R"({"minimum": "1"})"),
                HasSubstr("\"minimum\" must be a number"));
    EXPECT_THAT(check_schema_error(R"({"minLength": -1})"),
                HasSubstr("\"minLength\" must be a non-negative integer"));
    EXPECT_THAT(check_schema_error(R"({"maxItems": 1.5})"),
                HasSubstr("\"maxItems\" must be a non-negative integer"));
    EXPECT_THAT(check_schema_error(R"({"pattern": "(["})"),
                HasSubstr("\"pattern\" is not a valid regular expression"));
    EXPECT_THAT(check_schema_error(R"({"anyOf": []})"),
                HasSubstr("\"anyOf\" must be a non-empty array of schemas"));
    EXPECT_THAT(check_schema_error(R"({"oneOf": [{"type": "nope"}]})"),
                HasSubstr("at /oneOf/0: unknown type \"nope\""));
    EXPECT_THAT(check_schema_error(R"({"x-secret": "yes"})"),
                HasSubstr("\"x-secret\" must be true or false"));
    EXPECT_THAT(check_schema_error(R"({"$ref": "#/$defs/a"})"),
                HasSubstr("unsupported keyword \"$ref\""));
    EXPECT_THAT(
        check_schema_error(R"({"properties": {"n": {"type": "integer", "default": "five"}}})"),
        HasSubstr("at /properties/n: \"default\" does not match its own schema"));
}

TEST(JsonSchemaTest, ValidationSurvivesASchemaThatWasNotChecked) {
    boost::json::value instance = boost::json::parse(R"({"a": "x"})");
    const boost::json::value schema = boost::json::parse(
        R"({"type": 5, "properties": {"a": {"pattern": "([", "minLength": "two"}}, "required": 1})");
    EXPECT_NO_THROW(validate_and_fill_defaults(schema, instance));
}

}  // namespace
}  // namespace tattle
