// Duplicate suppression: the window, the memory bound, and the log that survives restarts.
#include "tattle/dedup.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace tattle {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const WallTime kNoon = WallTime(std::chrono::seconds(1'700'000'000));

std::string key(int n) { return delivery_key("slack", "alert-" + std::to_string(n)); }

std::size_t line_count(const fs::path& file) {
    std::ifstream in(file);
    std::size_t lines = 0;
    for (std::string line; std::getline(in, line);) ++lines;
    return lines;
}

class DedupTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::string pattern = (fs::temp_directory_path() / "tattle_dedup_XXXXXX").string();
        ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
        dir_ = pattern;
    }
    void TearDown() override { fs::remove_all(dir_); }
    fs::path dir_;
};

TEST(DeliveryKey, IsStableAndDiffersPerDestination) {
    const std::string a = delivery_key("slack", "6f1c");
    EXPECT_EQ(a.size(), 32U);
    EXPECT_EQ(a, delivery_key("slack", "6f1c"));
    EXPECT_NE(a, delivery_key("pagerduty", "6f1c"));
    EXPECT_NE(delivery_key("ab", "c"), delivery_key("a", "bc"));  // the separator matters
    EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
}

TEST_F(DedupTest, RemembersWithinTheWindowOnly) {
    DedupStore store(DedupSettings{3600s, 100});
    EXPECT_FALSE(store.contains(key(1), kNoon));
    store.record({key(1)}, kNoon);
    EXPECT_TRUE(store.contains(key(1), kNoon + 3599s));
    EXPECT_FALSE(store.contains(key(2), kNoon));
    EXPECT_FALSE(store.contains(key(1), kNoon + 3600s));
    EXPECT_EQ(store.size(), 0U) << "an expired entry is forgotten when met";
}

TEST_F(DedupTest, MemoryIsBoundedOldestForgottenFirst) {
    DedupStore store(DedupSettings{24h, 3});
    for (int i = 0; i < 5; ++i) store.record({key(i)}, kNoon + std::chrono::seconds(i));
    EXPECT_EQ(store.size(), 3U);
    EXPECT_FALSE(store.contains(key(0), kNoon + 10s));
    EXPECT_FALSE(store.contains(key(1), kNoon + 10s));
    for (int i = 2; i < 5; ++i) EXPECT_TRUE(store.contains(key(i), kNoon + 10s)) << i;
    // A key recorded again is young again.
    store.record({key(2)}, kNoon + 20s);
    store.record({key(5)}, kNoon + 21s);
    EXPECT_TRUE(store.contains(key(2), kNoon + 30s));
    EXPECT_FALSE(store.contains(key(3), kNoon + 30s));
}

TEST_F(DedupTest, SurvivesARestart) {
    {
        DedupStore store(DedupSettings{}, dir_, kNoon);
        store.record({key(1), key(2)}, kNoon);
        store.sync();
    }
    DedupStore restarted(DedupSettings{}, dir_, kNoon + 1h);
    EXPECT_EQ(restarted.size(), 2U);
    EXPECT_TRUE(restarted.contains(key(1), kNoon + 1h));
    EXPECT_TRUE(restarted.contains(key(2), kNoon + 1h));
    EXPECT_FALSE(restarted.contains(key(3), kNoon + 1h));
    EXPECT_EQ(restarted.log_file(), dir_ / "dedup.jsonl");
}

TEST_F(DedupTest, LoadDropsExpiredAndSurplusEntriesAndCompactsTheLog) {
    {
        DedupStore store(DedupSettings{24h, 1000}, dir_, kNoon);
        store.record({key(1)}, kNoon - 48h);  // already outside the window
        for (int i = 2; i <= 6; ++i) store.record({key(i)}, kNoon + std::chrono::seconds(i));
        store.record({key(2)}, kNoon + 10s);  // twice in the log
    }
    EXPECT_EQ(line_count(dir_ / "dedup.jsonl"), 7U);
    DedupStore reloaded(DedupSettings{24h, 4}, dir_, kNoon + 1h);
    EXPECT_EQ(reloaded.size(), 4U);
    EXPECT_FALSE(reloaded.contains(key(1), kNoon + 1h));
    EXPECT_FALSE(reloaded.contains(key(3), kNoon + 1h));  // the oldest of the rest
    EXPECT_TRUE(reloaded.contains(key(2), kNoon + 1h));   // recorded last
    EXPECT_EQ(line_count(dir_ / "dedup.jsonl"), 4U);
}

TEST_F(DedupTest, ATornLastLineIsSkipped) {
    {
        DedupStore store(DedupSettings{}, dir_, kNoon);
        store.record({key(1)}, kNoon);
    }
    std::ofstream(dir_ / "dedup.jsonl", std::ios::app) << "{\"t\":17000000";  // a crash mid-append
    DedupStore reloaded(DedupSettings{}, dir_, kNoon);
    EXPECT_TRUE(reloaded.contains(key(1), kNoon));
    reloaded.record({key(2)}, kNoon);
    DedupStore again(DedupSettings{}, dir_, kNoon);
    EXPECT_TRUE(again.contains(key(2), kNoon));
}

TEST_F(DedupTest, ForgottenKeysStayForgottenAfterARestart) {
    {
        DedupStore store(DedupSettings{}, dir_, kNoon);
        store.record({key(1), key(2)}, kNoon);
        store.forget({key(1)}, kNoon + 1s);  // its delivery was not durable after all
        EXPECT_FALSE(store.contains(key(1), kNoon + 1s));
        store.record({key(3)}, kNoon + 2s);
    }
    DedupStore restarted(DedupSettings{}, dir_, kNoon + 1h);
    EXPECT_FALSE(restarted.contains(key(1), kNoon + 1h));
    EXPECT_TRUE(restarted.contains(key(2), kNoon + 1h));
    EXPECT_TRUE(restarted.contains(key(3), kNoon + 1h));
    EXPECT_EQ(line_count(dir_ / "dedup.jsonl"), 2U)
        << "compacted: the forgotten key and its tombstone are gone";
}

TEST_F(DedupTest, TheLogIsCompactedWhileRunningWhenItOutgrowsTheBound) {
    DedupStore store(DedupSettings{24h, 10}, dir_, kNoon);
    for (int i = 0; i < 3000; ++i) store.record({key(i % 20)}, kNoon);
    EXPECT_LT(line_count(dir_ / "dedup.jsonl"), 1100U);
    EXPECT_EQ(store.size(), 10U);
}

TEST_F(DedupTest, AProcessSharingTheDirectoryDoesNotCompactUnderAnother) {
    DedupStore running(DedupSettings{}, dir_, kNoon);
    running.record({key(1)}, kNoon);
    DedupStore second(DedupSettings{}, dir_,
                      kNoon);  // must not replace the file `running` appends to
    running.record({key(2)}, kNoon);
    DedupStore third(DedupSettings{}, dir_, kNoon);
    EXPECT_TRUE(third.contains(key(1), kNoon));
    EXPECT_TRUE(third.contains(key(2), kNoon));
}

TEST_F(DedupTest, RecordsFromManyThreads) {
    DedupStore store(DedupSettings{24h, 100'000}, dir_, kNoon);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&store, t] {
            for (int i = 0; i < 500; ++i) {
                store.record({key(t * 1000 + i)}, kNoon);
                store.contains(key(i), kNoon);
            }
        });
    }
    for (auto& thread : threads) thread.join();
    store.sync();
    EXPECT_EQ(store.size(), 2000U);
    EXPECT_EQ(line_count(dir_ / "dedup.jsonl"), 2000U);
}

TEST_F(DedupTest, StateDirComesFromEnvironmentConfigOrLambda) {
    ::unsetenv("TATTLE_STATE_DIR");
    ::unsetenv("AWS_LAMBDA_RUNTIME_API");
    Config config;
    EXPECT_FALSE(resolve_state_dir(config).has_value())
        << "no state directory: no duplicate suppression";
    ::setenv("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001", 1);
    EXPECT_EQ(resolve_state_dir(config), fs::path("/tmp/tattle/state"));
    config.state_dir = "/var/lib/tattle";
    EXPECT_EQ(resolve_state_dir(config), fs::path("/var/lib/tattle"));
    ::setenv("TATTLE_STATE_DIR", "/srv/state", 1);
    EXPECT_EQ(resolve_state_dir(config), fs::path("/srv/state"));
    ::unsetenv("TATTLE_STATE_DIR");
    ::unsetenv("AWS_LAMBDA_RUNTIME_API");
}

TEST_F(DedupTest, UnusableStateDirectoryIsAnError) {
    std::ofstream(dir_ / "file") << "x";
    EXPECT_THROW(DedupStore(DedupSettings{}, dir_ / "file" / "state", kNoon), std::runtime_error);
}

}  // namespace
}  // namespace tattle
