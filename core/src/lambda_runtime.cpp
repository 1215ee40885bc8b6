// The Lambda Runtime API loop (see lambda.hpp).

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>

#include "tattle/aws/s3.hpp"
#include "tattle/config.hpp"
#include "tattle/http/client.hpp"
#include "tattle/lambda.hpp"
#include "tattle/pipeline.hpp"
#include "tattle/secrets.hpp"

namespace tattle::lambda {

namespace json = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

using SystemTime = std::chrono::system_clock::time_point;

constexpr std::string_view kApiVersion = "2018-06-01";
constexpr std::size_t kMaxObjectBytes = std::size_t{256} << 20;
constexpr std::size_t kMaxInvocationPayload = std::size_t{7} << 20;  // 6 MB sync payloads, some headroom
constexpr std::size_t kMaxFailuresInMessage = 5;

std::string env_or_empty(const char* name) {
    const char* value = std::getenv(name);
    return value != nullptr ? std::string(value) : std::string();
}

struct Invocation {
    std::string request_id;
    SystemTime deadline;
    std::string trace_id;
    std::string function_arn;
    std::string payload;
};

// The Runtime API: plain HTTP to the local endpoint Lambda gives in AWS_LAMBDA_RUNTIME_API.
class RuntimeApi {
public:
    explicit RuntimeApi(const std::string& host_port)
        : base_url_("http://" + host_port + "/" + std::string(kApiVersion)),
          waiting_client_(waiting_options()),
          posting_client_(posting_options()) {
        waiting_client_.allow_plain_http(true);
        posting_client_.allow_plain_http(true);
    }

    // Blocks until Lambda hands over an invocation (the sandbox is frozen meanwhile).
    Invocation next() {
        http::Request request;
        request.method = "GET";
        request.url = base_url_ + "/runtime/invocation/next";
        const http::Response response = waiting_client_.send(request);
        if (response.status != 200) {
            throw std::runtime_error("Runtime API /runtime/invocation/next answered HTTP " +
                                     std::to_string(response.status));
        }
        Invocation invocation;
        invocation.request_id = response.header("lambda-runtime-aws-request-id").value_or("");
        if (invocation.request_id.empty()) {
            throw std::runtime_error("Runtime API: an invocation without Lambda-Runtime-Aws-Request-Id");
        }
        const std::string deadline = response.header("lambda-runtime-deadline-ms").value_or("");
        std::int64_t deadline_ms = 0;
        const auto [end, error] = std::from_chars(deadline.data(), deadline.data() + deadline.size(), deadline_ms);
        if (error != std::errc{} || end != deadline.data() + deadline.size() || deadline_ms <= 0) {
            // Without a deadline, behave as if the longest timeout applied.
            invocation.deadline = std::chrono::system_clock::now() + 15min;
            spdlog::warn("invocation {}: no usable Lambda-Runtime-Deadline-Ms header", invocation.request_id);
        } else {
            invocation.deadline = SystemTime(std::chrono::milliseconds(deadline_ms));
        }
        invocation.trace_id = response.header("lambda-runtime-trace-id").value_or("");
        invocation.function_arn = response.header("lambda-runtime-invoked-function-arn").value_or("");
        invocation.payload = response.body;
        return invocation;
    }

    void respond(const std::string& request_id, const std::string& body) {
        post("/runtime/invocation/" + request_id + "/response", body, "application/json", "");
    }

    void fail(const std::string& request_id, const std::string& error_type, const std::string& message) {
        post("/runtime/invocation/" + request_id + "/error", error_body(error_type, message),
             "application/vnd.aws.lambda.error+json", error_type);
    }

    void init_error(const std::string& error_type, const std::string& message) {
        post("/runtime/init/error", error_body(error_type, message), "application/vnd.aws.lambda.error+json",
             error_type);
    }

private:
    static http::ClientOptions waiting_options() {
        http::ClientOptions options;
        options.https_proxy = "";
        options.no_proxy = "";
        // Lambda freezes the process while it waits for work: no deadline on that wait.
        options.total_timeout = std::chrono::hours(24 * 365);
        options.max_response_bytes = kMaxInvocationPayload;
        return options;
    }
    static http::ClientOptions posting_options() {
        http::ClientOptions options;
        options.https_proxy = "";
        options.no_proxy = "";
        options.total_timeout = 10s;
        return options;
    }

    static std::string error_body(const std::string& error_type, const std::string& message) {
        return json::serialize(json::object{
            {"errorMessage", redact(message)}, {"errorType", error_type}, {"stackTrace", json::array()}});
    }

    void post(const std::string& path, const std::string& body, const std::string& content_type,
              const std::string& error_type) {
        http::Request request;
        request.method = "POST";
        request.url = base_url_ + path;
        request.headers.emplace_back("Content-Type", content_type);
        if (!error_type.empty()) request.headers.emplace_back("Lambda-Runtime-Function-Error-Type", error_type);
        request.body = body;
        const http::Response response = posting_client_.send(request);
        if (response.status != 202) {
            throw std::runtime_error("Runtime API " + path.substr(0, path.find('/', 9)) + "… answered HTTP " +
                                     std::to_string(response.status));
        }
    }

    std::string base_url_;
    http::Client waiting_client_;
    http::Client posting_client_;
};

// What became of each work item of an invocation.
enum class ItemState { not_reached, read, settled, failed };

// The invocation's work items as a batch source: objects are fetched when the pipeline
// asks for them, so that reading stops at the deadline with the rest left undone.
class InvocationSource final : public BatchSource {
public:
    InvocationSource(const std::vector<WorkItem>& items, aws::S3Client* s3)
        : items_(items), s3_(s3), states_(items.size(), ItemState::not_reached), errors_(items.size()),
          bodies_(items.size()) {}

    Next next() override {
        Next next;
        if (position_ >= items_.size()) return next;  // Exhausted
        const std::size_t index = position_++;
        const WorkItem& item = items_[index];
        next.batch.id = index;
        next.batch.origin = item.origin;
        if (item.kind == WorkItem::Kind::events) {
            bodies_[index] = item.events;
        } else {
            try {
                if (s3_ == nullptr) throw std::runtime_error("no S3 client (no AWS region configured?)");
                const aws::RetryPolicy policy{3, 200ms, 2000ms};
                aws::S3Object object = aws::call_with_retries(
                    [&] { return s3_->get_object(item.object.bucket, item.object.key); }, policy);
                bodies_[index] = std::move(object.body);
            } catch (const std::exception& error) {
                states_[index] = ItemState::failed;
                errors_[index] = error.what();
                next.status = NextStatus::BatchUnreadable;
                next.error = error.what();
                return next;
            }
        }
        states_[index] = ItemState::read;
        next.status = NextStatus::Batch;
        next.batch.data = std::span(reinterpret_cast<const std::uint8_t*>(bodies_[index].data()), bodies_[index].size());
        return next;
    }

    std::string ack(std::uint64_t batch_id, bool settled) override {
        const auto index = static_cast<std::size_t>(batch_id);
        states_.at(index) = settled ? ItemState::settled : ItemState::failed;
        if (!settled && errors_[index].empty()) errors_[index] = "not every alert was delivered";
        std::string().swap(bodies_[index]);
        return {};
    }

    const std::string& id() const noexcept override { return id_; }

    ItemState state(std::size_t index) const { return states_.at(index); }
    const std::string& error(std::size_t index) const { return errors_.at(index); }

private:
    const std::vector<WorkItem>& items_;
    aws::S3Client* s3_;
    std::vector<ItemState> states_;
    std::vector<std::string> errors_;
    std::vector<std::string> bodies_;
    std::size_t position_ = 0;
    std::string id_ = "lambda";
};

// Converts Lambda's wall-clock deadline into the steady clock the pipeline uses.
SteadyTime steady_deadline(SystemTime deadline) {
    const auto remaining = deadline - std::chrono::system_clock::now();
    return std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(remaining);
}

// CloudWatch Embedded Metric Format: one JSON line on stdout that CloudWatch turns into metrics.
void emit_metrics(const std::string& function_name, const RunSummary& summary, std::size_t failed_items,
                  std::chrono::milliseconds duration) {
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    json::array metrics;
    for (const char* name : {"Events", "Matches", "AlertsDelivered", "AlertsSpooled", "AlertsFailed",
                             "BatchesFailed", "ItemsFailed", "RuleErrors"}) {
        metrics.push_back(json::object{{"Name", name}, {"Unit", "Count"}});
    }
    for (const char* name : {"ProcessingTime", "BatchWorkersCpuTime", "DeliveryCpuTime", "MainThreadCpuTime"}) {
        metrics.push_back(json::object{{"Name", name}, {"Unit", "Milliseconds"}});
    }
    const auto milliseconds = [](std::chrono::nanoseconds cpu) {
        return std::chrono::duration<double, std::milli>(cpu).count();
    };
    json::object line{
        {"_aws", json::object{{"Timestamp", now_ms},
                              {"CloudWatchMetrics", json::array{json::object{
                                                        {"Namespace", "tattle"},
                                                        {"Dimensions", json::array{json::array{"FunctionName"}}},
                                                        {"Metrics", std::move(metrics)}}}}}},
        {"FunctionName", function_name},
        {"Events", summary.events},
        {"Matches", summary.matches},
        {"AlertsDelivered", summary.alerts_delivered},
        {"AlertsSpooled", summary.alerts_spooled},
        {"AlertsFailed", summary.alerts_failed},
        {"BatchesFailed", summary.batches_failed},
        {"ItemsFailed", failed_items},
        {"RuleErrors", summary.rule_errors},
        {"ProcessingTime", duration.count()},
        // The invocation's CPU by kind of thread: its share follows the function's memory size.
        {"BatchWorkersCpuTime", milliseconds(summary.cpu.batch_workers)},
        {"DeliveryCpuTime", milliseconds(summary.cpu.delivery)},
        {"MainThreadCpuTime", milliseconds(summary.cpu.main_thread)},
    };
    std::fputs((json::serialize(line) + "\n").c_str(), stdout);
    std::fflush(stdout);
}

// The config, from a file or from S3 (tattletail's S3_CONFIG_BUCKET / S3_CONFIG_PATH).
class ConfigSource {
public:
    explicit ConfigSource(const RuntimeOptions& options)
        : path_(options.config_path), bucket_(env_or_empty("S3_CONFIG_BUCKET")), key_(env_or_empty("S3_CONFIG_PATH")) {
        prepare_options_.extra_plugin_dirs.assign(options.plugin_dirs.begin(), options.plugin_dirs.end());
        if (path_.empty()) path_ = env_or_empty("TATTLE_CONFIG");
        if (path_.empty() && !from_s3()) {
            const std::string task_root = env_or_empty("LAMBDA_TASK_ROOT");
            path_ = (fs::path(task_root.empty() ? "." : task_root) / "tattle.toml").string();
        }
    }

    bool from_s3() const { return !bucket_.empty() && !key_.empty(); }

    // Loads (or reloads when the S3 object changed). Throws ConfigError / std::runtime_error.
    // Returns true when a new config was prepared.
    bool refresh(aws::S3Client* s3, std::unique_ptr<PreparedConfig>& prepared) {
        std::string path = path_;
        if (from_s3()) {
            if (s3 == nullptr) throw std::runtime_error("S3_CONFIG_BUCKET is set but no S3 client could be made");
            const auto downloaded = download(*s3);
            if (!downloaded) return false;  // unchanged
            path = *downloaded;
        } else if (prepared) {
            return false;
        }
        Config config = load_config(path);
        auto next = std::make_unique<PreparedConfig>(prepare(config, prepare_options_));
        if (!next->problems.empty()) throw ConfigError(next->problems);
        prepared = std::move(next);
        etag_ = pending_etag_;
        return true;
    }

    std::string describe() const { return from_s3() ? "s3://" + bucket_ + "/" + key_ : path_; }

private:
    // The object's new text in /tmp, or nullopt when its ETag is the one loaded.
    std::optional<std::string> download(aws::S3Client& s3) {
        http::Request request;
        request.method = "GET";
        request.url = aws::s3_url(s3.service().endpoint(), bucket_, key_, s3.service().settings().s3_addressing);
        if (!etag_.empty()) request.headers.emplace_back("If-None-Match", etag_);
        const std::string what = "s3:GetObject " + aws::s3_uri(bucket_, key_) + " (the config)";
        const http::Response response = s3.service().send(request, what);
        if (response.status == 304) return std::nullopt;
        if (response.status != 200) throw aws::error_from_response(response, what);
        pending_etag_ = response.header("etag").value_or("");
        const fs::path directory = "/tmp/tattle/config";
        fs::create_directories(directory);
        const fs::path file = directory / fs::path(key_).filename();
        std::ofstream out(file, std::ios::binary | std::ios::trunc);
        out << response.body;
        if (!out.flush()) throw std::runtime_error("cannot write " + file.string());
        return file.string();
    }

    std::string path_;
    std::string bucket_;
    std::string key_;
    std::string etag_;
    std::string pending_etag_;
    PrepareOptions prepare_options_;
};

std::string problems_text(const std::vector<Diagnostic>& problems) {
    std::string text;
    for (const auto& problem : problems) {
        if (!text.empty()) text += "\n";
        text += problem.to_string();
    }
    return text;
}

std::unique_ptr<aws::S3Client> make_s3_client() {
    aws::ServiceSettings settings;
    settings.http.max_response_bytes = kMaxObjectBytes;
    settings.http.total_timeout = 60s;
    try {
        return std::make_unique<aws::S3Client>(std::move(settings));
    } catch (const std::exception& error) {
        spdlog::warn("no S3 client: {}; S3 objects cannot be read", error.what());
        return nullptr;
    }
}

struct InvocationOutcome {
    bool failed = false;             // report an invocation error
    std::string response;            // the body to return when not failed
    std::string error_message;       // when failed
    std::vector<std::string> failures;
    RunSummary summary;
};

InvocationOutcome handle(PreparedConfig& prepared, aws::S3Client* s3, const Invocation& invocation,
                         const RuntimeOptions& options, bool spooled_settles_batch) {
    InvocationOutcome outcome;
    const InvocationPlan plan = plan_invocation(invocation.payload, notifications::ObjectFilter::cloudtrail_logs());
    for (const auto& line : plan.skipped) spdlog::info("skipped {}", line);
    for (const auto& problem : plan.problems) {
        spdlog::error("unreadable part of the {} event{}: {}", plan.event_kind,
                      problem.sqs_message_id ? " (message " + *problem.sqs_message_id + ")" : std::string(),
                      problem.message);
    }

    const SteadyTime deadline = steady_deadline(invocation.deadline);
    const auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    // Short timeouts get proportionally shorter margins, so that a 3 s function still works.
    const auto reading_margin = std::clamp(remaining / 4, 100ms, options.deadline_margin);
    const auto delivery_margin = std::clamp(remaining / 8, 50ms, options.delivery_margin);

    InvocationSource source(plan.items, s3);
    if (!plan.items.empty()) {
        RunOptions run;
        run.sources = {&source};
        run.stop_reading_at = deadline - reading_margin;
        run.give_up_delivery_at = deadline - delivery_margin;
        run.spooled_settles_batch = spooled_settles_batch;
        outcome.summary = run_pipeline(prepared, run);
    }

    std::set<std::string> failed_messages;
    for (std::size_t i = 0; i < plan.items.size(); ++i) {
        const ItemState state = source.state(i);
        if (state == ItemState::settled) continue;
        const std::string why = state == ItemState::not_reached ? "not reached before the deadline" : source.error(i);
        outcome.failures.push_back(plan.items[i].origin + ": " + why);
        if (plan.items[i].sqs_message_id) failed_messages.insert(*plan.items[i].sqs_message_id);
    }
    bool unattributed_problem = false;
    for (const auto& problem : plan.problems) {
        outcome.failures.push_back(problem.message);
        if (problem.sqs_message_id) {
            failed_messages.insert(*problem.sqs_message_id);
        } else {
            unattributed_problem = true;
        }
    }

    if (plan.partial_batch_response && !unattributed_problem) {
        // Every record not in the list is deleted by Lambda: list in the event's order.
        std::vector<std::string> failed;
        for (const auto& id : plan.message_ids) {
            if (failed_messages.count(id) != 0) failed.push_back(id);
        }
        outcome.response = batch_item_failures_json(failed);
        return outcome;
    }
    if (!outcome.failures.empty()) {
        outcome.failed = true;
        std::string message = std::to_string(outcome.failures.size()) + " part(s) of the " + plan.event_kind +
                              " event failed: ";
        for (std::size_t i = 0; i < outcome.failures.size() && i < kMaxFailuresInMessage; ++i) {
            if (i > 0) message += "; ";
            message += outcome.failures[i];
        }
        outcome.error_message = message;
        return outcome;
    }
    outcome.response = json::serialize(json::object{{"event_kind", plan.event_kind},
                                                    {"items", plan.items.size()},
                                                    {"skipped", plan.skipped.size()},
                                                    {"events", outcome.summary.events},
                                                    {"matches", outcome.summary.matches},
                                                    {"alerts_delivered", outcome.summary.alerts_delivered}});
    return outcome;
}

}  // namespace

int run_runtime(const RuntimeOptions& options) {
    const auto process_start = std::chrono::steady_clock::now();
    RuntimeApi api(options.runtime_api);
    const std::string function_name = env_or_empty("AWS_LAMBDA_FUNCTION_NAME");

    // Undeliverable alerts may only settle a batch when their spool outlives the sandbox
    // (a spool_dir or TATTLE_SPOOL_DIR on EFS); the default one is in /tmp.
    const bool spool_configured = !env_or_empty("TATTLE_SPOOL_DIR").empty();

    std::unique_ptr<aws::S3Client> s3 = make_s3_client();
    ConfigSource config_source(options);
    std::unique_ptr<PreparedConfig> prepared;
    try {
        config_source.refresh(s3.get(), prepared);
    } catch (const ConfigError& error) {
        const std::string text = "config " + config_source.describe() + ":\n" + problems_text(error.problems());
        spdlog::critical("{}", redact(text));
        api.init_error("tattle.ConfigError", text);
        return 2;
    } catch (const std::exception& error) {
        const std::string text = "config " + config_source.describe() + ": " + error.what();
        spdlog::critical("{}", redact(text));
        api.init_error("tattle.ConfigError", text);
        return 2;
    }
    if (!prepared->config.sources.empty()) {
        spdlog::info("the config's {} [[source]] table(s) are not read in Lambda: the invocations are the input",
                     prepared->config.sources.size());
    }
    const auto ready_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - process_start);
    spdlog::info("tattle Lambda runtime ready in {} ms: {} rule(s), {} destination(s), config {}", ready_ms.count(),
                 prepared->config.rules.size(), prepared->config.destinations.size(), config_source.describe());

    for (std::uint64_t served = 0; options.max_invocations == 0 || served < options.max_invocations; ++served) {
        Invocation invocation;
        try {
            invocation = api.next();
        } catch (const std::exception& error) {
            spdlog::critical("Runtime API: {}", error.what());
            return 1;
        }
        const auto started = std::chrono::steady_clock::now();
        if (!invocation.trace_id.empty()) ::setenv("_X_AMZN_TRACE_ID", invocation.trace_id.c_str(), 1);
        spdlog::info("invocation {} started (trace {})", invocation.request_id,
                     invocation.trace_id.empty() ? "-" : invocation.trace_id);
        try {
            if (config_source.from_s3()) {
                try {
                    if (config_source.refresh(s3.get(), prepared)) {
                        spdlog::info("config {} changed: reloaded", config_source.describe());
                    }
                } catch (const ConfigError& error) {
                    spdlog::error("config {} changed but is broken; the loaded one stays:\n{}",
                                  config_source.describe(), redact(problems_text(error.problems())));
                } catch (const std::exception& error) {
                    spdlog::error("config {}: cannot check for changes ({}); the loaded one stays",
                                  config_source.describe(), redact(error.what()));
                }
            }
            const bool spooled_settles_batch = spool_configured || prepared->config.spool_dir.has_value();
            InvocationOutcome outcome = handle(*prepared, s3.get(), invocation, options, spooled_settles_batch);
            const auto took =
                std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
            emit_metrics(function_name, outcome.summary, outcome.failures.size(), took);
            if (outcome.failed) {
                spdlog::error("invocation {} failed after {} ms: {}", invocation.request_id, took.count(),
                              redact(outcome.error_message));
                api.fail(invocation.request_id, "tattle.InvocationFailed", outcome.error_message);
            } else {
                spdlog::info("invocation {} done in {} ms: {} event(s), {} match(es), {} alert(s) delivered{}; "
                             "CPU seconds: {}",
                             invocation.request_id, took.count(), outcome.summary.events, outcome.summary.matches,
                             outcome.summary.alerts_delivered,
                             outcome.failures.empty() ? std::string()
                                                      : ", " + std::to_string(outcome.failures.size()) + " failed item(s)",
                             describe(outcome.summary.cpu));
                api.respond(invocation.request_id, outcome.response);
            }
        } catch (const std::exception& error) {
            spdlog::error("invocation {}: {}", invocation.request_id, redact(error.what()));
            try {
                api.fail(invocation.request_id, "tattle.InternalError", error.what());
            } catch (const std::exception& post_error) {
                spdlog::critical("Runtime API: {}", post_error.what());
                return 1;
            }
        }
    }
    return 0;
}

}  // namespace tattle::lambda
