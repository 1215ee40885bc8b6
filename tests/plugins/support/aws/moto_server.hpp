#pragma once

// moto (python3 -m moto.server) for the AWS tests, with signature checking on: started with
// INITIAL_NO_AUTH_ACTION_COUNT so that only the first calls, which create an IAM user, its
// access key and its policy, go unauthenticated; every later call must be signed with that
// user's key.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "../http/test_server.hpp"
#include "tattle/aws/sigv4.hpp"
#include "tattle/aws/xml.hpp"
#include "tattle/http/client.hpp"

namespace tattle::test {

// `python3 -m moto.server` on a free port, with INITIAL_NO_AUTH_ACTION_COUNT so that only the
// first calls (which create an IAM user and its key) go unauthenticated. Exits when the test
// process goes away (it watches its stdin pipe).
class MotoServer {
    static constexpr auto kStartTimeout = std::chrono::seconds(60);
public:
    explicit MotoServer(int unauthenticated_actions) : port_(unused_port()) {
        static constexpr const char* kLauncher =
            "import logging, os, sys, threading\n"
            "logging.getLogger('werkzeug').setLevel(logging.ERROR)\n"
            "def exit_at_eof():\n"
            "    sys.stdin.read()\n"
            "    os._exit(0)\n"
            "threading.Thread(target=exit_at_eof, daemon=True).start()\n"
            "from moto.server import main\n"
            "main(sys.argv[1:])\n";
        int stdin_pipe[2] = {-1, -1};
        if (::pipe2(stdin_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
        pid_ = spawn_program({"env", "INITIAL_NO_AUTH_ACTION_COUNT=" + std::to_string(unauthenticated_actions),
                                            "python3", "-c", kLauncher, "-H", "127.0.0.1", "-p", std::to_string(port_)},
                                           stdin_pipe[0], -1);
        ::close(stdin_pipe[0]);
        stdin_fd_ = stdin_pipe[1];
        wait_until_listening();
    }
    ~MotoServer() {
        ::close(stdin_fd_);
        ::kill(pid_, SIGTERM);
        wait_for_exit(pid_);
    }
    MotoServer(const MotoServer&) = delete;
    MotoServer& operator=(const MotoServer&) = delete;

    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

private:
    void wait_until_listening() const {
        const auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
        while (std::chrono::steady_clock::now() < deadline) {
            const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
            sockaddr_in address{};
            address.sin_family = AF_INET;
            address.sin_port = htons(port_);
            address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            const bool connected = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
            ::close(fd);
            if (connected) return;
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                throw std::runtime_error("moto.server exited at start (is moto installed for python3?)");
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        throw std::runtime_error("moto.server did not listen within 60 s");
    }

    std::uint16_t port_;
    pid_t pid_ = -1;
    int stdin_fd_ = -1;
};


// One unauthenticated-or-signed Query-protocol call to moto; returns the response.
inline http::Response moto_query(const std::string& endpoint, const std::string& service,
                                 const aws::Credentials& credentials,
                                 const std::vector<std::pair<std::string, std::string>>& form) {
    http::Request request;
    request.method = "POST";
    request.url = endpoint + "/";
    request.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded; charset=utf-8");
    request.body = aws::form_encode(form);
    aws::SigningOptions signing;
    signing.service = service;
    signing.region = "us-east-1";
    aws::sign_request(request, credentials, signing);
    http::ClientOptions options;
    options.https_proxy = "";
    options.no_proxy = "";
    http::Client client(options);
    client.allow_plain_http(true);
    return client.send(request);
}

// Creates IAM user "tattle" with an allow-all inline policy (3 unauthenticated actions:
// start the server with MotoServer(3)) and returns its access key.
inline aws::Credentials create_moto_user(const MotoServer& moto) {
    const aws::Credentials bootstrap{"AKIDBOOTSTRAP", "bootstrap-secret", "", std::nullopt, "test"};
    const auto created =
        moto_query(moto.url(), "iam", bootstrap, {{"Action", "CreateUser"}, {"Version", "2010-05-08"}, {"UserName", "tattle"}});
    if (created.status != 200) throw std::runtime_error("moto CreateUser: HTTP " + std::to_string(created.status));
    const auto key = moto_query(moto.url(), "iam", bootstrap,
                                {{"Action", "CreateAccessKey"}, {"Version", "2010-05-08"}, {"UserName", "tattle"}});
    if (key.status != 200) throw std::runtime_error("moto CreateAccessKey: HTTP " + std::to_string(key.status));
    const auto policy = moto_query(
        moto.url(), "iam", bootstrap,
        {{"Action", "PutUserPolicy"},
         {"Version", "2010-05-08"},
         {"UserName", "tattle"},
         {"PolicyName", "all"},
         {"PolicyDocument", R"({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]})"}});
    if (policy.status != 200) throw std::runtime_error("moto PutUserPolicy: HTTP " + std::to_string(policy.status));
    aws::Credentials user{aws::xml_text(key.body, "AccessKeyId").value_or(""),
                          aws::xml_text(key.body, "SecretAccessKey").value_or(""), "", std::nullopt, "moto user"};
    if (user.access_key_id.empty() || user.secret_access_key.empty()) {
        throw std::runtime_error("moto CreateAccessKey: no key in the answer");
    }
    return user;
}

}  // namespace tattle::test
