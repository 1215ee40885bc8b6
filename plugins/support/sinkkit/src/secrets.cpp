#include "tattle/sinkkit/secrets.hpp"

#include <algorithm>
#include <string_view>

namespace tattle::sinkkit {

std::string redact_secrets(std::string text, const std::vector<std::string>& secrets) {
    std::vector<std::string_view> ordered(secrets.begin(), secrets.end());
    std::sort(ordered.begin(), ordered.end(), [](auto a, auto b) { return a.size() > b.size(); });
    constexpr std::string_view kMark = "<redacted>";
    for (const auto secret : ordered) {
        if (secret.empty()) continue;
        for (std::size_t at = text.find(secret); at != std::string::npos;
             at = text.find(secret, at + kMark.size())) {
            text.replace(at, secret.size(), kMark);
        }
    }
    return text;
}

}  // namespace tattle::sinkkit
