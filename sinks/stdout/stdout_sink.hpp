#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace tattle::sinks {

enum class StdoutFormat { Json, Text };

StdoutFormat parse_stdout_format(const std::string& config_json);

// One line a person reads at a glance:
// 2024-01-02T03:04:05Z [Create User] arn:aws:iam::1:user/alice iam.amazonaws.com CreateUser
//   account=1 region=us-east-1 ip=1.2.3.4 error=AccessDenied — username: bob
std::string render_text_line(std::string_view alert_json);

// Writes alerts to a stream, one line each.
class StdoutSink {
public:
    StdoutSink(StdoutFormat format, std::FILE* out) : format_(format), out_(out) {}
    // Returns an error message, or empty on success.
    std::string write(std::string_view alert_json);
    std::string flush();

private:
    StdoutFormat format_;
    std::FILE* out_;
};

}  // namespace tattle::sinks
