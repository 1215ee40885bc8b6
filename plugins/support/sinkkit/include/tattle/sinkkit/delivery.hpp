#pragma once

// One delivery attempt of an HTTP sink: send the request over a transport, turn a
// transport failure into retry or fail, and hand a response to the sink's own
// mapping. Also the HTTPS client options every HTTP sink builds from its config.

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "tattle/http/client.hpp"
#include "tattle/sdk.hpp"

namespace tattle::sinkkit {

// Sends one request and returns the whole response; throws http::TransportError.
using Transport = std::function<http::Response(const http::Request&)>;

// A receiver's answer → the core's next step: status, body, parsed Retry-After.
using ResponseMapper = std::function<sdk::SendResult(
    int status, std::string_view body, std::optional<std::chrono::milliseconds> retry_after)>;

// How a sink words a transport failure; each is followed by the error's what().
struct TransportFailureWording {
    std::string_view cannot_send;  // the request can never go out (InvalidRequest): fail
    std::string_view not_reached;  // DNS, connect, TLS, timeout, anything else: retry
};

// Sends request once. A TransportError of kind InvalidRequest fails; any other
// exception is retried; a response goes to map_response with its Retry-After.
sdk::SendResult deliver(const Transport& transport, const http::Request& request,
                        const TransportFailureWording& wording,
                        const ResponseMapper& map_response);

// Client options from a sink's TLS and timeout settings (connect timeout capped at
// 5 s); warns through host when certificate verification is turned off.
http::ClientOptions https_client_options(const sdk::Host& host, std::chrono::milliseconds timeout,
                                         const std::string& ca_file, bool insecure_skip_verify);

}  // namespace tattle::sinkkit
