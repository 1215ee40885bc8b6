#include "tattle/json_text.hpp"

#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace tattle {

namespace {

// Length of the valid UTF-8 sequence at text[at] (a byte >= 0x80), or 0. The rules of
// text_safety.cpp's utf8_sequence_length (RFC 3629: no overlong forms, no surrogates,
// nothing above U+10FFFF), which this output must agree with byte for byte.
std::size_t utf8_sequence_length(std::string_view text, std::size_t at) noexcept {
    const auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(text[at + i]); };
    const auto continuation = [&](std::size_t i) {
        return at + i < text.size() && (byte(i) & 0xC0) == 0x80;
    };
    const std::uint8_t lead = byte(0);
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

constexpr std::uint64_t ones = 0x0101010101010101ULL;
constexpr std::uint64_t high_bits = 0x8080808080808080ULL;

// The high bit of each byte of word that needs a look: a control character (escaped),
// '"' or '\\' (escaped), or a byte >= 0x80 (maybe invalid UTF-8). The subtractions can
// borrow into the bytes above a flagged byte and flag them too, but never flag a byte
// below the first flagged one, and only the first is used.
std::uint64_t special_bytes(std::uint64_t word) noexcept {
    const std::uint64_t quotes = word ^ (ones * '"');
    const std::uint64_t backslashes = word ^ (ones * '\\');
    const std::uint64_t below_space = (word - ones * 0x20) & ~word;
    const std::uint64_t is_quote = (quotes - ones) & ~quotes;
    const std::uint64_t is_backslash = (backslashes - ones) & ~backslashes;
    return (below_space | is_quote | is_backslash | word) & high_bits;
}

// Where the first byte of s from at on that special_bytes flags is (s.size() when none).
std::size_t next_special(std::string_view s, std::size_t at) noexcept {
    if constexpr (std::endian::native == std::endian::little) {
        const auto first_flagged = [](std::uint64_t flagged) {
            return static_cast<std::size_t>(std::countr_zero(flagged)) / 8;
        };
        for (; at + 8 <= s.size(); at += 8) {
            std::uint64_t word;
            std::memcpy(&word, s.data() + at, 8);
            if (const std::uint64_t flagged = special_bytes(word))
                return at + first_flagged(flagged);
        }
        if (at == s.size()) return at;
        // The last, short word is padded with 'A', which is never flagged.
        std::uint64_t word = ones * 'A';
        std::memcpy(&word, s.data() + at, s.size() - at);
        const std::uint64_t flagged = special_bytes(word);
        return flagged ? at + first_flagged(flagged) : s.size();
    } else {
        // Byte order decides which flagged byte comes first; elsewhere, one at a time.
        for (; at < s.size(); ++at) {
            const auto c = static_cast<std::uint8_t>(s[at]);
            if (c < 0x20 || c == '"' || c == '\\' || c >= 0x80) return at;
        }
        return s.size();
    }
}

// Boost.JSON 1.81 (serializer.ipp) writes \b \t \n \f \r, \" and \\ short, the other
// control characters as \u00XX with lowercase hex, and every other byte as it is.
void append_escape(std::string& out, unsigned char c) {
    static constexpr char hex[] = "0123456789abcdef";
    switch (c) {
        case '"':
            out += "\\\"";
            return;
        case '\\':
            out += "\\\\";
            return;
        case '\b':
            out += "\\b";
            return;
        case '\t':
            out += "\\t";
            return;
        case '\n':
            out += "\\n";
            return;
        case '\f':
            out += "\\f";
            return;
        case '\r':
            out += "\\r";
            return;
        default: {
            const char u_escape[] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xF]};
            out.append(u_escape, sizeof u_escape);
        }
    }
}

void append_double(std::string& out, const boost::json::value& v) {
    const double d = v.get_double();
    // What valid_json_text makes of Boost's NaN, Infinity and -Infinity.
    if (std::isnan(d)) {
        out += "null";
    } else if (std::isinf(d)) {
        out += d < 0 ? "-1.7976931348623157e+308" : "1.7976931348623157e+308";
    } else {
        // Boost's own text for the number (its Ryu variant: "1E0", "-0E0", "1.5E-7"):
        // rare in events, so exactness matters more here than speed.
        boost::json::serializer serializer;
        serializer.reset(&v);
        char buffer[64];
        out += serializer.read(buffer);
    }
}

template <typename Integer>
void append_integer(std::string& out, Integer i) {
    // Plain decimal with a '-' for negatives, as Boost's format_int64/format_uint64.
    char buffer[24];
    const auto end = std::to_chars(buffer, buffer + sizeof buffer, i).ptr;
    out.append(buffer, end);
}

void append_object(std::string& out, const boost::json::object& object);

void append_value(std::string& out, const boost::json::value& v) {
    switch (v.kind()) {
        case boost::json::kind::object:
            append_object(out, v.get_object());
            return;
        case boost::json::kind::array: {
            out += '[';
            bool first = true;
            for (const auto& element : v.get_array()) {
                if (!first) out += ',';
                first = false;
                append_value(out, element);
            }
            out += ']';
            return;
        }
        case boost::json::kind::string:
            append_json_string(out, v.get_string());
            return;
        case boost::json::kind::int64:
            append_integer(out, v.get_int64());
            return;
        case boost::json::kind::uint64:
            append_integer(out, v.get_uint64());
            return;
        case boost::json::kind::double_:
            append_double(out, v);
            return;
        case boost::json::kind::bool_:
            out += v.get_bool() ? "true" : "false";
            return;
        case boost::json::kind::null:
            out += "null";
            return;
    }
}

void append_object(std::string& out, const boost::json::object& object) {
    out += '{';
    bool first = true;
    for (const auto& member : object) {
        if (!first) out += ',';
        first = false;
        append_json_string(out, member.key());
        out += ':';
        append_value(out, member.value());
    }
    out += '}';
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
    out += '"';
    // Bytes that need nothing are copied a run at a time; a run ends only at a byte to
    // escape or an invalid UTF-8 sequence, valid ones stay in it.
    std::size_t run_start = 0;
    std::size_t at = next_special(s, 0);
    while (at < s.size()) {
        const auto c = static_cast<unsigned char>(s[at]);
        if (c >= 0x80) {
            if (const std::size_t length = utf8_sequence_length(s, at); length != 0) {
                at = next_special(s, at + length);
                continue;
            }
        }
        out.append(s.data() + run_start, at - run_start);
        if (c >= 0x80) {
            out += "\xEF\xBF\xBD";  // U+FFFD for each byte that starts no valid sequence
        } else {
            append_escape(out, c);
        }
        run_start = at + 1;
        at = next_special(s, run_start);
    }
    out.append(s.data() + run_start, s.size() - run_start);
    out += '"';
}

void append_json_text(std::string& out, const boost::json::value& v) { append_value(out, v); }

void append_json_text(std::string& out, const boost::json::object& object) {
    append_object(out, object);
}

}  // namespace tattle
