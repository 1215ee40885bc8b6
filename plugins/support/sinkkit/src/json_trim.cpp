#include "tattle/sinkkit/json_trim.hpp"

#include <string>

#include "tattle/sinkkit/text.hpp"

namespace tattle::sinkkit {

namespace json = boost::json;

json::value trimmed(const json::value& value, const TrimLevel& level, std::size_t depth) {
    if (value.is_string()) {
        const auto& text = value.get_string();
        if (text.size() <= level.max_string) return value;
        return json::string(cut_utf8({text.data(), text.size()}, level.max_string));
    }
    if (value.is_array()) {
        const auto& array = value.get_array();
        if (depth >= level.max_depth && !array.empty()) {
            return json::string("[" + std::string(kEllipsis) + " " + std::to_string(array.size()) +
                                " items]");
        }
        json::array out;
        for (std::size_t i = 0; i < array.size() && i < level.max_items; ++i) {
            out.push_back(trimmed(array[i], level, depth + 1));
        }
        if (array.size() > level.max_items) {
            out.push_back(json::string(std::string(kEllipsis) + " " +
                                       std::to_string(array.size() - level.max_items) +
                                       " more items"));
        }
        return out;
    }
    if (value.is_object()) {
        const auto& object = value.get_object();
        if (depth >= level.max_depth && !object.empty()) {
            return json::string("{" + std::string(kEllipsis) + " " + std::to_string(object.size()) +
                                " keys}");
        }
        json::object out;
        std::size_t kept = 0;
        for (const auto& member : object) {
            if (kept++ == level.max_members) break;
            out[member.key()] = trimmed(member.value(), level, depth + 1);
        }
        if (object.size() > level.max_members) {
            out[kEllipsis] = std::to_string(object.size() - level.max_members) + " more keys";
        }
        return out;
    }
    return value;
}

}  // namespace tattle::sinkkit
