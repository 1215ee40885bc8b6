#pragma once

// Text fitting for what a sink sends or reports: cut without breaking UTF-8, and
// squeeze a receiver's answer into something safe to show in a log line.

#include <cstddef>
#include <string>
#include <string_view>

namespace tattle::sinkkit {

inline constexpr std::string_view kEllipsis = "\u2026";

// Bytes in the UTF-8 sequence that starts with lead; 1 for a stray byte, so a scan
// always moves forward.
std::size_t utf8_sequence_length(unsigned char lead);

// text cut to at most max_bytes (ellipsis included), never inside a UTF-8 sequence,
// so the result is still valid UTF-8 and a receiver does not refuse the payload.
// Empty when max_bytes cannot hold even the ellipsis.
std::string cut_utf8(std::string_view text, std::size_t max_bytes);

// A receiver's text as it may appear in a message: printable ASCII (anything else
// becomes a space), at most max_bytes followed by "..." when longer, no trailing spaces.
std::string printable(std::string_view text, std::size_t max_bytes);

}  // namespace tattle::sinkkit
