#pragma once

// Cutting a JSON value down to size as a value, not as text, so what the receiver
// gets is always complete, valid JSON.

#include <boost/json.hpp>
#include <cstddef>

namespace tattle::sinkkit {

// How hard to cut a value down. Sinks keep a table of these, gentlest first, and
// apply them in order until the result fits.
struct TrimLevel {
    std::size_t max_string;   // bytes of one string value
    std::size_t max_items;    // elements kept of one array
    std::size_t max_members;  // members kept of one object
    std::size_t max_depth;    // containers at or below this depth are summarised
};

// value with long strings cut (UTF-8 safe, with an ellipsis), arrays and objects
// shortened to their first elements and members plus an "… N more items/keys" note,
// and non-empty containers at depth >= level.max_depth replaced by "[… N items]" or
// "{… N keys}". depth is the depth of value itself (0 at the top).
boost::json::value trimmed(const boost::json::value& value, const TrimLevel& level,
                           std::size_t depth);

}  // namespace tattle::sinkkit
