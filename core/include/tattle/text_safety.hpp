#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tattle {

// Event fields are attacker-chosen bytes; these keep them from corrupting what
// tattle writes.

// Length of the valid UTF-8 sequence at text[at], or 0 (RFC 3629: no overlong
// forms, no surrogates, nothing above U+10FFFF).
std::size_t utf8_sequence_length(std::string_view text, std::size_t at) noexcept;

// text with every byte sequence that is not valid UTF-8 replaced by U+FFFD (as
// jq does): JSON must be UTF-8, and a serializer copies string bytes as they are.
// JSON structure is ASCII, so this can be applied to serialized JSON as a whole.
std::string valid_utf8(std::string_view text);
// The same, reusing text's memory when it is valid already (nearly always).
std::string valid_utf8(std::string&& text);
inline std::string valid_utf8(const char* text) { return valid_utf8(std::string_view(text)); }
bool is_valid_utf8(std::string_view text) noexcept;

// Serialized JSON made strictly valid: valid_utf8, and the non-finite numbers Boost.JSON
// writes as Infinity / -Infinity / NaN (a record's 1e400 parses to infinity) written
// as jq does: the largest double (negated), and null.
std::string valid_json_text(std::string_view serialized);
std::string valid_json_text(std::string&& serialized);
inline std::string valid_json_text(const char* serialized) { return valid_json_text(std::string_view(serialized)); }

// text for one log line: control characters (including newline, ESC for terminal
// escape sequences, DEL) and invalid UTF-8 bytes are written as \xNN, so no field
// can forge log lines or drive the reader's terminal.
std::string printable_log_text(std::string_view text);

}  // namespace tattle
