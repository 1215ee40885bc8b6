// decode_notification over any text (S3 event notifications, direct or wrapped in SNS,
// SQS, EventBridge, double-encoded JSON): never throws, and every object it asks to
// fetch has a bucket and a key the filter accepts.

#include "fuzz_support.hpp"
#include "tattle/notifications/s3_notification.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace tattle::notifications;
    const std::string_view text = tattle::fuzz::as_text(data, size);
    static const ObjectFilter filters[] = {ObjectFilter::cloudtrail_logs(), ObjectFilter::cloudtrail_logs(true),
                                           ObjectFilter::accept_all()};
    for (const ObjectFilter& filter : filters) {
        const NotificationDecoding decoding = decode_notification(text, filter);
        for (const ObjectToFetch& item : decoding.objects) {
            tattle::fuzz::require(!item.object.bucket.empty(), "an object to fetch without a bucket", text);
            tattle::fuzz::require(!filter.check(item.object.key).has_value(),
                                  "an object to fetch that the filter refuses", item.object.key);
        }
        for (const NotificationError& error : decoding.errors) {
            tattle::fuzz::require(!error.message.empty(), "an error without a message", text);
        }
    }
    // The key helpers see attacker-chosen object keys.
    (void)classify_cloudtrail_key(text);
    if (const auto decoded = url_decode_s3_key(text)) {
        tattle::fuzz::require(decoded->size() <= text.size(), "a decoded key longer than its encoding", text);
    }
    return 0;
}
