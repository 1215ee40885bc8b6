#pragma once

// AWS Signature Version 4 for header authorisation (static library tattle::aws).
//
// Signs a tattle::http::Request in place: adds Host (when absent), X-Amz-Date,
// X-Amz-Security-Token (session credentials), X-Amz-Content-SHA256 (S3) and
// Authorization. Every header present when signing is signed, except the hop-by-hop
// and client-owned ones (User-Agent, Content-Length, Transfer-Encoding, …), so headers
// added later (by the HTTP client) do not break the signature.
//
// The URL must be in its wire form: path and query percent-encoded once, as produced
// by uri_encode() below. Non-S3 services sign that path normalised and encoded a
// second time; S3 signs it as sent.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tattle/http/client.hpp"

namespace tattle::aws {

struct Credentials {
    std::string access_key_id;
    std::string secret_access_key;
    std::string session_token;  // empty for long-term keys
    // Temporary credentials only: when they stop working.
    std::optional<std::chrono::system_clock::time_point> expiration;
    // Where they came from, for messages: "environment", "profile \"dev\" in /home/x/.aws/credentials", …
    std::string source;
};

inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";

struct SigningOptions {
    std::string service;  // the signing name: "s3", "sqs", "sns", "ses", "sts", …
    std::string region;
    // Signing time; now when unset.
    std::optional<std::chrono::system_clock::time_point> time;
    // S3's rules: the path signed as sent (no dot-segment removal, no second encoding)
    // and the payload hash sent in X-Amz-Content-SHA256. Unset: on exactly for "s3".
    std::optional<bool> s3_rules;
    // Sign "UNSIGNED-PAYLOAD" instead of the body's hash (S3 over TLS, large bodies).
    bool unsigned_payload = false;
};

// The intermediate strings, kept for tests and for debugging a refused signature
// (none of them contains the secret key).
struct SignatureParts {
    std::string canonical_request;
    std::string string_to_sign;
    std::string signed_headers;
    std::string signature;      // lower-case hex
    std::string authorization;  // the Authorization header's value
};

// Signs `request` in place (see above) and returns the parts. Throws std::invalid_argument
// when the credentials, service, region or URL are unusable; messages never hold secrets.
SignatureParts sign_request(http::Request& request, const Credentials& credentials, const SigningOptions& options);

// RFC 3986 percent-encoding as SigV4 wants it: A-Z a-z 0-9 - . _ ~ kept, every other
// byte as %XX (upper-case hex); '/' kept only when asked (S3 keys in paths).
std::string uri_encode(std::string_view text, bool keep_slashes = false);

// Percent-decoding; '+' stays '+' (SigV4 never writes a space as '+').
std::string uri_decode(std::string_view text);

// "k1=v1&k2=v2" with both sides uri_encode()d, in the given order: query strings and the
// bodies of Query-protocol calls (STS, SNS, SES).
std::string form_encode(const std::vector<std::pair<std::string, std::string>>& parameters);
// The same as an application/x-www-form-urlencoded body, the way the AWS SDKs write
// Query-protocol bodies: a space is '+'. (AWS hashes the body as sent either way; moto
// re-encodes the parsed form like this to check the signature.)
std::string form_body_encode(const std::vector<std::pair<std::string, std::string>>& parameters);

// The SigV4 steps, exposed for tests and for callers with unusual needs.
std::string sha256_hex(std::string_view data);
std::string hmac_sha256(std::string_view key, std::string_view data);  // raw 32 bytes
std::string to_hex(std::string_view bytes);
std::string amz_date(std::chrono::system_clock::time_point time);  // 20150830T123600Z
std::string signing_key(std::string_view secret_access_key, std::string_view date, std::string_view region,
                        std::string_view service);  // raw 32 bytes; date is YYYYMMDD

// RFC 3986 remove_dot_segments plus the collapsing of empty segments ("//") that AWS
// services other than S3 apply to the path before signing.
std::string normalize_path(std::string_view path);

}  // namespace tattle::aws
