#include "tattle/logging.hpp"

#include "tattle/secrets.hpp"
#include "tattle/text_safety.hpp"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

namespace tattle {
namespace {

// One JSON object per line, so log shippers need no parsing rules.
class JsonStderrSink final : public spdlog::sinks::base_sink<std::mutex> {
protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
        boost::json::object line;
        const auto since_epoch = msg.time.time_since_epoch();
        line["ts_ms"] =
            std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch).count();
        const auto level_name = spdlog::level::to_string_view(msg.level);
        line["level"] = std::string_view(level_name.data(), level_name.size());
        line["msg"] = std::string_view(msg.payload.data(), msg.payload.size());
        if (msg.logger_name.size() > 0) {
            line["logger"] = std::string_view(msg.logger_name.data(), msg.logger_name.size());
        }
        std::string text = boost::json::serialize(line);
        text += '\n';
        std::fwrite(text.data(), 1, text.size(), stderr);
    }
    void flush_() override { std::fflush(stderr); }
};

// Every line passes through redact() before any sink sees it: a plugin or a library
// error message that quotes a webhook URL or a key must not put it in the logs.
// Then control characters and invalid UTF-8 are escaped: messages quote origins
// (S3 keys) and record text, which an attacker can fill with newlines (forged log
// lines) or terminal escape sequences.
class RedactingSink final : public spdlog::sinks::base_sink<std::mutex> {
public:
    explicit RedactingSink(std::shared_ptr<spdlog::sinks::sink> inner) : inner_(std::move(inner)) {}

protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
        const std::string redacted =
            printable_log_text(redact(std::string_view(msg.payload.data(), msg.payload.size())));
        spdlog::details::log_msg copy = msg;
        copy.payload = spdlog::string_view_t(redacted.data(), redacted.size());
        inner_->log(copy);
    }
    void flush_() override { inner_->flush(); }
    void set_pattern_(const std::string& pattern) override { inner_->set_pattern(pattern); }

private:
    std::shared_ptr<spdlog::sinks::sink> inner_;
};

}  // namespace

void setup_logging(LogFormat format, std::string_view level) {
    std::shared_ptr<spdlog::logger> logger;
    if (format == LogFormat::Json) {
        logger = std::make_shared<spdlog::logger>(
            "tattle", std::make_shared<RedactingSink>(std::make_shared<JsonStderrSink>()));
    } else {
        logger = std::make_shared<spdlog::logger>(
            "tattle", std::make_shared<RedactingSink>(std::make_shared<spdlog::sinks::stderr_color_sink_mt>(
                          spdlog::color_mode::automatic)));
        logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
    }
    const auto parsed = spdlog::level::from_str(std::string(level));
    if (parsed == spdlog::level::off && level != "off") {
        throw std::invalid_argument("unknown log level \"" + std::string(level) +
                                    "\" (trace, debug, info, warn, error, off)");
    }
    logger->set_level(parsed);
    logger->flush_on(spdlog::level::warn);
    spdlog::set_default_logger(logger);
}

}  // namespace tattle
