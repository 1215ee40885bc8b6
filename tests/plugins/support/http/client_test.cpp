// The HTTPS client against real local servers (tests/support/https_server.py) with a CA
// made for the run.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "tattle/http/client.hpp"
#include "test_server.hpp"

namespace {

using namespace std::chrono_literals;
using tattle::http::Client;
using tattle::http::ClientOptions;
using tattle::http::Request;
using tattle::http::Response;
using tattle::http::TransportError;
using tattle::test::RecordedRequest;
using tattle::test::ScopedEnv;
using tattle::test::ServerOptions;
using tattle::test::TestCa;
using tattle::test::TestServer;
using ::testing::HasSubstr;
using ::testing::Not;
using Kind = TransportError::Kind;

// Shaped like a Slack webhook URL: the path and query are the secret.
constexpr const char* kSecretPath = "/services/T000/B000/SECRETTOKEN?token=SECRETQUERY";

// Trusts the test CA, and ignores whatever proxy the machine running the tests has.
ClientOptions test_options() {
    ClientOptions options;
    options.ca_file = TestCa::instance().ca_file();
    options.https_proxy = "";
    options.no_proxy = "";
    options.connect_timeout = 2s;
    options.total_timeout = 5s;
    return options;
}

Request post(std::string url, std::string body = R"({"text":"hello"})") {
    Request request;
    request.method = "POST";
    request.url = std::move(url);
    request.headers = {{"Content-Type", "application/json"}};
    request.body = std::move(body);
    return request;
}

TransportError transport_error_of(const std::function<void()>& call) {
    try {
        call();
    } catch (const TransportError& error) {
        return error;
    }
    ADD_FAILURE() << "expected a TransportError";
    return TransportError(Kind::Protocol, "(none)");
}

void expect_no_secret(const TransportError& error) {
    const std::string message = error.what();
    EXPECT_THAT(message, Not(HasSubstr("SECRETTOKEN"))) << message;
    EXPECT_THAT(message, Not(HasSubstr("SECRETQUERY"))) << message;
    EXPECT_THAT(message, Not(HasSubstr("/services"))) << message;
}

std::string script_of(std::string_view json) { return std::string(json); }

// A port on which nothing listens: bound once, then released.
std::uint16_t unused_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
    socklen_t length = sizeof address;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
    ::close(fd);
    return ntohs(address.sin_port);
}

TEST(HttpClient, PostBodyAndHeadersArriveIntact) {
    TestServer server;
    Client client(test_options());
    Request request =
        post(server.url("/hooks/abc?x=1&y=%20z"), "{\"text\":\"h\u00e9llo\\nworld\"}\n");
    request.headers.emplace_back("X-Signature", "sha256=abc123");
    request.headers.emplace_back("X-Repeated", "one");
    request.headers.emplace_back("X-Repeated", "two");

    const Response response = client.send(request);

    EXPECT_EQ(response.status, 200);
    const auto recorded = server.requests();
    ASSERT_EQ(recorded.size(), 1U);
    EXPECT_EQ(recorded[0].method, "POST");
    EXPECT_EQ(recorded[0].path, "/hooks/abc?x=1&y=%20z");
    EXPECT_EQ(recorded[0].body, request.body);
    EXPECT_EQ(recorded[0].header("Content-Type"), "application/json");
    EXPECT_EQ(recorded[0].header("Content-Length"), std::to_string(request.body.size()));
    EXPECT_EQ(recorded[0].header("X-Signature"), "sha256=abc123");
    EXPECT_EQ(recorded[0].header("Host"), "127.0.0.1:" + std::to_string(server.port()));
    EXPECT_EQ(recorded[0].header("User-Agent"), "tattle/0.1");
    int repeated = 0;
    for (const auto& [name, value] : recorded[0].headers) repeated += name == "X-Repeated" ? 1 : 0;
    EXPECT_EQ(repeated, 2);
}

TEST(HttpClient, PutAndGetWithoutBody) {
    TestServer server;
    Client client(test_options());
    Request put = post(server.url("/put"), "data");
    put.method = "PUT";
    Request get;
    get.method = "GET";
    get.url = server.url();
    EXPECT_EQ(client.send(put).status, 200);
    EXPECT_EQ(client.send(get).body, "ok");
    const auto recorded = server.requests();
    ASSERT_EQ(recorded.size(), 2U);
    EXPECT_EQ(recorded[0].method, "PUT");
    EXPECT_EQ(recorded[1].method, "GET");
    EXPECT_EQ(recorded[1].path, "/");
    EXPECT_EQ(recorded[1].body, "");
}

TEST(HttpClient, ReturnsStatusHeadersAndBody) {
    TestServer server(
        {.script = script_of(
             R"([{"status": 201, "headers": {"X-Test": "yes", "Retry-After": "3"}, "body": "created"}])")});
    Client client(test_options());
    const Response response = client.send(post(server.url()));
    EXPECT_EQ(response.status, 201);
    EXPECT_EQ(response.body, "created");
    EXPECT_EQ(response.header("x-test"), "yes");
    EXPECT_EQ(response.header("X-Test"), "yes");
    EXPECT_EQ(response.header("retry-after"), "3");
    EXPECT_EQ(response.header("x-missing"), std::nullopt);
    EXPECT_EQ(response.headers.count("content-length"), 1U);
}

TEST(HttpClient, ErrorStatusesAreResponsesNotExceptions) {
    TestServer server({.script = script_of(
                           R"([{"status": 500, "body": "oops"}, {"status": 404, "body": "no"}])")});
    Client client(test_options());
    EXPECT_EQ(client.send(post(server.url())).status, 500);
    EXPECT_EQ(client.send(post(server.url())).status, 404);
}

TEST(HttpClient, ReadsChunkedResponses) {
    const std::string body(5000, 'c');
    TestServer server({.script = R"([{"chunked": true, "body": ")" + body + R"("}])"});
    Client client(test_options());
    EXPECT_EQ(client.send(post(server.url())).body, body);
    EXPECT_EQ(client.send(post(server.url())).body, body);  // and the connection stays usable
    const auto recorded = server.requests();
    ASSERT_EQ(recorded.size(), 2U);
    EXPECT_EQ(recorded[0].connection, recorded[1].connection);
}

TEST(HttpClient, ReusesTheKeptAliveConnection) {
    TestServer server;
    Client client(test_options());
    for (int i = 0; i < 3; ++i) EXPECT_EQ(client.send(post(server.url("/n"))).status, 200);
    const auto recorded = server.requests();
    ASSERT_EQ(recorded.size(), 3U);
    for (const auto& request : recorded) {
        EXPECT_EQ(request.connection, 0);
        EXPECT_EQ(request.client_port, recorded[0].client_port);
    }
}

TEST(HttpClient, KeepsOneConnectionPerHostAndPort) {
    TestServer first;
    TestServer second;
    Client client(test_options());
    client.send(post(first.url()));
    client.send(post(second.url()));
    client.send(post(first.url()));
    client.send(post(second.url()));
    for (const auto* server : {&first, &second}) {
        const auto recorded = server->requests();
        ASSERT_EQ(recorded.size(), 2U);
        EXPECT_EQ(recorded[0].connection, 0);
        EXPECT_EQ(recorded[1].connection, 0);
    }
}

TEST(HttpClient, HeadResponseHasNoBodyAndKeepsTheConnection) {
    TestServer server({.script = R"([{"body": "not sent for HEAD"}])"});
    Client client(test_options());
    Request head;
    head.method = "HEAD";
    head.url = server.url();
    const Response response = client.send(head);
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(response.body, "");
    EXPECT_EQ(client.send(post(server.url())).body, "not sent for HEAD");
    EXPECT_EQ(server.requests().at(1).connection, 0);
}

TEST(HttpClient, ConnectionCloseFromTheServerMeansANewConnectionNextTime) {
    TestServer server({.script = R"([{"headers": {"Connection": "close"}}, {"status": 200}])"});
    Client client(test_options());
    EXPECT_EQ(client.send(post(server.url())).status, 200);
    EXPECT_EQ(client.send(post(server.url())).status, 200);
    const auto recorded = server.requests();
    ASSERT_EQ(recorded.size(), 2U);
    EXPECT_EQ(recorded[0].connection, 0);
    EXPECT_EQ(recorded[1].connection, 1);
}

TEST(HttpClient, RetriesOnceWhenAKeptAliveConnectionDies) {
    // The second request arrives on the kept-alive connection and the server drops it
    // unanswered, as a server does when its idle timeout races the request.
    TestServer server({.script = R"([{"status": 200}, {"close": true}, {"status": 202}])"});
    Client client(test_options());
    EXPECT_EQ(client.send(post(server.url())).status, 200);
    EXPECT_EQ(client.send(post(server.url())).status, 202);
    const auto recorded = server.requests();
    ASSERT_EQ(recorded.size(), 3U);
    EXPECT_EQ(recorded[1].connection, 0);
    EXPECT_EQ(recorded[1].response, "close");
    EXPECT_EQ(recorded[2].connection, 1);
    EXPECT_EQ(recorded[2].body, recorded[1].body);
}

TEST(HttpClient, AServerThatClosesWithoutAnsweringIsAnError) {
    TestServer server({.script = R"([{"close": true}])"});
    Client client(test_options());
    const auto error = transport_error_of([&] { client.send(post(server.url(kSecretPath))); });
    EXPECT_EQ(error.kind(), Kind::Protocol) << error.what();
    EXPECT_THAT(error.what(), HasSubstr("closed"));
    expect_no_secret(error);
    // A fresh connection is not retried: the server may have acted on the request.
    EXPECT_EQ(server.wait_for_requests(1).size(), 1U);
}

// Found by fuzzing (tests/fuzz/corpus/http_response/regression-status-006): Beast reads
// any three digits as a status; outside 100-599 a sink could take it for anything.
TEST(HttpClient, AStatusOutsideHttpsRangeIsAProtocolError) {
    for (const int status : {600, 999}) {
        TestServer server({.mode = ServerOptions::Mode::Http,
                           .script = "[{\"status\": " + std::to_string(status) + ", \"body\": \"x\"}]"});
        Client client(test_options());
        client.allow_plain_http(true);
        const auto error = transport_error_of([&] { client.send(post(server.url(kSecretPath))); });
        EXPECT_EQ(error.kind(), Kind::Protocol) << error.what();
        EXPECT_THAT(error.what(), HasSubstr("status " + std::to_string(status)));
        expect_no_secret(error);
    }
}

TEST(HttpClient, AServerThatHangsTimesOutWithinTheTotalTimeout) {
    TestServer server({.script = R"([{"hang": true}])"});
    ClientOptions options = test_options();
    options.total_timeout = 500ms;
    Client client(options);
    const auto start = std::chrono::steady_clock::now();
    const auto error = transport_error_of([&] { client.send(post(server.url(kSecretPath))); });
    const auto elapsed = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(error.kind(), Kind::Timeout) << error.what();
    EXPECT_THAT(error.what(), HasSubstr("timed out after 500 ms"));
    expect_no_secret(error);
    EXPECT_GE(elapsed, 450ms);
    EXPECT_LT(elapsed, 1500ms);
}

TEST(HttpClient, AnAnswerLaterThanTheTotalTimeoutTimesOut) {
    TestServer server({.script = R"([{"delay_ms": 1500}])"});
    ClientOptions options = test_options();
    options.total_timeout = 500ms;
    Client client(options);
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(transport_error_of([&] { client.send(post(server.url())); }).kind(), Kind::Timeout);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1400ms);
}

TEST(HttpClient, ASlowAnswerWithinTheTimeoutIsFine) {
    TestServer server({.script = R"([{"delay_ms": 200}])"});
    Client client(test_options());
    EXPECT_EQ(client.send(post(server.url())).status, 200);
}

TEST(HttpClient, ARefusedConnectionIsAConnectError) {
    Client client(test_options());
    const std::string url = "https://127.0.0.1:" + std::to_string(unused_port()) + kSecretPath;
    const auto error = transport_error_of([&] { client.send(post(url)); });
    EXPECT_EQ(error.kind(), Kind::Connect) << error.what();
    EXPECT_THAT(error.what(), HasSubstr("127.0.0.1"));
    expect_no_secret(error);
}

// A listener whose accept queue is full: the kernel drops further SYNs, so a connect
// to it hangs as one to a black-holed address does.
class FullListener {
public:
    FullListener() {
        listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address);
        ::listen(listener_, 0);
        socklen_t length = sizeof address;
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length);
        port_ = ntohs(address.sin_port);
        for (int& filler : fillers_) {
            filler = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
            ::connect(filler, reinterpret_cast<sockaddr*>(&address), sizeof address);
        }
        std::this_thread::sleep_for(100ms);
    }
    ~FullListener() {
        for (const int filler : fillers_) ::close(filler);
        ::close(listener_);
    }
    FullListener(const FullListener&) = delete;
    FullListener& operator=(const FullListener&) = delete;
    std::uint16_t port() const { return port_; }

private:
    int listener_ = -1;
    std::array<int, 4> fillers_{};
    std::uint16_t port_ = 0;
};

TEST(HttpClient, AConnectThatHangsTimesOutAfterTheConnectTimeout) {
    FullListener listener;
    ClientOptions options = test_options();
    options.connect_timeout = 300ms;
    options.total_timeout = 5s;
    Client client(options);
    const auto start = std::chrono::steady_clock::now();
    const auto error = transport_error_of([&] {
        client.send(post("https://127.0.0.1:" + std::to_string(listener.port()) + kSecretPath));
    });
    const auto elapsed = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(error.kind(), Kind::Timeout) << error.what();
    EXPECT_THAT(error.what(), HasSubstr("connect timed out after 300 ms"));
    expect_no_secret(error);
    EXPECT_GE(elapsed, 250ms);
    EXPECT_LT(elapsed, 1500ms);
}

TEST(HttpClient, AnUnknownHostIsAResolveError) {
    Client client(test_options());
    const auto error = transport_error_of(
        [&] { client.send(post(std::string("https://no-such-host.invalid") + kSecretPath)); });
    EXPECT_EQ(error.kind(), Kind::Resolve) << error.what();
    EXPECT_THAT(error.what(), HasSubstr("no-such-host.invalid"));
    expect_no_secret(error);
}

TEST(HttpClient, TrustsTheCaFileForIpAndName) {
    TestServer server;
    Client client(test_options());
    EXPECT_EQ(client.send(post(server.url("/", "127.0.0.1"))).status, 200);
    EXPECT_EQ(client.send(post(server.url("/", "localhost"))).status, 200);
}

TEST(HttpClient, ACertificateFromAnUntrustedCaIsRefused) {
    TestServer server;
    ClientOptions options = test_options();
    options.ca_file.clear();  // the system store alone does not know the test CA
    Client client(options);
    const auto error = transport_error_of([&] { client.send(post(server.url(kSecretPath))); });
    EXPECT_EQ(error.kind(), Kind::Tls) << error.what();
    EXPECT_THAT(error.what(), HasSubstr("certificate"));
    expect_no_secret(error);
    EXPECT_TRUE(server.requests().empty());
}

TEST(HttpClient, ACaFileOfAnotherCaDoesNotHelp) {
    TestServer server;
    ClientOptions options = test_options();
    options.ca_file = TestCa::instance().other_ca_file();
    Client client(options);
    EXPECT_EQ(transport_error_of([&] { client.send(post(server.url())); }).kind(), Kind::Tls);
}

TEST(HttpClient, ACertificateForAnotherHostIsRefused) {
    const auto& ca = TestCa::instance();
    TestServer server({.cert = ca.wrong_host_cert(), .key = ca.wrong_host_key()});
    Client client(test_options());
    const auto by_ip =
        transport_error_of([&] { client.send(post(server.url(kSecretPath, "127.0.0.1"))); });
    EXPECT_EQ(by_ip.kind(), Kind::Tls) << by_ip.what();
    EXPECT_THAT(by_ip.what(), HasSubstr("mismatch"));
    expect_no_secret(by_ip);
    const auto by_name =
        transport_error_of([&] { client.send(post(server.url(kSecretPath, "localhost"))); });
    EXPECT_EQ(by_name.kind(), Kind::Tls) << by_name.what();
    EXPECT_THAT(by_name.what(), HasSubstr("hostname mismatch"));
    expect_no_secret(by_name);
    EXPECT_TRUE(server.requests().empty());
}

TEST(HttpClient, VerificationIsSkippedOnlyWhenAsked) {
    const auto& ca = TestCa::instance();
    TestServer server({.cert = ca.wrong_host_cert(), .key = ca.wrong_host_key()});
    ClientOptions options = test_options();
    options.ca_file.clear();
    EXPECT_EQ(transport_error_of([&] { Client(options).send(post(server.url())); }).kind(),
              Kind::Tls);
    options.verify_peer = false;
    Client client(options);
    EXPECT_EQ(client.send(post(server.url())).status, 200);
}

TEST(HttpClient, TlsOlderThan12IsRefused) {
    TestServer server({.extra_args = {"--tls-max", "1.1"}});
    Client client(test_options());
    const auto error = transport_error_of([&] { client.send(post(server.url())); });
    EXPECT_EQ(error.kind(), Kind::Tls) << error.what();
}

TEST(HttpClient, AnUnreadableCaFileIsReportedAtConstruction) {
    ClientOptions options = test_options();
    options.ca_file = "/nonexistent/ca.pem";
    const auto error = transport_error_of([&] { Client client(options); });
    EXPECT_EQ(error.kind(), Kind::InvalidRequest);
    EXPECT_THAT(error.what(), HasSubstr("/nonexistent/ca.pem"));
}

TEST(HttpClient, AResponseOverTheCapIsTooLarge) {
    const std::string big(5000, 'b');
    TestServer server({.script = R"([{"body": ")" + big + R"("}, {"chunked": true, "body": ")" +
                                 big + R"("}, {"body": ")" + std::string(1000, 's') + R"("}])"});
    ClientOptions options = test_options();
    options.max_response_bytes = 1000;
    Client client(options);
    const auto sized = transport_error_of([&] { client.send(post(server.url(kSecretPath))); });
    EXPECT_EQ(sized.kind(), Kind::TooLarge) << sized.what();
    EXPECT_THAT(sized.what(), HasSubstr("1000 bytes"));
    expect_no_secret(sized);
    const auto chunked = transport_error_of([&] { client.send(post(server.url())); });
    EXPECT_EQ(chunked.kind(), Kind::TooLarge) << chunked.what();
    EXPECT_EQ(client.send(post(server.url())).body.size(), 1000U);  // exactly the cap is fine
}

TEST(HttpClient, PlainHttpIsRefusedUnlessAllowed) {
    TestServer server({.mode = ServerOptions::Mode::Http});
    Client client(test_options());
    const auto error = transport_error_of([&] { client.send(post(server.url(kSecretPath))); });
    EXPECT_EQ(error.kind(), Kind::InvalidRequest) << error.what();
    EXPECT_THAT(error.what(), HasSubstr("http://"));
    expect_no_secret(error);
    EXPECT_TRUE(server.requests().empty());

    client.allow_plain_http(true);
    EXPECT_EQ(client.send(post(server.url("/plain"))).status, 200);
    EXPECT_EQ(client.send(post(server.url("/plain"))).status, 200);
    const auto recorded = server.requests();
    ASSERT_EQ(recorded.size(), 2U);
    EXPECT_EQ(recorded[1].connection, 0);
}

TEST(HttpClient, BadRequestsAreRefusedWithoutEchoingTheUrl) {
    Client client(test_options());
    for (const std::string url :
         {"not a url SECRETTOKEN", "ftp://example.com/SECRETTOKEN", "https:///SECRETTOKEN",
          "https://example.com:99999/SECRETTOKEN", "/services/SECRETTOKEN"}) {
        const auto error = transport_error_of([&] { client.send(post(url)); });
        EXPECT_EQ(error.kind(), Kind::InvalidRequest) << url << ": " << error.what();
        expect_no_secret(error);
    }
    Request injected = post(std::string("https://127.0.0.1:1") + kSecretPath);
    injected.headers.emplace_back("X-Token", "SECRETTOKEN\r\nX-Injected: yes");
    const auto error = transport_error_of([&] { client.send(injected); });
    EXPECT_EQ(error.kind(), Kind::InvalidRequest);
    EXPECT_THAT(error.what(), HasSubstr("X-Token"));
    expect_no_secret(error);
    Request bad_method = post("https://127.0.0.1:1/");
    bad_method.method = "PO ST";
    EXPECT_EQ(transport_error_of([&] { client.send(bad_method); }).kind(), Kind::InvalidRequest);
}

TEST(HttpClient, ARateLimitingServerSays429WithRetryAfter) {
    TestServer server({.rate_limit = 1, .burst = 2});
    Client client(test_options());
    EXPECT_EQ(client.send(post(server.url())).status, 200);
    EXPECT_EQ(client.send(post(server.url())).status, 200);
    const Response limited = client.send(post(server.url()));
    EXPECT_EQ(limited.status, 429);
    ASSERT_TRUE(limited.header("retry-after"));
    EXPECT_EQ(tattle::http::parse_retry_after(*limited.header("retry-after")),
              std::chrono::milliseconds(1000));
}

// --- proxy ---------------------------------------------------------------------------

class HttpProxy : public ::testing::Test {
protected:
    TestServer server_;
    TestServer proxy_{{.mode = ServerOptions::Mode::Proxy}};
    std::string proxy_url_ = "http://127.0.0.1:" + std::to_string(proxy_.port());
};

TEST_F(HttpProxy, HttpsProxyFromTheEnvironmentIsUsedViaConnect) {
    ScopedEnv https_proxy("HTTPS_PROXY", proxy_url_);
    ScopedEnv lower_https_proxy("https_proxy", std::nullopt);
    ScopedEnv no_proxy("NO_PROXY", std::nullopt);
    ScopedEnv lower_no_proxy("no_proxy", std::nullopt);
    ClientOptions options = test_options();
    options.https_proxy.reset();
    options.no_proxy.reset();
    Client client(options);

    EXPECT_EQ(client.send(post(server_.url("/through"))).status, 200);
    EXPECT_EQ(client.send(post(server_.url("/again"))).status, 200);

    const auto tunnels = proxy_.requests();
    ASSERT_EQ(tunnels.size(), 1U);  // the tunnelled connection was kept alive
    EXPECT_EQ(tunnels[0].method, "CONNECT");
    EXPECT_EQ(tunnels[0].path, "127.0.0.1:" + std::to_string(server_.port()));
    EXPECT_EQ(tunnels[0].header("Proxy-Authorization"), std::nullopt);
    const auto recorded = server_.requests();
    ASSERT_EQ(recorded.size(), 2U);
    EXPECT_EQ(recorded[0].path, "/through");
    EXPECT_EQ(recorded[1].connection, recorded[0].connection);
}

TEST_F(HttpProxy, NoProxyBypassesTheProxy) {
    ScopedEnv https_proxy("HTTPS_PROXY", proxy_url_);
    ScopedEnv no_proxy("NO_PROXY", "example.com, 127.0.0.1");
    ClientOptions options = test_options();
    options.https_proxy.reset();
    options.no_proxy.reset();
    Client client(options);
    EXPECT_EQ(client.send(post(server_.url())).status, 200);
    EXPECT_TRUE(proxy_.requests().empty());
    EXPECT_EQ(server_.requests().size(), 1U);
}

TEST_F(HttpProxy, ExplicitOptionsOverrideTheEnvironment) {
    ScopedEnv https_proxy("HTTPS_PROXY", "http://127.0.0.1:1");  // would fail if used
    ClientOptions options = test_options();
    options.https_proxy = proxy_url_;
    options.no_proxy = "";
    Client client(options);
    EXPECT_EQ(client.send(post(server_.url())).status, 200);
    EXPECT_EQ(proxy_.requests().size(), 1U);
}

TEST_F(HttpProxy, CredentialsInTheProxyUrlBecomeProxyAuthorization) {
    ClientOptions options = test_options();
    options.https_proxy = "http://alice:s%3Acret@127.0.0.1:" + std::to_string(proxy_.port());
    Client client(options);
    EXPECT_EQ(client.send(post(server_.url())).status, 200);
    const auto tunnels = proxy_.requests();
    ASSERT_EQ(tunnels.size(), 1U);
    EXPECT_EQ(tunnels[0].header("Proxy-Authorization"), "Basic YWxpY2U6czpjcmV0");  // alice:s:cret
}

TEST_F(HttpProxy, PlainHttpDoesNotUseTheHttpsProxy) {
    TestServer plain({.mode = ServerOptions::Mode::Http});
    ClientOptions options = test_options();
    options.https_proxy = proxy_url_;
    Client client(options);
    client.allow_plain_http(true);
    EXPECT_EQ(client.send(post(plain.url())).status, 200);
    EXPECT_TRUE(proxy_.requests().empty());
}

TEST(HttpProxyRefusal, ARefusedTunnelIsAConnectErrorWithoutSecrets) {
    TestServer server;
    TestServer proxy({.mode = ServerOptions::Mode::Proxy, .script = R"([{"status": 403}])"});
    ClientOptions options = test_options();
    options.https_proxy = "http://alice:PROXYPASSWORD@127.0.0.1:" + std::to_string(proxy.port());
    Client client(options);
    const auto error = transport_error_of([&] { client.send(post(server.url(kSecretPath))); });
    EXPECT_EQ(error.kind(), Kind::Connect) << error.what();
    EXPECT_THAT(error.what(), HasSubstr("403"));
    EXPECT_THAT(error.what(), Not(HasSubstr("PROXYPASSWORD")));
    expect_no_secret(error);
    EXPECT_TRUE(server.requests().empty());
}

TEST(HttpProxyRefusal, AnHttpsSchemeProxyIsRefusedAtConstruction) {
    ClientOptions options = test_options();
    options.https_proxy = "https://user:PROXYPASSWORD@proxy.example.com:443";
    const auto error = transport_error_of([&] { Client client(options); });
    EXPECT_EQ(error.kind(), Kind::InvalidRequest);
    EXPECT_THAT(error.what(), Not(HasSubstr("PROXYPASSWORD")));
}

}  // namespace
