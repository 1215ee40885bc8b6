#include "tattle/text_safety.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>

namespace tattle {

std::size_t utf8_sequence_length(std::string_view text, std::size_t at) noexcept {
    const auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(text[at + i]); };
    const auto continuation = [&](std::size_t i) { return at + i < text.size() && (byte(i) & 0xC0) == 0x80; };
    const std::uint8_t lead = byte(0);
    if (lead < 0x80) return 1;
    if (lead >= 0xC2 && lead <= 0xDF) return continuation(1) ? 2 : 0;
    if (lead >= 0xE0 && lead <= 0xEF) {
        if (!continuation(1) || !continuation(2)) return 0;
        if (lead == 0xE0 && byte(1) < 0xA0) return 0;   // overlong
        if (lead == 0xED && byte(1) >= 0xA0) return 0;  // UTF-16 surrogate
        return 3;
    }
    if (lead >= 0xF0 && lead <= 0xF4) {
        if (!continuation(1) || !continuation(2) || !continuation(3)) return 0;
        if (lead == 0xF0 && byte(1) < 0x90) return 0;   // overlong
        if (lead == 0xF4 && byte(1) >= 0x90) return 0;  // above U+10FFFF
        return 4;
    }
    return 0;
}

namespace {

// Where the first byte of text that is not ASCII is (text.size() when none): eight
// bytes at a time, since nearly all of what passes through here is ASCII.
std::size_t first_non_ascii(std::string_view text) noexcept {
    constexpr std::uint64_t high_bits = 0x8080808080808080ULL;
    std::size_t at = 0;
    for (; at + 8 <= text.size(); at += 8) {
        std::uint64_t word = 0;
        std::memcpy(&word, text.data() + at, 8);
        if ((word & high_bits) != 0) break;
    }
    while (at < text.size() && static_cast<std::uint8_t>(text[at]) < 0x80) ++at;
    return at;
}

void append_hex_escape(std::string& out, std::uint8_t byte) {
    static constexpr char digits[] = "0123456789abcdef";
    out += "\\x";
    out += digits[byte >> 4];
    out += digits[byte & 0xF];
}

}  // namespace

std::string valid_utf8(std::string_view text) {
    std::size_t at = first_non_ascii(text);
    if (at == text.size()) return std::string(text);
    std::string out;
    out.reserve(text.size());
    out.append(text.substr(0, at));
    while (at < text.size()) {
        // Runs of ASCII, the common case, are copied at once.
        const std::size_t ascii_end = at + first_non_ascii(text.substr(at));
        out.append(text.substr(at, ascii_end - at));
        at = ascii_end;
        if (at == text.size()) break;
        const std::size_t length = utf8_sequence_length(text, at);
        if (length == 0) {
            out += "\xEF\xBF\xBD";
            ++at;
        } else {
            out.append(text.substr(at, length));
            at += length;
        }
    }
    return out;
}

bool is_valid_utf8(std::string_view text) noexcept {
    // Only a non-ASCII byte can start an invalid sequence.
    std::size_t at = first_non_ascii(text);
    while (at < text.size()) {
        const std::size_t length = utf8_sequence_length(text, at);
        if (length == 0) return false;
        at += length;
        at += first_non_ascii(text.substr(at));
    }
    return true;
}

std::string valid_utf8(std::string&& text) {
    if (is_valid_utf8(text)) return std::move(text);
    return valid_utf8(std::string_view(text));
}

namespace {

// What Boost.JSON writes for non-finite numbers; without either (nearly always) only UTF-8 can be wrong.
bool may_hold_non_finite_number(std::string_view serialized) noexcept {
    return serialized.find("Infinity") != std::string_view::npos || serialized.find("NaN") != std::string_view::npos;
}

}  // namespace

std::string valid_json_text(std::string&& serialized) {
    if (!may_hold_non_finite_number(serialized)) return valid_utf8(std::move(serialized));
    return valid_json_text(std::string_view(serialized));
}

std::string valid_json_text(std::string_view serialized) {
    if (!may_hold_non_finite_number(serialized)) return valid_utf8(serialized);
    std::string out;
    out.reserve(serialized.size());
    bool in_string = false;
    bool escaped = false;
    std::size_t at = 0;
    while (at < serialized.size()) {
        const char c = serialized[at];
        if (in_string) {
            if (escaped) {
                escaped = false;
            } else if (c == '\\') {
                escaped = true;
            } else if (c == '"') {
                in_string = false;
            }
        } else if (c == '"') {
            in_string = true;
        } else if (serialized.substr(at).starts_with("Infinity")) {
            out += "1.7976931348623157e+308";
            at += 8;
            continue;
        } else if (serialized.substr(at).starts_with("NaN")) {
            out += "null";
            at += 3;
            continue;
        }
        out += c;
        ++at;
    }
    return valid_utf8(std::move(out));
}

std::string printable_log_text(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    std::size_t at = 0;
    while (at < text.size()) {
        const auto lead = static_cast<std::uint8_t>(text[at]);
        if (lead < 0x20 || lead == 0x7F) {
            append_hex_escape(out, lead);
            ++at;
            continue;
        }
        const std::size_t length = utf8_sequence_length(text, at);
        // C1 controls (U+0080..U+009F) act as escape sequences on some terminals too.
        const bool c1_control = length == 2 && lead == 0xC2 && static_cast<std::uint8_t>(text[at + 1]) < 0xA0;
        if (length == 0 || c1_control) {
            for (std::size_t i = 0; i < (c1_control ? 2 : 1); ++i) {
                append_hex_escape(out, static_cast<std::uint8_t>(text[at + i]));
            }
            at += c1_control ? 2 : 1;
            continue;
        }
        out.append(text.substr(at, length));
        at += length;
    }
    return out;
}

}  // namespace tattle
