#pragma once

#include <string_view>

namespace tattle {

enum class LogFormat { Text, Json };

// Sets up the process-wide logger: stderr, text or one JSON object per line.
// level is one of trace, debug, info, warn, error, off.
void setup_logging(LogFormat format, std::string_view level);

}  // namespace tattle
