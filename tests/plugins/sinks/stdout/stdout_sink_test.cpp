#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

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
