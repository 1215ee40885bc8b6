#include "s3_source.hpp"

#include <boost/json.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <utility>

namespace tattle::sources::s3 {

namespace {

std::string read_stream(std::istream& in) {
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string format_day(const notifications::Date& day) {
    char text[48];
    std::snprintf(text, sizeof text, "%04d-%02u-%02u", static_cast<int>(day.year()),
                  static_cast<unsigned>(day.month()), static_cast<unsigned>(day.day()));
    return text;
}

}  // namespace

std::string object_origin(std::string_view bucket, std::string_view key, std::string_view version_id) {
    std::string origin = aws::s3_uri(bucket, key);
    if (!version_id.empty()) origin += "?versionId=" + std::string(version_id);
    return origin;
}

S3Source::S3Source(S3SourceConfig config, sdk::Host host)
    : config_(std::move(config)),
      host_(host),
      filter_(make_object_filter(config_)),
      client_(config_.aws) {}

std::optional<sdk::Batch> S3Source::next() {
    while (pending_.empty()) {
        if (!refill()) return std::nullopt;
    }
    Item item = std::move(pending_.front());
    pending_.pop_front();
    if (auto* unreadable = std::get_if<Unreadable>(&item)) {
        throw sdk::BatchError(unreadable->origin, unreadable->message);
    }
    if (auto* event = std::get_if<InlineEvent>(&item)) {
        sdk::Batch batch;
        batch.id = next_id_++;
        batch.origin = std::move(event->origin);
        batch.data.assign(event->json.begin(), event->json.end());
        return batch;
    }
    return read_object(std::get<ObjectToRead>(item));
}

bool S3Source::refill() {
    if (config_.listing()) {
        if (listing_done_) return false;
        list_next_page();
        return true;
    }
    if (next_file_ >= config_.notification_files.size()) return false;
    read_notification_file(config_.notification_files[next_file_++]);
    return true;
}

void S3Source::list_next_page() {
    const std::string where = aws::s3_uri(config_.bucket, config_.prefix);
    aws::S3ListPage page;
    try {
        page = aws::call_with_retries(
            [&] {
                return client_.list_objects_v2(config_.bucket, config_.prefix, continuation_token_, {},
                                               config_.list_page_size);
            },
            retry_);
    } catch (const std::exception& error) {
        // Without this page there is no continuation token: the listing ends here.
        listing_done_ = true;
        pending_.push_back(Unreadable{where, error.what()});
        return;
    }
    for (auto& object : page.objects) {
        ++listed_;
        const std::string uri = aws::s3_uri(config_.bucket, object.key);
        if (auto rejection = filter_.check(object.key)) {
            // A trail's bucket holds a digest for every hour: not worth more than debug.
            host_.debug(uri + ": skipped (" + std::string(notifications::skip_code_name(rejection->code)) +
                        "): " + rejection->reason);
            continue;
        }
        if (!within_days(uri, object.key)) continue;
        ++accepted_;
        pending_.push_back(ObjectToRead{config_.bucket, std::move(object.key), {}});
    }
    continuation_token_ = std::move(page.next_continuation_token);
    if (continuation_token_.empty()) {
        listing_done_ = true;
        host_.info("listed " + where + ": " + std::to_string(listed_) + " object(s), " + std::to_string(accepted_) +
                   " to read");
    }
}

bool S3Source::within_days(const std::string& uri, const std::string& key) const {
    if (!config_.since && !config_.until) return true;
    const auto day = notifications::cloudtrail_key_date(key);
    if (!day) {
        host_.debug(uri + ": skipped: the key has no CloudTrail date to compare with since/until");
        return false;
    }
    if ((config_.since && *day < *config_.since) || (config_.until && *day > *config_.until)) {
        host_.debug(uri + ": skipped: its day " + format_day(*day) + " is outside since/until");
        return false;
    }
    return true;
}

void S3Source::read_notification_file(const std::string& path) {
    const std::string name = path == "-" ? "<stdin>" : path;
    std::string text;
    if (path == "-") {
        text = read_stream(std::cin);
    } else {
        std::ifstream in(path, std::ios::binary);
        if (!in) {
            pending_.push_back(Unreadable{name, std::string("cannot open: ") + std::strerror(errno)});
            return;
        }
        text = read_stream(in);
        if (in.bad()) {
            pending_.push_back(Unreadable{name, std::string("read failed: ") + std::strerror(errno)});
            return;
        }
    }

    auto decoding = notifications::decode_notification(text, filter_);
    for (const auto& error : decoding.errors) {
        std::string message = "not a readable S3 notification: " + error.message;
        if (!error.origin.route.empty()) message += " (" + error.origin.route + ")";
        pending_.push_back(Unreadable{name, std::move(message)});
    }
    for (const auto& skipped : decoding.skipped) {
        // "." is the whole document: the file name says that already.
        const bool whole = skipped.origin.path.empty() || skipped.origin.path == ".";
        const std::string where = whole ? name : name + " " + skipped.origin.path;
        if (skipped.code == notifications::SkipCode::unknown_shape) {
            // Nothing in it was understood: the file is not what this source reads.
            pending_.push_back(Unreadable{
                name, "not an S3 notification: " + (whole ? std::string() : "at " + skipped.origin.path + ": ") +
                          skipped.reason});
            continue;
        }
        std::string line = where + ": skipped (" + std::string(notifications::skip_code_name(skipped.code)) +
                           "): " + skipped.reason;
        if (skipped.object) line += " [" + aws::s3_uri(skipped.object->bucket, skipped.object->key) + "]";
        host_.info(line);
    }
    for (auto& event : decoding.inline_events) {
        pending_.push_back(InlineEvent{name + " " + event.origin.path, boost::json::serialize(event.event)});
    }
    for (auto& found : decoding.objects) {
        auto& object = found.object;
        pending_.push_back(
            ObjectToRead{std::move(object.bucket), std::move(object.key), object.version_id.value_or("")});
    }
}

sdk::Batch S3Source::read_object(const ObjectToRead& object) {
    std::string origin = object_origin(object.bucket, object.key, object.version_id);
    aws::S3Object fetched;
    try {
        fetched = aws::call_with_retries(
            [&] { return client_.get_object(object.bucket, object.key, object.version_id); }, retry_);
    } catch (const std::exception& error) {
        // ServiceError names the call, bucket, key and AWS's error code, never a secret.
        throw sdk::BatchError(std::move(origin), error.what());
    }
    sdk::Batch batch;
    batch.id = next_id_++;
    batch.origin = std::move(origin);
    batch.data.assign(fetched.body.begin(), fetched.body.end());
    return batch;
}

}  // namespace tattle::sources::s3
