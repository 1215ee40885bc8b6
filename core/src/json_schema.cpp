#include "tattle/json_schema.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <regex>
#include <stdexcept>
#include <string_view>
#include <utility>

#include "tattle/diagnostics.hpp"

namespace tattle {
namespace {

namespace json = boost::json;

constexpr std::size_t kMaxQuotedValueLength = 80;

const std::vector<std::string> kTypeNames = {"object", "array",   "string", "integer",
                                             "number", "boolean", "null"};

// Keywords that carry no constraint; accepted and ignored.
const std::vector<std::string> kAnnotationKeywords = {
    "$schema", "$id",      "$comment",   "title",    "description",
    "format",  "examples", "deprecated", "readOnly", "writeOnly"};


// Where a value sits in the instance: its JSON pointer (for the caller to map to
// file:line) and a readable path for messages ("outer.inner", "to_emails[1]").
struct Place {
    std::string pointer;
    std::string label;

    Place key(std::string_view name) const {
        return Place{pointer + "/" + escape_pointer_token(name),
                     label.empty() ? std::string(name) : label + "." + std::string(name)};
    }
    Place index(std::size_t position) const {
        return Place{pointer + "/" + std::to_string(position),
                     label + "[" + std::to_string(position) + "]"};
    }
    std::string subject() const { return label.empty() ? "the config" : "\"" + label + "\""; }
};

bool is_number(const json::value& value) {
    return value.is_int64() || value.is_uint64() || value.is_double();
}

bool is_whole_number(const json::value& value) {
    if (value.is_int64() || value.is_uint64()) return true;
    if (!value.is_double()) return false;
    const double number = value.get_double();
    return std::isfinite(number) && std::trunc(number) == number;
}

double to_double(const json::value& value) {
    if (value.is_int64()) return static_cast<double>(value.get_int64());
    if (value.is_uint64()) return static_cast<double>(value.get_uint64());
    return value.get_double();
}

bool has_type(const json::value& value, std::string_view type) {
    if (type == "object") return value.is_object();
    if (type == "array") return value.is_array();
    if (type == "string") return value.is_string();
    if (type == "integer") return is_whole_number(value);
    if (type == "number") return is_number(value);
    if (type == "boolean") return value.is_bool();
    if (type == "null") return value.is_null();
    return false;
}

// JSON equality as JSON Schema defines it: 1 and 1.0 are the same number.
bool json_equal(const json::value& a, const json::value& b) {
    if (is_number(a) && is_number(b)) {
        if (a.is_double() || b.is_double()) return to_double(a) == to_double(b);
        if (a.is_int64() && b.is_int64()) return a.get_int64() == b.get_int64();
        if (a.is_uint64() && b.is_uint64()) return a.get_uint64() == b.get_uint64();
        const json::value& signed_one = a.is_int64() ? a : b;
        const json::value& unsigned_one = a.is_int64() ? b : a;
        return signed_one.get_int64() >= 0 &&
               static_cast<std::uint64_t>(signed_one.get_int64()) == unsigned_one.get_uint64();
    }
    if (a.kind() != b.kind()) return false;
    if (a.is_array()) {
        const auto& left = a.get_array();
        const auto& right = b.get_array();
        if (left.size() != right.size()) return false;
        for (std::size_t i = 0; i < left.size(); ++i) {
            if (!json_equal(left[i], right[i])) return false;
        }
        return true;
    }
    if (a.is_object()) {
        const auto& left = a.get_object();
        const auto& right = b.get_object();
        if (left.size() != right.size()) return false;
        for (const auto& member : left) {
            const json::value* other = right.if_contains(member.key());
            if (other == nullptr || !json_equal(member.value(), *other)) return false;
        }
        return true;
    }
    return a == b;
}

std::string format_number(const json::value& value) {
    if (value.is_int64()) return std::to_string(value.get_int64());
    if (value.is_uint64()) return std::to_string(value.get_uint64());
    // Boost.JSON would print 1.5 as "1.5E0"; users wrote "1.5".
    std::array<char, 64> buffer{};
    const auto result =
        std::to_chars(buffer.data(), buffer.data() + buffer.size(), value.get_double());
    return std::string(buffer.data(), result.ptr);
}

std::string format_value(const json::value& value) {
    if (is_number(value)) return format_number(value);
    if (value.is_array()) {
        std::string out = "[";
        for (const auto& element : value.get_array()) {
            if (out.size() > 1) out += ", ";
            out += format_value(element);
        }
        return out + "]";
    }
    if (value.is_object()) {
        std::string out = "{";
        for (const auto& member : value.get_object()) {
            if (out.size() > 1) out += ", ";
            out +=
                json::serialize(json::string(member.key())) + ": " + format_value(member.value());
        }
        return out + "}";
    }
    return json::serialize(value);
}

// An instance value as shown in a message: secrets never, long values cut.
std::string show_instance_value(const json::value& value, bool secret) {
    if (secret) return "<redacted>";
    std::string shown = format_value(value);
    if (shown.size() > kMaxQuotedValueLength)
        shown = shown.substr(0, kMaxQuotedValueLength - 3) + "...";
    return shown;
}

std::string got(const json::value& value, bool secret) {
    return " (got " + show_instance_value(value, secret) + ")";
}

std::string with_article(const std::string& type) {
    if (type == "null") return "null";
    if (type == "array" || type == "object" || type == "integer") return "an " + type;
    return "a " + type;
}

// "a string", "a string or an array", "a string, an integer or null".
std::string describe_types(const std::vector<std::string>& types) {
    std::string out;
    for (std::size_t i = 0; i < types.size(); ++i) {
        if (i > 0) out += i + 1 == types.size() ? " or " : ", ";
        out += with_article(types[i]);
    }
    return out;
}

std::vector<std::string> type_names(const json::value& type_keyword) {
    std::vector<std::string> names;
    if (const auto* single = type_keyword.if_string()) {
        names.emplace_back(*single);
    } else if (const auto* list = type_keyword.if_array()) {
        for (const auto& element : *list) {
            if (const auto* name = element.if_string()) names.emplace_back(*name);
        }
    }
    return names;
}

std::optional<std::uint64_t> count_keyword(const json::object& schema, std::string_view keyword) {
    const json::value* value = schema.if_contains(keyword);
    if (value == nullptr || !is_whole_number(*value) || to_double(*value) < 0) return std::nullopt;
    if (value->is_int64()) return static_cast<std::uint64_t>(value->get_int64());
    if (value->is_uint64()) return value->get_uint64();
    return static_cast<std::uint64_t>(value->get_double());
}

std::size_t count_code_points(std::string_view text) {
    // UTF-8 continuation bytes look like 10xxxxxx; every other byte starts a code point.
    return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
        return (static_cast<unsigned char>(c) & 0xC0U) != 0x80U;
    }));
}

std::string plural(std::uint64_t count, const std::string& noun) {
    return std::to_string(count) + " " + noun + (count == 1 ? "" : "s");
}

bool is_secret(const json::object& schema) {
    const json::value* flag = schema.if_contains("x-secret");
    return flag != nullptr && flag->is_bool() && flag->get_bool();
}

class Validator {
public:
    // What happened at one node. A type mismatch is told apart from other
    // failures so that anyOf/oneOf can say "must be a string or an array"
    // instead of listing each alternative's complaint.
    struct Outcome {
        std::vector<std::string> expected_types;  // non-empty: the type keyword failed
    };

    Outcome validate(const json::value& schema, json::value& instance, const Place& place,
                     bool secret, std::vector<SchemaViolation>& out) const {
        if (schema.is_bool()) {
            if (!schema.get_bool())
                out.push_back({place.pointer, place.subject() + " is not allowed"});
            return {};
        }
        const json::object* keywords = schema.if_object();
        if (keywords == nullptr) return {};
        secret = secret || is_secret(*keywords);

        if (const json::value* type = keywords->if_contains("type")) {
            const std::vector<std::string> types = type_names(*type);
            const bool matches = types.empty() || std::any_of(types.begin(), types.end(),
                                                              [&](const std::string& name) {
                                                                  return has_type(instance, name);
                                                              });
            if (!matches) {
                out.push_back(
                    {place.pointer, place.subject() + " must be " + describe_types(types)});
                return Outcome{types};
            }
            normalise_integer(types, instance);
        }

        check_enum_and_const(*keywords, instance, place, secret, out);
        if (is_number(instance)) check_number(*keywords, instance, place, secret, out);
        if (instance.is_string())
            check_string(*keywords, instance.get_string(), place, secret, out);
        if (instance.is_array()) check_array(*keywords, instance.get_array(), place, secret, out);
        if (instance.is_object())
            check_object(*keywords, instance.get_object(), place, secret, out);
        return check_combinators(*keywords, instance, place, secret, out);
    }

private:
    // A config written in JSON may say 3.0 where an integer is wanted; plugins
    // then read an integer, as they would from TOML.
    static void normalise_integer(const std::vector<std::string>& types, json::value& instance) {
        const bool wants_integer = std::find(types.begin(), types.end(), "integer") != types.end();
        const bool allows_number = std::find(types.begin(), types.end(), "number") != types.end();
        if (!wants_integer || allows_number || !instance.is_double()) return;
        const double number = instance.get_double();
        constexpr double kInt64Bound = 9223372036854775808.0;  // 2^63
        if (number >= -kInt64Bound && number < kInt64Bound)
            instance = static_cast<std::int64_t>(number);
    }

    static void check_enum_and_const(const json::object& keywords, const json::value& instance,
                                     const Place& place, bool secret,
                                     std::vector<SchemaViolation>& out) {
        if (const json::value* allowed = keywords.if_contains("enum");
            allowed != nullptr && allowed->is_array()) {
            const auto& options = allowed->get_array();
            const bool found = std::any_of(
                options.begin(), options.end(),
                [&](const json::value& option) { return json_equal(option, instance); });
            if (!found) {
                std::string list;
                for (const auto& option : options) {
                    if (!list.empty()) list += ", ";
                    list += format_value(option);
                }
                out.push_back({place.pointer, place.subject() + " must be one of " + list +
                                                  got(instance, secret)});
            }
        }
        if (const json::value* expected = keywords.if_contains("const")) {
            if (!json_equal(*expected, instance)) {
                out.push_back({place.pointer, place.subject() + " must be " +
                                                  format_value(*expected) + got(instance, secret)});
            }
        }
    }

    static void check_number(const json::object& keywords, const json::value& instance,
                             const Place& place, bool secret, std::vector<SchemaViolation>& out) {
        const double number = to_double(instance);
        const auto bound = [&](std::string_view keyword) -> const json::value* {
            const json::value* value = keywords.if_contains(keyword);
            return value != nullptr && is_number(*value) ? value : nullptr;
        };
        if (const auto* minimum = bound("minimum");
            minimum != nullptr && number < to_double(*minimum)) {
            out.push_back({place.pointer, place.subject() + " must be at least " +
                                              format_number(*minimum) + got(instance, secret)});
        }
        if (const auto* maximum = bound("maximum");
            maximum != nullptr && number > to_double(*maximum)) {
            out.push_back({place.pointer, place.subject() + " must be at most " +
                                              format_number(*maximum) + got(instance, secret)});
        }
        if (const auto* minimum = bound("exclusiveMinimum");
            minimum != nullptr && number <= to_double(*minimum)) {
            out.push_back({place.pointer, place.subject() + " must be greater than " +
                                              format_number(*minimum) + got(instance, secret)});
        }
        if (const auto* maximum = bound("exclusiveMaximum");
            maximum != nullptr && number >= to_double(*maximum)) {
            out.push_back({place.pointer, place.subject() + " must be less than " +
                                              format_number(*maximum) + got(instance, secret)});
        }
    }

    static void check_string(const json::object& keywords, const json::string& text,
                             const Place& place, bool secret, std::vector<SchemaViolation>& out) {
        const std::size_t length = count_code_points(text);
        if (const auto minimum = count_keyword(keywords, "minLength");
            minimum && length < *minimum) {
            out.push_back(
                {place.pointer,
                 place.subject() + (*minimum == 1 ? " must not be empty"
                                                  : " must be at least " +
                                                        plural(*minimum, "character") + " long")});
        }
        if (const auto maximum = count_keyword(keywords, "maxLength");
            maximum && length > *maximum) {
            out.push_back({place.pointer, place.subject() + " must be at most " +
                                              plural(*maximum, "character") + " long"});
        }
        if (const json::value* pattern = keywords.if_contains("pattern");
            pattern != nullptr && pattern->is_string()) {
            const std::string expression(pattern->get_string());
            try {
                if (!std::regex_search(text.begin(), text.end(),
                                       std::regex(expression, std::regex::ECMAScript))) {
                    out.push_back({place.pointer, place.subject() + " must match the pattern " +
                                                      json::serialize(pattern->get_string()) +
                                                      got(json::value(text), secret)});
                }
            } catch (const std::regex_error&) {
                // check_schema refuses such a schema; a schema that skipped it loses this one
                // check.
            }
        }
    }

    void check_array(const json::object& keywords, json::array& elements, const Place& place,
                     bool secret, std::vector<SchemaViolation>& out) const {
        if (const auto minimum = count_keyword(keywords, "minItems");
            minimum && elements.size() < *minimum) {
            out.push_back(
                {place.pointer, place.subject() + (*minimum == 1 ? " must not be empty"
                                                                 : " must have at least " +
                                                                       plural(*minimum, "item"))});
        }
        if (const auto maximum = count_keyword(keywords, "maxItems");
            maximum && elements.size() > *maximum) {
            out.push_back({place.pointer,
                           place.subject() + " must have at most " + plural(*maximum, "item")});
        }
        if (const json::value* unique = keywords.if_contains("uniqueItems");
            unique != nullptr && unique->is_bool() && unique->get_bool()) {
            for (std::size_t later = 1; later < elements.size(); ++later) {
                for (std::size_t earlier = 0; earlier < later; ++earlier) {
                    if (json_equal(elements[earlier], elements[later])) {
                        out.push_back({place.index(later).pointer,
                                       place.index(later).subject() + " repeats " +
                                           place.index(earlier).subject()});
                        break;
                    }
                }
            }
        }
        if (const json::value* item_schema = keywords.if_contains("items")) {
            for (std::size_t position = 0; position < elements.size(); ++position) {
                validate(*item_schema, elements[position], place.index(position), secret, out);
            }
        }
    }

    void check_object(const json::object& keywords, json::object& members, const Place& place,
                      bool secret, std::vector<SchemaViolation>& out) const {
        const json::object* properties = nullptr;
        if (const json::value* value = keywords.if_contains("properties"))
            properties = value->if_object();

        if (properties != nullptr) fill_defaults(*properties, members, place, secret);

        const json::value* additional = keywords.if_contains("additionalProperties");
        std::vector<std::string> known_names;
        if (properties != nullptr) {
            for (const auto& property : *properties) known_names.emplace_back(property.key());
        }

        for (auto& member : members) {
            const Place member_place = place.key(member.key());
            const json::value* property_schema =
                properties != nullptr ? properties->if_contains(member.key()) : nullptr;
            if (property_schema != nullptr) {
                validate(*property_schema, member.value(), member_place, secret, out);
            } else if (additional != nullptr && additional->is_bool()) {
                if (!additional->get_bool()) {
                    std::string message = "unknown key \"" + std::string(member.key()) + "\"";
                    if (!place.label.empty()) message += " in " + place.subject();
                    const std::string hint = did_you_mean(std::string(member.key()), known_names);
                    if (!hint.empty()) message += " (" + hint + ")";
                    out.push_back({member_place.pointer, std::move(message)});
                }
            } else if (additional != nullptr) {
                validate(*additional, member.value(), member_place, secret, out);
            }
        }

        if (const json::value* required = keywords.if_contains("required");
            required != nullptr && required->is_array()) {
            for (const auto& name : required->get_array()) {
                if (!name.is_string() || members.contains(name.get_string())) continue;
                out.push_back({place.pointer, "missing required key \"" +
                                                  place.key(name.get_string()).label + "\""});
            }
        }
    }

    // Absent properties take their default; a default object gets its own
    // properties' defaults too. Defaults were checked against their schemas by
    // check_schema, so what this finds about them is not the user's doing.
    void fill_defaults(const json::object& properties, json::object& members, const Place& place,
                       bool secret) const {
        for (const auto& property : properties) {
            const json::object* property_schema = property.value().if_object();
            if (property_schema == nullptr || members.contains(property.key())) continue;
            const json::value* default_value = property_schema->if_contains("default");
            if (default_value == nullptr) continue;
            json::value& filled = members[property.key()] = *default_value;
            std::vector<SchemaViolation> ignored;
            validate(property.value(), filled, place.key(property.key()), secret, ignored);
        }
    }

    Outcome check_combinators(const json::object& keywords, json::value& instance,
                              const Place& place, bool secret,
                              std::vector<SchemaViolation>& out) const {
        Outcome outcome;
        if (const json::value* all = keywords.if_contains("allOf");
            all != nullptr && all->is_array()) {
            for (const auto& branch : all->get_array()) {
                const Outcome branch_outcome = validate(branch, instance, place, secret, out);
                if (outcome.expected_types.empty())
                    outcome.expected_types = branch_outcome.expected_types;
            }
        }
        if (const json::value* any = keywords.if_contains("anyOf");
            any != nullptr && any->is_array()) {
            const Outcome branch_outcome =
                check_alternatives(any->get_array(), false, instance, place, secret, out);
            if (outcome.expected_types.empty())
                outcome.expected_types = branch_outcome.expected_types;
        }
        if (const json::value* one = keywords.if_contains("oneOf");
            one != nullptr && one->is_array()) {
            const Outcome branch_outcome =
                check_alternatives(one->get_array(), true, instance, place, secret, out);
            if (outcome.expected_types.empty())
                outcome.expected_types = branch_outcome.expected_types;
        }
        if (const json::value* negated = keywords.if_contains("not")) {
            json::value scratch = instance;
            std::vector<SchemaViolation> ignored;
            validate(*negated, scratch, place, secret, ignored);
            if (ignored.empty()) {
                out.push_back({place.pointer, place.subject() +
                                                  " has a value that is not allowed here" +
                                                  got(instance, secret)});
            }
        }
        return outcome;
    }

    // anyOf (exactly_one = false) and oneOf (exactly_one = true). Each
    // alternative is tried on a copy, so that only the accepted one's defaults
    // end up in the instance.
    Outcome check_alternatives(const json::array& alternatives, bool exactly_one,
                               json::value& instance, const Place& place, bool secret,
                               std::vector<SchemaViolation>& out) const {
        struct Attempt {
            json::value result;
            std::vector<SchemaViolation> violations;
            Outcome outcome;
        };
        if (alternatives.empty()) return {};  // refused by check_schema; nothing to choose from
        std::vector<Attempt> attempts;
        std::vector<std::size_t> accepted;
        for (const auto& alternative : alternatives) {
            Attempt attempt{instance, {}, {}};
            attempt.outcome =
                validate(alternative, attempt.result, place, secret, attempt.violations);
            if (attempt.violations.empty()) accepted.push_back(attempts.size());
            attempts.push_back(std::move(attempt));
        }

        if (accepted.size() == 1 || (!exactly_one && !accepted.empty())) {
            instance = std::move(attempts[accepted.front()].result);
            return {};
        }
        if (accepted.size() > 1) {
            std::string which;
            for (std::size_t i = 0; i < accepted.size(); ++i) {
                if (i > 0) which += i + 1 == accepted.size() ? " and " : ", ";
                which += std::to_string(accepted[i] + 1);
            }
            out.push_back({place.pointer, place.subject() +
                                              " matches more than one of the allowed forms (" +
                                              which + "); it must match exactly one"});
            return {};
        }

        // Nothing fits. Alternatives whose type fitted are what the user most
        // likely meant; their complaints are the useful ones.
        std::vector<const Attempt*> type_fitted;
        std::vector<std::string> expected_types;
        for (const auto& attempt : attempts) {
            if (attempt.outcome.expected_types.empty()) {
                type_fitted.push_back(&attempt);
            } else {
                for (const auto& type : attempt.outcome.expected_types) {
                    if (std::find(expected_types.begin(), expected_types.end(), type) ==
                        expected_types.end()) {
                        expected_types.push_back(type);
                    }
                }
            }
        }
        if (type_fitted.empty()) {
            out.push_back(
                {place.pointer, place.subject() + " must be " + describe_types(expected_types)});
            return Outcome{expected_types};
        }
        if (type_fitted.size() == 1) {
            out.insert(out.end(), type_fitted.front()->violations.begin(),
                       type_fitted.front()->violations.end());
            return {};
        }
        std::string reasons;
        for (const Attempt* attempt : type_fitted) {
            if (!reasons.empty()) reasons += "; or ";
            reasons += attempt->violations.front().message;
        }
        out.push_back(
            {place.pointer, place.subject() + " matches none of the allowed forms: " + reasons});
        return {};
    }
};

// ---- check_schema ----

[[noreturn]] void refuse(const std::string& schema_pointer, const std::string& message) {
    throw std::invalid_argument("invalid JSON Schema at " +
                                (schema_pointer.empty() ? "the root" : schema_pointer) + ": " +
                                message);
}

bool is_non_negative_integer(const json::value& value) {
    return is_whole_number(value) && to_double(value) >= 0;
}

void check_schema_at(const json::value& schema, const std::string& schema_pointer);

void check_schema_list(const json::value& value, const std::string& keyword,
                       const std::string& schema_pointer) {
    const json::array* list = value.if_array();
    if (list == nullptr || list->empty())
        refuse(schema_pointer, "\"" + keyword + "\" must be a non-empty array of schemas");
    for (std::size_t i = 0; i < list->size(); ++i) {
        check_schema_at((*list)[i], schema_pointer + "/" + keyword + "/" + std::to_string(i));
    }
}

void check_type_keyword(const json::value& value, const std::string& schema_pointer) {
    const auto check_name = [&](const json::value& name) {
        if (!name.is_string())
            refuse(schema_pointer, "\"type\" must be a string or an array of strings");
        if (std::find(kTypeNames.begin(), kTypeNames.end(), name.get_string()) ==
            kTypeNames.end()) {
            std::string message = "unknown type \"" + std::string(name.get_string()) + "\"";
            const std::string hint = did_you_mean(std::string(name.get_string()), kTypeNames);
            if (!hint.empty()) message += " (" + hint + ")";
            refuse(schema_pointer, message);
        }
    };
    if (const json::array* names = value.if_array()) {
        if (names->empty()) refuse(schema_pointer, "\"type\" must not be an empty array");
        for (const auto& name : *names) check_name(name);
    } else {
        check_name(value);
    }
}

void check_keyword(const std::string& keyword, const json::value& value,
                   const std::string& schema_pointer) {
    if (keyword == "type") {
        check_type_keyword(value, schema_pointer);
    } else if (keyword == "properties") {
        const json::object* properties = value.if_object();
        if (properties == nullptr) refuse(schema_pointer, "\"properties\" must be an object");
        for (const auto& property : *properties) {
            check_schema_at(property.value(),
                            schema_pointer + "/properties/" + escape_pointer_token(property.key()));
        }
    } else if (keyword == "required") {
        const json::array* names = value.if_array();
        const bool all_strings = names != nullptr && std::all_of(names->begin(), names->end(),
                                                                 [](const json::value& name) {
                                                                     return name.is_string();
                                                                 });
        if (!all_strings) refuse(schema_pointer, "\"required\" must be an array of strings");
    } else if (keyword == "additionalProperties" || keyword == "items" || keyword == "not") {
        if (keyword == "items" && value.is_array()) {
            refuse(schema_pointer, "\"items\" must be one schema (tuple form is not supported)");
        }
        check_schema_at(value, schema_pointer + "/" + keyword);
    } else if (keyword == "enum") {
        if (!value.is_array() || value.get_array().empty())
            refuse(schema_pointer, "\"enum\" must be a non-empty array");
    } else if (keyword == "minimum" || keyword == "maximum" || keyword == "exclusiveMinimum" ||
               keyword == "exclusiveMaximum") {
        if (!is_number(value)) refuse(schema_pointer, "\"" + keyword + "\" must be a number");
    } else if (keyword == "minLength" || keyword == "maxLength" || keyword == "minItems" ||
               keyword == "maxItems") {
        if (!is_non_negative_integer(value))
            refuse(schema_pointer, "\"" + keyword + "\" must be a non-negative integer");
    } else if (keyword == "pattern") {
        if (!value.is_string()) refuse(schema_pointer, "\"pattern\" must be a string");
        try {
            std::regex(std::string(value.get_string()), std::regex::ECMAScript);
        } catch (const std::regex_error& error) {
            refuse(schema_pointer,
                   "\"pattern\" is not a valid regular expression: " + std::string(error.what()));
        }
    } else if (keyword == "anyOf" || keyword == "oneOf" || keyword == "allOf") {
        check_schema_list(value, keyword, schema_pointer);
    } else if (keyword == "uniqueItems" || keyword == "x-secret") {
        if (!value.is_bool()) refuse(schema_pointer, "\"" + keyword + "\" must be true or false");
    } else if (keyword == "const" || keyword == "default" || keyword.starts_with("x-") ||
               std::find(kAnnotationKeywords.begin(), kAnnotationKeywords.end(), keyword) !=
                   kAnnotationKeywords.end()) {
        // No constraint of their own; default is checked against the whole schema below.
    } else {
        // A keyword we would silently skip is a check the plugin author believes happens.
        refuse(schema_pointer, "unsupported keyword \"" + keyword + "\"");
    }
}

void check_schema_at(const json::value& schema, const std::string& schema_pointer) {
    if (schema.is_bool()) return;
    const json::object* keywords = schema.if_object();
    if (keywords == nullptr) refuse(schema_pointer, "a schema must be an object or a boolean");
    for (const auto& keyword : *keywords)
        check_keyword(std::string(keyword.key()), keyword.value(), schema_pointer);

    if (const json::value* default_value = keywords->if_contains("default")) {
        json::value filled = *default_value;
        std::vector<SchemaViolation> violations;
        Validator().validate(schema, filled, Place{}, false, violations);
        if (!violations.empty()) {
            refuse(schema_pointer,
                   "\"default\" does not match its own schema: " + violations.front().message);
        }
    }
}

}  // namespace

std::vector<SchemaViolation> validate_and_fill_defaults(const boost::json::value& schema,
                                                        boost::json::value& instance) {
    std::vector<SchemaViolation> violations;
    Validator().validate(schema, instance, Place{}, false, violations);
    return violations;
}

void check_schema(const boost::json::value& schema) { check_schema_at(schema, ""); }


std::string escape_pointer_token(std::string_view token) {
    std::string escaped;
    escaped.reserve(token.size());
    for (const char c : token) {
        if (c == '~') {
            escaped += "~0";
        } else if (c == '/') {
            escaped += "~1";
        } else {
            escaped += c;
        }
    }
    return escaped;
}

}  // namespace tattle
