#pragma once

// Builds the HTTP request the generic webhook sink sends for one alert: the body
// (the alert document, or a body template rendered over it), the configured
// headers, and an optional HMAC-SHA256 signature. Pure functions apart from
// OpenSSL's HMAC: the same inputs always give the same bytes.

#include <boost/json.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tattle/http/client.hpp"

namespace tattle::sinks::webhook {

inline constexpr const char* kSignatureHeader = "X-Tattle-Signature";
inline constexpr const char* kTimestampHeader = "X-Tattle-Timestamp";
inline constexpr const char* kAlertIdHeader = "X-Tattle-Alert-Id";

// A small template over the alert document, for receivers that want their own shape
// (Teams, Discord, Opsgenie):
//   {{rule.name}}          the value at that path: strings as they are, other values
//                          as compact JSON, absent paths as nothing. JSON-escaped
//                          (without quotes) when the body is JSON, so it belongs
//                          inside a JSON string: "text": "{{annotation}}"
//   {{event | json}}       the value as a JSON literal (strings quoted, absent = null),
//                          for a whole object or a value outside quotes
// Paths are keys joined by dots; a number picks an array element
// (event.resources.0.ARN). Spaces inside the braces are allowed.
class BodyTemplate {
public:
    // Throws std::invalid_argument saying what is wrong and at which offset.
    static BodyTemplate parse(std::string_view text);

    std::string render(const boost::json::object& alert, bool json_body) const;

private:
    struct Piece {
        std::string literal;            // text copied as is, when path is empty
        std::vector<std::string> path;  // a placeholder, when not empty
        bool as_json = false;           // {{path | json}}
    };
    std::vector<Piece> pieces_;
};

// application/json, application/vnd.foo+json, "Application/JSON; charset=utf-8"…
bool is_json_content_type(std::string_view content_type);

// Lower-case hex of HMAC-SHA256(key, message).
std::string hmac_sha256_hex(std::string_view key, std::string_view message);

// The X-Tattle-Signature value: "sha256=" + hex HMAC-SHA256(secret, "<timestamp>.<body>").
// The timestamp is signed with the body so a captured request cannot be replayed later
// with a fresh timestamp.
std::string signature(std::string_view secret, std::int64_t unix_seconds, std::string_view body);

struct RequestOptions {
    std::string method = "POST";
    // A key of its own, not a header: header values are secrets, and the host would
    // then redact "application/json" from every log line.
    std::string content_type = "application/json";
    // From the config, in its order.
    std::vector<std::pair<std::string, std::string>> headers;
    std::string hmac_secret;  // empty: no signature
    std::optional<BodyTemplate> body_template;
};

// Throws std::invalid_argument (never quoting a header value) when a header name is
// not an HTTP token, a value holds CR, LF or NUL, or the header is one the transport
// or tattle sets (Host, Content-Length, Transfer-Encoding, Connection, Content-Type,
// X-Tattle-*).
void check_headers(const std::vector<std::pair<std::string, std::string>>& headers);

// The request for one alert (url left empty: the caller owns the secret URL).
// Throws std::invalid_argument when the alert is not JSON, or when a JSON body
// template rendered something that is not JSON.
http::Request build_request(std::string_view alert_json, const RequestOptions& options,
                            std::int64_t unix_seconds);

}  // namespace tattle::sinks::webhook
