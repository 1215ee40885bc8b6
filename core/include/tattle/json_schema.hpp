#pragma once

#include <boost/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace tattle {

// One way an instance breaks its schema. pointer is a JSON pointer into the
// instance ("" = the whole instance, "/to_emails/0").
struct SchemaViolation {
    std::string pointer;
    std::string message;
};

// Validates instance against a JSON Schema (the subset plugins use: type,
// properties, required, additionalProperties, items, enum, const, minimum,
// maximum, minLength, maxLength, minItems, maxItems, pattern, anyOf, oneOf,
// default) and fills in the defaults of absent properties. Reports every
// violation, not the first only. Values of properties marked "x-secret": true
// are never quoted in messages. An unknown property gets a "did you mean" hint.
std::vector<SchemaViolation> validate_and_fill_defaults(const boost::json::value& schema,
                                                        boost::json::value& instance);

// Throws std::invalid_argument if schema is not a schema this validator understands.
void check_schema(const boost::json::value& schema);

// One reference token of a JSON pointer (RFC 6901): "~" becomes "~0", "/" becomes "~1".
std::string escape_pointer_token(std::string_view token);

}  // namespace tattle
