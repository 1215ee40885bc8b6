#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "stdout_sink.hpp"

namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const char* kAlert = R"({"alert_id":"abc","rule":{"name":"Create User","description":"d"},
  "destination":"out","annotation":"username: bob",
  "summary":{"event_time":"2023-07-10T12:30:00Z","event_name":"CreateUser","event_source":"iam.amazonaws.com",
             "actor":"arn:aws:iam::1:user/alice","account_id":"1","region":"us-east-1","source_ip":"1.2.3.4",
             "user_agent":"ua\u001b[31m"},
  "origin":{"source":"s","batch":"b","index":0},"event":{"eventName":"CreateUser"}})";

std::string capture(tattle::sinks::StdoutFormat format, const std::string& alert) {
    std::FILE* out = std::tmpfile();
    tattle::sinks::StdoutSink sink(format, out);
    EXPECT_EQ(sink.write(alert), "");
    EXPECT_EQ(sink.flush(), "");
    std::rewind(out);
    std::string text;
    char buffer[4096];
    while (std::size_t n = std::fread(buffer, 1, sizeof buffer, out)) text.append(buffer, n);
    std::fclose(out);
    return text;
}

TEST(StdoutSink, JsonFormatWritesTheDocumentOnOneLine) {
    const std::string one_line = R"({"a":1})";
    EXPECT_EQ(capture(tattle::sinks::StdoutFormat::Json, one_line), one_line + "\n");
}

TEST(StdoutSink, SinksWritingToOneStreamAtOnceKeepEachLineWhole) {
    std::FILE* out = std::tmpfile();
    constexpr int kThreads = 4;
    constexpr int kLines = 300;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([out, t] {
            tattle::sinks::StdoutSink sink(tattle::sinks::StdoutFormat::Json, out);
            // Longer than the stream's buffer: stdio writes such a line out in several calls.
            const std::string alert = "{\"t\":\"" + std::string(6000, static_cast<char>('a' + t)) + "\"}";
            for (int i = 0; i < kLines; ++i) EXPECT_EQ(sink.write(alert), "");
        });
    }
    for (auto& thread : threads) thread.join();
    std::rewind(out);
    std::string text;
    char buffer[4096];
    while (std::size_t n = std::fread(buffer, 1, sizeof buffer, out)) text.append(buffer, n);
    std::fclose(out);
    std::istringstream lines(text);
    int count = 0;
    for (std::string line; std::getline(lines, line); ++count) {
        ASSERT_EQ(line.size(), 6000U + 8U) << "line " << count;
        EXPECT_EQ(line.find_first_not_of(line[6], 6), 6000U + 6U) << "line " << count;
    }
    EXPECT_EQ(count, kThreads * kLines);
}

TEST(StdoutSink, TextLineNamesRuleActorActionPlaceAndAnnotation) {
    const std::string line = capture(tattle::sinks::StdoutFormat::Text, kAlert);
    EXPECT_THAT(line, HasSubstr("2023-07-10T12:30:00Z [Create User] arn:aws:iam::1:user/alice"));
    EXPECT_THAT(line, HasSubstr("iam.amazonaws.com CreateUser"));
    EXPECT_THAT(line, HasSubstr("account=1 region=us-east-1 ip=1.2.3.4"));
    EXPECT_THAT(line, HasSubstr("-- username: bob"));
    EXPECT_EQ(line.back(), '\n');
}

TEST(StdoutSink, TextLineNeutralisesControlCharactersFromEvents) {
    std::string alert = kAlert;
    alert.replace(alert.find("username: bob"), 13, "bob\\u001b]0;pwned\\u0007\\nfake line");
    const std::string line = capture(tattle::sinks::StdoutFormat::Text, alert);
    EXPECT_THAT(line, Not(HasSubstr("\x1b")));
    EXPECT_THAT(line, Not(HasSubstr("\a")));
    EXPECT_EQ(line.find('\n'), line.size() - 1);  // one line, whatever the event holds
    EXPECT_THAT(line, HasSubstr("bob\\x1b]0;pwned\\x07\\x0afake line"));
}

}  // namespace
