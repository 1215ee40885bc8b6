// The dead-letter spool: atomic files, listing, selection, and where it lives.
#include "tattle/spool.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <boost/json.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tattle/dedup.hpp"

namespace tattle {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::HasSubstr;

const WallTime kNoon = WallTime(std::chrono::seconds(1'700'000'000)) + 250ms;

SpoolRecord record_for(const std::string& destination, const std::string& alert_id,
                       WallTime at = kNoon) {
    SpoolRecord record;
    record.destination = destination;
    record.alert_id = alert_id;
    record.rule = "Create User";
    record.attempts = 3;
    record.first_attempt = at - 10s;
    record.last_attempt = at - 1s;
    record.spooled_at = at;
    record.last_error = "gave up after 3 attempts; last error: HTTP 503";
    record.alert_json = R"({"alert_id":")" + alert_id +
                        R"(","rule":{"name":"Create User"},"destination":")" + destination +
                        R"("})";
    return record;
}

unsigned permissions_of(const fs::path& path) {
    struct stat info {};
    ::stat(path.c_str(), &info);
    return info.st_mode & 0777U;
}

class SpoolTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::string pattern = (fs::temp_directory_path() / "tattle_spool_XXXXXX").string();
        ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
        dir_ = pattern;
    }
    void TearDown() override { fs::remove_all(dir_); }
    fs::path dir_;
};

TEST_F(SpoolTest, PutWritesOnePrivateFileWithEveryField) {
    const Spool spool(dir_ / "state" / "spool");
    const std::string id = spool.put(record_for("Slack Warnings", "6f1c"));
    EXPECT_EQ(id, delivery_key("Slack Warnings", "6f1c"));

    const fs::path file = dir_ / "state" / "spool" / (id + ".json");
    ASSERT_TRUE(fs::exists(file));
    EXPECT_EQ(permissions_of(file), 0600U);
    EXPECT_EQ(permissions_of(dir_ / "state" / "spool"), 0700U);
    std::size_t files = 0;
    for ([[maybe_unused]] const auto& item : fs::directory_iterator(dir_ / "state" / "spool"))
        ++files;
    EXPECT_EQ(files, 1U) << "no temporary file is left behind";

    std::ifstream in(file);
    std::stringstream text;
    text << in.rdbuf();
    const auto document = boost::json::parse(text.str()).as_object();
    EXPECT_EQ(document.at("spool_format"), 1);
    EXPECT_EQ(document.at("id").as_string(), id);
    EXPECT_EQ(document.at("destination"), "Slack Warnings");
    EXPECT_EQ(document.at("alert_id"), "6f1c");
    EXPECT_EQ(document.at("rule"), "Create User");
    EXPECT_EQ(document.at("attempts"), 3);
    EXPECT_EQ(document.at("first_attempt"), "2023-11-14T22:13:10.250Z");
    EXPECT_EQ(document.at("last_attempt"), "2023-11-14T22:13:19.250Z");
    EXPECT_EQ(document.at("spooled_at"), "2023-11-14T22:13:20.250Z");
    EXPECT_EQ(document.at("last_error"), "gave up after 3 attempts; last error: HTTP 503");
    EXPECT_EQ(document.at("alert").as_object().at("alert_id"), "6f1c");
}

TEST_F(SpoolTest, ListReadsBackWhatWasPutOldestFirst) {
    const Spool spool(dir_);
    spool.put(record_for("slack", "b", kNoon + 5s));
    spool.put(record_for("slack", "a", kNoon));
    const auto listing = spool.list();
    ASSERT_EQ(listing.entries.size(), 2U);
    EXPECT_TRUE(listing.unreadable.empty());
    const SpoolEntry& first = listing.entries[0];
    EXPECT_EQ(first.alert_id, "a");
    EXPECT_EQ(first.destination, "slack");
    EXPECT_EQ(first.rule, "Create User");
    EXPECT_EQ(first.attempts, 3U);
    EXPECT_EQ(first.first_attempt, kNoon - 10s);
    EXPECT_EQ(first.spooled_at, kNoon);
    EXPECT_EQ(boost::json::parse(first.alert_json),
              boost::json::parse(record_for("slack", "a").alert_json));
    EXPECT_EQ(first.file, dir_ / (first.id + ".json"));
    EXPECT_EQ(listing.entries[1].alert_id, "b");
}

TEST_F(SpoolTest, OneFilePerAlertAndDestination) {
    const Spool spool(dir_);
    spool.put(record_for("slack", "a"));
    auto again = record_for("slack", "a");
    again.attempts = 9;
    spool.put(again);  // the same alert failing again replaces its entry
    spool.put(record_for("pagerduty", "a"));
    const auto entries = spool.list().entries;
    ASSERT_EQ(entries.size(), 2U);
    for (const auto& entry : entries) {
        if (entry.destination == "slack") EXPECT_EQ(entry.attempts, 9U);
    }
}

TEST_F(SpoolTest, ForeignAndBrokenFilesAreReportedNotFatal) {
    const Spool spool(dir_);
    spool.put(record_for("slack", "a"));
    std::ofstream(dir_ / "broken.json") << "{not json";
    std::ofstream(dir_ / "other.json") << R"({"hello": 1})";
    std::ofstream(dir_ / ".tmp-abc-1-1") << "half written";
    std::ofstream(dir_ / "README") << "not a spool entry";
    const auto listing = spool.list();
    EXPECT_EQ(listing.entries.size(), 1U);
    ASSERT_EQ(listing.unreadable.size(), 2U);
    EXPECT_THAT(listing.unreadable[0] + listing.unreadable[1], HasSubstr("broken.json: not JSON"));
    EXPECT_THAT(listing.unreadable[0] + listing.unreadable[1],
                HasSubstr("other.json: not a tattle spool entry"));
}

TEST_F(SpoolTest, MissingDirectoryIsAnEmptySpool) {
    const Spool spool(dir_ / "never-created");
    EXPECT_TRUE(spool.list().entries.empty());
    EXPECT_FALSE(spool.remove(delivery_key("slack", "a")));
}

TEST_F(SpoolTest, RemoveDeletesTheEntry) {
    const Spool spool(dir_);
    const std::string id = spool.put(record_for("slack", "a"));
    EXPECT_TRUE(spool.remove(id));
    EXPECT_FALSE(spool.remove(id));
    EXPECT_TRUE(spool.list().entries.empty());
}

TEST_F(SpoolTest, PutThrowsWhenTheSpoolCannotBeWritten) {
    std::ofstream(dir_ / "file") << "x";
    const Spool spool(dir_ / "file" / "spool");
    EXPECT_THROW(spool.put(record_for("slack", "a")), SpoolError);
}

TEST_F(SpoolTest, SelectorsArePrefixesOfSpoolIdsOrAlertIds) {
    const Spool spool(dir_);
    spool.put(record_for("slack", "aaaa1111"));
    spool.put(record_for("pagerduty", "aaaa1111"));
    spool.put(record_for("slack", "aaaa2222"));
    const auto entries = spool.list().entries;
    std::vector<std::string> problems;

    EXPECT_EQ(select_spool_entries(entries, {}, {}, problems).size(), 3U);
    EXPECT_EQ(select_spool_entries(entries, {}, {"pagerduty"}, problems).size(), 1U);
    // A whole alert id: that alert, for every destination it is parked for.
    EXPECT_EQ(select_spool_entries(entries, {"aaaa1111"}, {}, problems).size(), 2U);
    EXPECT_EQ(select_spool_entries(entries, {"aaaa1111"}, {"slack"}, problems).size(), 1U);
    const std::string id = delivery_key("slack", "aaaa2222");
    const auto by_id = select_spool_entries(entries, {id.substr(0, 6)}, {}, problems);
    ASSERT_EQ(by_id.size(), 1U);
    EXPECT_EQ(by_id[0].alert_id, "aaaa2222");
    EXPECT_TRUE(problems.empty());

    select_spool_entries(entries, {"aaaa"}, {}, problems);
    select_spool_entries(entries, {"abc"}, {}, problems);
    select_spool_entries(entries, {"ffffffffff"}, {}, problems);
    ASSERT_EQ(problems.size(), 3U);
    EXPECT_THAT(problems[0], HasSubstr("matches 2 different spooled alerts"));
    EXPECT_THAT(problems[1], HasSubstr("too short"));
    EXPECT_THAT(problems[2], HasSubstr("no spooled alert matches \"ffffffffff\""));
}

TEST(SpoolDir, EnvironmentThenConfigThenLambdaThenUserState) {
    const char* home = std::getenv("HOME");
    const std::string saved_home = home != nullptr ? home : "";
    ::unsetenv("TATTLE_SPOOL_DIR");
    ::unsetenv("AWS_LAMBDA_RUNTIME_API");
    ::setenv("XDG_STATE_HOME", "/home/u/.state", 1);
    Config config;
    EXPECT_EQ(resolve_spool_dir(config), fs::path("/home/u/.state/tattle/spool"));
    ::unsetenv("XDG_STATE_HOME");
    ::setenv("HOME", "/home/u", 1);
    EXPECT_EQ(resolve_spool_dir(config), fs::path("/home/u/.local/state/tattle/spool"));
    ::setenv("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001", 1);
    EXPECT_EQ(resolve_spool_dir(config), fs::path("/tmp/tattle/spool"));
    config.spool_dir = "/var/spool/tattle";
    EXPECT_EQ(resolve_spool_dir(config), fs::path("/var/spool/tattle"));
    ::setenv("TATTLE_SPOOL_DIR", "/srv/spool", 1);
    EXPECT_EQ(resolve_spool_dir(config), fs::path("/srv/spool"));
    ::unsetenv("TATTLE_SPOOL_DIR");
    ::unsetenv("AWS_LAMBDA_RUNTIME_API");
    if (!saved_home.empty()) ::setenv("HOME", saved_home.c_str(), 1);
}

TEST(SpoolTime, Rfc3339RoundTrip) {
    EXPECT_EQ(format_utc(kNoon), "2023-11-14T22:13:20.250Z");
    EXPECT_EQ(parse_utc("2023-11-14T22:13:20.250Z"), kNoon);
    EXPECT_FALSE(parse_utc("2023-11-14 22:13:20").has_value());
    EXPECT_FALSE(parse_utc("2023-11-14T22:13:20.250Zjunk").has_value());
}

}  // namespace
}  // namespace tattle
