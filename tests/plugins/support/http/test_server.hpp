#pragma once

// Local HTTP(S) servers for tests: a throwaway CA made by tests/support/make_test_ca.sh and
// tests/support/https_server.py run as a subprocess, stopped when the TestServer goes away.
// Needs python3 and openssl on PATH; says so plainly when either is missing.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

extern char** environ;

namespace tattle::test {

namespace fs = std::filesystem;

inline fs::path make_temp_dir(std::string_view prefix) {
    std::string pattern = (fs::temp_directory_path() / (std::string(prefix) + "XXXXXX")).string();
    if (::mkdtemp(pattern.data()) == nullptr) {
        throw std::runtime_error("mkdtemp failed: " + std::string(std::strerror(errno)));
    }
    return pattern;
}

// Starts argv[0] (looked up on PATH) with the given stdin/stdout descriptors (-1: inherit).
// A loopback port that nothing listens on (just now).
inline std::uint16_t unused_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
    ::close(fd);
    return ntohs(address.sin_port);
}

inline pid_t spawn_program(const std::vector<std::string>& argv, int stdin_fd, int stdout_fd) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    if (stdin_fd >= 0) posix_spawn_file_actions_adddup2(&actions, stdin_fd, STDIN_FILENO);
    if (stdout_fd >= 0) posix_spawn_file_actions_adddup2(&actions, stdout_fd, STDOUT_FILENO);
    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    pid_t pid = 0;
    const int error = ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (error == ENOENT) {
        throw std::runtime_error(argv[0] + " is not installed or not on PATH; these tests need it");
    }
    if (error != 0)
        throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(error));
    return pid;
}

inline int wait_for_exit(pid_t pid) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// The CA and certificates of make_test_ca.sh, made once per test process.
class TestCa {
public:
    static const TestCa& instance() {
        static const TestCa ca;
        return ca;
    }

    ~TestCa() {
        std::error_code ignored;
        fs::remove_all(dir_, ignored);
    }
    TestCa(const TestCa&) = delete;
    TestCa& operator=(const TestCa&) = delete;

    std::string ca_file() const { return (dir_ / "ca.pem").string(); }
    std::string other_ca_file() const { return (dir_ / "other-ca.pem").string(); }
    std::string server_cert() const { return (dir_ / "server.pem").string(); }
    std::string server_key() const { return (dir_ / "server.key").string(); }
    std::string wrong_host_cert() const { return (dir_ / "wrong-host.pem").string(); }
    std::string wrong_host_key() const { return (dir_ / "wrong-host.key").string(); }

private:
    TestCa() : dir_(make_temp_dir("tattle-test-ca-")) {
        const std::string script =
            std::string(TATTLE_SOURCE_DIR) + "/tests/support/make_test_ca.sh";
        const int status = wait_for_exit(spawn_program({"bash", script, dir_.string()}, -1, -1));
        if (status != 0) {
            throw std::runtime_error("tests/support/make_test_ca.sh failed with status " +
                                     std::to_string(status) +
                                     " (is openssl installed? its message is on stderr)");
        }
    }

    fs::path dir_;
};

struct RecordedRequest {
    int connection = -1;  // the server numbers its accepted connections 0, 1, …
    int client_port = 0;
    std::string method;
    std::string path;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    std::string response;  // "200", "hang", "close", …

    std::optional<std::string> header(std::string_view name) const {
        for (const auto& [key, value] : headers) {
            if (key.size() == name.size() && std::equal(key.begin(), key.end(), name.begin(),
                                                        [](unsigned char a, unsigned char b) {
                                                            return std::tolower(a) ==
                                                                   std::tolower(b);
                                                        })) {
                return value;
            }
        }
        return std::nullopt;
    }
};

struct ServerOptions {
    enum class Mode { Https, Http, Proxy };
    Mode mode = Mode::Https;
    std::string cert;  // default: the test CA's certificate for 127.0.0.1 and localhost
    std::string key;
    std::string script;  // JSON list of responses (see https_server.py); empty: 200 "ok"
    double rate_limit = 0;
    int burst = 1;
    std::vector<std::string> extra_args;
};

class TestServer {
public:
    explicit TestServer(ServerOptions options = {})
        : options_(std::move(options)), dir_(make_temp_dir("tattle-server-")) {
        std::vector<std::string> argv = {
            "python3", std::string(TATTLE_SOURCE_DIR) + "/tests/support/https_server.py", "--log",
            log_path().string()};
        if (options_.mode == ServerOptions::Mode::Https) {
            const auto& ca = TestCa::instance();
            argv.insert(argv.end(),
                        {"--cert", options_.cert.empty() ? ca.server_cert() : options_.cert,
                         "--key", options_.key.empty() ? ca.server_key() : options_.key});
        }
        if (options_.mode == ServerOptions::Mode::Proxy) argv.emplace_back("--proxy");
        if (!options_.script.empty()) {
            const auto script_path = dir_ / "script.json";
            std::ofstream(script_path) << options_.script;
            argv.insert(argv.end(), {"--script", script_path.string()});
        }
        if (options_.rate_limit > 0) {
            argv.insert(argv.end(), {"--rate-limit", std::to_string(options_.rate_limit), "--burst",
                                     std::to_string(options_.burst)});
        }
        argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());
        start(argv);
    }

    ~TestServer() { stop(); }
    TestServer(const TestServer&) = delete;
    TestServer& operator=(const TestServer&) = delete;

    std::uint16_t port() const { return port_; }

    // "https://127.0.0.1:PORT" + path (http:// for a plain server).
    std::string url(std::string_view path = "/", std::string_view host = "127.0.0.1") const {
        const char* scheme = options_.mode == ServerOptions::Mode::Https ? "https://" : "http://";
        return scheme + std::string(host) + ":" + std::to_string(port_) + std::string(path);
    }

    std::vector<RecordedRequest> requests() const {
        std::vector<RecordedRequest> recorded;
        std::ifstream log(log_path());
        for (std::string line; std::getline(log, line);) {
            if (line.empty()) continue;
            const auto entry = boost::json::parse(line).as_object();
            RecordedRequest request;
            request.connection = static_cast<int>(entry.at("connection").as_int64());
            request.client_port = static_cast<int>(entry.at("client_port").as_int64());
            request.method = entry.at("method").as_string().c_str();
            request.path = entry.at("path").as_string().c_str();
            request.body = entry.at("body").as_string().c_str();
            for (const auto& pair : entry.at("headers").as_array()) {
                request.headers.emplace_back(pair.as_array().at(0).as_string().c_str(),
                                             pair.as_array().at(1).as_string().c_str());
            }
            const auto& response = entry.at("response");
            request.response = response.is_string() ? std::string(response.as_string().c_str())
                                                    : std::to_string(response.as_int64());
            recorded.push_back(std::move(request));
        }
        return recorded;
    }

    // The log is written before the server answers, but a test that gave up waiting
    // (a timeout) may look before the server got there.
    std::vector<RecordedRequest> wait_for_requests(
        std::size_t count, std::chrono::milliseconds timeout = std::chrono::seconds(5)) const {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        auto recorded = requests();
        while (recorded.size() < count && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            recorded = requests();
        }
        return recorded;
    }

private:
    fs::path log_path() const { return dir_ / "requests.jsonl"; }

    void start(const std::vector<std::string>& argv) {
        int stdin_pipe[2] = {-1, -1};
        int stdout_pipe[2] = {-1, -1};
        // O_CLOEXEC: a later server must not inherit this one's stdin, or it never sees EOF.
        if (::pipe2(stdin_pipe, O_CLOEXEC) != 0 || ::pipe2(stdout_pipe, O_CLOEXEC) != 0) {
            throw std::runtime_error("pipe2 failed: " + std::string(std::strerror(errno)));
        }
        try {
            pid_ = spawn_program(argv, stdin_pipe[0], stdout_pipe[1]);
        } catch (...) {
            for (const int fd : {stdin_pipe[0], stdin_pipe[1], stdout_pipe[0], stdout_pipe[1]})
                ::close(fd);
            std::error_code ignored;
            fs::remove_all(dir_, ignored);
            throw;
        }
        ::close(stdin_pipe[0]);
        ::close(stdout_pipe[1]);
        stdin_fd_ = stdin_pipe[1];
        const std::string first_line = read_line(stdout_pipe[0], std::chrono::seconds(15));
        ::close(stdout_pipe[0]);
        try {
            port_ = static_cast<std::uint16_t>(std::stoul(first_line));
        } catch (const std::exception&) {
            stop();
            throw std::runtime_error("https_server.py did not print its port (got \"" + first_line +
                                     "\"); its error is on stderr");
        }
    }

    static std::string read_line(int fd, std::chrono::milliseconds timeout) {
        std::string line;
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (true) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return line;
            pollfd readable{fd, POLLIN, 0};
            if (::poll(&readable, 1, static_cast<int>(left.count())) <= 0) continue;
            char c = 0;
            if (::read(fd, &c, 1) != 1 || c == '\n') return line;
            line += c;
        }
    }

    void stop() {
        if (pid_ <= 0) return;
        ::close(stdin_fd_);  // the server's cue to exit
        stdin_fd_ = -1;
        if (!exited_within(std::chrono::seconds(3))) {
            ::kill(pid_, SIGTERM);
            if (!exited_within(std::chrono::seconds(2))) {
                ::kill(pid_, SIGKILL);
                wait_for_exit(pid_);
            }
        }
        pid_ = -1;
        std::error_code ignored;
        fs::remove_all(dir_, ignored);
    }

    bool exited_within(std::chrono::milliseconds timeout) const {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return false;
    }

    ServerOptions options_;
    fs::path dir_;
    pid_t pid_ = -1;
    int stdin_fd_ = -1;
    std::uint16_t port_ = 0;
};

// Sets (or, with nullopt, removes) an environment variable for one scope.
class ScopedEnv {
public:
    ScopedEnv(const char* name, const std::optional<std::string>& value) : name_(name) {
        if (const char* old = std::getenv(name)) old_ = old;
        if (value) {
            ::setenv(name, value->c_str(), 1);
        } else {
            ::unsetenv(name);
        }
    }
    ~ScopedEnv() {
        if (old_) {
            ::setenv(name_.c_str(), old_->c_str(), 1);
        } else {
            ::unsetenv(name_.c_str());
        }
    }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;

private:
    std::string name_;
    std::optional<std::string> old_;
};

}  // namespace tattle::test
