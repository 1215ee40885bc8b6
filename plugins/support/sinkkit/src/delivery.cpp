#include "tattle/sinkkit/delivery.hpp"

#include <algorithm>
#include <exception>

namespace tattle::sinkkit {

sdk::SendResult deliver(const Transport& transport, const http::Request& request,
                        const TransportFailureWording& wording,
                        const ResponseMapper& map_response) {
    http::Response response;
    try {
        response = transport(request);
    } catch (const http::TransportError& e) {
        if (e.kind() == http::TransportError::Kind::InvalidRequest) {
            // A malformed URL or a refused setting: the same request can never go out.
            return sdk::SendResult::fail(std::string(wording.cannot_send) + e.what());
        }
        // DNS, connect, TLS, timeout: the next attempt may well get through.
        return sdk::SendResult::retry(std::string(wording.not_reached) + e.what());
    } catch (const std::exception& e) {
        return sdk::SendResult::retry(std::string(wording.not_reached) + e.what());
    }
    std::optional<std::chrono::milliseconds> retry_after;
    if (const auto value = response.header("retry-after"))
        retry_after = http::parse_retry_after(*value);
    return map_response(response.status, response.body, retry_after);
}

http::ClientOptions https_client_options(const sdk::Host& host, std::chrono::milliseconds timeout,
                                         const std::string& ca_file, bool insecure_skip_verify) {
    http::ClientOptions options;
    options.verify_peer = !insecure_skip_verify;
    options.ca_file = ca_file;
    options.total_timeout = timeout;
    options.connect_timeout = std::min(timeout, std::chrono::milliseconds(5000));
    if (insecure_skip_verify) {
        host.warn(
            "TLS certificate verification is OFF for this destination (insecure_skip_verify = "
            "true)");
    }
    return options;
}

}  // namespace tattle::sinkkit
