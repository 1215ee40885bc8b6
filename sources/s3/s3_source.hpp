#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <variant>

#include "s3_source_config.hpp"
#include "tattle/aws/s3.hpp"
#include "tattle/sdk.hpp"

namespace tattle::sources::s3 {

// Reads CloudTrail log files from S3, one batch per object, either by listing a bucket
// prefix (backfill) or from S3 event notification payloads read from files. Object bytes
// are handed over as stored: gzip stays gzip, the core's decoder undoes it.
class S3Source {
public:
    // Throws what S3SourceConfig's ServiceSettings can throw (aws::ConfigError,
    // aws::CredentialsError) when region, endpoint or credentials cannot be resolved.
    S3Source(S3SourceConfig config, sdk::Host host);

    // The next object (or inline CloudTrail event); nullopt when everything is read.
    // Throws sdk::BatchError for an object, a listing page or a notification file that
    // could not be read; the next call goes on with the rest.
    std::optional<sdk::Batch> next();

    // For tests: the retry policy of GetObject and ListObjectsV2.
    void set_retry_policy(const aws::RetryPolicy& policy) { retry_ = policy; }

private:
    struct ObjectToRead {
        std::string bucket;
        std::string key;
        std::string version_id;
    };
    struct InlineEvent {
        std::string origin;
        std::string json;
    };
    struct Unreadable {
        std::string origin;
        std::string message;
    };
    using Item = std::variant<ObjectToRead, InlineEvent, Unreadable>;

    // Queues more items: the next listing page or the next notification file. False when
    // there is nothing more to read.
    bool refill();
    void list_next_page();
    void read_notification_file(const std::string& path);
    bool within_days(const std::string& uri, const std::string& key) const;
    sdk::Batch read_object(const ObjectToRead& object);

    S3SourceConfig config_;
    sdk::Host host_;
    notifications::ObjectFilter filter_;
    aws::S3Client client_;
    aws::RetryPolicy retry_;
    std::deque<Item> pending_;
    std::uint64_t next_id_ = 1;

    // Listing mode.
    bool listing_done_ = false;
    std::string continuation_token_;
    std::size_t listed_ = 0;
    std::size_t accepted_ = 0;

    // Notifications mode.
    std::size_t next_file_ = 0;
};

// The origin of an object's batch: s3://bucket/key, with "?versionId=…" when one is named.
std::string object_origin(std::string_view bucket, std::string_view key, std::string_view version_id);

}  // namespace tattle::sources::s3
