// The file source with follow = true: new files are read once they are finished, a
// checkpoint keeps a restart from reading a file twice or skipping one, and the host
// hears "nothing now" (plugin ABI 1.1) instead of the call blocking.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include "file_source.hpp"
#include "tattle/plugin_catalog.hpp"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using tattle::sources::FileSource;
using tattle::sources::FileSourceConfig;

constexpr auto kScanInterval = 50ms;

class FileFollowTest : public ::testing::Test {
protected:
    void SetUp() override {
        root_ = fs::temp_directory_path() / ("tattle_file_follow_" + std::to_string(::getpid()));
        fs::remove_all(root_);
        fs::create_directories(root_ / "incoming");
    }
    void TearDown() override { fs::remove_all(root_); }

    fs::path write(const std::string& name, const std::string& content, bool old = false) {
        const fs::path path = root_ / "incoming" / name;
        std::ofstream(path, std::ios::binary | std::ios::app) << content;
        if (old) fs::last_write_time(path, fs::file_time_type::clock::now() - 1h);
        return path;
    }
    FileSourceConfig config() const {
        FileSourceConfig config;
        config.paths = {(root_ / "incoming").string()};
        config.extensions = {".json"};
        config.follow = true;
        config.scan_interval = kScanInterval;
        config.checkpoint = root_ / "state" / "incoming.checkpoint";
        return config;
    }
    // Calls next() until it hands out a batch (it says "nothing now" meanwhile); nullopt
    // when none came within the time a few scans take.
    static std::optional<tattle::sdk::Batch> next_within(FileSource& source, std::chrono::milliseconds limit) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        for (;;) {
            try {
                return source.next();
            } catch (const tattle::sdk::NothingNow&) {
                if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
                std::this_thread::sleep_for(kScanInterval / 5);  // the host's idle interval
            }
        }
    }
    std::vector<std::string> checkpoint_lines() const {
        std::ifstream in(root_ / "state" / "incoming.checkpoint");
        std::vector<std::string> lines;
        for (std::string line; std::getline(in, line);) lines.push_back(line);
        return lines;
    }

    fs::path root_;
};

TEST_F(FileFollowTest, ReadsFilesThereAtTheStartThenNewOnesAndSaysNothingNowBetween) {
    write("a.json", "{\"a\":1}", true);
    FileSource source(config(), tattle::sdk::Host(nullptr), true);
    auto first = source.next();
    ASSERT_TRUE(first.has_value());
    EXPECT_EQ(fs::path(first->origin).filename(), "a.json");
    EXPECT_THROW(source.next(), tattle::sdk::NothingNow);

    write("b.json", "{\"b\":2}");
    auto second = next_within(source, 2s);
    ASSERT_TRUE(second.has_value());
    EXPECT_EQ(fs::path(second->origin).filename(), "b.json");
    EXPECT_EQ(std::string(second->data.begin(), second->data.end()), "{\"b\":2}");
    EXPECT_FALSE(next_within(source, 4 * kScanInterval).has_value()) << "each file is read once";
}

TEST_F(FileFollowTest, AFileStillGrowingIsNotReadUntilItStopsChanging) {
    FileSource source(config(), tattle::sdk::Host(nullptr), true);
    EXPECT_THROW(source.next(), tattle::sdk::NothingNow);
    std::string written;
    for (int part = 0; part < 5; ++part) {
        const std::string piece = "{\"part\":" + std::to_string(part) + "}\n";
        write("growing.json", piece);
        written += piece;
        // One scan interval: the next scan sees a new size and keeps waiting.
        std::this_thread::sleep_for(kScanInterval + 10ms);
        EXPECT_THROW(source.next(), tattle::sdk::NothingNow) << "read while being written, at part " << part;
    }
    auto batch = next_within(source, 2s);
    ASSERT_TRUE(batch.has_value());
    EXPECT_EQ(std::string(batch->data.begin(), batch->data.end()), written);
}

TEST_F(FileFollowTest, TheCheckpointKeepsSettledFilesFromBeingReadAgain) {
    write("a.json", "{}", true);
    write("b.json", "{}", true);
    {
        FileSource source(config(), tattle::sdk::Host(nullptr), true);
        auto a = source.next();
        auto b = source.next();
        ASSERT_TRUE(a && b);
        source.ack(a->id, true);
        source.ack(b->id, false);  // released: read again at the next start
    }
    EXPECT_THAT(checkpoint_lines(), ::testing::ElementsAre(boost::json::serialize(boost::json::string(
                                        (root_ / "incoming" / "a.json").string()))));
    write("c.json", "{}", true);
    FileSource restarted(config(), tattle::sdk::Host(nullptr), true);
    std::vector<std::string> names;
    while (auto batch = next_within(restarted, 4 * kScanInterval)) names.push_back(fs::path(batch->origin).filename());
    EXPECT_THAT(names, ::testing::ElementsAre("b.json", "c.json"));
}

TEST_F(FileFollowTest, ATornLastCheckpointLineIsIgnored) {
    fs::create_directories(root_ / "state");
    const fs::path done = write("done.json", "{}", true);
    write("torn.json", "{}", true);
    std::ofstream(root_ / "state" / "incoming.checkpoint")
        << boost::json::serialize(boost::json::string(done.string())) << "\n\"" << (root_ / "incoming").string();
    FileSource source(config(), tattle::sdk::Host(nullptr), true);
    auto batch = source.next();
    ASSERT_TRUE(batch.has_value());
    EXPECT_EQ(fs::path(batch->origin).filename(), "torn.json");
}

TEST_F(FileFollowTest, FollowNeedsACheckpointOrAStateDirectory) {
    ::unsetenv("TATTLE_STATE_DIR");
    const std::string json =
        R"({"paths":["x"],"extensions":[".json"],"follow":true,"scan_interval_seconds":1})";
    EXPECT_THROW(tattle::sources::parse_file_source_config(json, "logs"), std::invalid_argument);
    ::setenv("TATTLE_STATE_DIR", root_.c_str(), 1);
    const auto parsed = tattle::sources::parse_file_source_config(json, "my logs/1");
    ::unsetenv("TATTLE_STATE_DIR");
    EXPECT_EQ(parsed.checkpoint, root_ / "file-my_logs_1.checkpoint");
    EXPECT_EQ(parsed.scan_interval, 1s);
    EXPECT_THROW(tattle::sources::parse_file_source_config(
                     R"({"paths":["-"],"extensions":[],"follow":true,"checkpoint":"c"})", "stdin"),
                 std::invalid_argument);
}

// Through the plugin ABI: the host says it takes "nothing now", the SDK turns NothingNow
// into TATTLE_RC_AGAIN, and the host's source sees NextStatus::NothingNow.
TEST_F(FileFollowTest, TheHostSeesNothingNowThroughThePluginAbi) {
    tattle::PluginCatalog catalog;
    catalog.add_builtin_plugins();
    auto plugin = catalog.find(TATTLE_PLUGIN_KIND_SOURCE, "file");
    ASSERT_NE(plugin, nullptr);
    boost::json::object settings{{"paths", boost::json::array{(root_ / "incoming").string()}},
                                 {"extensions", boost::json::array{".json"}},
                                 {"follow", true},
                                 {"scan_interval_seconds", 0.05},
                                 {"checkpoint", (root_ / "state" / "incoming.checkpoint").string()}};
    tattle::SourceInstance source(plugin, "incoming", settings);
    EXPECT_EQ(source.next().status, tattle::BatchSource::NextStatus::NothingNow);
    write("new.json", "{}", true);
    const auto deadline = std::chrono::steady_clock::now() + 2s;
    tattle::BatchSource::Next next;
    do {
        next = source.next();
        if (next.status == tattle::BatchSource::NextStatus::NothingNow) std::this_thread::sleep_for(10ms);
    } while (next.status == tattle::BatchSource::NextStatus::NothingNow && std::chrono::steady_clock::now() < deadline);
    ASSERT_EQ(next.status, tattle::BatchSource::NextStatus::Batch);
    EXPECT_EQ(fs::path(next.batch.origin).filename(), "new.json");
    EXPECT_EQ(source.ack(next.batch.id, true), "");
    EXPECT_EQ(checkpoint_lines().size(), 1U);
}

}  // namespace
