#pragma once

// Keeps the messages whose batches are still being delivered invisible: a background thread
// that calls ChangeMessageVisibilityBatch for each tracked message at half its visibility
// timeout, on its own SqsQueue (a ServiceClient is not thread-safe). A message that is no
// longer tracked is left alone, so its visibility runs out and SQS hands it out again.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sqs_queue.hpp"

namespace tattle::sources::sqs {

class VisibilityExtender {
public:
    using Clock = std::chrono::steady_clock;
    // Called from the extender's thread; must be thread-safe.
    using Log = std::function<void(bool warning, const std::string& message)>;

    // `queue` is used by the extender's thread only.
    VisibilityExtender(std::unique_ptr<SqsQueue> queue, std::chrono::seconds visibility_timeout, Log log);
    ~VisibilityExtender();  // stops and joins the thread; tracked messages are left as they are
    VisibilityExtender(const VisibilityExtender&) = delete;
    VisibilityExtender& operator=(const VisibilityExtender&) = delete;

    // Start extending `message`, which was received (made invisible) at `received_at`.
    void track(const MessageHandle& message, Clock::time_point received_at);
    // Stop extending it (deleted, or left for redelivery). An extension already under way
    // may still land; its outcome is then ignored.
    void forget(const std::string& receipt_handle);

    std::size_t tracked() const;
    // Successful extensions so far (tests, logs).
    std::size_t extensions() const;

private:
    // By receipt handle: a message received again while an earlier copy is still being
    // processed is a second, independent delivery.
    struct Tracked {
        std::string message_id;
        Clock::time_point extend_at;  // half the timeout after the last receive or extension
    };

    std::chrono::milliseconds half_timeout() const { return std::chrono::milliseconds(timeout_) / 2; }
    void run();
    void extend(std::vector<MessageHandle> due);

    std::unique_ptr<SqsQueue> queue_;
    const std::chrono::seconds timeout_;
    Log log_;

    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::map<std::string, Tracked> messages_;
    std::size_t extensions_ = 0;
    bool stopping_ = false;
    std::thread thread_;  // last: starts once everything above is ready
};

}  // namespace tattle::sources::sqs
