#pragma once

#include <string>
#include <string_view>

namespace tattle::sinks {

struct FileSinkConfig {
    std::string path;
    bool fsync = true;  // make each flushed batch durable before its source is acknowledged
    unsigned mode = 0600;
};

FileSinkConfig parse_file_sink_config(const std::string& config_json);

// Appends alerts as JSON lines. The file is opened with O_APPEND and each line is
// written with one write(2), so several tattle processes can append to the same
// file without interleaving lines.
class FileSink {
public:
    explicit FileSink(FileSinkConfig config);
    ~FileSink();
    FileSink(const FileSink&) = delete;
    FileSink& operator=(const FileSink&) = delete;

    // Returns an error message, or empty on success.
    std::string append(std::string_view alert_json);
    std::string flush();

private:
    FileSinkConfig config_;
    int fd_ = -1;
};

}  // namespace tattle::sinks
