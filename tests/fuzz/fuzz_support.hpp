// What the fuzz targets share: the input as text, and reporting a broken invariant
// (a finding, like a crash: libFuzzer keeps the input).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace tattle::fuzz {

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
    return size == 0 ? std::string_view() : std::string_view(reinterpret_cast<const char*>(data), size);
}

// An invariant failed: say which, with the offending text (cut), and abort.
[[noreturn]] inline void finding(std::string_view what, std::string_view detail = {}) {
    std::fprintf(stderr, "FINDING: %.*s\n", static_cast<int>(what.size()), what.data());
    if (!detail.empty()) {
        const std::size_t shown = detail.size() < 2000 ? detail.size() : 2000;
        std::fprintf(stderr, "  in: %.*s\n", static_cast<int>(shown), detail.data());
    }
    std::abort();
}

inline void require(bool holds, std::string_view what, std::string_view detail = {}) {
    if (!holds) finding(what, detail);
}

// The input's parts between separator bytes, at most max_parts (the last takes the rest).
inline std::vector<std::string_view> split(std::string_view text, char separator, std::size_t max_parts) {
    std::vector<std::string_view> parts;
    while (parts.size() + 1 < max_parts) {
        const auto at = text.find(separator);
        if (at == std::string_view::npos) break;
        parts.push_back(text.substr(0, at));
        text.remove_prefix(at + 1);
    }
    parts.push_back(text);
    return parts;
}

// Whether text is well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF).
inline bool is_utf8(std::string_view text) {
    std::size_t i = 0;
    while (i < text.size()) {
        const auto byte = static_cast<unsigned char>(text[i]);
        std::size_t length = 0;
        std::uint32_t code = 0;
        if (byte < 0x80) {
            ++i;
            continue;
        } else if ((byte & 0xE0) == 0xC0) {
            length = 2;
            code = byte & 0x1Fu;
        } else if ((byte & 0xF0) == 0xE0) {
            length = 3;
            code = byte & 0x0Fu;
        } else if ((byte & 0xF8) == 0xF0) {
            length = 4;
            code = byte & 0x07u;
        } else {
            return false;
        }
        if (i + length > text.size()) return false;
        for (std::size_t k = 1; k < length; ++k) {
            const auto next = static_cast<unsigned char>(text[i + k]);
            if ((next & 0xC0) != 0x80) return false;
            code = (code << 6) | (next & 0x3Fu);
        }
        const std::uint32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000};
        if (code < smallest[length] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return false;
        i += length;
    }
    return true;
}

// The text with every byte that does not start or continue a well-formed sequence dropped:
// event strings come out of a JSON parser, which only yields UTF-8.
inline std::string valid_utf8(std::string_view text) {
    std::string kept;
    std::size_t i = 0;
    while (i < text.size()) {
        std::size_t length = 1;
        const auto byte = static_cast<unsigned char>(text[i]);
        if ((byte & 0xE0) == 0xC0) length = 2;
        else if ((byte & 0xF0) == 0xE0) length = 3;
        else if ((byte & 0xF8) == 0xF0) length = 4;
        if (i + length <= text.size() && is_utf8(text.substr(i, length))) {
            kept.append(text.substr(i, length));
            i += length;
        } else {
            ++i;
        }
    }
    return kept;
}

}  // namespace tattle::fuzz
