// URL handling: taking request and proxy URLs apart, redaction, NO_PROXY matching.

#include <arpa/inet.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <boost/url.hpp>
#include <cctype>
#include <charconv>
#include <optional>

#include "tattle/http/client.hpp"
#include "url_parts.hpp"

namespace tattle::http {

namespace {

namespace urls = boost::urls;

std::string lower(std::string_view text) {
    std::string result(text);
    std::transform(result.begin(), result.end(), result.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return result;
}

std::string_view trim(std::string_view text) {
    const auto first = text.find_first_not_of(" \t");
    if (first == std::string_view::npos) return {};
    const auto last = text.find_last_not_of(" \t");
    return text.substr(first, last - first + 1);
}

// scheme://host[:port] of a parsed URL; never the userinfo, path, query or fragment.
std::string origin_of(const urls::url_view& url) {
    std::string origin = lower(url.scheme());
    origin += "://";
    origin += lower(url.encoded_host());
    if (url.has_port()) {
        origin += ':';
        origin += url.port();
    }
    return origin;
}

std::string base64(std::string_view data) {
    std::string encoded(4 * ((data.size() + 2) / 3) + 1, '\0');
    const int length = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded.data()),
                                       reinterpret_cast<const unsigned char*>(data.data()),
                                       static_cast<int>(data.size()));
    encoded.resize(static_cast<std::size_t>(length));
    return encoded;
}

// The host as a resolver and a certificate check want it; empty when unusable.
std::string host_of(const urls::url_view& url) {
    switch (url.host_type()) {
        case urls::host_type::ipv4:
        case urls::host_type::ipv6:
            return url.host_address();
        case urls::host_type::name:
            return lower(url.host_name());
        default:
            return {};
    }
}

std::string authority_of(const std::string& host, bool ipv6, std::uint16_t port) {
    return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::optional<std::uint16_t> port_of(const urls::url_view& url, std::uint16_t default_port) {
    if (!url.has_port() || url.port().empty()) return default_port;
    const auto port = url.port();
    unsigned value = 0;
    const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (error != std::errc{} || end != port.data() + port.size() || value == 0 || value > 65535) {
        return std::nullopt;
    }
    return static_cast<std::uint16_t>(value);
}

struct IpAddress {
    int family = 0;
    std::array<unsigned char, 16> bytes{};
    unsigned bits = 0;
};

std::optional<IpAddress> parse_ip(std::string_view text) {
    const std::string copy(text);
    IpAddress address;
    if (::inet_pton(AF_INET, copy.c_str(), address.bytes.data()) == 1) {
        address.family = AF_INET;
        address.bits = 32;
        return address;
    }
    if (::inet_pton(AF_INET6, copy.c_str(), address.bytes.data()) == 1) {
        address.family = AF_INET6;
        address.bits = 128;
        return address;
    }
    return std::nullopt;
}

bool in_block(const IpAddress& address, const IpAddress& block, unsigned prefix_bits) {
    if (address.family != block.family || prefix_bits > block.bits) return false;
    const unsigned whole_bytes = prefix_bits / 8;
    if (!std::equal(block.bytes.begin(),
                    block.bytes.begin() + static_cast<std::ptrdiff_t>(whole_bytes),
                    address.bytes.begin())) {
        return false;
    }
    const unsigned rest = prefix_bits % 8;
    if (rest == 0) return true;
    const auto mask = static_cast<unsigned char>(0xFFU << (8 - rest));
    return (address.bytes.at(whole_bytes) & mask) == (block.bytes.at(whole_bytes) & mask);
}

// One NO_PROXY entry against the host; `entry` is trimmed and lower-cased.
bool entry_matches(std::string_view entry, std::string_view host, std::uint16_t port) {
    // An optional ":port": the last colon of "name:port", "[v6]:port" or "a.b.c.d:port"
    // (a bare IPv6 address has several colons and no port).
    std::string_view name = entry;
    if (entry.front() == '[') {
        const auto close = entry.find(']');
        if (close == std::string_view::npos) return false;
        name = entry.substr(1, close - 1);
        const auto after = entry.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':' || after.substr(1) != std::to_string(port)) return false;
        }
    } else if (std::count(entry.begin(), entry.end(), ':') == 1) {
        const auto colon = entry.find(':');
        name = entry.substr(0, colon);
        if (entry.substr(colon + 1) != std::to_string(port)) return false;
    }

    const auto host_ip = parse_ip(host);
    if (const auto slash = name.find('/'); slash != std::string_view::npos) {
        const auto block = parse_ip(name.substr(0, slash));
        const auto bits_text = name.substr(slash + 1);
        unsigned bits = 0;
        const auto [end, error] =
            std::from_chars(bits_text.data(), bits_text.data() + bits_text.size(), bits);
        if (!host_ip || !block || error != std::errc{} ||
            end != bits_text.data() + bits_text.size()) {
            return false;
        }
        return in_block(*host_ip, *block, bits);
    }
    if (host_ip) {
        const auto entry_ip = parse_ip(name);
        return entry_ip && in_block(*host_ip, *entry_ip, entry_ip->bits);
    }

    if (name.starts_with("*.")) name.remove_prefix(1);
    if (name.starts_with('.')) name.remove_prefix(1);
    if (name.empty()) return false;
    return host == name || (host.size() > name.size() && host.ends_with(name) &&
                            host.at(host.size() - name.size() - 1) == '.');
}

}  // namespace

std::string_view kind_name(TransportError::Kind kind) noexcept {
    switch (kind) {
        case TransportError::Kind::Resolve:
            return "resolve";
        case TransportError::Kind::Connect:
            return "connect";
        case TransportError::Kind::Tls:
            return "tls";
        case TransportError::Kind::Timeout:
            return "timeout";
        case TransportError::Kind::Protocol:
            return "protocol";
        case TransportError::Kind::TooLarge:
            return "too_large";
        case TransportError::Kind::InvalidRequest:
            return "invalid_request";
    }
    return "unknown";
}

std::string redact_url(std::string_view url) {
    const auto parsed = urls::parse_uri(url);
    if (!parsed || !parsed->has_authority()) return "(invalid URL)";
    return origin_of(*parsed);
}

bool no_proxy_matches(std::string_view no_proxy, std::string_view host, std::uint16_t port) {
    const std::string wanted_host = lower(host);
    while (!no_proxy.empty()) {
        const auto comma = no_proxy.find(',');
        const std::string entry = lower(trim(no_proxy.substr(0, comma)));
        no_proxy =
            comma == std::string_view::npos ? std::string_view{} : no_proxy.substr(comma + 1);
        if (entry.empty()) continue;
        if (entry == "*") return true;
        if (entry_matches(entry, wanted_host, port)) return true;
    }
    return false;
}

namespace detail {

bool is_ip_literal(std::string_view host) { return parse_ip(host).has_value(); }

Endpoint parse_endpoint(std::string_view url) {
    using Kind = TransportError::Kind;
    const auto parsed = urls::parse_uri(url);
    // The URL itself may be the secret, so no part of it goes into these messages.
    if (!parsed) throw TransportError(Kind::InvalidRequest, "the URL is not a valid absolute URL");
    const auto& view = *parsed;
    Endpoint endpoint;
    if (view.scheme_id() == urls::scheme::https) {
        endpoint.tls = true;
    } else if (view.scheme_id() == urls::scheme::http) {
        endpoint.tls = false;
    } else {
        throw TransportError(Kind::InvalidRequest, "the URL's scheme is not http or https");
    }
    endpoint.host = host_of(view);
    if (endpoint.host.empty())
        throw TransportError(Kind::InvalidRequest, "the URL has no usable host");
    const auto port = port_of(view, endpoint.tls ? 443 : 80);
    if (!port) throw TransportError(Kind::InvalidRequest, "the URL's port is not valid");
    endpoint.port = *port;

    const bool ipv6 = view.host_type() == urls::host_type::ipv6;
    endpoint.host_is_ip = ipv6 || view.host_type() == urls::host_type::ipv4;
    endpoint.authority = authority_of(endpoint.host, ipv6, endpoint.port);
    const bool default_port = endpoint.port == (endpoint.tls ? 443 : 80);
    endpoint.host_header =
        default_port ? (ipv6 ? "[" + endpoint.host + "]" : endpoint.host) : endpoint.authority;
    endpoint.target = view.encoded_target();
    if (endpoint.target.empty()) endpoint.target = "/";
    // Boost.URL 1.81 takes "https://[::1]:8h443/x" as port 8 and the rootless path
    // "h443/x", which is no URL (RFC 3986: a path after an authority starts with '/')
    // and would go out as a malformed request line.
    if (endpoint.target.front() != '/' && endpoint.target.front() != '?') {
        throw TransportError(Kind::InvalidRequest, "the URL is not a valid absolute URL");
    }
    if (endpoint.target.front() == '?') endpoint.target.insert(0, "/");
    endpoint.origin = (endpoint.tls ? "https://" : "http://") + endpoint.authority;
    return endpoint;
}

ProxyEndpoint parse_proxy(std::string_view value, std::string_view setting_name) {
    using Kind = TransportError::Kind;
    const std::string setting(setting_name);
    std::string text(trim(value));
    if (text.find("://") == std::string::npos) text = "http://" + text;
    const auto parsed = urls::parse_uri(text);
    if (!parsed) throw TransportError(Kind::InvalidRequest, setting + " is not a valid proxy URL");
    const auto& view = *parsed;
    if (view.scheme_id() != urls::scheme::http) {
        throw TransportError(
            Kind::InvalidRequest,
            setting + " must be an http:// proxy (TLS to the proxy itself is not supported), not " +
                redact_url(text));
    }
    ProxyEndpoint proxy;
    proxy.host = host_of(view);
    // curl's default proxy port, so the same variable means the same proxy to both.
    const auto port = port_of(view, 1080);
    if (proxy.host.empty() || !port) {
        throw TransportError(Kind::InvalidRequest, setting + " has no usable host and port");
    }
    proxy.port = *port;
    proxy.origin =
        "http://" + authority_of(proxy.host, view.host_type() == urls::host_type::ipv6, proxy.port);
    if (view.has_userinfo()) {
        proxy.authorization = "Basic " + base64(view.user() + ":" + view.password());
    }
    return proxy;
}

}  // namespace detail

}  // namespace tattle::http
