#include "tattle/aws/sigv4.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <ctime>
#include <map>
#include <stdexcept>

namespace tattle::aws {

namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";

bool is_unreserved(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_' || c == '~';
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

void append_escape(std::string& out, unsigned char byte) {
    constexpr std::string_view digits = "0123456789ABCDEF";
    out += '%';
    out += digits[byte >> 4U];
    out += digits[byte & 0x0FU];
}

std::string lower(std::string_view text) {
    std::string result(text);
    std::transform(result.begin(), result.end(), result.begin(),
                   [](unsigned char c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c); });
    return result;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) { return lower(a) == lower(b); }

// Trimall: leading and trailing whitespace removed, inner runs (folded lines included)
// reduced to one space.
std::string trim_all(std::string_view value) {
    std::string result;
    bool pending_space = false;
    for (const char c : value) {
        if (is_space(c)) {
            pending_space = !result.empty();
            continue;
        }
        if (pending_space) result += ' ';
        pending_space = false;
        result += c;
    }
    return result;
}

// Hop-by-hop headers, and the ones the HTTP client writes itself (framing, User-Agent):
// a proxy or the client may change them after signing.
bool is_unsigned_header(std::string_view lower_name) {
    static constexpr std::array<std::string_view, 14> names = {
        "authorization", "connection", "content-length", "expect", "keep-alive", "proxy-authenticate",
        "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade", "user-agent", "x-amzn-trace-id", ""};
    return std::find(names.begin(), names.end(), lower_name) != names.end();
}

struct UrlParts {
    bool https = false;
    std::string_view authority;
    std::string_view path;
    std::string_view query;
};

// A lenient split of an absolute URL: the signer must accept whatever the caller will send,
// and the HTTP client does the strict validation.
UrlParts split_url(std::string_view url) {
    UrlParts parts;
    const auto scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos) throw std::invalid_argument("the URL to sign is not absolute");
    const std::string scheme = lower(url.substr(0, scheme_end));
    if (scheme != "https" && scheme != "http") throw std::invalid_argument("the URL to sign is not http or https");
    parts.https = scheme == "https";
    std::string_view rest = url.substr(scheme_end + 3);
    if (const auto fragment = rest.find('#'); fragment != std::string_view::npos) rest = rest.substr(0, fragment);
    const auto authority_end = rest.find_first_of("/?");
    parts.authority = rest.substr(0, authority_end);
    if (parts.authority.empty()) throw std::invalid_argument("the URL to sign has no host");
    rest = authority_end == std::string_view::npos ? std::string_view{} : rest.substr(authority_end);
    const auto query_start = rest.find('?');
    parts.path = rest.substr(0, query_start);
    if (query_start != std::string_view::npos) parts.query = rest.substr(query_start + 1);
    return parts;
}

// The Host header as the HTTP client sends it: no user info, no default port.
std::string host_header(const UrlParts& url) {
    std::string_view authority = url.authority;
    if (const auto at = authority.rfind('@'); at != std::string_view::npos) authority = authority.substr(at + 1);
    const std::string_view default_port = url.https ? ":443" : ":80";
    const auto closing_bracket = authority.rfind(']');
    const auto colon = authority.rfind(':');
    const bool has_port = colon != std::string_view::npos &&
                          (closing_bracket == std::string_view::npos || colon > closing_bracket);
    if (has_port && authority.substr(colon) == default_port) authority = authority.substr(0, colon);
    return std::string(authority);
}

// S3 signs the path as sent; bytes the caller left unencoded are encoded here so the
// canonical form is still what a well-formed request line would carry.
std::string s3_canonical_path(std::string_view path) {
    if (path.empty()) return "/";
    std::string result;
    result.reserve(path.size());
    for (std::size_t i = 0; i < path.size(); ++i) {
        const auto c = static_cast<unsigned char>(path[i]);
        if (c == '%' && i + 2 < path.size() && hex_value(path[i + 1]) >= 0 && hex_value(path[i + 2]) >= 0) {
            append_escape(result, static_cast<unsigned char>(hex_value(path[i + 1]) * 16 + hex_value(path[i + 2])));
            i += 2;
        } else if (is_unreserved(c) || c == '/') {
            result += static_cast<char>(c);
        } else {
            append_escape(result, c);
        }
    }
    return result;
}

std::string canonical_path(std::string_view path, bool s3_rules) {
    if (s3_rules) return s3_canonical_path(path);
    return uri_encode(normalize_path(path), true);
}

// Each name and value decoded and re-encoded, so that any valid encoding of the same
// query signs the same; pairs sorted by encoded name, then encoded value.
std::string canonical_query(std::string_view query) {
    std::vector<std::pair<std::string, std::string>> pairs;
    while (!query.empty()) {
        const auto amp = query.find('&');
        const std::string_view piece = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        if (piece.empty()) continue;
        const auto equals = piece.find('=');
        const std::string_view name = piece.substr(0, equals);
        const std::string_view value = equals == std::string_view::npos ? std::string_view{} : piece.substr(equals + 1);
        pairs.emplace_back(uri_encode(uri_decode(name)), uri_encode(uri_decode(value)));
    }
    std::sort(pairs.begin(), pairs.end());
    std::string result;
    for (const auto& [name, value] : pairs) {
        if (!result.empty()) result += '&';
        result += name;
        result += '=';
        result += value;
    }
    return result;
}

void erase_header(http::Request& request, std::string_view name) {
    std::erase_if(request.headers, [&](const auto& header) { return equals_ignoring_case(header.first, name); });
}

bool has_header(const http::Request& request, std::string_view name) {
    return std::any_of(request.headers.begin(), request.headers.end(),
                       [&](const auto& header) { return equals_ignoring_case(header.first, name); });
}

std::string digest(std::string_view data) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
    unsigned int length = 0;
    if (EVP_Digest(data.data(), data.size(), out.data(), &length, EVP_sha256(), nullptr) != 1) {
        throw std::runtime_error("SHA-256 failed (OpenSSL)");
    }
    return std::string(reinterpret_cast<const char*>(out.data()), length);
}

}  // namespace

std::string uri_encode(std::string_view text, bool keep_slashes) {
    std::string result;
    result.reserve(text.size() + text.size() / 2);
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        if (is_unreserved(c) || (keep_slashes && c == '/')) {
            result += ch;
        } else {
            append_escape(result, c);
        }
    }
    return result;
}

std::string uri_decode(std::string_view text) {
    std::string result;
    result.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 &&
            hex_value(text[i + 2]) >= 0) {
            result += static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
            i += 2;
        } else {
            result += text[i];
        }
    }
    return result;
}

std::string form_encode(const std::vector<std::pair<std::string, std::string>>& parameters) {
    std::string result;
    for (const auto& [name, value] : parameters) {
        if (!result.empty()) result += '&';
        result += uri_encode(name);
        result += '=';
        result += uri_encode(value);
    }
    return result;
}

std::string form_body_encode(const std::vector<std::pair<std::string, std::string>>& parameters) {
    std::string result;
    for (const auto& [name, value] : parameters) {
        if (!result.empty()) result += '&';
        for (const auto* part : {&name, &value}) {
            // uri_encode writes '%' as %25, so every %20 it writes stands for a space.
            const std::string encoded = uri_encode(*part);
            for (std::size_t i = 0; i < encoded.size(); ++i) {
                if (encoded.compare(i, 3, "%20") == 0) {
                    result += '+';
                    i += 2;
                } else {
                    result += encoded[i];
                }
            }
            if (part == &name) result += '=';
        }
    }
    return result;
}

std::string sha256_hex(std::string_view data) { return to_hex(digest(data)); }

std::string hmac_sha256(std::string_view key, std::string_view data) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
    unsigned int length = 0;
    if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
             data.size(), out.data(), &length) == nullptr) {
        throw std::runtime_error("HMAC-SHA256 failed (OpenSSL)");
    }
    return std::string(reinterpret_cast<const char*>(out.data()), length);
}

std::string to_hex(std::string_view bytes) {
    constexpr std::string_view digits = "0123456789abcdef";
    std::string result;
    result.reserve(bytes.size() * 2);
    for (const char ch : bytes) {
        const auto c = static_cast<unsigned char>(ch);
        result += digits[c >> 4U];
        result += digits[c & 0x0FU];
    }
    return result;
}

std::string amz_date(std::chrono::system_clock::time_point time) {
    const std::time_t seconds = std::chrono::system_clock::to_time_t(time);
    std::tm utc{};
    if (gmtime_r(&seconds, &utc) == nullptr) throw std::invalid_argument("the signing time is out of range");
    std::array<char, 32> text{};
    const auto length = std::strftime(text.data(), text.size(), "%Y%m%dT%H%M%SZ", &utc);
    return std::string(text.data(), length);
}

std::string signing_key(std::string_view secret_access_key, std::string_view date, std::string_view region,
                        std::string_view service) {
    const std::string date_key = hmac_sha256("AWS4" + std::string(secret_access_key), date);
    const std::string region_key = hmac_sha256(date_key, region);
    const std::string service_key = hmac_sha256(region_key, service);
    return hmac_sha256(service_key, "aws4_request");
}

std::string normalize_path(std::string_view path) {
    if (path.empty()) return "/";
    std::vector<std::string_view> segments;
    std::string_view rest = path;
    while (true) {
        const auto slash = rest.find('/');
        const std::string_view segment = rest.substr(0, slash);
        if (segment == "..") {
            if (!segments.empty()) segments.pop_back();
        } else if (!segment.empty() && segment != ".") {
            segments.push_back(segment);
        }
        if (slash == std::string_view::npos) break;
        rest = rest.substr(slash + 1);
    }
    std::string result = path.front() == '/' ? "/" : "";
    for (std::size_t i = 0; i < segments.size(); ++i) {
        if (i > 0) result += '/';
        result += segments[i];
    }
    // Like botocore: a trailing slash survives only when something is left before it.
    if (path.back() == '/' && !segments.empty()) result += '/';
    return result;
}

SignatureParts sign_request(http::Request& request, const Credentials& credentials, const SigningOptions& options) {
    if (credentials.access_key_id.empty() || credentials.secret_access_key.empty()) {
        throw std::invalid_argument("cannot sign: the credentials have no access key id or no secret key");
    }
    if (options.service.empty() || options.region.empty()) {
        throw std::invalid_argument("cannot sign: the service or the region is empty");
    }
    const UrlParts url = split_url(request.url);
    const bool s3_rules = options.s3_rules.value_or(options.service == "s3");
    const std::string date_time = amz_date(options.time.value_or(std::chrono::system_clock::now()));
    const std::string date = date_time.substr(0, 8);
    const std::string payload_hash = options.unsigned_payload ? std::string(kUnsignedPayload) : sha256_hex(request.body);

    // A retried request carries the previous attempt's signature headers: replace them.
    erase_header(request, "authorization");
    erase_header(request, "x-amz-date");
    request.headers.emplace_back("X-Amz-Date", date_time);
    if (!credentials.session_token.empty()) {
        erase_header(request, "x-amz-security-token");
        request.headers.emplace_back("X-Amz-Security-Token", credentials.session_token);
    }
    if (s3_rules) {
        erase_header(request, "x-amz-content-sha256");
        request.headers.emplace_back("X-Amz-Content-SHA256", payload_hash);
    }
    if (!has_header(request, "host")) request.headers.emplace_back("Host", host_header(url));

    std::map<std::string, std::string> canonical_headers;  // sorted by lower-case name
    for (const auto& [name, value] : request.headers) {
        std::string lower_name = lower(trim_all(name));
        if (is_unsigned_header(lower_name)) continue;
        auto [entry, inserted] = canonical_headers.try_emplace(std::move(lower_name), trim_all(value));
        if (!inserted) {
            entry->second += ',';
            entry->second += trim_all(value);
        }
    }

    SignatureParts parts;
    std::string header_block;
    for (const auto& [name, value] : canonical_headers) {
        header_block += name + ':' + value + '\n';
        if (!parts.signed_headers.empty()) parts.signed_headers += ';';
        parts.signed_headers += name;
    }

    parts.canonical_request = request.method + '\n' + canonical_path(url.path, s3_rules) + '\n' +
                              canonical_query(url.query) + '\n' + header_block + '\n' + parts.signed_headers + '\n' +
                              payload_hash;
    const std::string scope = date + '/' + options.region + '/' + options.service + "/aws4_request";
    parts.string_to_sign =
        std::string(kAlgorithm) + '\n' + date_time + '\n' + scope + '\n' + sha256_hex(parts.canonical_request);
    parts.signature =
        to_hex(hmac_sha256(signing_key(credentials.secret_access_key, date, options.region, options.service),
                           parts.string_to_sign));
    parts.authorization = std::string(kAlgorithm) + " Credential=" + credentials.access_key_id + '/' + scope +
                          ", SignedHeaders=" + parts.signed_headers + ", Signature=" + parts.signature;
    request.headers.emplace_back("Authorization", parts.authorization);
    return parts;
}

}  // namespace tattle::aws
