#pragma once

// The sqs source: receives S3 notifications (or EventBridge CloudTrail events) from an SQS
// queue, hands out one batch per CloudTrail object or inline event, and deletes a message
// only once every batch born from it is settled. See README.md for the semantics.

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/object.hpp>

#include "sqs_queue.hpp"
#include "tattle/aws/s3.hpp"
#include "tattle/notifications/s3_notification.hpp"
#include "tattle/sdk.hpp"
#include "visibility_extender.hpp"

namespace tattle::sources::sqs {

struct SqsSourceConfig {
    std::string queue_url;
    std::chrono::seconds wait_time{20};
    int max_messages = 10;
    std::chrono::seconds visibility_timeout{120};
    bool stop_when_empty = false;
    // The host takes "nothing now" (sdk::NothingNow, ABI 1.1): an empty receive returns
    // to it, so that it can acknowledge what is settled before the next receive.
    bool host_accepts_again = false;
    std::string key_pattern;  // empty: CloudTrail log files (ObjectFilter's default)
    bool include_insights = false;
    std::uint64_t max_object_bytes = std::uint64_t{256} << 20;
    aws::ServiceSettings aws;
    // Receive and GetObject retries (throttling, 5xx, network).
    aws::RetryPolicy retries{5, std::chrono::milliseconds(500), std::chrono::milliseconds(10000)};
};

// Reads the plugin's validated config. Throws std::invalid_argument for a bad queue_url or
// key_pattern.
SqsSourceConfig parse_sqs_source_config(const std::string& config_json);

class SqsSource {
public:
    // Throws for a bad configuration (queue URL, pattern, region, endpoint); contacts nothing.
    SqsSource(SqsSourceConfig config, sdk::Host host);
    // Deletes what is settled and not yet deleted; leaves the rest to its visibility timeout.
    ~SqsSource();
    SqsSource(const SqsSource&) = delete;
    SqsSource& operator=(const SqsSource&) = delete;

    // The next batch: an object's bytes as stored (origin s3://bucket/key) or an inline
    // event's JSON (origin sqs:<queue>/<message id>). Long-polls until there is one;
    // nullopt after an empty receive with stop_when_empty, or after a permanent receive
    // error was reported; with host_accepts_again, throws sdk::NothingNow after a receive
    // that yields no batch. Throws sdk::BatchError for an object that cannot be fetched and
    // for a poison message; std::runtime_error naming the queue when receiving fails.
    std::optional<sdk::Batch> next();
    void ack(std::uint64_t batch_id, bool settled);

    // Messages received and neither deleted nor given up (tests).
    std::size_t messages_in_flight() const noexcept { return messages_.size(); }
    std::size_t visibility_extensions() const { return extender_->extensions(); }

private:
    enum class ItemKind { object, inline_event, poison };
    struct Item {
        ItemKind kind = ItemKind::object;
        std::string receipt_handle;  // the key of its Message
        std::string origin;
        notifications::S3Object object;
        boost::json::object event;
        std::string error;  // poison: why
    };
    struct Message {
        MessageHandle handle;
        int receive_count = 0;
        std::size_t unsent = 0;  // items not handed out yet
        std::size_t open = 0;    // batches handed out, not acknowledged
        bool failed = false;     // a batch was released or could not be read
    };

    std::size_t receive();
    void take(const ReceivedMessage& message, VisibilityExtender::Clock::time_point received_at,
              std::vector<MessageHandle>& skipped_only);
    sdk::Batch hand_out(Item item);
    void finish_if_done(const std::string& receipt_handle);
    void delete_now(const std::vector<MessageHandle>& messages);
    void flush_deletes();
    std::string message_origin(const std::string& message_id) const;

    SqsSourceConfig config_;
    sdk::Host host_;
    notifications::ObjectFilter filter_;
    SqsQueue queue_;
    aws::S3Client s3_;
    std::unique_ptr<VisibilityExtender> extender_;

    std::deque<Item> pending_;
    // By receipt handle: a message received again while an earlier copy is still being
    // processed (its visibility ran out) is a second, independent delivery.
    std::map<std::string, Message> messages_;
    std::map<std::uint64_t, std::string> open_batches_;  // batch id -> receipt handle
    std::vector<MessageHandle> settled_;                 // to delete
    std::uint64_t next_batch_id_ = 1;
    bool exhausted_ = false;  // EOF was returned: acks now delete at once
    bool broken_ = false;     // a permanent receive error was reported
};

}  // namespace tattle::sources::sqs
