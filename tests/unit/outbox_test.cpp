// The outbox (retries, backoff, rate limit, backpressure, spool) and the pipeline's
// acknowledgements and spool replay, with in-process plugins whose answers each test
// scripts. The delivery keys of the config: delivery_config_test.cpp.
#include "tattle/outbox.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <boost/json.hpp>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <sstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tattle/config.hpp"
#include "tattle/dedup.hpp"
#include "tattle/pipeline.hpp"
#include "tattle/secrets.hpp"
#include "tattle/spool.hpp"

namespace tattle {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;

// ---- a sink whose answers the test scripts ---------------------------------------------

struct Answer {
    tattle_rc code = TATTLE_RC_OK;
    std::string message;
    std::int64_t retry_after_ms = -1;
};

Answer ok() { return {}; }
Answer retry(std::string why, std::int64_t after_ms = -1) {
    return {TATTLE_RC_RETRY, std::move(why), after_ms};
}
Answer fail(std::string why) { return {TATTLE_RC_FAIL, std::move(why), -1}; }

// What the plugins did, in order, across sinks and sources: "send batch-1 e1 ok",
// "flush", "ack 1 settled".
struct EventLog {
    std::mutex mutex;
    std::vector<std::string> lines;
    void add(std::string line) {
        std::lock_guard lock(mutex);
        lines.push_back(std::move(line));
    }
    std::vector<std::string> snapshot() {
        std::lock_guard lock(mutex);
        return lines;
    }
};

EventLog& events() {
    static EventLog log;
    return log;
}

struct SinkScript {
    std::mutex mutex;
    std::deque<Answer> answers;  // used in order, then `otherwise`
    Answer otherwise;
    std::function<Answer(const boost::json::object& alert)> decide;  // wins when set
    std::deque<bool> flush_results;                                  // false: the flush fails
    Clock* clock = nullptr;                                          // stamps sends when set
    std::function<void(const boost::json::object& alert)> while_sending;
    std::vector<std::string> sent;  // alert documents, in order
    std::vector<SteadyTime> send_times;
    int instances = 0;
    std::atomic<int> sending{0};
    std::atomic<int> max_sending{0};
    std::atomic<int> max_sending_one_instance{0};
};

std::mutex& scripts_mutex() {
    static std::mutex mutex;
    return mutex;
}
std::map<std::string, std::shared_ptr<SinkScript>>& sink_scripts() {
    static std::map<std::string, std::shared_ptr<SinkScript>> scripts;
    return scripts;
}

std::shared_ptr<SinkScript> new_sink_script(const std::string& name) {
    auto script = std::make_shared<SinkScript>();
    std::lock_guard lock(scripts_mutex());
    sink_scripts()[name] = script;
    return script;
}

std::string script_name_of(const char* config_json) {
    return std::string(boost::json::parse(config_json).as_object().at("script").as_string());
}

struct SinkHandle {
    std::shared_ptr<SinkScript> script;
    std::string last_error;
    std::atomic<int> busy{0};
};

std::string g_create_error;

const char* test_last_error(void* handle) {
    return handle != nullptr ? static_cast<SinkHandle*>(handle)->last_error.c_str()
                             : g_create_error.c_str();
}

const tattle_plugin_info* scripted_sink_info() {
    static const tattle_plugin_info info = {
        sizeof(tattle_plugin_info),
        TATTLE_PLUGIN_ABI_MAJOR,
        TATTLE_PLUGIN_ABI_MINOR,
        TATTLE_PLUGIN_KIND_SINK,
        "test_scripted",
        "1.0.0",
        "answers as the test scripts",
        R"({"type":"object","properties":{"script":{"type":"string"}},"required":["script"],
            "additionalProperties":false,"x-tattle-delivery":{"max_attempts":7}})"};
    return &info;
}

void* scripted_sink_create(const tattle_create_args* args, tattle_rc* rc) {
    std::lock_guard lock(scripts_mutex());
    auto found = sink_scripts().find(script_name_of(args->config_json));
    if (found == sink_scripts().end()) {
        g_create_error = "no such script";
        *rc = TATTLE_RC_ERROR;
        return nullptr;
    }
    auto* handle = new SinkHandle;
    handle->script = found->second;
    {
        std::lock_guard script_lock(found->second->mutex);
        ++found->second->instances;
    }
    *rc = TATTLE_RC_OK;
    return handle;
}

void raise_to(std::atomic<int>& maximum, int value) {
    int seen = maximum.load();
    while (value > seen && !maximum.compare_exchange_weak(seen, value)) {
    }
}

tattle_rc scripted_sink_send(void* opaque, const char* json, size_t len,
                             tattle_send_result* result) {
    auto* handle = static_cast<SinkHandle*>(opaque);
    SinkScript& script = *handle->script;
    raise_to(script.max_sending, ++script.sending);
    raise_to(script.max_sending_one_instance, ++handle->busy);
    const auto alert = boost::json::parse(std::string_view(json, len)).as_object();
    if (script.while_sending) script.while_sending(alert);
    Answer answer;
    {
        std::lock_guard lock(script.mutex);
        script.sent.emplace_back(json, len);
        if (script.clock != nullptr) script.send_times.push_back(script.clock->now());
        if (script.decide) {
            answer = script.decide(alert);
        } else if (!script.answers.empty()) {
            answer = script.answers.front();
            script.answers.pop_front();
        } else {
            answer = script.otherwise;
        }
    }
    const auto* origin = alert.if_contains("origin");
    const auto* event = alert.if_contains("event");
    std::string line = "send";
    if (origin != nullptr) line += " " + std::string(origin->as_object().at("batch").as_string());
    if (event != nullptr) line += " " + std::string(event->as_object().at("eventID").as_string());
    line += answer.code == TATTLE_RC_OK      ? " ok"
            : answer.code == TATTLE_RC_RETRY ? " retry"
                                             : " fail";
    events().add(line);
    handle->last_error = answer.message;
    result->retry_after_ms = answer.retry_after_ms;
    --handle->busy;
    --script.sending;
    return answer.code;
}

tattle_rc scripted_sink_flush(void* opaque) {
    auto* handle = static_cast<SinkHandle*>(opaque);
    SinkScript& script = *handle->script;
    bool good = true;
    {
        std::lock_guard lock(script.mutex);
        if (!script.flush_results.empty()) {
            good = script.flush_results.front();
            script.flush_results.pop_front();
        }
    }
    events().add(good ? "flush" : "flush failed");
    if (good) return TATTLE_RC_OK;
    handle->last_error = "disk full";
    return TATTLE_RC_ERROR;
}

void scripted_sink_destroy(void* handle) { delete static_cast<SinkHandle*>(handle); }

sdk::PluginFunctions scripted_sink_functions() {
    sdk::PluginFunctions functions;
    functions.get_info = &scripted_sink_info;
    functions.last_error = &test_last_error;
    functions.sink_create = &scripted_sink_create;
    functions.sink_send = &scripted_sink_send;
    functions.sink_flush = &scripted_sink_flush;
    functions.sink_destroy = &scripted_sink_destroy;
    return functions;
}

// ---- a source that hands out the test's batches and records its acks -------------------

struct SourceScript {
    std::vector<std::string> batches;
    std::mutex mutex;
    std::vector<std::pair<std::uint64_t, bool>> acks;
    std::vector<std::pair<std::uint64_t, bool>> snapshot() {
        std::lock_guard lock(mutex);
        return acks;
    }
};

std::map<std::string, std::shared_ptr<SourceScript>>& source_scripts() {
    static std::map<std::string, std::shared_ptr<SourceScript>> scripts;
    return scripts;
}

std::shared_ptr<SourceScript> new_source_script(const std::string& name,
                                                std::vector<std::string> batches) {
    auto script = std::make_shared<SourceScript>();
    script->batches = std::move(batches);
    std::lock_guard lock(scripts_mutex());
    source_scripts()[name] = script;
    return script;
}

struct SourceHandle {
    std::shared_ptr<SourceScript> script;
    std::size_t next = 0;
    std::string origin;
    std::string last_error;
};

const tattle_plugin_info* recording_source_info() {
    static const tattle_plugin_info info = {
        sizeof(tattle_plugin_info),
        TATTLE_PLUGIN_ABI_MAJOR,
        TATTLE_PLUGIN_ABI_MINOR,
        TATTLE_PLUGIN_KIND_SOURCE,
        "test_recording",
        "1.0.0",
        "hands out the test's batches, records acks",
        R"({"type":"object","properties":{"script":{"type":"string"}},"required":["script"]})"};
    return &info;
}

const char* source_last_error(void* handle) {
    return handle != nullptr ? static_cast<SourceHandle*>(handle)->last_error.c_str()
                             : g_create_error.c_str();
}

void* recording_source_create(const tattle_create_args* args, tattle_rc* rc) {
    std::lock_guard lock(scripts_mutex());
    auto found = source_scripts().find(script_name_of(args->config_json));
    if (found == source_scripts().end()) {
        g_create_error = "no such script";
        *rc = TATTLE_RC_ERROR;
        return nullptr;
    }
    auto* handle = new SourceHandle;
    handle->script = found->second;
    *rc = TATTLE_RC_OK;
    return handle;
}

tattle_rc recording_source_next(void* opaque, tattle_batch* batch) {
    auto* handle = static_cast<SourceHandle*>(opaque);
    if (handle->next >= handle->script->batches.size()) return TATTLE_RC_EOF;
    const std::string& data = handle->script->batches[handle->next];
    ++handle->next;
    handle->origin = "batch-" + std::to_string(handle->next);
    batch->batch_id = handle->next;
    batch->origin = handle->origin.c_str();
    batch->data = reinterpret_cast<const std::uint8_t*>(data.data());
    batch->size = data.size();
    return TATTLE_RC_OK;
}

tattle_rc recording_source_ack(void* opaque, std::uint64_t batch_id, int32_t outcome) {
    auto* handle = static_cast<SourceHandle*>(opaque);
    const bool settled = outcome == TATTLE_BATCH_SETTLED;
    {
        std::lock_guard lock(handle->script->mutex);
        handle->script->acks.emplace_back(batch_id, settled);
    }
    events().add("ack " + std::to_string(batch_id) + (settled ? " settled" : " released"));
    return TATTLE_RC_OK;
}

void recording_source_destroy(void* handle) { delete static_cast<SourceHandle*>(handle); }

// The static registry is read by prepare(); both test plugins join it once per process.
void register_test_plugins() {
    static const bool registered = [] {
        sdk::static_registry().push_back(scripted_sink_functions());
        sdk::PluginFunctions source;
        source.get_info = &recording_source_info;
        source.last_error = &source_last_error;
        source.source_create = &recording_source_create;
        source.source_next = &recording_source_next;
        source.source_ack = &recording_source_ack;
        source.source_destroy = &recording_source_destroy;
        sdk::static_registry().push_back(source);
        return true;
    }();
    (void)registered;
}

std::shared_ptr<const Plugin> scripted_sink_plugin() {
    auto plugin = std::make_shared<Plugin>();
    plugin->functions = scripted_sink_functions();
    plugin->kind = TATTLE_PLUGIN_KIND_SINK;
    plugin->type_name = "test_scripted";
    plugin->location = "test";
    return plugin;
}

fs::path make_temp_dir(const std::string& tag) {
    std::string pattern = (fs::temp_directory_path() / ("tattle_" + tag + "_XXXXXX")).string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    return pattern;
}

std::string read_file(const fs::path& path) {
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

double seconds_between(SteadyTime from, SteadyTime to) {
    return std::chrono::duration<double>(to - from).count();
}

// ---- the outbox alone ------------------------------------------------------------------

DeliveryItem alert_item(const std::string& alert_id, std::uint64_t ticket = 0) {
    DeliveryItem item;
    item.alert_id = alert_id;
    item.rule = "Create User";
    item.ticket = ticket;
    item.alert_json = boost::json::serialize(boost::json::object{
        {"alert_id", alert_id}, {"rule", {{"name", "Create User"}}}, {"destination", "out"}});
    return item;
}

DeliverySettings quick_settings() {
    DeliverySettings settings;
    settings.initial_backoff = 1000ms;
    settings.max_backoff = 60s;
    settings.max_attempts = 10;
    settings.max_retry_time = 300s;
    return settings;
}

class OutboxTest : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = make_temp_dir("outbox");
        script_ = new_sink_script(name());
        script_->clock = &clock_;
        spool_ = std::make_unique<Spool>(dir_ / "spool");
    }
    void TearDown() override { fs::remove_all(dir_); }

    static std::string name() {
        return ::testing::UnitTest::GetInstance()->current_test_info()->name();
    }

    std::unique_ptr<Outbox> make_outbox(DeliverySettings settings, Clock* clock = nullptr) {
        OutboxServices services;
        services.clock = clock != nullptr ? clock : &clock_;
        services.spool = spool_.get();
        services.dedup = dedup_.get();
        services.random_seed = 7;
        services.give_up_at = give_up_at_;
        services.on_complete = [this](DeliveryCompletion&& completion) {
            std::lock_guard lock(mutex_);
            completions_.push_back(std::move(completion));
        };
        auto plugin = scripted_sink_plugin();
        const std::string script = name();
        return std::make_unique<Outbox>(
            "out", settings,
            [plugin, script] {
                return std::make_unique<SinkInstance>(plugin, "out",
                                                      boost::json::object{{"script", script}});
            },
            services);
    }

    std::vector<DeliveryCompletion> completions() {
        std::lock_guard lock(mutex_);
        return completions_;
    }

    // An outbox (real time) whose sends wait until the gate is opened.
    std::unique_ptr<Outbox> gated_outbox(std::promise<void>& gate, std::size_t queue_size) {
        std::shared_future<void> opened = gate.get_future().share();
        script_->while_sending = [opened](const boost::json::object&) { opened.wait(); };
        script_->clock = &real_clock();
        auto settings = quick_settings();
        settings.queue_size = queue_size;
        return make_outbox(settings, &real_clock());
    }

    fs::path dir_;
    SimulatedClock clock_;
    std::shared_ptr<SinkScript> script_;
    std::unique_ptr<Spool> spool_;
    std::unique_ptr<DedupStore> dedup_;
    std::optional<SteadyTime> give_up_at_;
    std::mutex mutex_;
    std::vector<DeliveryCompletion> completions_;
};

TEST_F(OutboxTest, RetryThenSuccessDeliversOnce) {
    script_->answers = {retry("HTTP 500"), retry("HTTP 500"), retry("HTTP 500"), ok()};
    auto outbox = make_outbox(quick_settings());
    outbox->enqueue(alert_item("a1"));
    outbox->close();

    const auto done = completions();
    ASSERT_EQ(done.size(), 1U);
    EXPECT_EQ(done[0].status, DeliveryStatus::Delivered);
    EXPECT_EQ(done[0].attempts, 4U);
    EXPECT_EQ(script_->sent.size(), 4U);
    EXPECT_EQ(outbox->retries(), 3U);
    EXPECT_TRUE(spool_->list().entries.empty());
    // Full jitter: each wait is within [0, 1 s], [0, 2 s], [0, 4 s].
    const auto& times = script_->send_times;
    EXPECT_LE(seconds_between(times[0], times[1]), 1.0);
    EXPECT_LE(seconds_between(times[1], times[2]), 2.0);
    EXPECT_LE(seconds_between(times[2], times[3]), 4.0);
}

TEST_F(OutboxTest, RetryAfterIsHonouredInSimulatedTime) {
    script_->answers = {retry("HTTP 429", 2000), ok()};
    auto settings = quick_settings();
    settings.initial_backoff = 10ms;  // the jittered backoff alone would retry within 10 ms
    auto outbox = make_outbox(settings);
    outbox->enqueue(alert_item("a1"));
    outbox->close();

    ASSERT_EQ(script_->send_times.size(), 2U);
    EXPECT_DOUBLE_EQ(seconds_between(script_->send_times[0], script_->send_times[1]), 2.0);
    EXPECT_EQ(completions().at(0).status, DeliveryStatus::Delivered);
}

TEST_F(OutboxTest, RetryAfterBeyondTheBudgetSpoolsAtOnce) {
    script_->answers = {retry("HTTP 429", 600'000)};
    auto outbox = make_outbox(quick_settings());  // 300 s budget
    outbox->enqueue(alert_item("a1"));
    outbox->close();

    const auto done = completions();
    ASSERT_EQ(done.size(), 1U);
    EXPECT_EQ(done[0].status, DeliveryStatus::Spooled);
    EXPECT_THAT(done[0].error, HasSubstr("asked to wait 600 s"));
    EXPECT_EQ(script_->sent.size(), 1U);
    EXPECT_LT(clock_.elapsed(), 1s);  // nobody waited ten minutes for nothing
}

TEST_F(OutboxTest, FailGoesStraightToTheSpoolWithTheReason) {
    script_->answers = {fail("HTTP 410: channel_is_archived")};
    auto outbox = make_outbox(quick_settings());
    outbox->enqueue(alert_item("a1"));
    outbox->close();

    const auto done = completions();
    ASSERT_EQ(done.size(), 1U);
    EXPECT_EQ(done[0].status, DeliveryStatus::Spooled);
    EXPECT_EQ(script_->sent.size(), 1U);
    const auto listing = spool_->list();
    ASSERT_EQ(listing.entries.size(), 1U);
    const auto& entry = listing.entries[0];
    EXPECT_EQ(entry.id, done[0].spool_id);
    EXPECT_EQ(entry.destination, "out");
    EXPECT_EQ(entry.alert_id, "a1");
    EXPECT_EQ(entry.rule, "Create User");
    EXPECT_EQ(entry.attempts, 1U);
    EXPECT_THAT(entry.last_error,
                HasSubstr("refused by the destination: HTTP 410: channel_is_archived"));
    EXPECT_EQ(boost::json::parse(entry.alert_json),
              boost::json::parse(alert_item("a1").alert_json));
}

TEST_F(OutboxTest, AttemptBudgetExhaustedGoesToTheSpool) {
    script_->otherwise = retry("HTTP 503");
    auto settings = quick_settings();
    settings.max_attempts = 4;
    auto outbox = make_outbox(settings);
    outbox->enqueue(alert_item("a1"));
    outbox->close();

    const auto done = completions();
    ASSERT_EQ(done.size(), 1U);
    EXPECT_EQ(done[0].status, DeliveryStatus::Spooled);
    EXPECT_EQ(done[0].attempts, 4U);
    EXPECT_THAT(done[0].error, HasSubstr("gave up after 4 attempts; last error: HTTP 503"));
    EXPECT_EQ(script_->sent.size(), 4U);
    EXPECT_EQ(spool_->list().entries.at(0).attempts, 4U);
}

TEST_F(OutboxTest, TimeBudgetExhaustedGoesToTheSpool) {
    script_->otherwise = retry("connection refused");
    auto settings = quick_settings();
    settings.max_attempts = 1000;
    settings.max_retry_time = 30s;
    settings.max_backoff = 8s;
    auto outbox = make_outbox(settings);
    outbox->enqueue(alert_item("a1"));
    outbox->close();

    const auto done = completions();
    ASSERT_EQ(done.size(), 1U);
    EXPECT_EQ(done[0].status, DeliveryStatus::Spooled);
    EXPECT_THAT(done[0].error, HasSubstr("retry budget of 30 s used up"));
    EXPECT_LE(clock_.elapsed(), 30s);
    EXPECT_GT(script_->sent.size(), 4U);
}

TEST_F(OutboxTest, AFailingDestinationIsGivenUpOnAtTheDeadlineNotAtTheBudget) {
    script_->otherwise = retry("HTTP 503");
    auto settings = quick_settings();
    settings.max_attempts = 1000;
    settings.max_retry_time = 300s;
    settings.max_backoff = 2s;
    give_up_at_ = clock_.now() + 10s;
    auto outbox = make_outbox(settings);
    outbox->enqueue(alert_item("a1"));
    outbox->close();

    const auto done = completions();
    ASSERT_EQ(done.size(), 1U);
    EXPECT_EQ(done[0].status, DeliveryStatus::Spooled);
    EXPECT_THAT(done[0].error, HasSubstr("deadline"));
    EXPECT_THAT(done[0].error, HasSubstr("HTTP 503"));
    EXPECT_LE(clock_.elapsed(), 10s);
    EXPECT_GT(script_->sent.size(), 2U);
}

TEST_F(OutboxTest, AlertsWaitingForTheRateLimitAreGivenUpOnAtTheDeadline) {
    auto settings = quick_settings();
    settings.rate_per_second = 1;
    settings.burst = 1;
    const SteadyTime start = clock_.now();
    give_up_at_ = start + 5500ms;
    auto outbox = make_outbox(settings);
    for (int i = 0; i < 20; ++i) outbox->enqueue(alert_item("a" + std::to_string(i)));
    outbox->close();

    const auto done = completions();
    ASSERT_EQ(done.size(), 20U);
    std::size_t delivered = 0;
    for (const auto& completion : done) {
        if (completion.status == DeliveryStatus::Delivered) {
            ++delivered;
        } else {
            EXPECT_EQ(completion.status, DeliveryStatus::Spooled);
            EXPECT_THAT(completion.error, HasSubstr("the deadline came before it was delivered"));
        }
    }
    EXPECT_EQ(delivered, 6U);  // at 0, 1, 2, 3, 4 and 5 s
    EXPECT_LE(seconds_between(start, clock_.now()), 5.5 + 1e-6);
}

TEST_F(OutboxTest, SpoolWriteFailureLeavesTheAlertLost) {
    // Root ignores read-only permissions; a spool "directory" under a regular file fails for
    // everyone.
    std::ofstream(dir_ / "not-a-directory") << "x";
    spool_ = std::make_unique<Spool>(dir_ / "not-a-directory" / "spool");
    script_->answers = {fail("HTTP 400")};
    auto outbox = make_outbox(quick_settings());
    outbox->enqueue(alert_item("a1"));
    outbox->close();

    const auto done = completions();
    ASSERT_EQ(done.size(), 1U);
    EXPECT_EQ(done[0].status, DeliveryStatus::Lost);
    EXPECT_THAT(done[0].error, HasSubstr("not spooled"));
}

TEST_F(OutboxTest, RateLimitOf1PerSecondBurst5Sends50AlertsIn45SimulatedSeconds) {
    auto settings = quick_settings();
    settings.rate_per_second = 1;
    settings.burst = 5;
    auto outbox = make_outbox(settings);
    const SteadyTime start = clock_.now();
    for (int i = 0; i < 50; ++i) outbox->enqueue(alert_item("a" + std::to_string(i)));
    outbox->close();

    ASSERT_EQ(script_->send_times.size(), 50U);
    EXPECT_DOUBLE_EQ(seconds_between(start, script_->send_times.back()), 45.0);
    // Never more than burst + rate * t sends by time t.
    for (std::size_t i = 0; i < 50; ++i) {
        EXPECT_GE(seconds_between(start, script_->send_times[i]) + 1e-6,
                  static_cast<double>(i) - 4.0)
            << i;
    }
    EXPECT_EQ(completions().size(), 50U);
}

TEST_F(OutboxTest, EnqueueBlocksWhileTheQueueIsFull) {
    std::promise<void> gate;
    auto outbox = gated_outbox(gate, 3);
    for (int i = 0; i < 3; ++i) outbox->enqueue(alert_item("a" + std::to_string(i)));

    std::atomic<bool> fourth_queued{false};
    std::thread producer([&] {
        outbox->enqueue(alert_item("a3"));
        fourth_queued = true;
    });
    std::this_thread::sleep_for(200ms);
    EXPECT_FALSE(fourth_queued.load()) << "the fourth alert must wait for room";
    EXPECT_EQ(outbox->held(), 3U);
    gate.set_value();
    producer.join();
    EXPECT_TRUE(fourth_queued.load());
    outbox->close();
    EXPECT_EQ(completions().size(), 4U);
}

TEST_F(OutboxTest, AGroupIsQueuedInOrderAndWaitsForRoomPartWay) {
    std::promise<void> gate;
    auto outbox = gated_outbox(gate, 3);

    std::vector<DeliveryItem> group;
    for (int i = 0; i < 8; ++i) group.push_back(alert_item("a" + std::to_string(i), 40 + static_cast<std::uint64_t>(i)));
    std::atomic<bool> all_queued{false};
    std::thread producer([&] {
        outbox->enqueue_all(std::move(group), true);
        all_queued = true;
    });
    std::this_thread::sleep_for(200ms);
    EXPECT_FALSE(all_queued.load()) << "a group larger than the queue waits for room";
    EXPECT_EQ(outbox->held(), 3U);
    gate.set_value();
    producer.join();
    outbox->close();

    ASSERT_EQ(script_->sent.size(), 8U);
    const auto done = completions();
    ASSERT_EQ(done.size(), 8U);
    for (std::size_t i = 0; i < 8; ++i) {
        const std::string id = "a" + std::to_string(i);
        EXPECT_EQ(boost::json::parse(script_->sent[i]).at("alert_id").as_string(), id) << "sent in queued order";
        EXPECT_EQ(done[i].alert_id, id);
        EXPECT_EQ(done[i].rule, "Create User");
        EXPECT_EQ(done[i].ticket, 40 + i);
        EXPECT_EQ(done[i].status, DeliveryStatus::Delivered);
        EXPECT_EQ(done[i].attempts, 1U);
    }
}

TEST_F(OutboxTest, AlertsQueuedAfterRetriedOnesStartAfresh) {
    // Sent alerts leave their queue entries behind for the next arrivals: what an entry
    // held before (here: a retried alert's attempt count) must not carry over.
    dedup_ = std::make_unique<DedupStore>(DedupSettings{});
    script_->decide = [attempted = std::make_shared<std::set<std::string>>()](const boost::json::object& alert) {
        const std::string id(alert.at("alert_id").as_string());
        return id.starts_with("first-") && attempted->insert(id).second ? retry("HTTP 502") : ok();
    };
    auto outbox = make_outbox(quick_settings());
    auto group_of = [](const std::string& prefix, int count) {
        std::vector<DeliveryItem> group;
        for (int i = 0; i < count; ++i) group.push_back(alert_item(prefix + std::to_string(i)));
        return group;
    };
    outbox->enqueue_all(group_of("first-", 5));
    for (int i = 0; i < 1000 && completions().size() < 5; ++i) std::this_thread::sleep_for(10ms);
    ASSERT_EQ(completions().size(), 5U) << "the retried alerts are delivered first";
    outbox->enqueue_all(group_of("then-", 12));
    outbox->close();

    const auto done = completions();
    ASSERT_EQ(done.size(), 17U);
    for (std::size_t i = 0; i < done.size(); ++i) {
        EXPECT_EQ(done[i].status, DeliveryStatus::Delivered) << done[i].alert_id;
        EXPECT_EQ(done[i].attempts, i < 5 ? 2U : 1U) << done[i].alert_id;
        EXPECT_TRUE(dedup_->contains(delivery_key("out", done[i].alert_id), clock_.wall_now())) << done[i].alert_id;
    }
    EXPECT_EQ(script_->sent.size(), 22U);
}

TEST_F(OutboxTest, EachWorkerHasItsOwnSinkInstance) {
    script_->clock = &real_clock();
    script_->while_sending = [](const boost::json::object&) { std::this_thread::sleep_for(30ms); };
    auto settings = quick_settings();
    settings.concurrency = 4;
    auto outbox = make_outbox(settings, &real_clock());
    for (int i = 0; i < 16; ++i) outbox->enqueue(alert_item("a" + std::to_string(i)));
    outbox->close();

    EXPECT_EQ(script_->instances, 4);
    EXPECT_EQ(script_->max_sending.load(), 4);
    EXPECT_EQ(script_->max_sending_one_instance.load(), 1)
        << "a sink instance never sees concurrent sends";
    EXPECT_EQ(completions().size(), 16U);
}

TEST_F(OutboxTest, FailedFlushMeansSendAgain) {
    dedup_ = std::make_unique<DedupStore>(DedupSettings{});
    script_->flush_results = {false};
    auto outbox = make_outbox(quick_settings());
    outbox->enqueue(alert_item("a1"));
    outbox->close();

    EXPECT_EQ(script_->sent.size(), 2U) << "the key recorded after the first OK was taken back";
    ASSERT_EQ(completions().size(), 1U);
    EXPECT_EQ(completions()[0].status, DeliveryStatus::Delivered);
    EXPECT_TRUE(dedup_->contains(delivery_key("out", "a1"), clock_.wall_now()));
}

TEST_F(OutboxTest, ADeliveryIsRememberedBeforeTheNextSend) {
    // A crash between two sends must not repeat the first: its key is recorded at
    // once, not at the next flush (which a busy worker makes only every 64 alerts).
    dedup_ = std::make_unique<DedupStore>(DedupSettings{});
    std::vector<bool> first_known_at_second_send;
    script_->while_sending = [this, &first_known_at_second_send](const boost::json::object& alert) {
        if (alert.at("alert_id").as_string() == "a2") {
            first_known_at_second_send.push_back(
                dedup_->contains(delivery_key("out", "a1"), clock_.wall_now()));
        }
    };
    auto outbox = make_outbox(quick_settings());
    outbox->enqueue(alert_item("a1"));
    outbox->enqueue(alert_item("a2"));
    outbox->close();
    EXPECT_EQ(first_known_at_second_send, std::vector<bool>{true});
}

TEST_F(OutboxTest, KeysAreRecordedOnlyAfterOkAndDuplicatesAreNotSent) {
    dedup_ = std::make_unique<DedupStore>(DedupSettings{});
    script_->decide = [](const boost::json::object& alert) {
        return alert.at("alert_id").as_string() == "refused" ? fail("HTTP 400") : ok();
    };
    auto outbox = make_outbox(quick_settings());
    outbox->enqueue(alert_item("a1"));
    outbox->enqueue(alert_item("refused"));
    outbox->enqueue(alert_item("a1"));  // queued while its first copy is on its way
    outbox->close();

    EXPECT_TRUE(dedup_->contains(delivery_key("out", "a1"), clock_.wall_now()));
    EXPECT_FALSE(dedup_->contains(delivery_key("out", "refused"), clock_.wall_now()));
    EXPECT_EQ(script_->sent.size(), 2U);
    const auto done = completions();
    ASSERT_EQ(done.size(), 3U);
    EXPECT_EQ(std::count_if(done.begin(), done.end(),
                            [](const auto& completion) {
                                return completion.status == DeliveryStatus::Duplicate;
                            }),
              1);
}

TEST_F(OutboxTest, SecretsInSinkErrorsAreRedactedInTheSpool) {
    const std::string secret = "https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX";
    register_secret(secret);
    script_->answers = {fail("POST " + secret + " answered 404")};
    auto outbox = make_outbox(quick_settings());
    outbox->enqueue(alert_item("a1"));
    outbox->close();
    clear_secrets();

    const auto listing = spool_->list();
    ASSERT_EQ(listing.entries.size(), 1U);
    const std::string file_text = read_file(listing.entries[0].file);
    EXPECT_THAT(file_text, Not(HasSubstr("XXXXSECRETXXXX")));
    EXPECT_THAT(file_text, HasSubstr("<redacted>"));
    EXPECT_THAT(completions().at(0).error, Not(HasSubstr("XXXXSECRETXXXX")));
}

// ---- timing pieces -------------------------------------------------------------------------

TEST(Backoff, FullJitterStaysWithinItsCeiling) {
    DeliverySettings settings;
    settings.initial_backoff = 100ms;
    settings.max_backoff = 1000ms;
    std::mt19937_64 random(1);
    const std::vector<std::int64_t> ceilings = {100, 200, 400, 800, 1000, 1000, 1000};
    for (unsigned attempt = 1; attempt <= ceilings.size(); ++attempt) {
        const auto ceiling = ceilings[attempt - 1];
        EXPECT_EQ(backoff_ceiling(settings, attempt).count(), ceiling);
        std::int64_t low = ceiling;
        std::int64_t high = 0;
        double sum = 0;
        constexpr int kSamples = 4000;
        for (int i = 0; i < kSamples; ++i) {
            const auto delay = jittered_backoff(settings, attempt, random).count();
            ASSERT_GE(delay, 0);
            ASSERT_LE(delay, ceiling);
            low = std::min(low, delay);
            high = std::max(high, delay);
            sum += static_cast<double>(delay);
        }
        // Spread over the whole range, centred on half the ceiling.
        EXPECT_LT(low, ceiling / 10);
        EXPECT_GT(high, ceiling * 9 / 10);
        EXPECT_NEAR(sum / kSamples, static_cast<double>(ceiling) / 2,
                    static_cast<double>(ceiling) * 0.05);
    }
    EXPECT_EQ(backoff_ceiling(settings, 200).count(),
              1000);  // no overflow for large attempt numbers
}

TEST(TokenBucketTest, BurstThenOneTokenPerInterval) {
    const SteadyTime start{};
    TokenBucket bucket(2.0, 3, start);
    for (int i = 0; i < 3; ++i) {
        ASSERT_EQ(bucket.next_token_at(start), start);
        bucket.take(start);
    }
    EXPECT_EQ(bucket.next_token_at(start), start + 500ms);
    bucket.take(start + 500ms);
    EXPECT_EQ(bucket.next_token_at(start + 500ms), start + 1000ms);
    // Idle time refills up to the burst, not beyond.
    EXPECT_EQ(bucket.next_token_at(start + 100s), start + 100s);
    TokenBucket unlimited(0, 1, start);
    unlimited.take(start);
    EXPECT_EQ(unlimited.next_token_at(start), start);
}

// ---- the pipeline: acknowledgements, spool, duplicates, replay -------------------------

std::string cloudtrail_batch(const std::vector<std::string>& event_ids,
                             const std::string& event_name = "CreateUser") {
    boost::json::array records;
    for (const auto& id : event_ids) {
        records.push_back({{"eventVersion", "1.08"},
                           {"eventID", id},
                           {"eventName", event_name},
                           {"eventSource", "iam.amazonaws.com"},
                           {"eventTime", "2024-01-01T00:00:00Z"}});
    }
    return boost::json::serialize(boost::json::object{{"Records", records}});
}

class PipelineDelivery : public ::testing::Test {
protected:
    void SetUp() override {
        register_test_plugins();
        ::unsetenv("TATTLE_SPOOL_DIR");
        ::unsetenv("TATTLE_STATE_DIR");
        ::unsetenv("AWS_LAMBDA_RUNTIME_API");
        dir_ = make_temp_dir("pipeline");
        std::lock_guard lock(events().mutex);
        events().lines.clear();
    }
    void TearDown() override { fs::remove_all(dir_); }

    static std::string name() {
        return ::testing::UnitTest::GetInstance()->current_test_info()->name();
    }

    // One source with the given batches, one rule on CreateUser, one scripted destination.
    std::string config_text(const std::string& top_level = "",
                            const std::string& delivery = "") const {
        return top_level + "\nspool_dir = \"" + (dir_ / "spool").string() + "\"\n" +
               "[[source]]\nid = \"src\"\ntype = \"test_recording\"\nscript = \"" + name() +
               "\"\n\n" +
               "[[rule]]\nname = \"Create User\"\njq_match = 'select(.eventName == "
               "\"CreateUser\")'\n"
               "destinations = [\"out\"]\n\n"
               "[[destination]]\nid = \"out\"\ntype = \"test_scripted\"\nscript = \"" +
               name() + "\"\n" + (delivery.empty() ? "" : "delivery = { " + delivery + " }\n");
    }

    PreparedConfig prepared(const std::string& text) const {
        PrepareOptions options;
        options.use_default_search_path = false;
        PreparedConfig result = prepare(parse_config(text, dir_ / "tattle.toml"), options);
        EXPECT_TRUE(result.problems.empty())
            << (result.problems.empty() ? "" : result.problems[0].to_string());
        return result;
    }

    RunSummary run(const std::string& text, Clock* clock) const {
        PreparedConfig config = prepared(text);
        RunOptions options;
        options.clock = clock;
        options.random_seed = 3;
        return run_pipeline(config, options);
    }

    fs::path dir_;
};

using Acks = std::vector<std::pair<std::uint64_t, bool>>;

// Acks in batch order: batches settle in whatever order their alerts do.
Acks sorted(Acks acks) {
    std::sort(acks.begin(), acks.end());
    return acks;
}

std::size_t index_of(const std::vector<std::string>& lines, const std::string& line) {
    const auto found = std::find(lines.begin(), lines.end(), line);
    return found == lines.end() ? lines.size() : static_cast<std::size_t>(found - lines.begin());
}

TEST_F(PipelineDelivery, BatchIsAcknowledgedOnlyAfterEveryAlertIsSettled) {
    auto source =
        new_source_script(name(), {cloudtrail_batch({"e1", "e2", "e3"}), cloudtrail_batch({"e4"})});
    auto sink = new_sink_script(name());
    sink->decide = [attempts = std::make_shared<std::map<std::string, int>>()](
                       const boost::json::object& alert) {
        const std::string id(alert.at("event").as_object().at("eventID").as_string());
        return id == "e2" && ++(*attempts)[id] <= 2 ? retry("HTTP 502") : ok();
    };
    SimulatedClock clock;
    const RunSummary summary = run(config_text(), &clock);

    EXPECT_EQ(summary.alerts_delivered, 4U);
    EXPECT_EQ(summary.delivery_retries, 2U);
    EXPECT_EQ(summary.exit_code(), 0);
    EXPECT_EQ(sorted(source->snapshot()), (Acks{{1, true}, {2, true}}));
    const auto lines = events().snapshot();
    const std::size_t ack1 = index_of(lines, "ack 1 settled");
    const std::size_t last_ok = index_of(lines, "send batch-1 e2 ok");
    ASSERT_LT(last_ok, lines.size());
    ASSERT_LT(ack1, lines.size());
    EXPECT_LT(last_ok, ack1);
    EXPECT_NE(std::find(lines.begin() + static_cast<std::ptrdiff_t>(last_ok),
                        lines.begin() + static_cast<std::ptrdiff_t>(ack1), "flush"),
              lines.begin() + static_cast<std::ptrdiff_t>(ack1))
        << "the sink's flush comes between the last delivery and the ack";
}

TEST_F(PipelineDelivery, ABatchOfManyAlertsIsDeliveredInOrderThroughASmallQueue) {
    // Alerts go to their outbox in groups: more than a group, through a queue smaller
    // than one, in event order, the batch acknowledged once all are delivered.
    std::vector<std::string> ids;
    for (int i = 0; i < 150; ++i) ids.push_back("e" + std::to_string(i));
    auto source = new_source_script(name(), {cloudtrail_batch(ids)});
    auto sink = new_sink_script(name());
    SimulatedClock clock;
    const RunSummary summary = run(config_text("", "queue_size = 5"), &clock);

    EXPECT_EQ(summary.alerts_delivered, 150U);
    EXPECT_EQ(source->snapshot(), (Acks{{1, true}}));
    ASSERT_EQ(sink->sent.size(), 150U);
    for (std::size_t i = 0; i < ids.size(); ++i) {
        EXPECT_EQ(boost::json::parse(sink->sent[i]).at("event").at("eventID").as_string(), ids[i]);
    }
}

TEST_F(PipelineDelivery, ABatchOfManyPartsIsDeliveredWholeAndInOrderBeforeTheNextBatch) {
    // A batch's matches reach the router in parts while it is decoded (MatchStream):
    // every part, in order, before the batch read after it, on two workers.
    std::vector<std::string> first_ids;
    for (int i = 0; i < 1100; ++i) first_ids.push_back("a" + std::to_string(i));
    auto source = new_source_script(
        name(), {cloudtrail_batch(first_ids), cloudtrail_batch({"b0", "b1", "b2"})});
    auto sink = new_sink_script(name());
    SimulatedClock clock;
    const RunSummary summary = run(config_text("workers = 2", "queue_size = 5"), &clock);

    EXPECT_EQ(summary.events, 1103U);
    EXPECT_EQ(summary.alerts_delivered, 1103U);
    EXPECT_EQ(source->snapshot(), (Acks{{1, true}, {2, true}}));
    ASSERT_EQ(sink->sent.size(), 1103U);
    std::vector<std::string> expected = first_ids;
    for (const char* id : {"b0", "b1", "b2"}) expected.emplace_back(id);
    for (std::size_t i = 0; i < expected.size(); ++i) {
        ASSERT_EQ(boost::json::parse(sink->sent[i]).at("event").at("eventID").as_string(), expected[i]) << i;
    }
}

TEST_F(PipelineDelivery, TheRunCountsTheCpuTimeOfEachKindOfThread) {
    std::vector<std::string> ids;
    for (int i = 0; i < 500; ++i) ids.push_back("e" + std::to_string(i));
    auto source = new_source_script(name(), {cloudtrail_batch(ids), cloudtrail_batch(ids), cloudtrail_batch(ids)});
    auto sink = new_sink_script(name());
    SimulatedClock clock;
    const RunSummary summary = run(config_text("workers = 2", "concurrency = 2"), &clock);

    ASSERT_EQ(summary.alerts_delivered, 1500U);
    const auto& cpu = summary.cpu;
    EXPECT_EQ(cpu.batch_worker_threads, 2U);
    EXPECT_EQ(cpu.delivery_threads, 2U);
    EXPECT_GT(cpu.batch_workers.count(), 0);
    EXPECT_GT(cpu.delivery.count(), 0);
    EXPECT_GT(cpu.main_thread.count(), 0);
    // Read last, and it counts the ended threads too.
    EXPECT_GE(cpu.process, cpu.batch_workers + cpu.delivery + cpu.main_thread);
}

TEST_F(PipelineDelivery, LaterBatchesAreAcknowledgedWhileAnEarlierOneIsStillDelivering) {
    auto source = new_source_script(
        name(), {cloudtrail_batch({"e1"}), cloudtrail_batch({"e9"}, "ListUsers")});
    auto sink = new_sink_script(name());
    std::promise<void> gate;
    std::shared_future<void> opened = gate.get_future().share();
    sink->while_sending = [opened](const boost::json::object&) { opened.wait(); };

    std::future<RunSummary> running =
        std::async(std::launch::async, [&] { return run(config_text(), nullptr); });
    // Batch 2 has no alerts: it is acknowledged while batch 1's alert is stuck in its send.
    for (int i = 0; i < 500 && source->snapshot().empty(); ++i) std::this_thread::sleep_for(10ms);
    EXPECT_EQ(source->snapshot(), (Acks{{2, true}}));
    gate.set_value();
    const RunSummary summary = running.get();
    EXPECT_EQ(source->snapshot(), (Acks{{2, true}, {1, true}}));
    EXPECT_EQ(summary.alerts_delivered, 1U);
}

TEST_F(PipelineDelivery, SpooledAlertsSettleTheirBatchAndExitWith3) {
    auto source = new_source_script(name(), {cloudtrail_batch({"e1", "e2"})});
    auto sink = new_sink_script(name());
    sink->otherwise = fail("HTTP 404 no_service");
    SimulatedClock clock;
    const RunSummary summary = run(config_text(), &clock);

    EXPECT_EQ(summary.alerts_spooled, 2U);
    EXPECT_EQ(summary.alerts_failed, 0U);
    EXPECT_EQ(summary.batches_failed, 0U);
    EXPECT_EQ(summary.exit_code(), 3);
    EXPECT_EQ(summary.spool_dir, dir_ / "spool");
    EXPECT_EQ(source->snapshot(), (Acks{{1, true}}));
    EXPECT_EQ(Spool(dir_ / "spool").list().entries.size(), 2U);
}

TEST_F(PipelineDelivery, SpoolWriteFailureReleasesTheBatch) {
    auto source = new_source_script(
        name(), {cloudtrail_batch({"e1"}), cloudtrail_batch({"e2"}, "ListUsers")});
    auto sink = new_sink_script(name());
    sink->otherwise = fail("HTTP 400");
    std::ofstream(dir_ / "file") << "x";
    std::string text = config_text();
    const std::string good_spool = "spool_dir = \"" + (dir_ / "spool").string() + "\"";
    text.replace(text.find(good_spool), good_spool.size(),
                 "spool_dir = \"" + (dir_ / "file" / "spool").string() + "\"");
    SimulatedClock clock;
    const RunSummary summary = run(text, &clock);

    EXPECT_EQ(summary.alerts_failed, 1U);
    EXPECT_EQ(summary.batches_failed, 1U);
    EXPECT_EQ(summary.exit_code(), 3);
    ASSERT_EQ(summary.failures.size(), 1U);
    EXPECT_THAT(summary.failures[0],
                HasSubstr("batch-1: 1 alert(s) neither delivered nor spooled"));
    // The batch whose alert is durable nowhere is released; the one without alerts is settled.
    EXPECT_EQ(sorted(source->snapshot()), (Acks{{1, false}, {2, true}}));
}

TEST_F(PipelineDelivery, UndecodableBatchIsReleasedAndEmptyOneSettled) {
    auto source = new_source_script(name(), {"{\"Records\": [", cloudtrail_batch({})});
    new_sink_script(name());
    SimulatedClock clock;
    const RunSummary summary = run(config_text(), &clock);
    EXPECT_EQ(summary.batches_failed, 1U);
    EXPECT_EQ(source->snapshot(), (Acks{{1, false}, {2, true}}));
    EXPECT_EQ(summary.exit_code(), 1);
}

TEST_F(PipelineDelivery, DeliveredAlertsAreNotSentAgainAfterARestart) {
    const std::string text = config_text("state_dir = \"" + (dir_ / "state").string() + "\"");
    const std::vector<std::string> batches = {cloudtrail_batch({"e1", "e2"}),
                                              cloudtrail_batch({"e3"})};
    auto sink = new_sink_script(name());
    new_source_script(name(), batches);
    SimulatedClock clock;
    const RunSummary first = run(text, &clock);
    EXPECT_EQ(first.alerts_delivered, 3U);
    EXPECT_TRUE(fs::exists(dir_ / "state" / "dedup.jsonl"));

    auto again = new_source_script(name(), batches);  // a restart over the same input
    const RunSummary second = run(text, &clock);
    EXPECT_EQ(second.alerts_delivered, 0U);
    EXPECT_EQ(second.alerts_suppressed, 3U);
    EXPECT_EQ(second.exit_code(), 0);
    EXPECT_EQ(sink->sent.size(), 3U);
    EXPECT_EQ(again->snapshot(), (Acks{{1, true}, {2, true}}));

    // Past the window the same alerts are news again.
    clock.advance(std::chrono::hours(25));
    new_source_script(name(), batches);
    EXPECT_EQ(run(text, &clock).alerts_delivered, 3U);
}

TEST_F(PipelineDelivery, ARedeliveredBatchDoesNotAlertTwice) {
    const std::string batch = cloudtrail_batch({"e1", "e2"});
    new_source_script(name(), {batch, batch});
    auto sink = new_sink_script(name());
    SimulatedClock clock;
    const RunSummary summary =
        run(config_text("state_dir = \"" + (dir_ / "state").string() + "\""), &clock);
    EXPECT_EQ(sink->sent.size(), 2U);
    EXPECT_EQ(summary.alerts_delivered, 2U);
    EXPECT_EQ(summary.alerts_suppressed, 2U);
}

TEST_F(PipelineDelivery, WithoutAStateDirEveryRunDeliversAgain) {
    // `tattle run FILES` is how people try rules: running it twice shows the alerts twice.
    new_source_script(name(), {cloudtrail_batch({"e1"})});
    auto sink = new_sink_script(name());
    SimulatedClock clock;
    run(config_text(), &clock);
    new_source_script(name(), {cloudtrail_batch({"e1"})});
    run(config_text(), &clock);
    EXPECT_EQ(sink->sent.size(), 2U);
}

TEST_F(PipelineDelivery, ThePluginsSuggestionAppliesUnlessTheConfigSaysOtherwise) {
    EXPECT_EQ(prepared(config_text()).delivery_settings.at("out").max_attempts, 7U);
    EXPECT_EQ(
        prepared(config_text("", "max_attempts = 2")).delivery_settings.at("out").max_attempts, 2U);
}

TEST_F(PipelineDelivery, ReplayDeliversSpooledAlertsAndRemovesTheirFiles) {
    const std::string text = config_text("state_dir = \"" + (dir_ / "state").string() + "\"");
    new_source_script(name(), {cloudtrail_batch({"e1", "e2", "e3"})});
    auto sink = new_sink_script(name());
    sink->otherwise = retry("HTTP 503");
    SimulatedClock clock;
    EXPECT_EQ(run(text, &clock).alerts_spooled, 3U);
    const Spool spool(dir_ / "spool");
    ASSERT_EQ(spool.list().entries.size(), 3U);
    EXPECT_EQ(spool.list().entries[0].attempts, 7U);  // the plugin's suggested budget

    sink->otherwise = ok();  // the outage is over
    PreparedConfig config = prepared(text);
    ReplayOptions options;
    options.clock = &clock;
    const ReplaySummary replayed = replay_spool(config, options);
    EXPECT_EQ(replayed.selected, 3U);
    EXPECT_EQ(replayed.delivered, 3U);
    EXPECT_EQ(replayed.exit_code(), 0);
    EXPECT_TRUE(spool.list().entries.empty());
    // Replayed deliveries count for duplicate suppression like any other.
    new_source_script(name(), {cloudtrail_batch({"e1", "e2", "e3"})});
    EXPECT_EQ(run(text, &clock).alerts_suppressed, 3U);
}

TEST_F(PipelineDelivery, ReplayOfAStillFailingAlertKeepsItWithUpdatedAttempts) {
    new_source_script(name(), {cloudtrail_batch({"e1", "e2"})});
    auto sink = new_sink_script(name());
    sink->otherwise = fail("HTTP 404 channel_not_found");
    SimulatedClock clock;
    run(config_text(), &clock);
    const Spool spool(dir_ / "spool");
    const auto before = spool.list().entries;
    ASSERT_EQ(before.size(), 2U);

    sink->decide = [](const boost::json::object& alert) {
        return alert.at("event").as_object().at("eventID").as_string() == "e1"
                   ? fail("HTTP 410 gone")
                   : ok();
    };
    PreparedConfig config = prepared(config_text());
    ReplayOptions options;
    options.clock = &clock;
    const ReplaySummary replayed = replay_spool(config, options);
    EXPECT_EQ(replayed.delivered, 1U);
    EXPECT_EQ(replayed.still_failing, 1U);
    EXPECT_EQ(replayed.exit_code(), 3);
    const auto after = spool.list().entries;
    ASSERT_EQ(after.size(), 1U);
    EXPECT_EQ(after[0].attempts, 2U);
    EXPECT_THAT(after[0].last_error, HasSubstr("HTTP 410 gone"));
    EXPECT_EQ(after[0].first_attempt,
              std::find_if(before.begin(), before.end(), [&](const SpoolEntry& entry) {
                  return entry.id == after[0].id;
              })->first_attempt);
}

TEST_F(PipelineDelivery, ReplaySelectsByIdPrefixAndRefusesUnknownIds) {
    new_source_script(name(), {cloudtrail_batch({"e1", "e2"})});
    auto sink = new_sink_script(name());
    sink->otherwise = fail("HTTP 400");
    SimulatedClock clock;
    run(config_text(), &clock);
    const Spool spool(dir_ / "spool");
    const auto entries = spool.list().entries;
    ASSERT_EQ(entries.size(), 2U);

    sink->otherwise = ok();
    PreparedConfig config = prepared(config_text());
    ReplayOptions options;
    options.clock = &clock;
    options.selectors = {"zzzzzz"};
    const ReplaySummary refused = replay_spool(config, options);
    EXPECT_EQ(refused.exit_code(), 2);
    EXPECT_EQ(spool.list().entries.size(), 2U);

    options.selectors = {entries[0].id.substr(0, 8)};
    const ReplaySummary one = replay_spool(config, options);
    EXPECT_EQ(one.delivered, 1U);
    const auto left = spool.list().entries;
    ASSERT_EQ(left.size(), 1U);
    EXPECT_EQ(left[0].id, entries[1].id);
}

}  // namespace
}  // namespace tattle
