#include "s3_source_config.hpp"

#include <boost/json.hpp>
#include <charconv>
#include <cstdint>
#include <cstddef>
#include <stdexcept>

namespace tattle::sources::s3 {

namespace json = boost::json;

std::optional<notifications::Date> parse_day(std::string_view text) {
    if (text.size() != 10 || text[4] != '-' || text[7] != '-') return std::nullopt;
    int year = 0;
    unsigned month = 0;
    unsigned day = 0;
    auto read = [&](std::size_t offset, std::size_t length, auto& value) {
        const char* first = text.data() + offset;
        const char* last = first + length;
        const auto [end, error] = std::from_chars(first, last, value);
        return error == std::errc() && end == last;
    };
    if (!read(0, 4, year) || !read(5, 2, month) || !read(8, 2, day)) return std::nullopt;
    const notifications::Date date{std::chrono::year(year), std::chrono::month(month), std::chrono::day(day)};
    if (!date.ok()) return std::nullopt;
    return date;
}

namespace {

std::optional<notifications::Date> day_setting(const json::object& config, std::string_view key) {
    const json::value* value = config.if_contains(key);
    if (value == nullptr) return std::nullopt;
    const std::string text(value->as_string());
    auto day = parse_day(text);
    if (!day) throw std::invalid_argument(std::string(key) + " \"" + text + "\" is not a day (YYYY-MM-DD)");
    return day;
}

}  // namespace

S3SourceConfig parse_s3_source_config(const std::string& config_json) {
    // The host validated the config against the schema (exactly one of bucket and
    // notifications, types, defaults); what is checked here is what a schema cannot say.
    const json::object config = json::parse(config_json).as_object();
    S3SourceConfig parsed;
    if (const auto* bucket = config.if_contains("bucket")) parsed.bucket = std::string(bucket->as_string());
    if (const auto* prefix = config.if_contains("prefix")) parsed.prefix = std::string(prefix->as_string());
    parsed.since = day_setting(config, "since");
    parsed.until = day_setting(config, "until");
    if (const auto* files = config.if_contains("notifications")) {
        for (const auto& file : files->as_array()) parsed.notification_files.emplace_back(file.as_string());
    }
    if (const auto* pattern = config.if_contains("key_pattern")) {
        parsed.key_pattern = std::string(pattern->as_string());
    }
    if (const auto* insights = config.if_contains("include_insights")) parsed.include_insights = insights->as_bool();

    if (!parsed.listing()) {
        for (const char* listing_only : {"prefix", "since", "until"}) {
            if (config.contains(listing_only)) {
                throw std::invalid_argument(std::string(listing_only) +
                                            " applies to listing a bucket (bucket = \"…\"), not to notifications");
            }
        }
    }
    if (parsed.since && parsed.until && *parsed.until < *parsed.since) {
        throw std::invalid_argument("until is before since: no day would be read");
    }

    parsed.aws = aws::settings_from_json(config);
    if (const auto* limit = config.if_contains("max_object_bytes")) {
        parsed.aws.http.max_response_bytes = static_cast<std::size_t>(limit->to_number<std::int64_t>());
    }
    make_object_filter(parsed);  // a bad pattern is a config error now, not at the first key
    return parsed;
}

notifications::ObjectFilter make_object_filter(const S3SourceConfig& config) {
    if (config.key_pattern) return notifications::ObjectFilter::key_pattern(*config.key_pattern);
    return notifications::ObjectFilter::cloudtrail_logs(config.include_insights);
}

}  // namespace tattle::sources::s3
