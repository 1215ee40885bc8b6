#include "tattle/secrets.hpp"

#include "aws_secrets.hpp"
#include "tattle/json_schema.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <sstream>
#include <utility>

namespace tattle {
namespace {

struct SecretRegistry {
    std::mutex mutex;
    std::vector<std::string> values;
};

SecretRegistry& registry() {
    static SecretRegistry instance;
    return instance;
}

// Short values would redact ordinary words; secrets worth the name are longer.
constexpr std::size_t kMinSecretLength = 6;
// A cut-off secret is redacted when at least this much of its beginning is left.
constexpr std::size_t kMinCutSecretLength = 8;

bool is_secret_schema(const boost::json::object& schema) {
    const auto* flag = schema.if_contains("x-secret");
    return flag != nullptr && flag->is_bool() && flag->get_bool();
}

void register_all(const boost::json::value& value) {
    if (value.is_string()) {
        register_secret(std::string(value.get_string()));
    } else if (value.is_array()) {
        for (const auto& item : value.get_array()) register_all(item);
    } else if (value.is_object()) {
        for (const auto& [key, item] : value.get_object()) register_all(item);
    }
}

void resolve_value(boost::json::value& value, const std::string& pointer, const PluginInstanceSpec& spec,
                   const std::string& label, std::vector<Diagnostic>& problems) {
    if (value.is_array()) {
        std::size_t index = 0;
        for (auto& item : value.get_array()) {
            resolve_value(item, pointer + "/" + std::to_string(index++), spec, label, problems);
        }
        return;
    }
    if (value.is_object()) {
        for (auto& [key, item] : value.get_object()) {
            resolve_value(item, pointer + "/" + escape_pointer_token(key), spec, label, problems);
        }
        return;
    }
    if (!value.is_string()) return;
    const std::string text(value.get_string());
    const std::string key = pointer.empty() ? std::string("the value") : "\"" + pointer.substr(1) + "\"";
    if (text.rfind("env:", 0) == 0) {
        const std::string name = text.substr(4);
        const char* found = name.empty() ? nullptr : std::getenv(name.c_str());
        if (found == nullptr) {
            problems.push_back({spec.locate(pointer), label + ": " + key + " refers to environment variable " +
                                                          name + ", which is not set"});
            return;
        }
        value = found;
    } else if (text.rfind("file:", 0) == 0) {
        std::filesystem::path path = text.substr(5);
        if (path.is_relative() && !spec.where.file.empty()) {
            path = std::filesystem::absolute(spec.where.file).parent_path() / path;
        }
        std::ifstream in(path, std::ios::binary);
        if (!in) {
            problems.push_back({spec.locate(pointer), label + ": " + key + " refers to file " + path.string() +
                                                          ", which cannot be read"});
            return;
        }
        std::string contents{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
        while (!contents.empty() && (contents.back() == '\n' || contents.back() == '\r')) contents.pop_back();
        value = contents;
    } else {
        try {
            if (const auto reference = aws_secrets::parse_reference(text)) value = aws_secrets::resolve(*reference);
        } catch (const aws_secrets::LookupError& error) {
            problems.push_back({spec.locate(pointer), label + ": " + key + " refers to " + error.what()});
            return;
        }
    }
    register_all(value);
}

void walk(const boost::json::value& schema, boost::json::value& instance, const std::string& pointer,
          const PluginInstanceSpec& spec, const std::string& label, std::vector<Diagnostic>& problems) {
    if (!schema.is_object()) return;
    const auto& schema_object = schema.get_object();
    if (is_secret_schema(schema_object)) {
        resolve_value(instance, pointer, spec, label, problems);
        return;
    }
    if (instance.is_object()) {
        const auto* properties = schema_object.if_contains("properties");
        if (properties == nullptr || !properties->is_object()) return;
        for (auto& [key, value] : instance.get_object()) {
            if (const auto* property = properties->get_object().if_contains(key)) {
                walk(*property, value, pointer + "/" + escape_pointer_token(key), spec, label, problems);
            }
        }
    } else if (instance.is_array()) {
        const auto* items = schema_object.if_contains("items");
        if (items == nullptr) return;
        std::size_t index = 0;
        for (auto& item : instance.get_array()) {
            walk(*items, item, pointer + "/" + std::to_string(index++), spec, label, problems);
        }
    }
}

}  // namespace

void register_secret(std::string value) {
    if (value.size() < kMinSecretLength) return;
    // In a secret URL the path and query are the credential: an error that names only the
    // path, or a receiver that echoes only its token, must not show them either.
    for (auto& piece : url_secret_pieces(value)) register_secret(std::move(piece));
    auto& secrets = registry();
    std::lock_guard lock(secrets.mutex);
    if (std::find(secrets.values.begin(), secrets.values.end(), value) != secrets.values.end()) return;
    secrets.values.push_back(std::move(value));
    // Longest first, so a secret that contains another is replaced whole.
    std::sort(secrets.values.begin(), secrets.values.end(),
              [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

std::vector<std::string> url_secret_pieces(std::string_view value) {
    std::vector<std::string> pieces;
    const std::size_t scheme = value.find("://");
    if (scheme == std::string_view::npos) return pieces;
    const std::size_t path = value.find_first_of("/?#", scheme + 3);
    if (path == std::string_view::npos) return pieces;
    const std::string_view rest = value.substr(path);
    if (rest.size() >= kMinSecretLength) pieces.emplace_back(rest);
    // Short segments ("services", a Slack team id) are no secret alone, and hiding them
    // would garble ordinary words.
    constexpr std::size_t kMinSegment = 12;
    std::size_t start = 0;
    while (start < rest.size()) {
        const std::size_t end = std::min(rest.find_first_of("/?#&=", start), rest.size());
        if (end - start >= kMinSegment && end - start < rest.size()) pieces.emplace_back(rest.substr(start, end - start));
        start = end + 1;
    }
    return pieces;
}

std::string redact(std::string_view text) {
    std::string out(text);
    auto& secrets = registry();
    std::lock_guard lock(secrets.mutex);
    for (const auto& secret : secrets.values) {
        for (std::size_t at = out.find(secret); at != std::string::npos; at = out.find(secret, at)) {
            out.replace(at, secret.size(), "<redacted>");
            at += 10;
        }
    }
    // A message cut to length (by a sink, before it reached us) can end inside a secret:
    // the beginning that is left is still most of it.
    for (const auto& secret : secrets.values) {
        // A URL's scheme and host are no secret (messages name the host on purpose); its
        // path and tokens are registered on their own.
        if (secret.find("://") != std::string::npos) continue;
        const std::string_view head = std::string_view(secret).substr(0, kMinCutSecretLength);
        if (head.size() < kMinCutSecretLength) continue;
        for (std::size_t at = out.find(head); at != std::string::npos; at = out.find(head, at + 1)) {
            std::size_t length = head.size();
            while (length < secret.size() && at + length < out.size() && out[at + length] == secret[length]) ++length;
            const std::string_view after = std::string_view(out).substr(at + length);
            if (after.empty() || after.starts_with("...") || after.starts_with("\u2026")) {
                out.replace(at, length, "<redacted>");
            }
        }
    }
    return out;
}

void clear_secrets() {
    // Not under the registry's lock: a lookup registers its value while holding the cache's.
    aws_secrets::clear_cache();
    auto& secrets = registry();
    std::lock_guard lock(secrets.mutex);
    secrets.values.clear();
}

void set_secret_lookup_environment(SecretLookupEnvironment environment) {
    aws_secrets::set_environment(std::move(environment));
}

void resolve_secrets(const boost::json::value& schema, boost::json::value& instance,
                     const PluginInstanceSpec& spec, const std::string& label,
                     std::vector<Diagnostic>& problems) {
    walk(schema, instance, "", spec, label, problems);
}

}  // namespace tattle
