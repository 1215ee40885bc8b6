#include "tattle/aws/xml.hpp"

#include <charconv>

namespace tattle::aws {

namespace {

void append_utf8(std::string& out, unsigned long code_point) {
    if (code_point < 0x80) {
        out += static_cast<char>(code_point);
    } else if (code_point < 0x800) {
        out += static_cast<char>(0xC0 | (code_point >> 6));
        out += static_cast<char>(0x80 | (code_point & 0x3F));
    } else if (code_point < 0x10000) {
        out += static_cast<char>(0xE0 | (code_point >> 12));
        out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (code_point & 0x3F));
    } else if (code_point < 0x110000) {
        out += static_cast<char>(0xF0 | (code_point >> 18));
        out += static_cast<char>(0x80 | ((code_point >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (code_point & 0x3F));
    }
}

std::string decode_entities_impl(std::string_view text) {
    std::string result;
    result.reserve(text.size());
    while (!text.empty()) {
        const auto amp = text.find('&');
        result += text.substr(0, amp);
        if (amp == std::string_view::npos) break;
        text.remove_prefix(amp);
        const auto semicolon = text.find(';');
        const std::string_view entity = semicolon == std::string_view::npos ? std::string_view{} : text.substr(1, semicolon - 1);
        bool decoded = true;
        if (entity == "amp") {
            result += '&';
        } else if (entity == "lt") {
            result += '<';
        } else if (entity == "gt") {
            result += '>';
        } else if (entity == "quot") {
            result += '"';
        } else if (entity == "apos") {
            result += '\'';
        } else if (entity.size() > 1 && entity.front() == '#') {
            const bool hex = entity[1] == 'x' || entity[1] == 'X';
            const std::string_view digits = entity.substr(hex ? 2 : 1);
            unsigned long code_point = 0;
            const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), code_point, hex ? 16 : 10);
            decoded = error == std::errc{} && end == digits.data() + digits.size() && !digits.empty();
            if (decoded) append_utf8(result, code_point);
        } else {
            decoded = false;
        }
        if (decoded) {
            text.remove_prefix(semicolon + 1);
        } else {
            result += '&';
            text.remove_prefix(1);
        }
    }
    return result;
}

struct Element {
    std::string_view inner;
    std::size_t end = std::string_view::npos;  // just past the closing tag
};

std::optional<Element> find_element(std::string_view xml, std::string_view name, std::size_t from) {
    const std::string open = "<" + std::string(name);
    const std::string close = "</" + std::string(name) + ">";
    for (auto at = xml.find(open, from); at != std::string_view::npos; at = xml.find(open, at + 1)) {
        const auto after_name = at + open.size();
        if (after_name >= xml.size()) return std::nullopt;
        const char next = xml[after_name];
        if (next != '>' && next != ' ' && next != '/' && next != '\t' && next != '\n' && next != '\r') continue;
        const auto tag_end = xml.find('>', after_name);
        if (tag_end == std::string_view::npos) return std::nullopt;
        if (xml[tag_end - 1] == '/') return Element{std::string_view{}, tag_end + 1};  // <Name/>
        const auto content_end = xml.find(close, tag_end + 1);
        if (content_end == std::string_view::npos) return std::nullopt;
        return Element{xml.substr(tag_end + 1, content_end - tag_end - 1), content_end + close.size()};
    }
    return std::nullopt;
}

}  // namespace

std::optional<std::string_view> xml_inner(std::string_view xml, std::string_view name) {
    const auto element = find_element(xml, name, 0);
    if (!element) return std::nullopt;
    return element->inner;
}

std::optional<std::string> xml_text(std::string_view xml, std::string_view name) {
    const auto inner = xml_inner(xml, name);
    if (!inner) return std::nullopt;
    return xml_unescape(*inner);
}

std::vector<std::string_view> xml_inner_all(std::string_view xml, std::string_view name) {
    std::vector<std::string_view> elements;
    std::size_t from = 0;
    while (const auto element = find_element(xml, name, from)) {
        elements.push_back(element->inner);
        from = element->end;
    }
    return elements;
}

std::string xml_unescape(std::string_view text) { return decode_entities_impl(text); }

std::string xml_escape(std::string_view text) {
    std::string escaped;
    escaped.reserve(text.size());
    for (const char c : text) {
        switch (c) {
            case '&': escaped += "&amp;"; break;
            case '<': escaped += "&lt;"; break;
            case '>': escaped += "&gt;"; break;
            case '"': escaped += "&quot;"; break;
            case '\'': escaped += "&apos;"; break;
            default: escaped += c;
        }
    }
    return escaped;
}

}  // namespace tattle::aws
