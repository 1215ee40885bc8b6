#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tattle/aws/service_client.hpp"
#include "tattle/notifications/s3_notification.hpp"

namespace tattle::sources::s3 {

// The s3 source's settings, read from its validated config table.
struct S3SourceConfig {
    // Listing mode: every object under s3://bucket/prefix.
    std::string bucket;
    std::string prefix;
    // Inclusive day bounds on the date in each listed key (cloudtrail_key_date).
    std::optional<notifications::Date> since;
    std::optional<notifications::Date> until;
    // Keys per ListObjectsV2 page (S3's maximum is 1000); not a config key, tests lower it.
    int list_page_size = 1000;

    // Notifications mode: files (or "-" for stdin), each holding one notification payload.
    std::vector<std::string> notification_files;

    // Which keys to read: an ECMAScript pattern, else CloudTrail log files (with Insights
    // files too when include_insights).
    std::optional<std::string> key_pattern;
    bool include_insights = false;

    // Region, endpoint, credentials, timeouts; http.max_response_bytes is max_object_bytes.
    aws::ServiceSettings aws;

    bool listing() const noexcept { return !bucket.empty(); }
};

// Throws std::invalid_argument for what the schema cannot say (a day that does not exist,
// listing keys in notifications mode, since after until, a bad key_pattern).
S3SourceConfig parse_s3_source_config(const std::string& config_json);

// "2024-01-31" → that day; nullopt for anything else (including 2024-02-30).
std::optional<notifications::Date> parse_day(std::string_view text);

// The filter the settings ask for (throws std::invalid_argument for a bad pattern).
notifications::ObjectFilter make_object_filter(const S3SourceConfig& config);

}  // namespace tattle::sources::s3
