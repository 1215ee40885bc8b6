#include "tattle/daemon.hpp"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <functional>
#include <span>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <utility>

#include "tattle/config.hpp"
#include "tattle/plugin_catalog.hpp"
#include "tattle/metrics.hpp"
#include "tattle/pipeline.hpp"
#include "tattle/secrets.hpp"

namespace tattle::daemon {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

struct LoadedConfig {
    std::unique_ptr<PreparedConfig> prepared;  // null when there are problems
    std::vector<std::string> problems;
};

// A broken bundle must not take every other team's alerting down with it: the daemon
// leaves it out (unless on_bundle_error = "fail") and tells the root config's
// destinations through this rule, which matches only the events announce_skipped_bundles
// makes.
constexpr const char* kBundleSkippedRule = "tattle/bundle-skipped";

void add_bundle_skipped_rule(Config& config) {
    RuleSpec rule;
    rule.name = "tattle: a rule bundle was skipped";
    rule.id = kBundleSkippedRule;
    rule.description = "A team's rule bundle could not be loaded, so its rules are not running. "
                       "Fix the file and reload (SIGHUP or POST /-/reload).";
    rule.severity = "high";
    rule.jq_match = R"(select(.eventSource == "tattle.internal" and .eventName == "BundleSkipped") | .tattle.problem)";
    rule.where = SourceLocation{config.path.string(), 0, 0};
    rule.jq_match_where = rule.where;
    for (const auto& destination : config.destinations) {
        if (destination.team.empty()) rule.destinations.push_back(destination.id);
    }
    config.rules.push_back(std::move(rule));
}

// One event per problem of a skipped bundle, as JSON Lines. The event id is a hash of
// the problem, so with a state directory the same broken file alerts once per dedup
// window, not at every reload.
std::string skipped_bundle_events(const Config& config) {
    std::string lines;
    const auto now = std::chrono::system_clock::now();
    const std::time_t now_seconds = std::chrono::system_clock::to_time_t(now);
    std::tm utc{};
    gmtime_r(&now_seconds, &utc);
    char event_time[32];
    std::strftime(event_time, sizeof event_time, "%Y-%m-%dT%H:%M:%SZ", &utc);
    for (const auto& problem : config.skipped_bundles) {
        const std::string text = redact(problem.to_string());
        char event_id[17];
        std::snprintf(event_id, sizeof event_id, "%016zx", std::hash<std::string>{}(text));
        boost::json::object event{{"eventVersion", "tattle"},
                                  {"eventSource", "tattle.internal"},
                                  {"eventName", "BundleSkipped"},
                                  {"eventTime", event_time},
                                  {"eventID", std::string("bundle-skipped-") + event_id},
                                  {"tattle", boost::json::object{{"problem", text}, {"file", problem.where.file}}}};
        lines += boost::json::serialize(event);
        lines += '\n';
    }
    return lines;
}

// Hands the skipped-bundle events to the pipeline as one batch, beside the real sources.
class AnnouncementSource final : public BatchSource {
public:
    explicit AnnouncementSource(std::string lines) : lines_(std::move(lines)) {}
    Next next() override {
        Next next;
        if (given_ || lines_.empty()) return next;  // Exhausted
        given_ = true;
        next.status = NextStatus::Batch;
        next.batch.id = 1;
        next.batch.origin = "tattle: skipped bundles";
        next.batch.data = std::span(reinterpret_cast<const std::uint8_t*>(lines_.data()), lines_.size());
        return next;
    }
    std::string ack(std::uint64_t, bool settled) override {
        if (!settled) spdlog::error("the alert about skipped bundles could not be delivered nor spooled");
        return {};
    }
    const std::string& id() const noexcept override { return id_; }

private:
    std::string lines_;
    std::string id_ = "tattle";
    bool given_ = false;
};

LoadedConfig load_and_prepare(const ServeOptions& options) {
    LoadedConfig loaded;
    try {
        Config config = load_config(options.config_path, ConfigLoadOptions{true});
        for (const auto& problem : config.skipped_bundles) {
            spdlog::error("bundle skipped, its rules are not running: {}", redact(problem.to_string()));
        }
        if (!config.skipped_bundles.empty()) add_bundle_skipped_rule(config);
        PrepareOptions prepare_options;
        for (const auto& dir : options.plugin_dirs) prepare_options.extra_plugin_dirs.emplace_back(dir);
        auto prepared = std::make_unique<PreparedConfig>(prepare(config, prepare_options));
        for (const auto& problem : prepared->problems) loaded.problems.push_back(redact(problem.to_string()));
        if (loaded.problems.empty()) loaded.prepared = std::move(prepared);
    } catch (const ConfigError& e) {
        for (const auto& problem : e.problems()) loaded.problems.push_back(redact(problem.to_string()));
    } catch (const std::exception& e) {
        loaded.problems.push_back(options.config_path + ": " + redact(e.what()));
    }
    return loaded;
}

// What the signal thread, the HTTP endpoint and the run loop share.
class Controller {
public:
    explicit Controller(const ServeOptions& options) : options_(options) {}

    struct ReloadResult {
        bool accepted = false;
        std::string text;  // for the HTTP answer
    };

    // Loads and prepares the config file again. A good one replaces the running config
    // once the current run has finished gracefully; a bad one is logged and changes nothing.
    ReloadResult reload(const char* trigger) {
        std::lock_guard one_at_a_time(reload_mutex_);
        if (stopping()) return {false, "stopping: not reloaded\n"};
        spdlog::info("{}: reloading the config {}", trigger, options_.config_path);
        LoadedConfig loaded = load_and_prepare(options_);
        if (!loaded.prepared) {
            metrics_.config_reloaded(false);
            spdlog::error("the new config is rejected, the running one stays; {} problem(s):", loaded.problems.size());
            std::string text = "rejected, the running config stays; " + std::to_string(loaded.problems.size()) +
                               " problem(s):\n";
            for (const auto& problem : loaded.problems) {
                spdlog::error("  {}", problem);
                text += "  " + problem + '\n';
            }
            return {false, text};
        }
        metrics_.config_reloaded(true);
        {
            std::lock_guard lock(mutex_);
            next_config_ = std::move(loaded.prepared);
        }
        spdlog::info("the new config is good: the current run finishes its batches, then it takes over");
        run_stop_ = true;
        return {true, "reloaded: the new config takes over once the current run has finished\n"};
    }

    void stop(const char* why) {
        {
            std::lock_guard lock(mutex_);
            if (stop_deadline_) return;
            stop_deadline_ = std::chrono::steady_clock::now() + options_.grace_period;
        }
        spdlog::info("{}: stopping; no new batch is read, in-flight alerts have {} ms to settle", why,
                     options_.grace_period.count());
        run_stop_ = true;
        changed_.notify_all();
    }

    bool stopping() const {
        std::lock_guard lock(mutex_);
        return stop_deadline_.has_value();
    }

    // Before each run: unless stopping (or a newer config came meanwhile), the new run
    // reads until told otherwise.
    void begin_run() {
        std::lock_guard lock(mutex_);
        run_stop_ = stop_deadline_.has_value() || next_config_ != nullptr;
    }

    std::unique_ptr<PreparedConfig> take_next_config() {
        std::lock_guard lock(mutex_);
        return std::move(next_config_);
    }

    // The watchdog: after a stop, the process must be gone by the end of the grace period.
    // Returns false when that moment came before finished().
    bool wait_until_finished_or_late() {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] { return finished_ || stop_deadline_.has_value(); });
        if (finished_) return true;
        const auto deadline = *stop_deadline_;
        return changed_.wait_until(lock, deadline, [&] { return finished_; });
    }
    void finished() {
        {
            std::lock_guard lock(mutex_);
            finished_ = true;
        }
        changed_.notify_all();
    }

    bool ready() const { return metrics_.run_in_progress() && !run_stop_.load(); }
    const std::atomic<bool>& run_stop_flag() const noexcept { return run_stop_; }
    PipelineMetrics& metrics() noexcept { return metrics_; }

private:
    const ServeOptions& options_;
    PipelineMetrics metrics_;
    std::atomic<bool> run_stop_{false};
    std::mutex reload_mutex_;
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::unique_ptr<PreparedConfig> next_config_;
    std::optional<std::chrono::steady_clock::time_point> stop_deadline_;
    bool finished_ = false;
};

using Request = bhttp::request<bhttp::string_body>;
using Response = bhttp::response<bhttp::string_body>;

Response answer(Controller& controller, const Request& request) {
    Response response;
    response.version(request.version());
    response.keep_alive(false);
    response.set(bhttp::field::content_type, "text/plain; charset=utf-8");
    std::string_view target = request.target();
    target = target.substr(0, target.find('?'));
    const bool reading = request.method() == bhttp::verb::get || request.method() == bhttp::verb::head;
    auto reply = [&](bhttp::status status, std::string body) {
        response.result(status);
        response.body() = std::move(body);
    };
    if (target == "/-/reload") {
        if (request.method() != bhttp::verb::post) {
            response.set(bhttp::field::allow, "POST");
            reply(bhttp::status::method_not_allowed, "use POST\n");
        } else {
            auto result = controller.reload("POST /-/reload");
            reply(result.accepted ? bhttp::status::ok : bhttp::status::internal_server_error, std::move(result.text));
        }
    } else if (target != "/healthz" && target != "/readyz" && target != "/metrics") {
        reply(bhttp::status::not_found, "not found: try /healthz, /readyz, /metrics or POST /-/reload\n");
    } else if (!reading) {
        response.set(bhttp::field::allow, "GET, HEAD");
        reply(bhttp::status::method_not_allowed, "use GET\n");
    } else if (target == "/healthz") {
        reply(bhttp::status::ok, "ok\n");
    } else if (target == "/readyz") {
        const bool ready = controller.ready();
        reply(ready ? bhttp::status::ok : bhttp::status::service_unavailable, ready ? "ready\n" : "not ready\n");
    } else {
        response.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
        reply(bhttp::status::ok, controller.metrics().render(std::chrono::steady_clock::now()));
    }
    response.prepare_payload();
    return response;
}

// One request, one answer, then the connection closes.
class Session : public std::enable_shared_from_this<Session> {
public:
    Session(tcp::socket socket, Controller& controller) : stream_(std::move(socket)), controller_(controller) {}

    void start() {
        stream_.expires_after(10s);  // a client that never finishes its request goes away
        bhttp::async_read(stream_, buffer_, request_,
                          [self = shared_from_this()](beast::error_code error, std::size_t) { self->on_read(error); });
    }

private:
    void on_read(beast::error_code error) {
        if (error) return;
        response_ = answer(controller_, request_);
        stream_.expires_after(10s);
        bhttp::async_write(stream_, response_, [self = shared_from_this()](beast::error_code, std::size_t) {
            beast::error_code ignored;
            self->stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
        });
    }

    beast::tcp_stream stream_;
    Controller& controller_;
    beast::flat_buffer buffer_;
    Request request_;
    Response response_;
};

tcp::endpoint parse_listen_address(const std::string& listen) {
    const std::size_t colon = listen.rfind(':');
    if (colon == std::string::npos) throw std::invalid_argument("--listen " + listen + ": expected HOST:PORT");
    std::string host = listen.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    unsigned short port = 0;
    const std::string_view port_text = std::string_view(listen).substr(colon + 1);
    const auto parsed = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (port_text.empty() || parsed.ec != std::errc() || parsed.ptr != port_text.data() + port_text.size()) {
        throw std::invalid_argument("--listen " + listen + ": the port must be a number from 0 to 65535");
    }
    beast::error_code error;
    const auto address = asio::ip::make_address(host, error);
    if (error) throw std::invalid_argument("--listen " + listen + ": \"" + host + "\" is not an IP address");
    return {address, port};
}

// /healthz, /readyz, /metrics and POST /-/reload, served from a thread of its own.
class HttpEndpoint {
public:
    // Throws naming the address when it cannot listen there.
    HttpEndpoint(Controller& controller, const std::string& listen) : controller_(controller), acceptor_(io_) {
        const tcp::endpoint endpoint = parse_listen_address(listen);
        beast::error_code error;
        acceptor_.open(endpoint.protocol(), error);
        if (!error) acceptor_.set_option(asio::socket_base::reuse_address(true), error);
        if (!error) acceptor_.bind(endpoint, error);
        if (!error) acceptor_.listen(asio::socket_base::max_listen_connections, error);
        if (error) throw std::runtime_error("cannot listen on " + listen + ": " + error.message());
        const tcp::endpoint bound = acceptor_.local_endpoint();
        spdlog::info("listening on http://{}:{} (/healthz, /readyz, /metrics, POST /-/reload)",
                     bound.address().to_string(), bound.port());
        accept();
        thread_ = std::thread([this] { io_.run(); });
    }
    ~HttpEndpoint() {
        io_.stop();
        if (thread_.joinable()) thread_.join();
    }
    HttpEndpoint(const HttpEndpoint&) = delete;
    HttpEndpoint& operator=(const HttpEndpoint&) = delete;

private:
    void accept() {
        acceptor_.async_accept([this](beast::error_code error, tcp::socket socket) {
            if (error == asio::error::operation_aborted) return;
            if (!error) std::make_shared<Session>(std::move(socket), controller_)->start();
            accept();
        });
    }

    Controller& controller_;
    asio::io_context io_;
    tcp::acceptor acceptor_;
    std::thread thread_;
};

const char* signal_name(int signal) {
    switch (signal) {
        case SIGTERM: return "SIGTERM";
        case SIGINT: return "SIGINT";
        case SIGHUP: return "SIGHUP";
        default: return "signal";
    }
}

}  // namespace

int serve(const ServeOptions& options) {
    // Blocked before any thread starts, so every thread inherits the mask and the signals
    // are taken only by the thread that waits for them (no work in a signal handler).
    // SIGUSR1 is how this function wakes that thread to end it.
    sigset_t signals;
    sigemptyset(&signals);
    for (const int signal : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) sigaddset(&signals, signal);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    LoadedConfig first = load_and_prepare(options);
    if (!first.prepared) {
        spdlog::error("cannot start: {} problem(s) in {}:", first.problems.size(), options.config_path);
        for (const auto& problem : first.problems) spdlog::error("  {}", problem);
        return 2;
    }
    Controller controller(options);
    std::unique_ptr<HttpEndpoint> endpoint;
    try {
        endpoint = std::make_unique<HttpEndpoint>(controller, options.listen);
    } catch (const std::exception& e) {
        spdlog::error("{}", e.what());
        return 2;
    }
    std::thread signal_thread([&] {
        for (;;) {
            int signal = 0;
            if (sigwait(&signals, &signal) != 0) continue;
            if (signal == SIGUSR1) return;
            if (signal == SIGHUP) {
                controller.reload("SIGHUP");
            } else {
                controller.stop(signal_name(signal));
            }
        }
    });
    std::thread watchdog([&] {
        if (controller.wait_until_finished_or_late()) return;
        spdlog::critical("the grace period of {} ms ended before the work was settled; exiting now (what was not "
                         "acknowledged is read again at the next start)",
                         options.grace_period.count());
        spdlog::default_logger()->flush();
        std::_Exit(1);
    });

    // Delivery gives up a little before the grace period ends, to leave time to spool,
    // acknowledge and exit.
    const auto stop_grace = options.grace_period - std::min(options.grace_period / 4,
                                                             std::chrono::milliseconds(5s));
    std::unique_ptr<PreparedConfig> current = std::move(first.prepared);
    std::unique_ptr<PreparedConfig> previous;  // the last config that ran, while a new one starts
    const PreparedConfig* announced = nullptr;    // whose skipped bundles were alerted about
    int exit_code = 0;
    while (true) {
        controller.begin_run();
        RunOptions run;
        std::vector<std::unique_ptr<SourceInstance>> configured_sources;
        std::unique_ptr<AnnouncementSource> announcement;
        run.stop_requested = &controller.run_stop_flag();
        run.stop_grace = stop_grace;
        run.keep_polling = true;
        run.idle_poll_interval = options.idle_poll_interval;
        run.metrics = &controller.metrics();
        bool run_failed = false;
        try {
            if (current.get() != announced && !current->config.skipped_bundles.empty()) {
                announced = current.get();
                configured_sources = make_sources(*current, RunOptions{});
                announcement = std::make_unique<AnnouncementSource>(skipped_bundle_events(current->config));
                for (auto& source : configured_sources) run.sources.push_back(source.get());
                run.sources.push_back(announcement.get());
            }
            const RunSummary summary = run_pipeline(*current, run);
            spdlog::info("run ended: {} batches ({} failed), {} events, {} matches, {} alerts delivered, {} spooled, "
                         "{} not delivered; CPU seconds: {}",
                         summary.batches, summary.batches_failed, summary.events, summary.matches,
                         summary.alerts_delivered, summary.alerts_spooled, summary.alerts_failed,
                         describe(summary.cpu));
            previous.reset();
        } catch (const std::exception& e) {
            controller.metrics().run_finished();
            spdlog::error("the run failed: {}", redact(e.what()));
            run_failed = true;
        }
        if (controller.stopping()) break;
        if (auto next = controller.take_next_config()) {
            previous = std::move(current);
            current = std::move(next);
            continue;
        }
        if (run_failed) {
            if (!previous) {
                exit_code = 2;
                break;
            }
            spdlog::warn("going back to the previous config");
            current = std::move(previous);
        }
    }
    controller.finished();
    watchdog.join();
    endpoint.reset();
    pthread_kill(signal_thread.native_handle(), SIGUSR1);
    signal_thread.join();
    if (exit_code == 0) spdlog::info("stopped");
    return exit_code;
}

}  // namespace tattle::daemon
