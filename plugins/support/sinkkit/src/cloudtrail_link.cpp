#include "tattle/sinkkit/cloudtrail_link.hpp"

namespace tattle::sinkkit {

bool is_region_name(std::string_view region) {
    if (region.size() < 2 || region.size() > 32) return false;
    if (region.front() < 'a' || region.front() > 'z') return false;
    for (const char c : region) {
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
    }
    return true;
}

std::string percent_encoded(std::string_view text) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            out += c;
        } else {
            out += '%';
            out += kHex[byte >> 4U];
            out += kHex[byte & 0x0fU];
        }
    }
    return out;
}

std::string cloudtrail_console_url(std::string_view region, std::string_view event_id) {
    if (!is_region_name(region) || event_id.empty()) return {};
    const std::string host_region(region);
    return "https://" + host_region +
           ".console.aws.amazon.com/cloudtrailv2/home?region=" + host_region + "#/events/" +
           percent_encoded(event_id);
}

}  // namespace tattle::sinkkit
