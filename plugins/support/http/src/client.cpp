// The HTTPS client: Beast over Asio and OpenSSL, driven synchronously with deadlines.
//
// Each call runs the client's own io_context until the operation at hand completes.
// beast::tcp_stream's expiry cancels socket work at the deadline, so no call blocks past
// total_timeout; name resolution, which Beast does not time, has its own timer.

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <map>

#include "tattle/http/client.hpp"
#include "url_parts.hpp"

namespace tattle::http {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using ErrorCode = boost::system::error_code;
using Kind = TransportError::Kind;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// Far above any real response header; a bigger one is a broken or hostile server.
constexpr std::uint32_t kMaxResponseHeaderBytes = 64 * 1024;

std::string lower(std::string_view text) {
    std::string result(text);
    std::transform(result.begin(), result.end(), result.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return result;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) { return lower(a) == lower(b); }

// RFC 9110 token: what a method or a header name may consist of.
bool is_token(std::string_view text) {
    static constexpr std::string_view kSymbols = "!#$%&'*+-.^_`|~";
    return !text.empty() && std::all_of(text.begin(), text.end(), [](unsigned char c) {
        return std::isalnum(c) != 0 ||
               kSymbols.find(static_cast<char>(c)) != std::string_view::npos;
    });
}

// A header value with a line break would let a caller (or a templated value) inject headers.
bool is_safe_header_value(std::string_view text) {
    return text.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

std::optional<std::string> environment(const char* upper_name, const char* lower_name) {
    if (const char* value = std::getenv(upper_name)) return std::string(value);
    if (const char* value = std::getenv(lower_name)) return std::string(value);
    return std::nullopt;
}

std::string milliseconds_text(std::chrono::milliseconds duration) {
    return std::to_string(duration.count()) + " ms";
}

bool is_timeout(const ErrorCode& error) { return error == beast::error::timeout; }

struct Completion {
    bool done = false;
    ErrorCode error;
};

// A completion handler that only records the outcome; it owns what it writes to, so a
// handler that runs late (after its caller gave up) touches nothing that is gone.
auto record_into(const std::shared_ptr<Completion>& completion) {
    return [completion](const ErrorCode& error, auto&&...) {
        completion->error = error;
        completion->done = true;
    };
}

struct Connection {
    std::unique_ptr<TlsStream> tls;
    std::unique_ptr<beast::tcp_stream> plain;
    beast::flat_buffer buffer;

    beast::tcp_stream& tcp() { return tls ? beast::get_lowest_layer(*tls) : *plain; }

    template <typename Operation>
    void with_stream(Operation&& operation) {
        if (tls) {
            operation(*tls);
        } else {
            operation(*plain);
        }
    }

    // An idle kept-alive connection the server has closed (or written to, which for an
    // idle HTTP/1.1 connection only happens right before it closes, e.g. a TLS
    // close_notify) cannot carry a request.
    bool peer_has_closed() {
        auto& socket = tcp().socket();
        if (!socket.is_open()) return true;
        char byte = 0;
        const auto received = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        if (received >= 0) return true;
        static_assert(EAGAIN == EWOULDBLOCK, "one errno value means 'nothing to read yet'");
        return errno != EAGAIN;
    }
};

struct ExchangeFailure {
    ErrorCode error;
    bool response_started = false;
    std::string_view phase;
};

struct Exchange {
    std::optional<Response> response;
    bool keep_alive = false;
    ExchangeFailure failure;
};

}  // namespace

std::optional<std::string> Response::header(std::string_view name) const {
    const std::string wanted = lower(name);
    const auto found = headers.lower_bound(wanted);  // the first of equal keys: the first received
    if (found == headers.end() || found->first != wanted) return std::nullopt;
    return found->second;
}

struct Client::Impl {
    ClientOptions options;
    bool plain_http_allowed = false;
    std::optional<detail::ProxyEndpoint> proxy;
    std::string no_proxy;
    // Declared before the connections so they are destroyed after them.
    asio::io_context io;
    ssl::context tls_context{ssl::context::tls_client};
    std::map<std::string, std::unique_ptr<Connection>> idle_connections;  // by origin

    explicit Impl(ClientOptions client_options) : options(std::move(client_options)) {
        configure_tls();
        configure_proxy();
    }

    void configure_tls() {
        SSL_CTX_set_min_proto_version(tls_context.native_handle(), TLS1_2_VERSION);
        tls_context.set_options(ssl::context::default_workarounds | ssl::context::no_compression);
        if (!options.verify_peer) {
            tls_context.set_verify_mode(ssl::verify_none);
            return;
        }
        tls_context.set_verify_mode(ssl::verify_peer);
        // A missing system store is not fatal by itself: ca_file may be all that is needed,
        // and otherwise every handshake fails with a clear verification error.
        ErrorCode ignored;
        tls_context.set_default_verify_paths(ignored);
        if (!options.ca_file.empty()) {
            ErrorCode error;
            tls_context.load_verify_file(options.ca_file, error);
            if (error) {
                throw TransportError(
                    Kind::InvalidRequest,
                    "cannot load ca_file " + options.ca_file + ": " + error.message());
            }
        }
    }

    void configure_proxy() {
        std::optional<std::string> setting = options.https_proxy;
        std::string_view setting_name = "https_proxy";
        if (!setting) {
            setting = environment("HTTPS_PROXY", "https_proxy");
            setting_name = "HTTPS_PROXY";
        }
        if (setting && setting->find_first_not_of(" \t") != std::string::npos) {
            proxy = detail::parse_proxy(*setting, setting_name);
        }
        no_proxy =
            options.no_proxy ? *options.no_proxy : environment("NO_PROXY", "no_proxy").value_or("");
    }

    // Runs handlers until `completion` is done. Handlers left over from an operation an
    // earlier call abandoned may run here too; they only update their own records.
    void run_until_done(const std::shared_ptr<Completion>& completion) {
        io.restart();
        while (!completion->done) {
            if (io.run_one() == 0) {
                throw TransportError(Kind::Protocol, "internal error: an I/O operation was lost");
            }
        }
    }

    tcp::resolver::results_type resolve(const std::string& host, std::uint16_t port,
                                        Clock::time_point deadline, const std::string& context) {
        struct Resolution {
            bool done = false;
            ErrorCode error;
            tcp::resolver::results_type results;
        };
        auto resolution = std::make_shared<Resolution>();
        auto timed_out = std::make_shared<bool>(false);
        tcp::resolver resolver(io);
        asio::steady_timer timer(io, deadline);
        resolver.async_resolve(
            host, std::to_string(port),
            [resolution](const ErrorCode& error, tcp::resolver::results_type results) {
                resolution->error = error;
                resolution->results = std::move(results);
                resolution->done = true;
            });
        timer.async_wait([timed_out](const ErrorCode& error) { *timed_out = !error; });
        io.restart();
        while (!resolution->done && !*timed_out) {
            if (io.run_one() == 0) break;
        }
        // getaddrinfo cannot be interrupted; a late answer lands in `resolution`, which
        // its handler keeps alive, and is ignored.
        if (!resolution->done) {
            throw TransportError(Kind::Timeout, context + ": resolving the host name timed out");
        }
        if (resolution->error) {
            throw TransportError(Kind::Resolve, context + ": cannot resolve " + host + ": " +
                                                    resolution->error.message());
        }
        return resolution->results;
    }

    std::unique_ptr<Connection> connect(const detail::Endpoint& endpoint,
                                        Clock::time_point deadline, const std::string& context) {
        const auto connect_deadline = std::min(deadline, Clock::now() + options.connect_timeout);
        const bool via_proxy =
            proxy && endpoint.tls && !no_proxy_matches(no_proxy, endpoint.host, endpoint.port);
        const std::string& dial_host = via_proxy ? proxy->host : endpoint.host;
        const std::uint16_t dial_port = via_proxy ? proxy->port : endpoint.port;
        const std::string dial_context =
            via_proxy ? context + " via proxy " + proxy->origin : context;

        const auto addresses = resolve(dial_host, dial_port, connect_deadline, dial_context);
        auto connection = std::make_unique<Connection>();
        if (endpoint.tls) {
            connection->tls = std::make_unique<TlsStream>(io, tls_context);
        } else {
            connection->plain = std::make_unique<beast::tcp_stream>(io);
        }

        auto& tcp_stream = connection->tcp();
        tcp_stream.expires_at(connect_deadline);
        auto connected = std::make_shared<Completion>();
        tcp_stream.async_connect(addresses, record_into(connected));
        run_until_done(connected);
        if (connected->error) {
            if (is_timeout(connected->error)) {
                throw TransportError(Kind::Timeout, dial_context + ": connect timed out after " +
                                                        milliseconds_text(options.connect_timeout));
            }
            throw TransportError(Kind::Connect,
                                 dial_context + ": cannot connect: " + connected->error.message());
        }
        tcp_stream.socket().set_option(tcp::no_delay(true));

        if (via_proxy) open_tunnel(*connection, endpoint, dial_context);
        if (endpoint.tls) handshake(*connection, endpoint, deadline, context);
        return connection;
    }

    // HTTP CONNECT through the proxy; runs under the connect deadline already set.
    void open_tunnel(Connection& connection, const detail::Endpoint& endpoint,
                     const std::string& context) {
        bhttp::request<bhttp::empty_body> request{bhttp::verb::connect, endpoint.authority, 11};
        request.set(bhttp::field::host, endpoint.authority);
        request.set(bhttp::field::user_agent, options.user_agent);
        if (!proxy->authorization.empty())
            request.set(bhttp::field::proxy_authorization, proxy->authorization);

        auto& tcp_stream = connection.tcp();
        auto written = std::make_shared<Completion>();
        bhttp::async_write(tcp_stream, request, record_into(written));
        run_until_done(written);

        // A 2xx answer to CONNECT has no body: the tunnel starts right after its header.
        bhttp::response_parser<bhttp::empty_body> parser;
        parser.skip(true);
        auto answered = std::make_shared<Completion>();
        if (!written->error) {
            bhttp::async_read_header(tcp_stream, connection.buffer, parser, record_into(answered));
            run_until_done(answered);
        }
        const ErrorCode& error = written->error ? written->error : answered->error;
        if (error) {
            if (is_timeout(error)) {
                throw TransportError(Kind::Timeout,
                                     context + ": the proxy did not open a tunnel within " +
                                         milliseconds_text(options.connect_timeout));
            }
            throw TransportError(Kind::Connect, context + ": CONNECT failed: " + error.message());
        }
        const auto status = parser.get().result_int();
        if (status / 100 != 2) {
            throw TransportError(
                Kind::Connect,
                context + ": the proxy refused the tunnel with status " + std::to_string(status));
        }
    }

    void handshake(Connection& connection, const detail::Endpoint& endpoint,
                   Clock::time_point deadline, const std::string& context) {
        SSL* ssl_handle = connection.tls->native_handle();
        // SNI carries names only (RFC 6066); servers pick their certificate by it.
        // (SSL_set_tlsext_host_name spelled out: the macro's C cast trips -Wold-style-cast.)
        if (!endpoint.host_is_ip &&
            SSL_ctrl(ssl_handle, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                     const_cast<char*>(endpoint.host.c_str())) != 1) {
            throw TransportError(Kind::Tls, context + ": cannot set the TLS server name");
        }
        if (options.verify_peer) {
            // OpenSSL checks the name during chain verification, so a mismatch fails the
            // handshake itself and is reported as "hostname mismatch".
            int set = 0;
            if (endpoint.host_is_ip) {
                set = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_handle),
                                                    endpoint.host.c_str());
            } else {
                SSL_set_hostflags(ssl_handle, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
                set = SSL_set1_host(ssl_handle, endpoint.host.c_str());
            }
            if (set != 1)
                throw TransportError(Kind::Tls, context + ": cannot set the expected host name");
        }

        connection.tcp().expires_at(deadline);
        auto shaken = std::make_shared<Completion>();
        connection.tls->async_handshake(ssl::stream_base::client, record_into(shaken));
        run_until_done(shaken);
        if (!shaken->error) return;
        if (is_timeout(shaken->error)) {
            throw TransportError(Kind::Timeout, context + ": timed out after " +
                                                    milliseconds_text(options.total_timeout) +
                                                    " during the TLS handshake");
        }
        const long verification = SSL_get_verify_result(ssl_handle);
        if (verification != X509_V_OK) {
            throw TransportError(Kind::Tls, context + ": TLS certificate verification failed: " +
                                                X509_verify_cert_error_string(verification));
        }
        throw TransportError(Kind::Tls,
                             context + ": TLS handshake failed: " + shaken->error.message());
    }

    bhttp::request<bhttp::string_body> build_message(const Request& request,
                                                     const detail::Endpoint& endpoint) const {
        if (!is_token(request.method))
            throw TransportError(Kind::InvalidRequest, "the HTTP method is not valid");
        bhttp::request<bhttp::string_body> message;
        const auto verb = bhttp::string_to_verb(request.method);
        if (verb == bhttp::verb::unknown) {
            message.method_string(request.method);
        } else {
            message.method(verb);
        }
        message.target(endpoint.target);
        message.version(11);
        message.set(bhttp::field::host, endpoint.host_header);
        message.set(bhttp::field::user_agent, options.user_agent);
        for (const auto& [name, value] : request.headers) {
            // The header's value may be a secret (a token, a signature); only its name is printed.
            if (!is_token(name))
                throw TransportError(Kind::InvalidRequest, "a header name is not valid");
            if (!is_safe_header_value(value)) {
                throw TransportError(Kind::InvalidRequest,
                                     "the value of header " + name + " contains a line break");
            }
            if (equals_ignoring_case(name, "content-length") ||
                equals_ignoring_case(name, "transfer-encoding")) {
                continue;  // framing is the client's job: prepare_payload() below
            }
            if (equals_ignoring_case(name, "host") || equals_ignoring_case(name, "user-agent")) {
                message.set(name, value);
            } else {
                message.insert(name, value);
            }
        }
        message.body() = request.body;
        message.prepare_payload();
        return message;
    }

    Exchange exchange(Connection& connection, const bhttp::request<bhttp::string_body>& message,
                      Clock::time_point deadline) {
        Exchange result;
        connection.tcp().expires_at(deadline);
        auto written = std::make_shared<Completion>();
        connection.with_stream(
            [&](auto& stream) { bhttp::async_write(stream, message, record_into(written)); });
        run_until_done(written);
        if (written->error) {
            result.failure = {written->error, false, "sending the request"};
            return result;
        }

        bhttp::response_parser<bhttp::string_body> parser;
        parser.header_limit(kMaxResponseHeaderBytes);
        parser.body_limit(static_cast<std::uint64_t>(options.max_response_bytes));
        if (message.method() == bhttp::verb::head) parser.skip(true);
        auto read = std::make_shared<Completion>();
        connection.with_stream([&](auto& stream) {
            bhttp::async_read(stream, connection.buffer, parser, record_into(read));
        });
        run_until_done(read);
        if (read->error) {
            result.failure = {read->error, parser.got_some() || connection.buffer.size() > 0,
                              "reading the response"};
            return result;
        }

        auto& answer = parser.get();
        Response response;
        response.status = static_cast<int>(answer.result_int());
        for (const auto& field : answer) {
            response.headers.emplace(lower(field.name_string()), std::string(field.value()));
        }
        response.body = std::move(answer.body());
        result.keep_alive = answer.keep_alive() && !parser.need_eof();
        result.response = std::move(response);
        return result;
    }

    [[noreturn]] void throw_failure(const ExchangeFailure& failure,
                                    const std::string& context) const {
        const ErrorCode& error = failure.error;
        if (is_timeout(error)) {
            throw TransportError(Kind::Timeout, context + ": timed out after " +
                                                    milliseconds_text(options.total_timeout) +
                                                    " while " + std::string(failure.phase));
        }
        if (error == bhttp::error::body_limit) {
            throw TransportError(Kind::TooLarge, context + ": the response body exceeds " +
                                                     std::to_string(options.max_response_bytes) +
                                                     " bytes");
        }
        if (error == bhttp::error::header_limit) {
            throw TransportError(Kind::TooLarge, context + ": the response header exceeds " +
                                                     std::to_string(kMaxResponseHeaderBytes) +
                                                     " bytes");
        }
        if (!failure.response_started) {
            throw TransportError(
                Kind::Protocol,
                context + ": the connection closed before a response (" + error.message() + ")");
        }
        throw TransportError(Kind::Protocol,
                             context + ": " + std::string(failure.phase) + ": " + error.message());
    }

    Response send(const Request& request) {
        const auto endpoint = detail::parse_endpoint(request.url);
        const std::string context = request.method + " " + endpoint.origin;
        if (!endpoint.tls && !plain_http_allowed) {
            throw TransportError(Kind::InvalidRequest,
                                 context + ": plain http:// is not allowed; use https://");
        }
        const auto message = build_message(request, endpoint);
        const auto deadline = Clock::now() + options.total_timeout;

        std::unique_ptr<Connection> connection;
        if (auto idle = idle_connections.find(endpoint.origin); idle != idle_connections.end()) {
            connection = std::move(idle->second);
            idle_connections.erase(idle);
            if (connection->peer_has_closed()) connection.reset();
        }
        const bool reused = connection != nullptr;
        if (!connection) connection = connect(endpoint, deadline, context);

        auto result = exchange(*connection, message, deadline);
        // A kept-alive connection can die between our check and the request reaching the
        // server. Nothing came back, so the server did not answer it: one fresh try.
        if (!result.response && reused && !result.failure.response_started &&
            !is_timeout(result.failure.error)) {
            connection = connect(endpoint, deadline, context);
            result = exchange(*connection, message, deadline);
        }
        if (!result.response) throw_failure(result.failure, context);
        // Beast takes any three digits; RFC 9110 section 15 gives 100-599 meaning. A sink
        // must not read "006" or "999" as anything, so it is the server's protocol error.
        if (result.response->status < 100 || result.response->status > 599) {
            throw TransportError(Kind::Protocol, context + ": the response's status " +
                                                     std::to_string(result.response->status) +
                                                     " is not an HTTP status code");
        }
        if (result.keep_alive) idle_connections[endpoint.origin] = std::move(connection);
        return std::move(*result.response);
    }
};

Client::Client(ClientOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Client::~Client() = default;
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;

Response Client::send(const Request& request) { return impl_->send(request); }

void Client::allow_plain_http(bool allow) noexcept { impl_->plain_http_allowed = allow; }

}  // namespace tattle::http
