#include "visibility_extender.hpp"

#include <algorithm>

namespace tattle::sources::sqs {

namespace {

// Messages due within this fraction of the timeout are extended in the same call, so that
// messages received together keep being extended together.
constexpr int kGatherDivisor = 4;
// After a failed call (network, throttling), try again this soon: the half-way point left
// the other half of the timeout for this.
constexpr std::chrono::seconds kRetryAfterFailure{2};

}  // namespace

VisibilityExtender::VisibilityExtender(std::unique_ptr<SqsQueue> queue, std::chrono::seconds visibility_timeout,
                                       Log log)
    : queue_(std::move(queue)), timeout_(visibility_timeout), log_(std::move(log)), thread_([this] { run(); }) {}

VisibilityExtender::~VisibilityExtender() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    changed_.notify_all();
    thread_.join();
}

void VisibilityExtender::track(const MessageHandle& message, Clock::time_point received_at) {
    {
        std::lock_guard lock(mutex_);
        messages_[message.receipt_handle] = Tracked{message.message_id, received_at + half_timeout()};
    }
    changed_.notify_all();
}

void VisibilityExtender::forget(const std::string& receipt_handle) {
    std::lock_guard lock(mutex_);
    messages_.erase(receipt_handle);
}

std::size_t VisibilityExtender::tracked() const {
    std::lock_guard lock(mutex_);
    return messages_.size();
}

std::size_t VisibilityExtender::extensions() const {
    std::lock_guard lock(mutex_);
    return extensions_;
}

void VisibilityExtender::run() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
        if (messages_.empty()) {
            changed_.wait(lock, [&] { return stopping_ || !messages_.empty(); });
            continue;
        }
        const auto earliest = std::min_element(messages_.begin(), messages_.end(), [](const auto& a, const auto& b) {
                                  return a.second.extend_at < b.second.extend_at;
                              })->second.extend_at;
        if (Clock::now() < earliest) {
            // Woken early by track/forget/stop: look again.
            changed_.wait_until(lock, earliest);
            continue;
        }
        const auto gather_until = Clock::now() + std::chrono::milliseconds(timeout_) / kGatherDivisor;
        std::vector<MessageHandle> due;
        for (const auto& [receipt_handle, message] : messages_) {
            if (message.extend_at <= gather_until) due.push_back({message.message_id, receipt_handle});
        }
        lock.unlock();
        extend(std::move(due));
        lock.lock();
    }
}

void VisibilityExtender::extend(std::vector<MessageHandle> due) {
    const auto started = Clock::now();
    std::vector<EntryFailure> failures;
    try {
        failures = queue_->change_visibility(due, timeout_);
    } catch (const std::exception& error) {
        // Keep them tracked and try again soon, while they are still invisible.
        std::lock_guard lock(mutex_);
        for (const auto& message : due) {
            const auto found = messages_.find(message.receipt_handle);
            if (found == messages_.end()) continue;
            found->second.extend_at = started + kRetryAfterFailure;
        }
        if (log_) log_(true, std::string("cannot extend the visibility of ") + std::to_string(due.size()) +
                                 " message(s), trying again: " + error.what());
        return;
    }
    std::vector<std::string> refused;
    {
        std::lock_guard lock(mutex_);
        for (const auto& message : due) {
            const auto found = messages_.find(message.receipt_handle);
            if (found == messages_.end()) continue;  // forgotten while the call was under way
            const bool failed = std::any_of(failures.begin(), failures.end(), [&](const EntryFailure& failure) {
                return failure.entry.receipt_handle == message.receipt_handle;
            });
            if (failed) continue;
            found->second.extend_at = started + half_timeout();
            ++extensions_;
        }
        for (const auto& failure : failures) {
            // A refused extension (receipt handle expired, message gone, 12-hour limit) will
            // not succeed later: stop trying; the message is handed out again in time.
            if (messages_.erase(failure.entry.receipt_handle) == 0) continue;
            refused.push_back("message " + failure.entry.message_id + ": " + failure.code +
                              (failure.message.empty() ? "" : " (" + failure.message + ")"));
        }
    }
    if (log_) {
        for (const auto& line : refused) {
            log_(true, "sqs:ChangeMessageVisibilityBatch refused " + line +
                           "; it will become visible again and may be delivered twice");
        }
    }
}

}  // namespace tattle::sources::sqs
