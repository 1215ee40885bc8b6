// The delivery settings of destinations and the storage keys of the config, as the core
// reads and resolves them (defaults, then the plugin's suggestion, then the config).
// Not in outbox_test.cpp: that file is also built into the ThreadSanitizer binary
// (tests/CMakeLists.txt), which has no built-in plugins, and prepare() here needs the
// stdout sink.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "tattle/config.hpp"
#include "tattle/dedup.hpp"
#include "tattle/outbox.hpp"
#include "tattle/pipeline.hpp"

namespace tattle {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::HasSubstr;

const char* kDestinationWithDelivery = R"(
[[destination]]
id = "slack"
type = "stdout"
format = "json"
delivery = { rate_per_second = 1, burst = 5, max_retry_seconds = 120 }
)";

TEST(DeliveryConfig, TheDeliveryTableBelongsToTheCore) {
    const Config config = parse_config(kDestinationWithDelivery, "test.toml");
    ASSERT_EQ(config.destinations.size(), 1U);
    const auto& spec = config.destinations[0];
    EXPECT_EQ(spec.settings,
              (boost::json::object{{"format", "json"}}));  // not passed to the plugin
    EXPECT_EQ(spec.delivery.rate_per_second, 1.0);
    EXPECT_EQ(spec.delivery.burst, 5);
    EXPECT_EQ(spec.delivery.max_retry_seconds, 120.0);
    EXPECT_FALSE(spec.delivery.concurrency.has_value());

    PrepareOptions options;
    options.use_default_search_path = false;
    const PreparedConfig prepared = prepare(config, options);
    EXPECT_TRUE(prepared.problems.empty());
    const DeliverySettings& settings = prepared.delivery_settings.at("slack");
    EXPECT_EQ(settings.rate_per_second, 1.0);
    EXPECT_EQ(settings.burst, 5U);
    EXPECT_EQ(settings.max_retry_time, 120s);
    EXPECT_EQ(settings.concurrency, 1U);
    EXPECT_EQ(settings.max_attempts, 10U);
}

std::string config_error(const std::string& text) {
    try {
        parse_config(text, "test.toml");
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "loaded";
}

TEST(DeliveryConfig, UnknownKeysAndBadValuesAreReportedWithTheirLines) {
    const std::string errors = config_error(R"([[destination]]
id = "slack"
type = "stdout"
delivery = { brust = 5, concurrency = 0 }

[[destination]]
id = "pager"
type = "stdout"
[destination.delivery]
rate_per_second = "fast"
initial_backoff_ms = 2000
max_backoff_ms = 1000
)");
    EXPECT_THAT(
        errors,
        HasSubstr(
            R"(test.toml:4:22: destination "slack": unknown delivery key "brust" (did you mean "burst"?))"));
    EXPECT_THAT(
        errors,
        HasSubstr(
            R"(test.toml:4:39: destination "slack": delivery.concurrency must be an integer from 1 to 64)"));
    EXPECT_THAT(
        errors,
        HasSubstr(
            R"(test.toml:10:19: destination "pager": delivery.rate_per_second must be a number)"));
    EXPECT_THAT(
        errors,
        HasSubstr(
            R"(test.toml:12:18: destination "pager": delivery.max_backoff_ms must not be less than)"));
    EXPECT_THAT(config_error("[[destination]]\nid = \"x\"\ntype = \"stdout\"\ndelivery = 5\n"),
                HasSubstr("test.toml:4:12: destination \"x\": delivery must be a table"));
}

TEST(DeliveryConfig, TopLevelStorageKeys) {
    const Config config = parse_config(
        "spool_dir = \"var/spool\"\nstate_dir = \"/var/lib/tattle\"\ndedup_window_seconds = 3600\n"
        "dedup_max_entries = 500\n",
        "/etc/tattle/tattle.toml");
    EXPECT_EQ(config.spool_dir, fs::path("/etc/tattle/var/spool"));
    EXPECT_EQ(config.state_dir, fs::path("/var/lib/tattle"));
    EXPECT_EQ(dedup_settings(config).window, 3600s);
    EXPECT_EQ(dedup_settings(config).max_entries, 500U);
    EXPECT_THAT(config_error("dedup_window_seconds = -1\n"),
                HasSubstr("test.toml:1:24: dedup_window_seconds must be an integer from 0"));
    EXPECT_THAT(config_error("spool_dir = 3\n"),
                HasSubstr("test.toml:1:13: spool_dir must be a non-empty string"));
    EXPECT_THAT(config_error("spool_dri = \"x\"\n"), HasSubstr("did you mean \"spool_dir\""));
}

TEST(DeliveryConfig, PluginSuggestionsComeBetweenDefaultsAndTheConfig) {
    const auto schema = boost::json::parse(
        R"({"type":"object","x-tattle-delivery":{"rate_per_second":1,"burst":5,"max_attempts":4}})");
    DeliveryOverrides suggestion;
    EXPECT_TRUE(plugin_delivery_suggestion(schema, suggestion).empty());
    DeliveryOverrides configured;
    configured.burst = 2;
    std::vector<std::string> problems;
    const auto settings = resolve_delivery_settings(suggestion, configured, problems);
    EXPECT_TRUE(problems.empty());
    EXPECT_EQ(settings.rate_per_second, 1.0);
    EXPECT_EQ(settings.burst, 2U);
    EXPECT_EQ(settings.max_attempts, 4U);
    EXPECT_EQ(settings.queue_size, 1000U);

    DeliveryOverrides broken;
    const auto bad = plugin_delivery_suggestion(
        boost::json::parse(R"({"x-tattle-delivery":{"burst":0}})"), broken);
    ASSERT_EQ(bad.size(), 1U);
    EXPECT_EQ(bad[0].pointer, "/burst");

    DeliveryOverrides slow_start;
    slow_start.initial_backoff_ms = 120'000;  // above the default max_backoff of 60 s
    resolve_delivery_settings({}, slow_start, problems);
    ASSERT_EQ(problems.size(), 1U);
    EXPECT_THAT(
        problems[0],
        HasSubstr("max_backoff_ms (60000) is less than delivery.initial_backoff_ms (120000)"));
}

}  // namespace
}  // namespace tattle
