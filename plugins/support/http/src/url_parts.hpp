#pragma once

// What the client needs from a URL, taken apart once. Internal to tattle::http.

#include <cstdint>
#include <string>
#include <string_view>

namespace tattle::http::detail {

struct Endpoint {
    bool tls = true;
    std::string host;  // for DNS, SNI and certificate checks: an IPv6 address has no brackets
    bool host_is_ip = false;  // SNI must not carry an IP address (RFC 6066)
    std::uint16_t port = 0;
    std::string authority;    // host:port, brackets around IPv6: the CONNECT target
    std::string host_header;  // the port only when it is not the scheme's default
    std::string target;       // path and query, "/" when empty; a secret, never printed
    std::string origin;       // scheme://host:port, safe for messages
};

// Throws TransportError(InvalidRequest) for anything but an absolute http(s) URL with a host.
Endpoint parse_endpoint(std::string_view url);

struct ProxyEndpoint {
    std::string host;
    std::uint16_t port = 0;
    std::string authorization;  // a Proxy-Authorization value from the URL's user:password
    std::string origin;         // for messages, without the credentials
};

// "http://[user:password@]host[:port][/]" or "host:port"; throws TransportError(InvalidRequest).
ProxyEndpoint parse_proxy(std::string_view value, std::string_view setting_name);

bool is_ip_literal(std::string_view host);

}  // namespace tattle::http::detail
