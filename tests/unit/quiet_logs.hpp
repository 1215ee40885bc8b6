#pragma once

#include <spdlog/spdlog.h>

namespace tattle::test_support {

// Keeps the messages a test provokes on purpose (jq errors, stopped rules) out of the
// test output, and restores the log level after the test.
class QuietLogs {
public:
    QuietLogs() : level_(spdlog::get_level()) { spdlog::set_level(spdlog::level::off); }
    ~QuietLogs() { spdlog::set_level(level_); }
    QuietLogs(const QuietLogs&) = delete;
    QuietLogs& operator=(const QuietLogs&) = delete;

private:
    spdlog::level::level_enum level_;
};

}  // namespace tattle::test_support
