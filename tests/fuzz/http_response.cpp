// The HTTP client reading whatever a server sends: the input is the server's whole
// answer (status line, headers, body, chunked or not), served by a local TCP server on
// a thread and read over plain HTTP by one Client for the whole run (building a Client
// loads the system's CA store, which would dominate each execution). The server closes
// every connection after its answer, so a kept-alive connection is stale at the next
// input, as after a server's idle timeout. The client returns a Response
// (status 100-599, lower-case header names, body within max_response_bytes) or throws
// TransportError; any other outcome, or a sanitizer report, is a finding.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <mutex>
#include <string>
#include <thread>

#include "fuzz_support.hpp"
#include "tattle/http/client.hpp"

namespace {

using tattle::fuzz::require;

class AnsweringServer {
public:
    AnsweringServer() {
        listener_ = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t length = sizeof(address);
        if (listener_ < 0 || bind(listener_, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
            listen(listener_, 16) != 0 || getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
            tattle::fuzz::finding("cannot listen on 127.0.0.1");
        }
        port_ = ntohs(address.sin_port);
        std::thread([this] { serve(); }).detach();
    }

    std::uint16_t port() const { return port_; }

    // The answer for the connections from now on.
    void answer_with(std::string_view response) {
        std::lock_guard lock(mutex_);
        response_ = std::string(response);
    }

private:
    void serve() {
        for (;;) {
            const int connection = accept(listener_, nullptr, nullptr);
            if (connection < 0) continue;
            // The request: read up to the end of its header (the client sends no body).
            std::string request;
            char buffer[4096];
            while (request.find("\r\n\r\n") == std::string::npos) {
                const ssize_t got = read(connection, buffer, sizeof(buffer));
                if (got <= 0) break;
                request.append(buffer, static_cast<std::size_t>(got));
            }
            std::string response;
            {
                std::lock_guard lock(mutex_);
                response = response_;
            }
            std::size_t sent = 0;
            while (sent < response.size()) {
                const ssize_t wrote = send(connection, response.data() + sent, response.size() - sent, MSG_NOSIGNAL);
                if (wrote <= 0) break;
                sent += static_cast<std::size_t>(wrote);
            }
            // The whole request was read, so closing sends a FIN, not a reset.
            shutdown(connection, SHUT_WR);
            close(connection);
        }
    }

    int listener_ = -1;
    std::uint16_t port_ = 0;
    std::mutex mutex_;
    std::string response_;
};

constexpr std::size_t kMaxResponseBytes = 16 * 1024;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static AnsweringServer server;
    static tattle::http::Client client = [] {
        tattle::http::ClientOptions options;
        options.max_response_bytes = kMaxResponseBytes;
        options.total_timeout = std::chrono::milliseconds(5000);
        tattle::http::Client built(options);
        built.allow_plain_http(true);
        return built;
    }();
    const std::string_view answer = tattle::fuzz::as_text(data, size);
    server.answer_with(answer);
    {
        tattle::http::Request request;
        request.method = "GET";
        request.url = "http://127.0.0.1:" + std::to_string(server.port()) + "/webhook/secret-path";
        try {
            const tattle::http::Response response = client.send(request);
            require(response.status >= 100 && response.status <= 599, "a status outside 100-599", answer);
            require(response.body.size() <= kMaxResponseBytes, "a body past max_response_bytes", answer);
            for (const auto& [name, value] : response.headers) {
                for (const char c : name) {
                    require(std::tolower(static_cast<unsigned char>(c)) == static_cast<unsigned char>(c), "a header name not lower-cased", answer);
                }
            }
            if (const auto retry_after = response.header("retry-after")) {
                if (const auto delay = tattle::http::parse_retry_after(*retry_after)) {
                    require(delay->count() >= 0, "a negative Retry-After delay", answer);
                }
            }
        } catch (const tattle::http::TransportError& error) {
            require(error.kind() != tattle::http::TransportError::Kind::InvalidRequest,
                    "the fixed request called invalid", error.what());
            require(std::string_view(error.what()).find("secret-path") == std::string_view::npos,
                    "a transport error quotes the URL's path", error.what());
        }
    }
    return 0;
}
