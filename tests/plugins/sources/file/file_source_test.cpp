// The file source: which paths it expands to, in what order, and how it reports
// what it cannot read.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "file_source.hpp"

namespace {

namespace fs = std::filesystem;
using tattle::sources::FileSource;
using tattle::sources::FileSourceConfig;

class FileSourceTest : public ::testing::Test {
protected:
    void SetUp() override {
        root_ = fs::temp_directory_path() / ("tattle_file_source_" + std::to_string(::getpid()));
        fs::remove_all(root_);
        fs::create_directories(root_ / "logs" / "2024" / "01");
        write("logs/2024/01/b.json.gz", "gz");
        write("logs/2024/01/a.json", "{}");
        write("logs/2024/c.jsonl", "{}\n");
        write("logs/notes.txt", "not a log");
    }
    void TearDown() override { fs::remove_all(root_); }

    void write(const std::string& relative, const std::string& content) {
        std::ofstream(root_ / relative) << content;
    }
    FileSourceConfig config(std::vector<std::string> paths) {
        return {std::move(paths), {".json", ".json.gz", ".jsonl", ".jsonl.gz"}};
    }

    fs::path root_;
};

TEST_F(FileSourceTest, WalksDirectoriesRecursivelyInSortedOrderByExtension) {
    FileSource source(config({(root_ / "logs").string()}));
    std::vector<std::string> origins;
    while (auto batch = source.next()) origins.push_back(fs::relative(batch->origin, root_).string());
    EXPECT_THAT(origins, ::testing::ElementsAre("logs/2024/01/a.json", "logs/2024/01/b.json.gz",
                                                "logs/2024/c.jsonl"));
}

TEST_F(FileSourceTest, ExpandsGlobsAndReadsBytes) {
    FileSource source(config({(root_ / "logs/2024/01/*.json*").string()}));
    auto first = source.next();
    ASSERT_TRUE(first.has_value());
    EXPECT_EQ(std::string(first->data.begin(), first->data.end()), "{}");
    auto second = source.next();
    ASSERT_TRUE(second.has_value());
    EXPECT_NE(first->id, second->id);
    EXPECT_FALSE(source.next().has_value());
}

TEST_F(FileSourceTest, ReadsEveryByteOfFilesOfAnySize) {
    // Sizes around the read's block and growth steps; the file's bytes all differ by position.
    for (const std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{65535}, std::size_t{65536},
                                   std::size_t{65537}, std::size_t{1} << 20, (std::size_t{1} << 20) + 3}) {
        SCOPED_TRACE(size);
        std::string content(size, '\0');
        for (std::size_t i = 0; i < size; ++i) content[i] = static_cast<char>((i * 131 + i / 251) & 0xFF);
        write("logs/sized.json", content);
        FileSource source(config({(root_ / "logs/sized.json").string()}));
        auto batch = source.next();
        ASSERT_TRUE(batch.has_value());
        ASSERT_EQ(batch->data.size(), size);
        EXPECT_TRUE(std::equal(batch->data.begin(), batch->data.end(), content.begin(),
                               [](std::uint8_t a, char b) { return a == static_cast<std::uint8_t>(b); }));
    }
}

TEST_F(FileSourceTest, ExplicitFileIsTakenWhateverItsExtension) {
    FileSource source(config({(root_ / "logs/notes.txt").string()}));
    auto batch = source.next();
    ASSERT_TRUE(batch.has_value());
    EXPECT_EQ(batch->data.size(), 9U);
}

TEST_F(FileSourceTest, MissingFileIsABatchErrorAndTheNextPathStillComes) {
    FileSource source(config({(root_ / "nope.json").string(), (root_ / "logs/2024/c.jsonl").string()}));
    try {
        source.next();
        FAIL() << "expected a BatchError";
    } catch (const tattle::sdk::BatchError& e) {
        EXPECT_THAT(e.origin(), ::testing::HasSubstr("nope.json"));
        EXPECT_THAT(e.what(), ::testing::HasSubstr("No such file"));
    }
    auto next = source.next();
    ASSERT_TRUE(next.has_value());
    EXPECT_THAT(next->origin, ::testing::HasSubstr("c.jsonl"));
}

TEST_F(FileSourceTest, GlobWithoutMatchIsReportedNotIgnored) {
    FileSource source(config({(root_ / "*.nothing").string()}));
    EXPECT_THROW(source.next(), tattle::sdk::BatchError);
    EXPECT_FALSE(source.next().has_value());
}

}  // namespace
