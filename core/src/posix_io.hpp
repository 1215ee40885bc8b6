#pragma once

#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <string>

namespace tattle::posix_io {

// Writes all of data to fd, resuming after short writes and EINTR; false on error (errno set).
inline bool write_all(int fd, const std::string& data) {
    std::size_t offset = 0;
    while (offset < data.size()) {
        const ssize_t written = ::write(fd, data.data() + offset, data.size() - offset);
        if (written < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        offset += static_cast<std::size_t>(written);
    }
    return true;
}

}  // namespace tattle::posix_io
