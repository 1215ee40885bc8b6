#include "tattle/aws/s3.hpp"

#include <charconv>

#include "tattle/aws/xml.hpp"

namespace tattle::aws {

namespace {

// A redirect or a wrong-region answer says where the bucket lives; the fix is the region setting.
void add_region_hint(ServiceError& error, const http::Response& response, std::string_view configured_region) {
    const auto bucket_region = response.header("x-amz-bucket-region");
    if (!bucket_region || *bucket_region == configured_region) return;
    error = ServiceError(std::string(error.what()) + " (the bucket is in " + *bucket_region + ", not " +
                             std::string(configured_region) + ": set region)",
                         error.status(), error.code(), false);
}

}  // namespace

std::string s3_uri(std::string_view bucket, std::string_view key) {
    return "s3://" + std::string(bucket) + "/" + std::string(key);
}

S3Client::S3Client(ServiceSettings settings) : service_(service::s3, std::move(settings)) {}

S3Object S3Client::get_object(std::string_view bucket, std::string_view key, std::string_view version_id) {
    std::string what = "s3:GetObject " + s3_uri(bucket, key);
    if (!version_id.empty()) what += " (version " + std::string(version_id) + ")";
    http::Request request;
    request.method = "GET";
    request.url = s3_url(service_.endpoint(), bucket, key, service_.settings().s3_addressing);
    if (!version_id.empty()) request.url += "?" + form_encode({{"versionId", std::string(version_id)}});
    http::Response response;
    try {
        response = service_.send(std::move(request), what);
    } catch (const ServiceError& error) {
        if (error.code() == "too_large") {
            throw ServiceError(what + ": the object is larger than the " +
                                   std::to_string(service_.settings().http.max_response_bytes) +
                                   " bytes allowed (max_object_bytes)",
                               0, "too_large", false);
        }
        throw;
    }
    if (response.status != 200) {
        ServiceError error = error_from_response(response, what);
        add_region_hint(error, response, service_.region());
        throw error;
    }
    S3Object object;
    object.body = std::move(response.body);
    object.etag = response.header("etag").value_or("");
    object.content_type = response.header("content-type").value_or("");
    object.content_encoding = response.header("content-encoding").value_or("");
    return object;
}

S3ListPage S3Client::list_objects_v2(std::string_view bucket, std::string_view prefix,
                                     std::string_view continuation_token, std::string_view start_after, int max_keys) {
    const std::string what = "s3:ListObjectsV2 " + s3_uri(bucket, prefix);
    std::vector<std::pair<std::string, std::string>> query = {{"list-type", "2"},
                                                              {"max-keys", std::to_string(max_keys)}};
    if (!prefix.empty()) query.emplace_back("prefix", std::string(prefix));
    if (!continuation_token.empty()) {
        query.emplace_back("continuation-token", std::string(continuation_token));
    } else if (!start_after.empty()) {
        query.emplace_back("start-after", std::string(start_after));
    }
    http::Request request;
    request.method = "GET";
    request.url = s3_url(service_.endpoint(), bucket, "", service_.settings().s3_addressing) + "?" + form_encode(query);
    const http::Response response = service_.send(std::move(request), what);
    if (response.status != 200) {
        ServiceError error = error_from_response(response, what);
        add_region_hint(error, response, service_.region());
        throw error;
    }
    S3ListPage page;
    for (const std::string_view contents : xml_inner_all(response.body, "Contents")) {
        S3ListedObject object;
        object.key = xml_text(contents, "Key").value_or("");
        if (object.key.empty()) continue;
        const std::string size = xml_text(contents, "Size").value_or("0");
        std::from_chars(size.data(), size.data() + size.size(), object.size);
        object.last_modified = xml_text(contents, "LastModified").value_or("");
        object.etag = xml_text(contents, "ETag").value_or("");
        page.objects.push_back(std::move(object));
    }
    if (xml_text(response.body, "IsTruncated").value_or("false") == "true") {
        page.next_continuation_token = xml_text(response.body, "NextContinuationToken").value_or("");
        if (page.next_continuation_token.empty()) {
            throw ServiceError(what + ": the listing is truncated but has no NextContinuationToken", response.status,
                               "malformed", false);
        }
    }
    return page;
}

}  // namespace tattle::aws
