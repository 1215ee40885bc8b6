#pragma once

// The HTTPS client shared by sink plugins (static library tattle::http).
// Boost.Beast over OpenSSL with Asio; synchronous calls with deadlines, so a sink's
// send() stays a plain function call and the core keeps owning timing and retries.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tattle::http {

struct ClientOptions {
    // Verify the peer's certificate chain and host name (on unless the config says
    // `insecure_skip_verify = true` in those words).
    bool verify_peer = true;
    // PEM file of extra trusted CAs (private CAs, test CAs); the system store is used too.
    std::string ca_file;
    std::chrono::milliseconds connect_timeout{5000};
    std::chrono::milliseconds total_timeout{15000};  // connect + TLS + request + response
    std::size_t max_response_bytes = 1 << 20;        // bodies above this are an error
    // Proxy: taken from HTTPS_PROXY / https_proxy and NO_PROXY / no_proxy when unset; an
    // empty value means none. An http:// proxy (user:password in it becomes
    // Proxy-Authorization) tunnels https:// requests with CONNECT; plain http:// requests
    // never use it.
    std::optional<std::string> https_proxy;
    std::optional<std::string> no_proxy;
    std::string user_agent = "tattle/0.1";
};

struct Request {
    std::string method = "POST";
    std::string url;  // https://host[:port]/path?query (http:// only when allowed below)
    // Host and User-Agent replace the defaults; Content-Length and Transfer-Encoding are
    // ignored (the client frames the body); a value with CR or LF is refused.
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
};

struct Response {
    int status = 0;
    std::multimap<std::string, std::string> headers;  // names lower-cased
    std::string body;

    // The first header with this (lower-case) name, if any.
    std::optional<std::string> header(std::string_view name) const;
};

// Transport failures (DNS, connect, TLS, timeout, oversize). what() never contains
// the URL's path or query (webhook URLs are secrets): only scheme, host and port.
// InvalidRequest can never succeed as given (a malformed URL, a refused scheme, a header
// with a line break, an unusable proxy setting): a sink should FAIL rather than RETRY it.
class TransportError : public std::runtime_error {
public:
    enum class Kind { Resolve, Connect, Tls, Timeout, Protocol, TooLarge, InvalidRequest };
    TransportError(Kind kind, const std::string& message)
        : std::runtime_error(message), kind_(kind) {}
    Kind kind() const noexcept { return kind_; }

private:
    Kind kind_;
};

// "timeout", "tls", … (for logs and metrics labels).
std::string_view kind_name(TransportError::Kind kind) noexcept;

// Parses a Retry-After header value (delta-seconds or HTTP-date) into a delay.
// A date in the past gives zero; a value that is neither gives nullopt.
std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value);
// The same, with the clock passed in (tests).
std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now);

// True when `host` (no brackets) at `port` is exempt from the proxy by a NO_PROXY value:
// comma-separated entries, each `*`, a domain (`example.com` and `.example.com` both match
// the domain and its subdomains), an IP address, or a CIDR block; an entry may end in
// `:port`. Case-insensitive.
bool no_proxy_matches(std::string_view no_proxy, std::string_view host, std::uint16_t port);

// "https://hooks.slack.com/…" → "https://hooks.slack.com" (for logs and errors).
std::string redact_url(std::string_view url);

// Keeps one kept-alive connection per host:port and reuses it; not thread-safe
// (one client per sink instance, or per worker thread).
class Client {
public:
    explicit Client(ClientOptions options = {});
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;
    Client(Client&&) noexcept;
    Client& operator=(Client&&) noexcept;

    // Sends the request and reads the whole response (any status; redirects are not
    // followed). Throws TransportError.
    // A stale kept-alive connection is retried once on a fresh one for idempotent
    // reuse failures (connection closed before any response byte).
    Response send(const Request& request);

    // Plain http:// is refused unless allowed (tests, local receivers).
    void allow_plain_http(bool allow) noexcept;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace tattle::http
