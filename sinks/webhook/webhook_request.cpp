#include "webhook_request.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <stdexcept>

namespace tattle::sinks::webhook {
namespace {

namespace json = boost::json;

std::string lower(std::string_view text) {
    std::string out(text);
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
}

std::string_view trimmed(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
    return text;
}

bool is_path_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

bool is_token_char(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

const json::value* value_at(const json::object& alert, const std::vector<std::string>& path) {
    const json::value* current = nullptr;
    for (std::size_t i = 0; i < path.size(); ++i) {
        const std::string& key = path[i];
        if (i == 0) {
            current = alert.if_contains(key);
        } else if (current->is_object()) {
            current = current->get_object().if_contains(key);
        } else if (current->is_array()) {
            std::size_t index = 0;
            const auto [end, error] = std::from_chars(key.data(), key.data() + key.size(), index);
            if (error != std::errc() || end != key.data() + key.size()) return nullptr;
            current = index < current->get_array().size() ? &current->get_array()[index] : nullptr;
        } else {
            return nullptr;
        }
        if (current == nullptr) return nullptr;
    }
    return current;
}

// The inside of a JSON string literal for text.
std::string json_escaped(std::string_view text) {
    const std::string quoted = json::serialize(json::string(text));
    return quoted.substr(1, quoted.size() - 2);
}

}  // namespace

BodyTemplate BodyTemplate::parse(std::string_view text) {
    BodyTemplate parsed;
    std::size_t at = 0;
    while (at < text.size()) {
        const std::size_t open = text.find("{{", at);
        if (open == std::string_view::npos) {
            parsed.pieces_.push_back({std::string(text.substr(at)), {}, false});
            break;
        }
        if (open > at)
            parsed.pieces_.push_back({std::string(text.substr(at, open - at)), {}, false});
        const std::size_t close = text.find("}}", open + 2);
        const std::string where = " at offset " + std::to_string(open);
        if (close == std::string_view::npos)
            throw std::invalid_argument("body_template: \"{{\" without \"}}\"" + where);

        std::string_view inside = trimmed(text.substr(open + 2, close - open - 2));
        Piece piece;
        if (const std::size_t bar = inside.find('|'); bar != std::string_view::npos) {
            const std::string_view filter = trimmed(inside.substr(bar + 1));
            if (filter != "json") {
                throw std::invalid_argument("body_template: unknown filter \"" +
                                            std::string(filter) + "\"" + where +
                                            " (the only filter is json)");
            }
            piece.as_json = true;
            inside = trimmed(inside.substr(0, bar));
        }
        if (inside.empty()) throw std::invalid_argument("body_template: empty placeholder" + where);
        std::size_t start = 0;
        while (start <= inside.size()) {
            const std::size_t dot = std::min(inside.find('.', start), inside.size());
            const std::string_view key = inside.substr(start, dot - start);
            if (key.empty())
                throw std::invalid_argument("body_template: empty key in a path" + where);
            for (const char c : key) {
                if (!is_path_char(c)) {
                    throw std::invalid_argument("body_template: unexpected character '" +
                                                std::string(1, c) + "' in a path" + where);
                }
            }
            piece.path.emplace_back(key);
            start = dot + 1;
        }
        parsed.pieces_.push_back(std::move(piece));
        at = close + 2;
    }
    return parsed;
}

std::string BodyTemplate::render(const json::object& alert, bool json_body) const {
    std::string out;
    for (const auto& piece : pieces_) {
        if (piece.path.empty()) {
            out += piece.literal;
            continue;
        }
        const json::value* value = value_at(alert, piece.path);
        if (piece.as_json) {
            out += value != nullptr ? json::serialize(*value) : "null";
            continue;
        }
        std::string text;
        if (value != nullptr && !value->is_null()) {
            text = value->is_string() ? std::string(value->get_string()) : json::serialize(*value);
        }
        // Escaping keeps an attacker's quote in an event field from ending the string
        // and adding keys of its own to the receiver's JSON.
        out += json_body ? json_escaped(text) : text;
    }
    return out;
}

bool is_json_content_type(std::string_view content_type) {
    const std::string media = lower(trimmed(content_type.substr(0, content_type.find(';'))));
    return media == "application/json" ||
           (media.starts_with("application/") && media.ends_with("+json"));
}

std::string hmac_sha256_hex(std::string_view key, std::string_view message) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
    std::size_t mac_size = 0;
    // EVP_Q_mac: OpenSSL 3's one-shot MAC, so no deprecated HMAC_CTX is needed.
    if (EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key.data(), key.size(),
                  reinterpret_cast<const unsigned char*>(message.data()), message.size(),
                  mac.data(), mac.size(), &mac_size) == nullptr) {
        throw std::runtime_error("HMAC-SHA256 failed");
    }
    static constexpr char kHex[] = "0123456789abcdef";
    std::string hex;
    hex.reserve(mac_size * 2);
    for (std::size_t i = 0; i < mac_size; ++i) {
        hex += kHex[mac[i] >> 4U];
        hex += kHex[mac[i] & 0x0fU];
    }
    return hex;
}

std::string signature(std::string_view secret, std::int64_t unix_seconds, std::string_view body) {
    std::string material = std::to_string(unix_seconds);
    material += '.';
    material += body;
    return "sha256=" + hmac_sha256_hex(secret, material);
}

void check_headers(const std::vector<std::pair<std::string, std::string>>& headers) {
    for (const auto& [name, value] : headers) {
        if (name.empty()) throw std::invalid_argument("headers: a header name is empty");
        for (const char c : name) {
            if (!is_token_char(c)) {
                throw std::invalid_argument("headers: \"" + name + "\" is not a valid header name");
            }
        }
        // Names may be shown; values may be secrets (tokens, keys) and are not.
        if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
            throw std::invalid_argument("headers: the value of \"" + name +
                                        "\" contains a line break or NUL");
        }
        const std::string key = lower(name);
        if (key == "content-type") {
            throw std::invalid_argument("headers: set the body's type with content_type, not a \"" +
                                        name + "\" header");
        }
        if (key == "host" || key == "content-length" || key == "transfer-encoding" ||
            key == "connection" || key.starts_with("x-tattle-")) {
            throw std::invalid_argument("headers: \"" + name +
                                        "\" is set by tattle and cannot be configured");
        }
    }
}

http::Request build_request(std::string_view alert_json, const RequestOptions& options,
                            std::int64_t unix_seconds) {
    boost::system::error_code error;
    const json::value alert = json::parse(alert_json, error);
    if (error) throw std::invalid_argument("the alert is not valid JSON: " + error.message());
    if (!alert.is_object()) throw std::invalid_argument("the alert is not a JSON object");

    http::Request request;
    request.method = options.method;
    if (options.body_template) {
        const bool json_body = is_json_content_type(options.content_type);
        request.body = options.body_template->render(alert.get_object(), json_body);
        if (json_body) {
            json::parse(request.body, error);
            if (error) {
                throw std::invalid_argument(
                    "body_template rendered a body that is not JSON (" + error.message() +
                    "); put text placeholders inside quotes or use {{path | json}}");
            }
        }
    } else {
        // The alert document exactly as the core made it.
        request.body = std::string(alert_json);
    }

    request.headers.emplace_back("Content-Type", options.content_type);
    for (const auto& header : options.headers) request.headers.push_back(header);
    if (const auto* id = alert.get_object().if_contains("alert_id");
        id != nullptr && id->is_string()) {
        // Lets a receiver drop a redelivered alert whatever the body looks like. Only
        // the core's hex ids: a header value must never carry a line break.
        const std::string_view text(id->get_string());
        if (!text.empty() && text.size() <= 128 &&
            std::all_of(text.begin(), text.end(), is_path_char)) {
            request.headers.emplace_back(kAlertIdHeader, std::string(text));
        }
    }
    if (!options.hmac_secret.empty()) {
        request.headers.emplace_back(kTimestampHeader, std::to_string(unix_seconds));
        request.headers.emplace_back(kSignatureHeader,
                                     signature(options.hmac_secret, unix_seconds, request.body));
    }
    return request;
}

}  // namespace tattle::sinks::webhook
