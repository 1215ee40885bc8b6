#include "sqs_queue.hpp"

#include <algorithm>
#include <charconv>
#include <regex>
#include <stdexcept>

namespace tattle::sources::sqs {

namespace json = boost::json;

namespace {

// SQS takes at most this many entries in one batch call.
constexpr std::size_t kMaxBatchEntries = 10;

std::string string_field(const json::object& object, std::string_view key) {
    if (const json::value* value = object.if_contains(key); value != nullptr && value->is_string()) {
        return std::string(value->as_string());
    }
    return {};
}

template <class Integer>
Integer integer_attribute(const json::object& attributes, std::string_view name) {
    const std::string text = string_field(attributes, name);
    Integer parsed = 0;
    std::from_chars(text.data(), text.data() + text.size(), parsed);
    return parsed;
}

aws::ServiceClient make_client(const QueueUrl& queue, aws::ServiceSettings settings) {
    if (settings.region.empty()) settings.region = queue.region;
    aws::ServiceClient configured(aws::service::sqs, settings);
    if (configured.endpoint().is_custom()) return configured;
    settings.endpoint_url = queue.origin;
    return aws::ServiceClient(aws::service::sqs, std::move(settings));
}

}  // namespace

QueueUrl parse_queue_url(std::string_view url) {
    const auto scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos) {
        throw std::invalid_argument("queue_url must be an http(s):// URL such as https://sqs.<region>.amazonaws.com/<account>/<queue>");
    }
    const std::string_view scheme = url.substr(0, scheme_end);
    if (scheme != "https" && scheme != "http") throw std::invalid_argument("queue_url must use https:// (or http:// for a local stack)");
    const std::string_view rest = url.substr(scheme_end + 3);
    const auto path_start = rest.find('/');
    const std::string_view authority = rest.substr(0, path_start);
    if (authority.empty() || authority.find('@') != std::string_view::npos) {
        throw std::invalid_argument("queue_url must name a host (and no user info)");
    }
    std::string_view path = path_start == std::string_view::npos ? std::string_view{} : rest.substr(path_start);
    if (path.find_first_of("?#") != std::string_view::npos) throw std::invalid_argument("queue_url must not have a query or fragment");
    while (!path.empty() && path.back() == '/') path.remove_suffix(1);
    const auto last_slash = path.rfind('/');
    if (last_slash == std::string_view::npos || last_slash + 1 >= path.size()) {
        throw std::invalid_argument("queue_url has no queue name: expected https://<host>/<account>/<queue>");
    }
    QueueUrl parsed;
    parsed.url = std::string(url);
    parsed.origin = std::string(scheme) + "://" + std::string(authority);
    parsed.name = std::string(path.substr(last_slash + 1));
    static const std::regex kRegional(R"(^sqs[.-]([a-z0-9-]+)\.amazonaws\.com(\.cn)?(:\d+)?$)", std::regex::icase);
    static const std::regex kLegacy(R"(^([a-z0-9-]+)\.queue\.amazonaws\.com(\.cn)?(:\d+)?$)", std::regex::icase);
    std::smatch match;
    const std::string host(authority);
    if (std::regex_match(host, match, kRegional) || std::regex_match(host, match, kLegacy)) parsed.region = match[1];
    return parsed;
}

SqsQueue::SqsQueue(QueueUrl queue, aws::ServiceSettings settings)
    : queue_(std::move(queue)), service_(make_client(queue_, std::move(settings))) {}

std::vector<ReceivedMessage> SqsQueue::receive(int max_messages, std::chrono::seconds wait_time,
                                               std::chrono::seconds visibility_timeout) {
    const json::object request{
        {"QueueUrl", queue_.url},
        {"MaxNumberOfMessages", max_messages},
        {"WaitTimeSeconds", wait_time.count()},
        {"VisibilityTimeout", visibility_timeout.count()},
        {"MessageSystemAttributeNames", json::array{"ApproximateReceiveCount", "SentTimestamp"}},
    };
    const json::value answer =
        service_.json_call("AmazonSQS.ReceiveMessage", request, "sqs:ReceiveMessage " + queue_.url);
    std::vector<ReceivedMessage> received;
    const json::value* messages = answer.is_object() ? answer.as_object().if_contains("Messages") : nullptr;
    if (messages == nullptr || !messages->is_array()) return received;
    for (const json::value& item : messages->as_array()) {
        if (!item.is_object()) continue;
        const json::object& message = item.as_object();
        ReceivedMessage parsed;
        parsed.message_id = string_field(message, "MessageId");
        parsed.receipt_handle = string_field(message, "ReceiptHandle");
        parsed.body = string_field(message, "Body");
        if (const json::value* attributes = message.if_contains("Attributes"); attributes && attributes->is_object()) {
            parsed.receive_count = integer_attribute<int>(attributes->as_object(), "ApproximateReceiveCount");
            parsed.sent_timestamp_ms = integer_attribute<std::int64_t>(attributes->as_object(), "SentTimestamp");
        }
        if (parsed.receipt_handle.empty()) {
            throw aws::ServiceError("sqs:ReceiveMessage " + queue_.url + ": message " + parsed.message_id +
                                        " came without a receipt handle",
                                    200, "malformed", true);
        }
        received.push_back(std::move(parsed));
    }
    return received;
}

template <class MakeEntry>
std::vector<EntryFailure> SqsQueue::batch_call(std::string_view action, const std::vector<MessageHandle>& messages,
                                               MakeEntry&& make_entry) {
    std::vector<EntryFailure> failures;
    const std::string target = "AmazonSQS." + std::string(action);
    const std::string what = "sqs:" + std::string(action) + " " + queue_.url;
    for (std::size_t start = 0; start < messages.size(); start += kMaxBatchEntries) {
        const std::size_t end = std::min(messages.size(), start + kMaxBatchEntries);
        // Entry ids only need to be unique within the call; message ids are not guaranteed
        // to fit SQS's id alphabet, so the position stands in for them.
        json::array entries;
        for (std::size_t i = start; i < end; ++i) {
            json::object entry = make_entry(messages[i]);
            entry["Id"] = "m" + std::to_string(i - start);
            entries.push_back(std::move(entry));
        }
        const json::object request{{"QueueUrl", queue_.url}, {"Entries", std::move(entries)}};
        const json::value answer = service_.json_call(target, request, what);
        const json::value* failed = answer.is_object() ? answer.as_object().if_contains("Failed") : nullptr;
        if (failed == nullptr || !failed->is_array()) continue;
        for (const json::value& item : failed->as_array()) {
            if (!item.is_object()) continue;
            const json::object& entry = item.as_object();
            const std::string id = string_field(entry, "Id");
            std::size_t index = 0;
            if (id.size() < 2 || std::from_chars(id.data() + 1, id.data() + id.size(), index).ec != std::errc{} ||
                start + index >= end) {
                continue;
            }
            EntryFailure failure;
            failure.entry = messages[start + index];
            failure.code = string_field(entry, "Code");
            failure.message = string_field(entry, "Message");
            const json::value* sender_fault = entry.if_contains("SenderFault");
            failure.sender_fault = sender_fault != nullptr && sender_fault->is_bool() && sender_fault->as_bool();
            failures.push_back(std::move(failure));
        }
    }
    return failures;
}

std::vector<EntryFailure> SqsQueue::delete_messages(const std::vector<MessageHandle>& messages) {
    return batch_call("DeleteMessageBatch", messages, [](const MessageHandle& message) {
        return json::object{{"ReceiptHandle", message.receipt_handle}};
    });
}

std::vector<EntryFailure> SqsQueue::change_visibility(const std::vector<MessageHandle>& messages,
                                                      std::chrono::seconds timeout) {
    return batch_call("ChangeMessageVisibilityBatch", messages, [&](const MessageHandle& message) {
        return json::object{{"ReceiptHandle", message.receipt_handle}, {"VisibilityTimeout", timeout.count()}};
    });
}

}  // namespace tattle::sources::sqs
