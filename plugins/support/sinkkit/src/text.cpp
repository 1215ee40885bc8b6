#include "tattle/sinkkit/text.hpp"

namespace tattle::sinkkit {

std::size_t utf8_sequence_length(unsigned char lead) {
    if (lead >= 0xf0 && lead <= 0xf4) return 4;
    if (lead >= 0xe0) return lead <= 0xef ? 3 : 1;
    if (lead >= 0xc2) return 2;
    return 1;
}

std::string cut_utf8(std::string_view text, std::size_t max_bytes) {
    if (text.size() <= max_bytes) return std::string(text);
    if (max_bytes < kEllipsis.size()) return {};
    const std::size_t budget = max_bytes - kEllipsis.size();
    std::size_t end = 0;
    while (end < text.size()) {
        const std::size_t next = end + utf8_sequence_length(static_cast<unsigned char>(text[end]));
        if (next > budget) break;
        end = next;
    }
    std::string out(text.substr(0, end));
    out += kEllipsis;
    return out;
}

std::string printable(std::string_view text, std::size_t max_bytes) {
    std::string out;
    for (const char c : text) {
        if (out.size() == max_bytes) {
            out += "...";
            break;
        }
        out += (c >= 0x20 && c < 0x7f) ? c : ' ';
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
}

}  // namespace tattle::sinkkit
