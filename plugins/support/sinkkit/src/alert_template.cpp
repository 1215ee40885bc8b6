#include "tattle/sinkkit/alert_template.hpp"

#include <array>
#include <charconv>
#include <stdexcept>

#include "tattle/sinkkit/json_fields.hpp"

namespace tattle::sinkkit {
namespace {

namespace json = boost::json;

// The top-level keys of the alert document (README, "The alert document").
constexpr std::array<std::string_view, 10> kAlertRoots = {"alert_id", "rule",   "destination", "annotation",
                                                          "summary",  "origin", "event",       "title",
                                                          "dedup",    "threshold"};

std::string_view trim_spaces(std::string_view text) {
    while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
    while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
    return text;
}

std::vector<std::string> split_path(std::string_view path, const std::string& where) {
    std::vector<std::string> keys;
    std::size_t start = 0;
    while (true) {
        const std::size_t dot = path.find('.', start);
        const std::string_view key = path.substr(start, dot == std::string_view::npos ? path.npos : dot - start);
        if (key.empty()) throw std::invalid_argument("template: empty key in \"" + std::string(path) + "\"" + where);
        for (const char c : key) {
            if (c == '{' || c == '}' || c == ' ' || static_cast<unsigned char>(c) < 0x20) {
                throw std::invalid_argument("template: unexpected character in \"" + std::string(path) + "\"" + where);
            }
        }
        keys.emplace_back(key);
        if (dot == std::string_view::npos) return keys;
        start = dot + 1;
    }
}

std::string known_names() {
    std::string names;
    for (const auto& entry : kTemplateNames) {
        if (!names.empty()) names += ", ";
        names += entry.name;
    }
    return names;
}

std::vector<std::string> resolve_placeholder(std::string_view inside, const std::string& where) {
    for (const auto& entry : kTemplateNames) {
        if (entry.name == inside) return split_path(entry.path, where);
    }
    std::vector<std::string> path = split_path(inside, where);
    for (const auto root : kAlertRoots) {
        if (path.front() == root) return path;
    }
    throw std::invalid_argument("template: unknown placeholder {{" + std::string(inside) + "}}" + where +
                                "; use one of " + known_names() +
                                ", or a path into the alert document such as event.userIdentity.arn");
}

const json::value* find_path(const json::object& alert, const std::vector<std::string>& path) {
    const json::value* at = alert.if_contains(path.front());
    for (std::size_t i = 1; at != nullptr && i < path.size(); ++i) {
        if (at->is_object()) {
            at = at->get_object().if_contains(path[i]);
        } else if (at->is_array()) {
            std::size_t index = 0;
            const auto& key = path[i];
            const auto [end, error] = std::from_chars(key.data(), key.data() + key.size(), index);
            if (error != std::errc() || end != key.data() + key.size() || index >= at->get_array().size()) {
                return nullptr;
            }
            at = &at->get_array()[index];
        } else {
            return nullptr;
        }
    }
    return at;
}

}  // namespace

AlertTemplate AlertTemplate::parse(std::string_view text) {
    AlertTemplate parsed;
    std::size_t at = 0;
    while (at < text.size()) {
        const std::size_t open = text.find("{{", at);
        if (open == std::string_view::npos) {
            parsed.pieces_.push_back({std::string(text.substr(at)), {}});
            break;
        }
        if (open > at) parsed.pieces_.push_back({std::string(text.substr(at, open - at)), {}});
        const std::string where = " at offset " + std::to_string(open);
        const std::size_t close = text.find("}}", open + 2);
        if (close == std::string_view::npos) throw std::invalid_argument("template: \"{{\" without \"}}\"" + where);
        const std::string_view inside = trim_spaces(text.substr(open + 2, close - open - 2));
        if (inside.empty()) throw std::invalid_argument("template: empty placeholder" + where);
        parsed.pieces_.push_back({{}, resolve_placeholder(inside, where)});
        at = close + 2;
    }
    return parsed;
}

std::string AlertTemplate::render(const json::object& alert) const {
    return render(alert, [](std::string_view text) { return std::string(text); });
}

std::string AlertTemplate::render(const json::object& alert,
                                  const std::function<std::string(std::string_view)>& escape) const {
    std::string out;
    for (const auto& piece : pieces_) {
        if (piece.path.empty()) {
            out += piece.literal;
            continue;
        }
        const json::value* value = find_path(alert, piece.path);
        if (value != nullptr && !value->is_null()) out += escape(text_of(*value));
    }
    return out;
}

}  // namespace tattle::sinkkit
