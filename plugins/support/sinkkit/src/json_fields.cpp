#include "tattle/sinkkit/json_fields.hpp"

#include <utility>

namespace tattle::sinkkit {

namespace json = boost::json;

std::string_view string_at(const json::object& object, std::string_view key) {
    const auto* found = object.if_contains(key);
    if (found == nullptr || !found->is_string()) return {};
    const auto& text = found->get_string();
    return {text.data(), text.size()};
}

const json::object* object_at(const json::object& object, std::string_view key) {
    const auto* found = object.if_contains(key);
    return found != nullptr && found->is_object() ? &found->get_object() : nullptr;
}

std::string text_of(const json::value& value) {
    if (value.is_string()) return std::string(value.get_string());
    return json::serialize(value);
}

std::string string_or(const json::object& config, std::string_view key, std::string fallback) {
    const auto* found = config.if_contains(key);
    return found != nullptr && found->is_string() ? std::string(found->get_string())
                                                  : std::move(fallback);
}

}  // namespace tattle::sinkkit
