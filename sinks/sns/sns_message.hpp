#pragma once

// Turns an alert document into an SNS Publish request: cloudtrail-tattletail's message
// ({"name", "description", "record", "match"}, plus "alert_id"), message attributes for
// subscription filter policies, FIFO group and deduplication ids, and SNS's 256 KB
// limit. Pure functions: every byte SNS would receive can be tested.

#include <boost/json.hpp>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tattle/sinkkit/alert_template.hpp"

namespace tattle::sinks::sns {

// SNS's limit for one message, in UTF-8 bytes, message attributes included.
inline constexpr std::size_t kMaxPublishBytes = 262144;
// SNS subjects: ASCII, no control characters, fewer than 100 characters.
inline constexpr std::size_t kMaxSubjectChars = 99;
// MessageGroupId and MessageDeduplicationId: at most 128 characters.
inline constexpr std::size_t kMaxFifoIdChars = 128;

struct MessageAttribute {
    std::string name;
    std::string value;  // DataType String
};

struct Publication {
    std::string message;  // the JSON document
    std::string subject;  // empty: no Subject
    std::vector<MessageAttribute> attributes;
    std::string group_id;          // FIFO topics only
    std::string deduplication_id;  // FIFO topics only
    bool trimmed = false;
};

struct PublishOptions {
    std::string topic_arn;
    std::optional<sinkkit::AlertTemplate> subject;
};

// arn:<partition>:sns:<region>:<account>:<name>; throws std::invalid_argument otherwise.
struct TopicArn {
    std::string region;
    std::string name;
    bool fifo = false;  // the name ends in ".fifo"
};
TopicArn parse_topic_arn(std::string_view arn);

// The subject as SNS takes it: non-ASCII bytes become '?', control characters spaces,
// leading spaces dropped, cut to kMaxSubjectChars.
std::string sns_subject(std::string_view text);

// A MessageGroupId from free text: characters SNS refuses (anything but ASCII letters,
// digits and punctuation) become '_', cut to kMaxFifoIdChars; "tattle" when empty.
std::string fifo_id(std::string_view text);

// Bytes SNS counts for the attributes: name, data type and value of each.
std::size_t attribute_bytes(const std::vector<MessageAttribute>& attributes);

// The whole publication. The message fits kMaxPublishBytes together with the attributes:
// when it would not, the record is cut down as a value (long strings shortened, long
// arrays and objects cut, deep nesting summarised) in steps until it fits, then the
// match, then the description; a "trimmed" member says so and gives the full size.
// Throws std::invalid_argument when the alert is not an alert document (no rule object).
Publication build_publication(const boost::json::object& alert, const PublishOptions& options);

// The Query-protocol parameters of Publish (Action and Version excluded).
std::vector<std::pair<std::string, std::string>> publish_parameters(const Publication& publication,
                                                                    std::string_view topic_arn);

}  // namespace tattle::sinks::sns
