#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "file_sink.hpp"

namespace {

namespace fs = std::filesystem;

fs::path temp_file(const std::string& name) {
    auto path = fs::temp_directory_path() / ("tattle_file_sink_" + std::to_string(::getpid()) + "_" + name);
    fs::remove(path);
    return path;
}

std::vector<std::string> lines_of(const fs::path& path) {
    std::ifstream in(path);
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

TEST(FileSink, AppendsJsonLinesAndKeepsWhatWasThere) {
    const auto path = temp_file("append");
    std::ofstream(path) << "{\"earlier\":true}\n";
    {
        tattle::sinks::FileSink sink({path.string(), true, 0600});
        EXPECT_EQ(sink.append(R"({"n":1})"), "");
        EXPECT_EQ(sink.append(R"({"n":2})"), "");
        EXPECT_EQ(sink.flush(), "");
    }
    EXPECT_THAT(lines_of(path), ::testing::ElementsAre("{\"earlier\":true}", "{\"n\":1}", "{\"n\":2}"));
    fs::remove(path);
}

TEST(FileSink, NewFileGetsTheConfiguredMode) {
    const auto path = temp_file("mode");
    const mode_t old_mask = ::umask(0);
    { tattle::sinks::FileSink sink({path.string(), false, 0640}); }
    ::umask(old_mask);
    struct stat info {};
    ASSERT_EQ(::stat(path.c_str(), &info), 0);
    EXPECT_EQ(info.st_mode & 0777U, 0640U);
    fs::remove(path);
}

TEST(FileSink, ConcurrentWritersNeverInterleaveLines) {
    const auto path = temp_file("concurrent");
    const std::string big(20000, 'x');
    auto writer = [&](char tag) {
        tattle::sinks::FileSink sink({path.string(), false, 0600});
        for (int i = 0; i < 200; ++i) sink.append("{\"" + std::string(1, tag) + "\":\"" + big + "\"}");
    };
    std::thread a(writer, 'a');
    std::thread b(writer, 'b');
    a.join();
    b.join();
    const auto lines = lines_of(path);
    ASSERT_EQ(lines.size(), 400U);
    for (const auto& line : lines) {
        ASSERT_EQ(line.size(), big.size() + 8) << "a line was split or merged";
    }
    fs::remove(path);
}

TEST(FileSink, UnwritableDirectoryFailsAtCreateWithPath) {
    try {
        tattle::sinks::FileSink sink({"/nonexistent-dir/alerts.jsonl", true, 0600});
        FAIL() << "expected an error";
    } catch (const std::runtime_error& e) {
        EXPECT_THAT(e.what(), ::testing::HasSubstr("/nonexistent-dir/alerts.jsonl"));
    }
}

}  // namespace
