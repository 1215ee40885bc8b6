#include "file_sink.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace tattle::sinks {

FileSinkConfig parse_file_sink_config(const std::string& config_json) {
    const auto config = boost::json::parse(config_json).as_object();
    FileSinkConfig parsed;
    parsed.path = std::string(config.at("path").as_string());
    parsed.fsync = config.at("fsync").as_bool();
    const std::string mode(config.at("mode").as_string());
    parsed.mode = static_cast<unsigned>(std::stoul(mode, nullptr, 8));
    return parsed;
}

FileSink::FileSink(FileSinkConfig config) : config_(std::move(config)) {
    fd_ = ::open(config_.path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, config_.mode);
    if (fd_ < 0) throw std::runtime_error("cannot open " + config_.path + ": " + std::strerror(errno));
}

FileSink::~FileSink() {
    if (fd_ >= 0) ::close(fd_);
}

std::string FileSink::append(std::string_view alert_json) {
    std::string line(alert_json);
    line += '\n';
    // One write per line: with O_APPEND the kernel places it whole at the end.
    const ssize_t written = ::write(fd_, line.data(), line.size());
    if (written < 0) return "write to " + config_.path + " failed: " + std::strerror(errno);
    if (static_cast<std::size_t>(written) != line.size()) {
        // A short write leaves a partial line; finish it so the file stays line-delimited.
        std::size_t offset = static_cast<std::size_t>(written);
        while (offset < line.size()) {
            const ssize_t more = ::write(fd_, line.data() + offset, line.size() - offset);
            if (more < 0) {
                if (errno == EINTR) continue;
                return "write to " + config_.path + " failed: " + std::strerror(errno);
            }
            offset += static_cast<std::size_t>(more);
        }
    }
    return {};
}

std::string FileSink::flush() {
    if (config_.fsync && ::fsync(fd_) != 0) return "fsync of " + config_.path + " failed: " + std::strerror(errno);
    return {};
}

}  // namespace tattle::sinks
