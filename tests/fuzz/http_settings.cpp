// The parsers tattle wrote around Beast, over server- and user-supplied text:
// Retry-After (a server's header), the proxy settings (environment), URLs (config), and
// the redaction of URLs for messages. Invariants: a Retry-After delay is never negative
// nor past the cap; parse errors are TransportError(InvalidRequest); what is meant for
// messages (origins, redacted URLs) never carries a URL's path, query or password.

#include <cctype>
#include <chrono>
#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "tattle/http/client.hpp"
#include "url_parts.hpp"

namespace {

using tattle::fuzz::require;
namespace http = tattle::http;

void check_retry_after(std::string_view value) {
    // A fixed clock, so an HTTP-date input gives the same delay every run.
    const auto now = std::chrono::sys_days(std::chrono::year{2026} / 1 / 1) + std::chrono::hours(12);
    const auto delay = http::parse_retry_after(value, now);
    if (delay) {
        require(delay->count() >= 0, "a negative Retry-After delay", value);
        require(*delay <= std::chrono::seconds(9'999'999'999LL), "a Retry-After delay past the cap", value);
    }
}

// The URL's path, query and fragment when they are long enough, and absent from the
// scheme and authority, that finding them in a message means they leaked. (The origin
// spells "scheme://host": a path like "//host..." is found in it without leaking.)
std::string secret_part_of(std::string_view url) {
    const auto scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos) return {};
    const std::string_view rest = url.substr(scheme_end + 3);
    const auto path_start = rest.find_first_of("/?#");
    if (path_start == std::string_view::npos) return {};
    const std::string_view secret = rest.substr(path_start + 1);
    if (secret.size() < 12) return {};
    // Compared lower-cased: the origin spells scheme and host in lower case.
    std::string before_path(url.substr(0, scheme_end + 3 + path_start));
    std::string lower_secret(secret);
    for (std::string* text : {&before_path, &lower_secret}) {
        for (char& c : *text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    if (before_path.find(lower_secret) != std::string::npos) return {};
    return std::string(secret);
}

// What parse_endpoint says about the URLs it refuses, learnt from the code itself: its messages
// are fixed texts, so a "path" that is a piece of one of them is found there without leaking.
bool in_a_fixed_url_message(std::string_view text) {
    static const std::vector<std::string> messages = [] {
        std::vector<std::string> found;
        for (const char* refused : {"not a URL", "ftp://host/", "http:///path", "http://host:99999/"}) {
            try {
                http::detail::parse_endpoint(refused);
            } catch (const http::TransportError& error) {
                found.emplace_back(error.what());
            }
        }
        return found;
    }();
    for (const auto& message : messages) {
        if (message.find(text) != std::string::npos) return true;
    }
    return false;
}

void check_url(std::string_view url) {
    const std::string secret = secret_part_of(url);
    try {
        const auto endpoint = http::detail::parse_endpoint(url);
        require(!endpoint.host.empty(), "an endpoint without a host", url);
        require(endpoint.port != 0, "an endpoint on port 0", url);
        require(!endpoint.target.empty() && endpoint.target[0] == '/', "a request target not starting with /", url);
        if (!secret.empty()) {
            require(endpoint.origin.find(secret) == std::string::npos, "the origin carries the URL's path", url);
        }
    } catch (const http::TransportError& error) {
        require(error.kind() == http::TransportError::Kind::InvalidRequest, "a URL error of the wrong kind", url);
        if (!secret.empty() && !in_a_fixed_url_message(secret)) {
            require(std::string_view(error.what()).find(secret) == std::string_view::npos,
                    "a URL error quotes the URL's path", url);
        }
    }
    const std::string redacted = http::redact_url(url);
    if (!secret.empty()) require(redacted.find(secret) == std::string::npos, "redact_url keeps the path", url);
}

void check_proxy(std::string_view value) {
    try {
        const auto proxy = http::detail::parse_proxy(value, "HTTPS_PROXY");
        require(!proxy.host.empty(), "a proxy without a host", value);
        // The origin is rebuilt from host and port: no user information in it.
        require(proxy.origin.rfind("http://", 0) == 0, "a proxy origin that is not http://", value);
        if (!proxy.authorization.empty() && value.find('@') != std::string_view::npos) {
            const std::string_view userinfo = value.substr(0, value.rfind('@'));
            const auto colon = userinfo.rfind(':');
            const std::string_view password = colon == std::string_view::npos ? std::string_view() : userinfo.substr(colon + 1);
            // After "http://", and ignoring case: the origin spells the host in lower case, and a
            // "password" cut across the scheme's "//" is found in any origin without leaking.
            std::string origin_host = proxy.origin.substr(std::string_view("http://").size());
            std::string host(proxy.host);
            std::string secret(password);
            for (std::string* text : {&origin_host, &host, &secret}) {
                for (char& c : *text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            }
            if (secret.size() >= 12 && host.find(secret) == std::string::npos) {
                require(origin_host.find(secret) == std::string::npos, "the proxy origin carries the password", value);
            }
        }
    } catch (const http::TransportError& error) {
        require(error.kind() == http::TransportError::Kind::InvalidRequest, "a proxy error of the wrong kind", value);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input = tattle::fuzz::as_text(data, size);
    check_retry_after(input);
    check_url(input);
    check_proxy(input);
    // NO_PROXY list, host and port: three lines.
    const auto parts = tattle::fuzz::split(input, '\n', 3);
    if (parts.size() == 3) {
        const auto port = static_cast<std::uint16_t>(parts[2].empty() ? 443 : static_cast<unsigned char>(parts[2][0]) * 257u);
        const bool matches = http::no_proxy_matches(parts[0], parts[1], port);
        require(matches == http::no_proxy_matches(parts[0], parts[1], port), "no_proxy_matches is not deterministic");
    }
    return 0;
}
