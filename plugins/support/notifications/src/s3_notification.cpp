#include "tattle/notifications/s3_notification.hpp"

#include <boost/json.hpp>
#include <boost/url/encoding_opts.hpp>
#include <boost/url/pct_string_view.hpp>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <regex>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace tattle::notifications {

namespace json = boost::json;

namespace {

// ---------------------------------------------------------------------------------
// CloudTrail keys

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
bool is_lower_alnum(char c) noexcept { return is_digit(c) || (c >= 'a' && c <= 'z'); }

bool all_digits(std::string_view text) noexcept {
    return !text.empty() && std::all_of(text.begin(), text.end(), is_digit);
}

bool is_account_id(std::string_view text) noexcept { return text.size() == 12 && all_digits(text); }

// Organization ids are "o-" and 10 to 32 lower-case letters or digits.
bool is_organization_id(std::string_view text) noexcept {
    if (!text.starts_with("o-")) return false;
    const std::string_view rest = text.substr(2);
    return rest.size() >= 10 && rest.size() <= 32 &&
           std::all_of(rest.begin(), rest.end(), is_lower_alnum);
}

bool is_region(std::string_view text) noexcept {
    return text.find('-') != std::string_view::npos &&
           std::all_of(text.begin(), text.end(),
                       [](char c) { return is_lower_alnum(c) || c == '-'; });
}

// What S3 has ever taken as a bucket name: today's rules are stricter, but old us-east-1
// buckets may have capitals and underscores, up to 255 characters. Anything else (empty, a
// slash, a '#', a space) names no bucket, and must not reach a request's host or path.
bool is_bucket_name(std::string_view name) noexcept {
    return !name.empty() && name.size() <= 255 &&
           std::all_of(name.begin(), name.end(), [](char c) {
               return is_lower_alnum(c) || (c >= 'A' && c <= 'Z') || c == '.' || c == '-' || c == '_';
           });
}

// The core decoder sniffs gzip itself, so decompressed copies (.json) are as good as the
// delivered .json.gz.
bool is_json_file_name(std::string_view name) noexcept {
    return name.size() > 5 && (name.ends_with(".json.gz") || name.ends_with(".json"));
}

std::optional<KeyKind> kind_from_label(std::string_view label) noexcept {
    if (label == "CloudTrail") return KeyKind::cloudtrail_log;
    if (label == "CloudTrail-Digest") return KeyKind::cloudtrail_digest;
    if (label == "CloudTrail-Insight") return KeyKind::cloudtrail_insight;
    return std::nullopt;
}

std::optional<unsigned> parse_unsigned(std::string_view digits) noexcept {
    if (!all_digits(digits)) return std::nullopt;
    unsigned value = 0;
    const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (error != std::errc{} || end != digits.data() + digits.size()) return std::nullopt;
    return value;
}

std::optional<Date> make_date(std::string_view year, std::string_view month, std::string_view day) {
    if (year.size() != 4 || month.size() != 2 || day.size() != 2) return std::nullopt;
    const auto y = parse_unsigned(year);
    const auto m = parse_unsigned(month);
    const auto d = parse_unsigned(day);
    if (!y || !m || !d) return std::nullopt;
    const Date date{std::chrono::year{static_cast<int>(*y)}, std::chrono::month{*m},
                    std::chrono::day{*d}};
    if (!date.ok()) return std::nullopt;
    return date;
}

// "20230710T1145Z…": the date part of a CloudTrail file name's timestamp.
std::optional<Date> date_from_timestamp(std::string_view token) {
    if (token.size() < 9 || token[8] != 'T') return std::nullopt;
    return make_date(token.substr(0, 4), token.substr(4, 2), token.substr(6, 2));
}

std::vector<std::string_view> split(std::string_view text, char separator) {
    std::vector<std::string_view> parts;
    std::size_t start = 0;
    while (true) {
        const std::size_t end = text.find(separator, start);
        if (end == std::string_view::npos) {
            parts.push_back(text.substr(start));
            return parts;
        }
        parts.push_back(text.substr(start, end - start));
        start = end + 1;
    }
}

// [prefix/]AWSLogs/[o-orgid/]<account>/CloudTrail[-Digest|-Insight]/<region>/YYYY/MM/DD/<file>
std::optional<CloudTrailKey> parse_delivery_layout(std::string_view key) {
    const auto segments = split(key, '/');
    const std::size_t count = segments.size();
    // A prefix may itself contain "AWSLogs", so every occurrence gets its chance.
    for (std::size_t i = 0; i < count; ++i) {
        if (segments[i] != "AWSLogs") continue;
        CloudTrailKey parsed;
        std::size_t next = i + 1;
        if (next < count && is_organization_id(segments[next]))
            parsed.organization_id = segments[next++];
        if (next >= count || !is_account_id(segments[next])) continue;
        parsed.account_id = segments[next++];
        if (next >= count) continue;
        const auto kind = kind_from_label(segments[next++]);
        if (!kind || count - next != 5) continue;
        const auto date = make_date(segments[next + 1], segments[next + 2], segments[next + 3]);
        if (!is_region(segments[next]) || !date || !is_json_file_name(segments[next + 4])) continue;

        parsed.kind = *kind;
        parsed.standard_layout = true;
        parsed.region = segments[next];
        parsed.date = date;
        const auto prefix_length = static_cast<std::size_t>(segments[i].data() - key.data());
        parsed.prefix = key.substr(0, prefix_length);
        if (parsed.prefix.ends_with('/')) parsed.prefix.pop_back();
        return parsed;
    }
    return std::nullopt;
}

// <account>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_<random>.json.gz, and the digest and Insights
// equivalents (a digest names the trail, then the region again, then its timestamp).
std::optional<CloudTrailKey> parse_file_name(std::string_view key) {
    const std::size_t slash = key.rfind('/');
    const std::string_view name = slash == std::string_view::npos ? key : key.substr(slash + 1);
    if (!is_json_file_name(name)) return std::nullopt;
    const auto tokens = split(name, '_');
    if (tokens.size() < 4 || !is_account_id(tokens[0]) || !is_region(tokens[2]))
        return std::nullopt;
    const auto kind = kind_from_label(tokens[1]);
    if (!kind) return std::nullopt;

    CloudTrailKey parsed;
    parsed.kind = *kind;
    parsed.account_id = tokens[0];
    parsed.region = tokens[2];
    parsed.date =
        date_from_timestamp(*kind == KeyKind::cloudtrail_digest ? tokens.back() : tokens[3]);
    return parsed;
}

// ---------------------------------------------------------------------------------
// JSON helpers

json::parse_options parse_options() {
    json::parse_options options;
    options.max_depth = 64;
    // Object keys are arbitrary bytes; a stray one must not cost the whole notification.
    options.allow_invalid_utf8 = true;
    return options;
}

// "an object", "a string"…: for messages that say what was found instead.
std::string a_kind(json::kind kind) {
    switch (kind) {
        case json::kind::null:
            return "null";
        case json::kind::bool_:
            return "a boolean";
        case json::kind::int64:
        case json::kind::uint64:
        case json::kind::double_:
            return "a number";
        case json::kind::string:
            return "a string";
        case json::kind::array:
            return "an array";
        case json::kind::object:
            return "an object";
    }
    return "a value";
}

const json::string* string_field(const json::object& object, std::string_view name) {
    const auto* value = object.if_contains(name);
    return value != nullptr ? value->if_string() : nullptr;
}

json::object* object_field(json::object& object, std::string_view name) {
    auto* value = object.if_contains(name);
    return value != nullptr ? value->if_object() : nullptr;
}

const json::object* object_field(const json::object& object, std::string_view name) {
    const auto* value = object.if_contains(name);
    return value != nullptr ? value->if_object() : nullptr;
}

std::optional<std::string> optional_string(const json::object& object, std::string_view name) {
    const auto* text = string_field(object, name);
    if (text == nullptr) return std::nullopt;
    return std::string(*text);
}

// S3 writes sizes as numbers; templates and odd producers write strings.
std::optional<std::uint64_t> optional_size(const json::object& object, std::string_view name) {
    const auto* value = object.if_contains(name);
    if (value == nullptr) return std::nullopt;
    if (const auto* number = value->if_uint64()) return *number;
    if (const auto* number = value->if_int64()) {
        if (*number >= 0) return static_cast<std::uint64_t>(*number);
        return std::nullopt;
    }
    if (const auto* text = value->if_string()) {
        std::uint64_t size = 0;
        const auto [end, error] = std::from_chars(text->data(), text->data() + text->size(), size);
        if (error == std::errc{} && end == text->data() + text->size() && !text->empty())
            return size;
    }
    return std::nullopt;
}

std::string quoted(std::string_view text) {
    std::string out;
    out.reserve(text.size() + 2);
    out.append(1, '"').append(text).append(1, '"');
    return out;
}

std::string_view trim_leading_whitespace(std::string_view text) noexcept {
    const std::size_t first = text.find_first_not_of(" \t\r\n");
    return first == std::string_view::npos ? std::string_view{} : text.substr(first);
}

struct ParseFailure {
    std::size_t line = 1;
    std::size_t column = 1;
    std::string what;
};

ParseFailure locate_failure(std::string_view text, std::size_t offset, std::string what) {
    offset = std::min(offset, text.size());
    ParseFailure failure;
    const std::size_t line_start = [&] {
        const std::size_t newline =
            offset == 0 ? std::string_view::npos : text.rfind('\n', offset - 1);
        return newline == std::string_view::npos ? std::size_t{0} : newline + 1;
    }();
    failure.line = 1 + static_cast<std::size_t>(std::count(
                           text.begin(), text.begin() + static_cast<std::ptrdiff_t>(offset), '\n'));
    failure.column = offset - line_start + 1;
    failure.what = std::move(what);
    // Boost's messages are terse ("syntax error"); the offending byte says more.
    if (offset < text.size()) {
        const auto byte = static_cast<unsigned char>(text[offset]);
        if (byte >= 0x21 && byte < 0x7f) {
            failure.what.append(" at '").append(1, static_cast<char>(byte)).append("'");
        } else {
            static constexpr char hex_digits[] = "0123456789abcdef";
            failure.what.append(" at byte 0x")
                .append(1, hex_digits[byte >> 4])
                .append(1, hex_digits[byte & 0xf]);
        }
    }
    return failure;
}

// The whole text must be one JSON value.
std::variant<json::value, ParseFailure> parse_whole(std::string_view text) {
    std::size_t start = 0;
    // Some tools on Windows write a UTF-8 byte order mark; it is not JSON.
    if (text.starts_with("\xEF\xBB\xBF")) start = 3;
    if (trim_leading_whitespace(text.substr(start)).empty()) {
        return locate_failure(text, text.size(), "empty text, not JSON");
    }
    json::parser parser(json::storage_ptr(), parse_options());
    json::error_code ec;
    // parser (unlike stream_parser) takes the buffer as the complete input, and refuses
    // anything after the value.
    const std::size_t consumed = parser.write(text.data() + start, text.size() - start, ec);
    if (ec) return locate_failure(text, start + consumed, ec.message());
    return parser.release();
}

// ---------------------------------------------------------------------------------
// Decoding

// SQS -> SNS -> S3 is two levels; four leaves room for EventBridge and odd routings while
// keeping a crafted, endlessly nested payload from going deep.
constexpr int max_nested_documents = 4;

struct Context {
    std::string path;  // "" at the root; ends with " | " right after a decoded string
    std::string route;
    std::optional<std::string> sqs_message_id;
    std::optional<std::string> notification_time;
    int nesting = 0;

    Context at(std::string_view step) const {
        Context child = *this;
        child.path.append(step);
        return child;
    }

    Context at_index(std::string_view field, std::size_t index) const {
        return at(
            std::string(".").append(field).append("[").append(std::to_string(index)).append("]"));
    }

    Context via(std::string_view wrapping) const {
        Context child = *this;
        if (!child.route.empty()) child.route.append(" > ");
        child.route.append(wrapping);
        return child;
    }

    std::string display_path() const {
        std::string shown = path;
        if (shown.ends_with(" | ")) shown.resize(shown.size() - 3);
        return shown.empty() ? std::string(".") : shown;
    }

    Origin origin() const { return Origin{display_path(), route, sqs_message_id}; }
};

enum class Shape {
    records,
    sns_envelope,
    s3_test_event,
    cloudtrail_sns_message,
    eventbridge_event,
    cloudwatch_logs,
    cloudtrail_digest_body,
    firehose_records,
    s3_object_lambda,
    unknown,
};

Shape recognise(const json::object& document) {
    if (document.contains("Records")) return Shape::records;
    if (string_field(document, "Type") != nullptr && document.contains("TopicArn") &&
        document.contains("MessageId")) {
        return Shape::sns_envelope;
    }
    if (const auto* event = string_field(document, "Event");
        event != nullptr && *event == "s3:TestEvent") {
        return Shape::s3_test_event;
    }
    if (document.contains("s3Bucket") && document.contains("s3ObjectKey"))
        return Shape::cloudtrail_sns_message;
    if (document.contains("detail-type") && document.contains("detail"))
        return Shape::eventbridge_event;
    if (object_field(document, "awslogs") != nullptr) return Shape::cloudwatch_logs;
    if (document.contains("digestS3Object") || document.contains("digestPublicKeyFingerprint")) {
        return Shape::cloudtrail_digest_body;
    }
    if (document.contains("deliveryStreamArn") && document.contains("records"))
        return Shape::firehose_records;
    if (document.contains("getObjectContext")) return Shape::s3_object_lambda;
    return Shape::unknown;
}

std::string describe_unknown(const json::object& document) {
    if (document.empty()) return "an empty JSON object, not a notification";
    std::string text = "a JSON object of no known notification shape (keys: ";
    std::size_t listed = 0;
    for (const auto& member : document) {
        if (listed == 5) {
            text.append(", …");
            break;
        }
        if (listed > 0) text.append(", ");
        const std::string_view name = member.key();
        text.append(quoted(name.substr(0, 40)));
        ++listed;
    }
    return text.append(")");
}

class Decoder {
public:
    Decoder(const ObjectFilter& filter, NotificationDecoding& out) : filter_(filter), out_(out) {}

    void decode_input(std::string_view text) {
        Context root;
        auto parsed = parse(text, root, "");
        if (parsed) decode_document(*parsed, root);
    }

private:
    void skip(const Context& context, SkipCode code, std::string reason,
              std::optional<S3Object> object = std::nullopt) {
        out_.skipped.push_back(
            SkippedItem{code, std::move(reason), std::move(object), context.origin()});
    }

    void fail(const Context& context, std::string_view problem) {
        std::string message = context.display_path();
        message.append(": ").append(problem);
        out_.errors.push_back(NotificationError{std::move(message), context.origin()});
    }

    void consider(const Context& context, S3Object object) {
        if (!is_bucket_name(object.bucket)) {
            fail(context, "the bucket name " + quoted(std::string_view(object.bucket).substr(0, 100)) +
                              " is not an S3 bucket name");
            return;
        }
        if (auto rejection = filter_.check(object.key)) {
            skip(context, rejection->code, std::move(rejection->reason), std::move(object));
            return;
        }
        out_.objects.push_back(ObjectToFetch{std::move(object), context.origin()});
    }

    // Parses a JSON text; `where` is the jq path of the string holding it ("" for the input).
    std::optional<json::value> parse(std::string_view text, const Context& context,
                                     std::string_view where) {
        auto result = parse_whole(text);
        if (auto* failure = std::get_if<ParseFailure>(&result)) {
            std::string message(where);
            if (!message.empty()) message.append(":");
            message.append(std::to_string(failure->line))
                .append(":")
                .append(std::to_string(failure->column));
            message.append(": JSON syntax error: ").append(failure->what);
            out_.errors.push_back(NotificationError{std::move(message), context.origin()});
            return std::nullopt;
        }
        return std::move(std::get<json::value>(result));
    }

    // A JSON document held in a string field (an SQS body, an SNS Message).
    std::optional<json::value> parse_nested(std::string_view text, const Context& context,
                                            std::string_view field, Context& inner) {
        const Context holder = context.at(field);
        if (context.nesting >= max_nested_documents) {
            fail(holder, "notifications nested more than " + std::to_string(max_nested_documents) +
                             " levels deep inside JSON strings");
            return std::nullopt;
        }
        auto parsed = parse(text, holder, holder.display_path());
        if (!parsed) return std::nullopt;
        inner = context.at(std::string(field).append(" | fromjson | "));
        ++inner.nesting;
        return parsed;
    }

    void decode_document(json::value& document, const Context& context) {
        auto* object = document.if_object();
        if (object == nullptr) {
            skip(context, SkipCode::unknown_shape,
                 "a JSON value that is " + a_kind(document.kind()) + ", not a notification object");
            return;
        }
        switch (recognise(*object)) {
            case Shape::records:
                decode_records(*object, context);
                return;
            case Shape::sns_envelope:
                decode_sns(*object, context);
                return;
            case Shape::s3_test_event: {
                const auto bucket = optional_string(*object, "Bucket").value_or("?");
                skip(context.via("S3 test event"), SkipCode::test_event,
                     "s3:TestEvent for bucket " + quoted(bucket) +
                         ": S3 sends it when a notification configuration is saved");
                return;
            }
            case Shape::cloudtrail_sns_message:
                decode_cloudtrail_message(*object, context);
                return;
            case Shape::eventbridge_event:
                decode_eventbridge(*object, context);
                return;
            case Shape::cloudwatch_logs:
                skip(context, SkipCode::cloudwatch_logs,
                     "a CloudWatch Logs subscription payload (awslogs.data), not an S3 "
                     "notification");
                return;
            case Shape::cloudtrail_digest_body:
                skip(context, SkipCode::unsupported_payload,
                     "the contents of a CloudTrail digest file, not a notification");
                return;
            case Shape::firehose_records:
                skip(context, SkipCode::unsupported_payload,
                     "a Kinesis Data Firehose transformation payload, not an S3 notification");
                return;
            case Shape::s3_object_lambda:
                skip(context, SkipCode::unsupported_payload,
                     "an S3 Object Lambda request, not an S3 notification");
                return;
            case Shape::unknown:
                skip(context, SkipCode::unknown_shape, describe_unknown(*object));
                return;
        }
    }

    // {"Records":[…]}: an S3 event notification, or a Lambda SQS / SNS event.
    void decode_records(json::object& document, const Context& context) {
        auto* records = document.at("Records").if_array();
        if (records == nullptr) {
            fail(context,
                 "\"Records\" is " + a_kind(document.at("Records").kind()) + ", not an array");
            return;
        }
        if (records->empty()) {
            skip(context, SkipCode::empty_notification, "\"Records\" is empty");
            return;
        }
        for (std::size_t i = 0; i < records->size(); ++i) {
            decode_record((*records)[i], context.at_index("Records", i));
        }
    }

    void decode_record(json::value& value, const Context& context) {
        auto* record = value.if_object();
        if (record == nullptr) {
            fail(context, "the record is " + a_kind(value.kind()) + ", not an object");
            return;
        }
        // Lambda spells it EventSource in SNS records and eventSource elsewhere.
        const json::string* source_field = string_field(*record, "eventSource");
        if (source_field == nullptr) source_field = string_field(*record, "EventSource");
        const std::string_view source =
            source_field != nullptr ? std::string_view(*source_field) : "";

        const bool looks_like_sqs =
            string_field(*record, "body") != nullptr &&
            (record->contains("messageId") || record->contains("receiptHandle"));
        if (source == "aws:s3" || (source.empty() && object_field(*record, "s3") != nullptr)) {
            decode_s3_record(*record, context.via("S3 event notification"));
        } else if (source == "aws:sqs" || (source.empty() && looks_like_sqs)) {
            decode_sqs_record(*record, context);
        } else if (source == "aws:sns" ||
                   (source.empty() && object_field(*record, "Sns") != nullptr)) {
            auto* envelope = object_field(*record, "Sns");
            if (envelope == nullptr) {
                fail(context.via("SNS notification"), "SNS record has no \"Sns\" object");
                return;
            }
            decode_sns(*envelope, context.at(".Sns"));
        } else if (source.ends_with(".amazonaws.com")) {
            skip(context, SkipCode::unsupported_payload,
                 "a CloudTrail event record (eventSource " + quoted(source) +
                     "), not a notification");
        } else if (!source.empty()) {
            skip(context, SkipCode::unsupported_payload,
                 "a record from " + quoted(source) + ", not an S3, SQS or SNS notification");
        } else {
            skip(context, SkipCode::unknown_shape, "a record of no known notification shape");
        }
    }

    void decode_s3_record(const json::object& record, const Context& context) {
        const auto* s3 = object_field(record, "s3");
        const auto* bucket = s3 != nullptr ? object_field(*s3, "bucket") : nullptr;
        const auto* object = s3 != nullptr ? object_field(*s3, "object") : nullptr;
        const auto* bucket_name = bucket != nullptr ? string_field(*bucket, "name") : nullptr;
        const auto* encoded_key = object != nullptr ? string_field(*object, "key") : nullptr;
        if (bucket_name == nullptr || encoded_key == nullptr) {
            fail(context, "S3 event record without s3.bucket.name and s3.object.key strings");
            return;
        }
        auto key = url_decode_s3_key(*encoded_key);
        if (!key) {
            fail(context, "s3.object.key " + quoted(*encoded_key) + " is not valid URL encoding");
            return;
        }

        S3Object found;
        found.bucket = std::string(*bucket_name);
        found.key = std::move(*key);
        found.size = optional_size(*object, "size");
        found.etag = optional_string(*object, "eTag");
        found.version_id = optional_string(*object, "versionId");
        found.sequencer = optional_string(*object, "sequencer");
        found.region = optional_string(record, "awsRegion");
        found.event_name = optional_string(record, "eventName");
        found.event_time = optional_string(record, "eventTime");

        if (found.event_name) {
            // S3 writes "ObjectCreated:Put"; some samples and emulators prefix "s3:".
            std::string_view name = *found.event_name;
            if (name.starts_with("s3:")) name.remove_prefix(3);
            if (!name.starts_with("ObjectCreated:")) {
                // Built before `found` is moved: argument order is unspecified.
                std::string reason =
                    "event " + quoted(*found.event_name) + " does not create an object";
                skip(context, SkipCode::not_object_created, std::move(reason), std::move(found));
                return;
            }
        }
        consider(context, std::move(found));
    }

    void decode_sqs_record(const json::object& record, const Context& context) {
        Context message = context.via("SQS message");
        // The outermost id is the one a Lambda partial batch response must name.
        if (!message.sqs_message_id) message.sqs_message_id = optional_string(record, "messageId");
        const auto* body = string_field(record, "body");
        if (body == nullptr) {
            fail(message, "SQS message without a string \"body\"");
            return;
        }
        // A queue fed by S3, SNS or EventBridge only ever carries JSON: anything else is a
        // poison message, left to the queue's redrive policy rather than dropped.
        Context inner;
        auto parsed = parse_nested(*body, message, ".body", inner);
        if (parsed) decode_document(*parsed, inner);
    }

    void decode_sns(const json::object& envelope, const Context& outer) {
        Context context = outer.via("SNS notification");
        const auto type = optional_string(envelope, "Type").value_or("Notification");
        if (type == "SubscriptionConfirmation" || type == "UnsubscribeConfirmation") {
            skip(context, SkipCode::sns_control_message, "SNS " + type + ": nothing to fetch");
            return;
        }
        if (type != "Notification") {
            skip(context, SkipCode::unsupported_payload, "SNS message of type " + quoted(type));
            return;
        }
        const auto* message = string_field(envelope, "Message");
        if (message == nullptr) {
            fail(context, "SNS notification without a string \"Message\"");
            return;
        }
        if (auto timestamp = optional_string(envelope, "Timestamp"))
            context.notification_time = std::move(timestamp);

        std::string about;
        if (auto topic = optional_string(envelope, "TopicArn"))
            about.append(" (topic ").append(*topic).append(")");

        // SNS carries any text; only text that starts like JSON can be a notification.
        const std::string_view text = trim_leading_whitespace(*message);
        if (!text.starts_with('{') && !text.starts_with('[')) {
            skip(context, SkipCode::non_s3_sns_message,
                 "the SNS message is plain text, not an S3 or CloudTrail notification" + about);
            return;
        }
        Context inner;
        auto parsed = parse_nested(*message, context, ".Message", inner);
        if (!parsed) return;
        if (!parsed->is_object() || recognise(parsed->get_object()) == Shape::unknown) {
            skip(inner, SkipCode::non_s3_sns_message,
                 "the SNS message is JSON but not an S3 or CloudTrail notification" + about);
            return;
        }
        decode_document(*parsed, inner);
    }

    // CloudTrail's own SNS message: {"s3Bucket": "…", "s3ObjectKey": ["…", …]}. Unlike S3's
    // notifications it lists the keys as they are, not URL-encoded.
    void decode_cloudtrail_message(const json::object& document, const Context& outer) {
        const Context context = outer.via("CloudTrail SNS message");
        const auto* bucket = string_field(document, "s3Bucket");
        const auto* keys = document.at("s3ObjectKey").if_array();
        if (bucket == nullptr || keys == nullptr) {
            fail(context,
                 "CloudTrail notification without an \"s3Bucket\" string and an \"s3ObjectKey\" "
                 "array");
            return;
        }
        if (keys->empty()) {
            skip(context, SkipCode::empty_notification, "\"s3ObjectKey\" is empty");
            return;
        }
        for (std::size_t i = 0; i < keys->size(); ++i) {
            const Context item = context.at_index("s3ObjectKey", i);
            const auto* key = (*keys)[i].if_string();
            if (key == nullptr) {
                fail(item, "the key is " + a_kind((*keys)[i].kind()) + ", not a string");
                continue;
            }
            S3Object found;
            found.bucket = std::string(*bucket);
            found.key = std::string(*key);
            found.event_time = context.notification_time;
            consider(item, std::move(found));
        }
    }

    void decode_eventbridge(json::object& event, const Context& outer) {
        const Context context = outer.via("EventBridge event");
        const auto detail_type = optional_string(event, "detail-type").value_or("");
        const auto source = optional_string(event, "source").value_or("");
        auto* detail = object_field(event, "detail");

        if (detail_type.ends_with(" via CloudTrail")) {
            if (detail == nullptr) {
                fail(context,
                     "EventBridge " + quoted(detail_type) + " event without a \"detail\" object");
                return;
            }
            out_.inline_events.push_back(
                InlineEvent{std::move(*detail), detail_type, context.at(".detail").origin()});
            return;
        }
        if (source != "aws.s3" || detail == nullptr || !detail->contains("object")) {
            skip(context, SkipCode::unsupported_payload,
                 "EventBridge event " + quoted(detail_type) + " from " + quoted(source) +
                     " is neither an S3 \"Object Created\" nor a CloudTrail event");
            return;
        }

        const auto* bucket = object_field(*detail, "bucket");
        const auto* object = object_field(*detail, "object");
        const auto* bucket_name = bucket != nullptr ? string_field(*bucket, "name") : nullptr;
        const auto* key = object != nullptr ? string_field(*object, "key") : nullptr;
        if (bucket_name == nullptr || key == nullptr) {
            fail(context,
                 "S3 EventBridge event without detail.bucket.name and detail.object.key strings");
            return;
        }
        // EventBridge, unlike S3's own notifications, writes the key as it is.
        S3Object found;
        found.bucket = std::string(*bucket_name);
        found.key = std::string(*key);
        found.size = optional_size(*object, "size");
        found.etag = optional_string(*object, "etag");
        found.version_id = optional_string(*object, "version-id");
        found.sequencer = optional_string(*object, "sequencer");
        found.region = optional_string(event, "region");
        found.event_name = detail_type;
        found.event_time = optional_string(event, "time");

        if (detail_type != "Object Created") {
            skip(context, SkipCode::not_object_created,
                 "EventBridge " + quoted(detail_type) + " does not create an object",
                 std::move(found));
            return;
        }
        consider(context, std::move(found));
    }

    const ObjectFilter& filter_;
    NotificationDecoding& out_;
};

}  // namespace

// ---------------------------------------------------------------------------------
// Public functions

std::string_view key_kind_name(KeyKind kind) noexcept {
    switch (kind) {
        case KeyKind::cloudtrail_log:
            return "cloudtrail_log";
        case KeyKind::cloudtrail_digest:
            return "cloudtrail_digest";
        case KeyKind::cloudtrail_insight:
            return "cloudtrail_insight";
        case KeyKind::other:
            return "other";
    }
    return "other";
}

std::string_view skip_code_name(SkipCode code) noexcept {
    switch (code) {
        case SkipCode::test_event:
            return "test_event";
        case SkipCode::not_object_created:
            return "not_object_created";
        case SkipCode::cloudtrail_digest:
            return "cloudtrail_digest";
        case SkipCode::key_not_accepted:
            return "key_not_accepted";
        case SkipCode::empty_notification:
            return "empty_notification";
        case SkipCode::non_s3_sns_message:
            return "non_s3_sns_message";
        case SkipCode::sns_control_message:
            return "sns_control_message";
        case SkipCode::cloudwatch_logs:
            return "cloudwatch_logs";
        case SkipCode::unsupported_payload:
            return "unsupported_payload";
        case SkipCode::unknown_shape:
            return "unknown_shape";
    }
    return "unknown_shape";
}

CloudTrailKey classify_cloudtrail_key(std::string_view key) {
    if (auto parsed = parse_delivery_layout(key)) return std::move(*parsed);
    if (auto parsed = parse_file_name(key)) return std::move(*parsed);
    return CloudTrailKey{};
}

std::optional<Date> cloudtrail_key_date(std::string_view key) {
    return classify_cloudtrail_key(key).date;
}

std::optional<std::string> url_decode_s3_key(std::string_view encoded) {
    const auto validated = boost::urls::make_pct_string_view(encoded);
    if (!validated) return std::nullopt;
    boost::urls::encoding_opts options;
    options.space_as_plus = true;
    return validated->decode(options);
}

struct ObjectFilter::Pattern {
    std::regex regex;
    std::string text;
};

ObjectFilter::ObjectFilter() = default;

ObjectFilter ObjectFilter::cloudtrail_logs(bool include_insights) {
    ObjectFilter filter;
    filter.include_insights_ = include_insights;
    return filter;
}

ObjectFilter ObjectFilter::key_pattern(std::string_view pattern) {
    if (pattern.empty()) throw std::invalid_argument("key_pattern is empty");
    ObjectFilter filter;
    filter.mode_ = Mode::pattern;
    try {
        filter.pattern_ = std::make_shared<const Pattern>(
            Pattern{std::regex(pattern.begin(), pattern.end(), std::regex::ECMAScript),
                    std::string(pattern)});
    } catch (const std::regex_error& error) {
        throw std::invalid_argument("key_pattern " + quoted(pattern) +
                                    " is not a valid regular expression: " + error.what());
    }
    return filter;
}

ObjectFilter ObjectFilter::accept_all() {
    ObjectFilter filter;
    filter.mode_ = Mode::everything;
    return filter;
}

std::optional<ObjectFilter::Rejection> ObjectFilter::check(std::string_view key) const {
    switch (mode_) {
        case Mode::everything:
            return std::nullopt;
        case Mode::pattern:
            if (std::regex_search(key.begin(), key.end(), pattern_->regex)) return std::nullopt;
            return Rejection{SkipCode::key_not_accepted,
                             "key does not match key_pattern " + quoted(pattern_->text)};
        case Mode::cloudtrail:
            break;
    }
    switch (classify_cloudtrail_key(key).kind) {
        case KeyKind::cloudtrail_log:
            return std::nullopt;
        case KeyKind::cloudtrail_digest:
            return Rejection{SkipCode::cloudtrail_digest,
                             "CloudTrail digest file (log file integrity signatures, no events)"};
        case KeyKind::cloudtrail_insight:
            if (include_insights_) return std::nullopt;
            return Rejection{SkipCode::key_not_accepted,
                             "CloudTrail Insights file; only log files are read"};
        case KeyKind::other:
            break;
    }
    return Rejection{
        SkipCode::key_not_accepted,
        "not a CloudTrail log file (expected "
        "[prefix/]AWSLogs/[o-id/]<account>/CloudTrail/<region>/YYYY/MM/DD/<file>.json.gz)"};
}

NotificationDecoding decode_notification(std::string_view json_text, const ObjectFilter& filter) {
    NotificationDecoding decoding;
    Decoder(filter, decoding).decode_input(json_text);
    return decoding;
}

}  // namespace tattle::notifications
