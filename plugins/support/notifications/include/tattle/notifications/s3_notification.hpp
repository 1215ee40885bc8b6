#pragma once

// The S3 notification decoder (static library tattle::notifications).
//
// S3 announces a new object in many wrappings: its own event notification, the same
// inside an SNS envelope, inside an SQS message (sometimes both: SNS -> SQS without raw
// delivery encodes it twice), an EventBridge "Object Created" event, CloudTrail's own
// SNS message listing the log files it delivered, and the Lambda invocation payloads
// built around all of these. The s3 and sqs sources and the Lambda host all need the
// same answer: which objects to fetch, and why everything else was left alone. This
// library gives that answer without touching the network.

#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tattle::notifications {

using Date = std::chrono::year_month_day;

// ---------------------------------------------------------------------------------
// CloudTrail object keys

enum class KeyKind {
    cloudtrail_log,      // …/CloudTrail/…: the events
    cloudtrail_digest,   // …/CloudTrail-Digest/…: integrity signatures, no events
    cloudtrail_insight,  // …/CloudTrail-Insight/…: Insights events
    other,
};

std::string_view key_kind_name(KeyKind kind) noexcept;

struct CloudTrailKey {
    KeyKind kind = KeyKind::other;
    // True when the key follows CloudTrail's delivery layout
    //   [prefix/]AWSLogs/[o-orgid/]<account>/CloudTrail[-Digest|-Insight]/<region>/YYYY/MM/DD/<file>
    // and false when only the file name (<account>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_….json.gz)
    // says what it is: logs copied elsewhere, or decompressed archives.
    bool standard_layout = false;
    std::string prefix;  // the key prefix before AWSLogs/, without the slash ("" when none)
    std::string organization_id;  // "o-…" for organization trails, else ""
    std::string account_id;
    std::string region;
    std::optional<Date> date;  // from the YYYY/MM/DD folders, else from the file name
};

CloudTrailKey classify_cloudtrail_key(std::string_view key);

// The day a CloudTrail file belongs to, for --since/--until backfills: the YYYY/MM/DD of
// the delivery layout, or the date in a bare CloudTrail file name. nullopt for other keys.
std::optional<Date> cloudtrail_key_date(std::string_view key);

// S3 event notifications carry keys form-encoded ("red flower.jpg" arrives as
// "red+flower.jpg", a literal '+' as "%2B"); this undoes it, keeping UTF-8 bytes as they
// are. nullopt when the text is not valid percent-encoding (a stray '%').
std::optional<std::string> url_decode_s3_key(std::string_view encoded);

// ---------------------------------------------------------------------------------
// What was decoded

// Why an item was left alone. Stable names (skip_code_name) for logs and metrics.
enum class SkipCode {
    test_event,          // s3:TestEvent, sent when a bucket's notification config is saved
    not_object_created,  // ObjectRemoved, restore, lifecycle, replication…: nothing new to read
    cloudtrail_digest,   // the key is a CloudTrail digest file
    key_not_accepted,  // the ObjectFilter refused the key (not a CloudTrail log, insights, pattern)
    empty_notification,   // a known shape that lists no object
    non_s3_sns_message,   // a well-formed SNS notification about something else
    sns_control_message,  // SNS SubscriptionConfirmation / UnsubscribeConfirmation
    cloudwatch_logs,  // a CloudWatch Logs subscription payload (awslogs.data): the host's to decode
    unsupported_payload,  // recognised, but not a notification (other EventBridge events,
                          // Kinesis, Firehose, S3 Object Lambda, a digest file's contents…)
    unknown_shape,        // JSON of no known shape
};

std::string_view skip_code_name(SkipCode code) noexcept;

struct S3Object {
    std::string bucket;
    std::string key;  // decoded: exactly what GetObject needs
    std::optional<std::uint64_t> size;
    std::optional<std::string> etag;
    std::optional<std::string> version_id;
    std::optional<std::string> sequencer;
    std::optional<std::string> region;      // the bucket's region, when the notification says
    std::optional<std::string> event_name;  // "ObjectCreated:Put", "Object Created", …
    std::optional<std::string> event_time;  // as the notification wrote it (ISO 8601)
};

// Where in the payload an item came from.
struct Origin {
    // A jq path to the record or document; "| fromjson |" marks a JSON string that was
    // decoded on the way (".Records[0].body | fromjson | .Message | fromjson | .Records[0]").
    std::string path;
    // The wrappings, outermost first: "SQS message > SNS notification > S3 event notification".
    std::string route;
    // The Lambda SQS record the item came from: what batchItemFailures must name.
    std::optional<std::string> sqs_message_id;
};

struct ObjectToFetch {
    S3Object object;
    Origin origin;
};

// A CloudTrail event delivered whole (EventBridge "AWS API Call via CloudTrail" and the
// other "… via CloudTrail" detail types): nothing to fetch, the event is the detail.
struct InlineEvent {
    boost::json::object event;
    std::string detail_type;
    Origin origin;
};

struct SkippedItem {
    SkipCode code;
    std::string reason;
    std::optional<S3Object> object;  // set when the item named an object
    Origin origin;
};

// Something that looked like a notification but could not be read: the caller must not
// treat its message as done. message starts with where it happened, e.g.
// ".Records[0].body:1:1: JSON syntax error: …" or "1:14: JSON syntax error: …" for the input.
struct NotificationError {
    std::string message;
    Origin origin;
};

struct NotificationDecoding {
    std::vector<ObjectToFetch> objects;
    std::vector<InlineEvent> inline_events;
    std::vector<SkippedItem> skipped;
    std::vector<NotificationError> errors;

    bool ok() const noexcept { return errors.empty(); }
};

// ---------------------------------------------------------------------------------
// Which keys to fetch

class ObjectFilter {
public:
    struct Rejection {
        SkipCode code;
        std::string reason;
    };

    // CloudTrail log files only, in the delivery layout or recognisable by file name;
    // digest, Insights and other keys are refused.
    ObjectFilter();

    static ObjectFilter cloudtrail_logs(bool include_insights = false);
    // Keys in which the ECMAScript regular expression finds a match (anchor it with ^…$
    // to match whole keys); the pattern alone decides. Throws std::invalid_argument
    // naming the pattern and the problem.
    static ObjectFilter key_pattern(std::string_view pattern);
    // Every key (tests, explicit object lists).
    static ObjectFilter accept_all();

    // nullopt: fetch it.
    std::optional<Rejection> check(std::string_view key) const;

private:
    enum class Mode { cloudtrail, pattern, everything };
    struct Pattern;

    Mode mode_ = Mode::cloudtrail;
    bool include_insights_ = false;
    std::shared_ptr<const Pattern> pattern_;
};

// ---------------------------------------------------------------------------------
// Decoding

// Decodes one payload: an S3 event notification, an SNS envelope (raw HTTP/SQS delivery),
// an SQS message body, an EventBridge event, CloudTrail's SNS message, an s3:TestEvent,
// or a Lambda invocation payload (S3, SQS or SNS event) around any of these.
// Every record of a Lambda SQS event yields at least one item carrying its messageId.
// Never throws for bad input: invalid JSON and unreadable notifications are errors,
// everything understood but not fetched is skipped with its reason.
NotificationDecoding decode_notification(std::string_view json, const ObjectFilter& filter = {});

}  // namespace tattle::notifications
