#pragma once

// Reading the fields of an alert document or a sink config, where a missing key and
// a value of the wrong type both mean "not there".

#include <boost/json.hpp>
#include <string>
#include <string_view>

namespace tattle::sinkkit {

// The string at key; empty when absent or not a string. Views into object.
std::string_view string_at(const boost::json::object& object, std::string_view key);

// The object at key; nullptr when absent or not an object.
const boost::json::object* object_at(const boost::json::object& object, std::string_view key);

// A string value as itself, anything else as compact JSON.
std::string text_of(const boost::json::value& value);

// The string at key, or fallback when absent or not a string.
std::string string_or(const boost::json::object& config, std::string_view key,
                      std::string fallback = {});

}  // namespace tattle::sinkkit
