#pragma once

#include <boost/json.hpp>
#include <string>
#include <string_view>

namespace tattle {

// JSON text written in one pass, byte for byte what
// valid_json_text(boost::json::serialize(v)) gives (text_safety.hpp), without the
// intermediate string and the two scans over it: strings escaped as Boost.JSON escapes
// them, invalid UTF-8 replaced by U+FFFD as valid_utf8 does, non-finite doubles written
// as valid_json_text maps them. Appended to out, so one buffer can hold a whole document.
// Recursive, a few stack frames per level of nesting: events and annotations are
// depth-limited where they are made (InputLimits::max_depth, jv_to_json).
void append_json_text(std::string& out, const boost::json::value& v);
void append_json_text(std::string& out, const boost::json::object& object);

// One JSON string, quotes included: valid_json_text(boost::json::serialize(string_view(s))).
void append_json_string(std::string& out, std::string_view s);

}  // namespace tattle
