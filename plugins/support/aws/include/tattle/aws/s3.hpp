#pragma once

// The two S3 calls tattle makes: GetObject (a CloudTrail log file, bytes as stored: the
// client never asks for or undoes a Content-Encoding, so gzip stays gzip for the decoder)
// and ListObjectsV2 (backfill over a prefix). REST-XML over tattle::aws::ServiceClient.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tattle/aws/service_client.hpp"

namespace tattle::aws {

struct S3Object {
    std::string body;
    std::string etag;
    std::string content_type;
    std::string content_encoding;
};

struct S3ListedObject {
    std::string key;
    std::uint64_t size = 0;
    std::string last_modified;  // ISO 8601, as S3 gives it
    std::string etag;
};

struct S3ListPage {
    std::vector<S3ListedObject> objects;
    std::string next_continuation_token;  // empty on the last page
};

// "s3://bucket/key", for messages and batch origins.
std::string s3_uri(std::string_view bucket, std::string_view key);

// Not thread-safe (see ServiceClient).
class S3Client {
public:
    // Throws ConfigError or CredentialsError (see ServiceClient).
    explicit S3Client(ServiceSettings settings);

    // Throws ServiceError naming s3://bucket/key: 403/404 are permanent, 5xx/throttling/
    // timeouts retryable; an object over the settings' http.max_response_bytes is a
    // permanent error ("too_large"). A version_id asks for that version of the object.
    S3Object get_object(std::string_view bucket, std::string_view key, std::string_view version_id = {});

    // One page (up to max_keys, S3 caps it at 1000). start_after is only sent without a
    // continuation token.
    S3ListPage list_objects_v2(std::string_view bucket, std::string_view prefix, std::string_view continuation_token,
                               std::string_view start_after = {}, int max_keys = 1000);

    ServiceClient& service() noexcept { return service_; }

private:
    ServiceClient service_;
};

}  // namespace tattle::aws
