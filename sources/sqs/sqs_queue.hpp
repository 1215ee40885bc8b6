#pragma once

// The SQS calls the sqs source makes, over the AWS JSON 1.0 protocol: ReceiveMessage,
// DeleteMessageBatch and ChangeMessageVisibilityBatch. One SqsQueue per thread (it owns a
// ServiceClient, which is not thread-safe).

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tattle/aws/service_client.hpp"

namespace tattle::sources::sqs {

// The parts of a queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>) the source needs.
struct QueueUrl {
    std::string url;     // as configured
    std::string origin;  // scheme://host[:port]: the endpoint when none is configured
    std::string name;    // the last path segment, for origins and messages
    std::string region;  // from an AWS host name (sqs.<region>.amazonaws.com, <region>.queue.amazonaws.com), else ""
};

// Throws std::invalid_argument naming the problem (never the URL's query or user info).
QueueUrl parse_queue_url(std::string_view url);

struct ReceivedMessage {
    std::string message_id;
    std::string receipt_handle;
    std::string body;
    int receive_count = 0;           // ApproximateReceiveCount; 0 when SQS did not say
    std::int64_t sent_timestamp_ms = 0;  // SentTimestamp; 0 when SQS did not say
};

// A message and the receipt handle of the receive that holds it, for batch calls.
struct MessageHandle {
    std::string message_id;
    std::string receipt_handle;
};

// One entry a batch call refused: SQS's code and message, and whether it blames the request.
struct EntryFailure {
    MessageHandle entry;
    std::string code;
    std::string message;
    bool sender_fault = false;
};

class SqsQueue {
public:
    // `settings` may name an endpoint (endpoint_url, AWS_ENDPOINT_URL_SQS, AWS_ENDPOINT_URL, the
    // profile); otherwise requests go to the queue URL's own scheme and host, as the AWS SDKs
    // for JavaScript v3 (useQueueUrlAsEndpoint), PHP and Java v1 do. On AWS that host is the
    // regional endpoint anyway. Without a `region` setting, an AWS queue host's region is
    // used (the signature must name the queue's region). Throws aws::ConfigError / aws::CredentialsError.
    SqsQueue(QueueUrl queue, aws::ServiceSettings settings);

    // One ReceiveMessage (long poll of wait_time). Throws aws::ServiceError naming the queue.
    std::vector<ReceivedMessage> receive(int max_messages, std::chrono::seconds wait_time,
                                         std::chrono::seconds visibility_timeout);

    // DeleteMessageBatch in calls of at most 10 entries; returns the entries SQS refused.
    // Throws aws::ServiceError when a whole call fails.
    std::vector<EntryFailure> delete_messages(const std::vector<MessageHandle>& messages);

    // ChangeMessageVisibilityBatch: each message invisible for `timeout` from now.
    std::vector<EntryFailure> change_visibility(const std::vector<MessageHandle>& messages,
                                                std::chrono::seconds timeout);

    const QueueUrl& queue() const noexcept { return queue_; }
    aws::ServiceClient& service() noexcept { return service_; }

private:
    template <class MakeEntry>
    std::vector<EntryFailure> batch_call(std::string_view action, const std::vector<MessageHandle>& messages,
                                         MakeEntry&& make_entry);

    QueueUrl queue_;
    aws::ServiceClient service_;
};

}  // namespace tattle::sources::sqs
