#include "sqs_source.hpp"

#include <boost/json.hpp>
#include <stdexcept>
#include <utility>

namespace tattle::sources::sqs {

namespace json = boost::json;

namespace {

// A ReceiveMessage answer holds up to 10 messages of up to 1 MiB each, JSON-escaped.
constexpr std::size_t kMaxReceiveBytes = std::size_t{64} << 20;
// The long poll must fit in the request's deadline with room for the answer.
constexpr std::chrono::seconds kReceiveDeadlineMargin{10};

std::string string_or(const json::object& config, std::string_view key, std::string fallback = {}) {
    if (const json::value* value = config.if_contains(key); value != nullptr && value->is_string()) {
        return std::string(value->as_string());
    }
    return fallback;
}

std::int64_t integer_or(const json::object& config, std::string_view key, std::int64_t fallback) {
    if (const json::value* value = config.if_contains(key); value != nullptr && value->is_int64()) {
        return value->as_int64();
    }
    return fallback;
}

bool bool_or(const json::object& config, std::string_view key, bool fallback) {
    if (const json::value* value = config.if_contains(key); value != nullptr && value->is_bool()) return value->as_bool();
    return fallback;
}

// Skips that mean "this message is not for tattle, or not yet readable by it": left to the
// queue's redrive policy like undecodable messages, rather than deleted.
bool is_poison_skip(notifications::SkipCode code) {
    using notifications::SkipCode;
    return code == SkipCode::unknown_shape || code == SkipCode::unsupported_payload || code == SkipCode::cloudwatch_logs;
}

notifications::ObjectFilter make_filter(const SqsSourceConfig& config) {
    if (config.key_pattern.empty()) return notifications::ObjectFilter::cloudtrail_logs(config.include_insights);
    return notifications::ObjectFilter::key_pattern(config.key_pattern);
}

// One credentials provider for the three clients (receiving, extending, fetching), so that
// the chain (and an AssumeRole) is resolved once; and the queue's region as the fallback
// for a region set nowhere else.
SqsSourceConfig with_shared_credentials(SqsSourceConfig config) {
    const QueueUrl queue = parse_queue_url(config.queue_url);
    aws::ServiceSettings& settings = config.aws;
    const aws::Environment env = settings.environment ? settings.environment : aws::process_environment();
    const aws::SharedConfig shared = aws::SharedConfig::load(env);
    const std::string profile = aws::selected_profile(env, settings.profile);
    if (settings.region.empty() && !aws::find_region("", env, shared, profile)) settings.region = queue.region;
    if (!settings.credentials) {
        aws::CredentialsOptions options;
        options.profile = settings.profile;
        options.region = aws::find_region(settings.region, env, shared, profile).value_or(queue.region);
        options.role_arn = settings.role_arn;
        options.role_session_name = settings.role_session_name;
        options.external_id = settings.external_id;
        options.http = settings.http;
        options.environment = settings.environment;
        settings.credentials = aws::make_credentials_provider(std::move(options));
    }
    return config;
}

aws::ServiceSettings sqs_settings(const SqsSourceConfig& config) {
    aws::ServiceSettings settings = config.aws;
    settings.http.max_response_bytes = kMaxReceiveBytes;
    settings.http.total_timeout = std::max<std::chrono::milliseconds>(settings.http.total_timeout,
                                                                      config.wait_time + kReceiveDeadlineMargin);
    return settings;
}

aws::ServiceSettings s3_settings(const SqsSourceConfig& config) {
    aws::ServiceSettings settings = config.aws;
    settings.http.max_response_bytes = static_cast<std::size_t>(config.max_object_bytes);
    return settings;
}

}  // namespace

SqsSourceConfig parse_sqs_source_config(const std::string& config_json) {
    // The host validated the config against the schema; only read it here.
    const json::object config = json::parse(config_json).as_object();
    SqsSourceConfig parsed;
    parsed.queue_url = string_or(config, "queue_url");
    parse_queue_url(parsed.queue_url);  // a clear error now rather than at the first receive
    parsed.wait_time = std::chrono::seconds(integer_or(config, "wait_time_seconds", 20));
    parsed.max_messages = static_cast<int>(integer_or(config, "max_messages", 10));
    parsed.visibility_timeout = std::chrono::seconds(integer_or(config, "visibility_timeout", 120));
    parsed.stop_when_empty = bool_or(config, "stop_when_empty", false);
    parsed.key_pattern = string_or(config, "key_pattern");
    parsed.include_insights = bool_or(config, "include_insights", false);
    parsed.max_object_bytes = static_cast<std::uint64_t>(integer_or(config, "max_object_bytes", 256LL << 20));
    parsed.aws = aws::settings_from_json(config);
    return parsed;
}

SqsSource::SqsSource(SqsSourceConfig config, sdk::Host host)
    : config_(with_shared_credentials(std::move(config))),
      host_(host),
      filter_(make_filter(config_)),
      queue_(parse_queue_url(config_.queue_url), sqs_settings(config_)),
      s3_(s3_settings(config_)) {
    auto extender_queue = std::make_unique<SqsQueue>(queue_.queue(), sqs_settings(config_));
    extender_ = std::make_unique<VisibilityExtender>(
        std::move(extender_queue), config_.visibility_timeout,
        [host](bool warning, const std::string& message) { warning ? host.warn(message) : host.info(message); });
    host_.debug("receiving from " + config_.queue_url + " at " + queue_.service().endpoint().url + " (" +
                queue_.service().endpoint().source + ")");
}

SqsSource::~SqsSource() {
    try {
        flush_deletes();
    } catch (...) {
        // flush_deletes logs what it could not do; a destructor must not throw.
    }
    if (!messages_.empty()) {
        host_.info(std::to_string(messages_.size()) +
                   " message(s) still being processed are left in the queue; they become visible again after "
                   "their visibility timeout");
    }
    extender_.reset();  // stops its thread before the rest goes
}

std::string SqsSource::message_origin(const std::string& message_id) const {
    return "sqs:" + queue_.queue().name + "/" + message_id;
}

std::optional<sdk::Batch> SqsSource::next() {
    flush_deletes();
    // A receive that yields no batch (only skips, or nothing) goes straight on to the next.
    while (pending_.empty()) {
        const bool stop = broken_ || (receive() == 0 && config_.stop_when_empty);
        if (stop) {
            exhausted_ = true;
            return std::nullopt;
        }
        if (pending_.empty() && config_.host_accepts_again) throw sdk::NothingNow();
    }
    Item item = std::move(pending_.front());
    pending_.pop_front();
    return hand_out(std::move(item));
}

std::size_t SqsSource::receive() {
    // The visibility timeout runs from SQS's answer; counting from the request errs early.
    const auto received_at = VisibilityExtender::Clock::now();
    std::vector<ReceivedMessage> received;
    try {
        received = aws::call_with_retries(
            [&] { return queue_.receive(config_.max_messages, config_.wait_time, config_.visibility_timeout); },
            config_.retries);
    } catch (const aws::ServiceError& error) {
        // A queue that does not exist or refuses us will not change its mind: end the run.
        // Throttling and outages that outlasted the retries end only a run that stops when empty.
        if (!error.retryable() || config_.stop_when_empty) broken_ = true;
        throw std::runtime_error(std::string("sqs source: cannot receive messages: ") + error.what() +
                                 (broken_ ? "" : " (trying again at the next call)"));
    }
    std::vector<MessageHandle> skipped_only;
    for (const ReceivedMessage& message : received) take(message, received_at, skipped_only);
    delete_now(skipped_only);
    return received.size();
}

void SqsSource::take(const ReceivedMessage& message, VisibilityExtender::Clock::time_point received_at,
                     std::vector<MessageHandle>& skipped_only) {
    const std::string origin = message_origin(message.message_id);
    const std::string described =
        "message " + message.message_id + " (received " + std::to_string(message.receive_count) + " time(s))";
    const notifications::NotificationDecoding decoding = notifications::decode_notification(message.body, filter_);

    std::string problem;
    if (!decoding.errors.empty()) {
        problem = decoding.errors.front().message;
    } else {
        for (const auto& skipped : decoding.skipped) {
            if (!is_poison_skip(skipped.code)) continue;
            problem = std::string(notifications::skip_code_name(skipped.code)) + ": " + skipped.reason;
            break;
        }
    }
    const bool nothing = decoding.objects.empty() && decoding.inline_events.empty();
    if (problem.empty() && nothing && decoding.skipped.empty()) problem = "it holds no notification";
    if (!problem.empty()) {
        // Neither deleted nor extended: after its visibility timeout SQS hands it out again,
        // and after maxReceiveCount the redrive policy moves it to the dead-letter queue.
        Item poison;
        poison.kind = ItemKind::poison;
        poison.origin = origin;
        poison.error = described + " cannot be read: " + problem + "; it is left in the queue for its redrive policy";
        pending_.push_back(std::move(poison));
        return;
    }

    std::string reasons;
    for (const auto& skipped : decoding.skipped) {
        if (!reasons.empty()) reasons += "; ";
        reasons += std::string(notifications::skip_code_name(skipped.code)) + ": " + skipped.reason;
    }
    const MessageHandle handle{message.message_id, message.receipt_handle};
    if (nothing) {
        host_.info(described + ": nothing to read (" + reasons + "), deleting it");
        skipped_only.push_back(handle);
        return;
    }
    if (!reasons.empty()) host_.debug(described + ": skipped " + reasons);

    Message& tracked = messages_[message.receipt_handle];
    tracked.handle = handle;
    tracked.receive_count = message.receive_count;
    tracked.unsent = decoding.objects.size() + decoding.inline_events.size();
    extender_->track(handle, received_at);
    for (const auto& object : decoding.objects) {
        Item item;
        item.kind = ItemKind::object;
        item.receipt_handle = message.receipt_handle;
        item.origin = aws::s3_uri(object.object.bucket, object.object.key);
        item.object = object.object;
        pending_.push_back(std::move(item));
    }
    std::size_t index = 0;
    for (const auto& event : decoding.inline_events) {
        Item item;
        item.kind = ItemKind::inline_event;
        item.receipt_handle = message.receipt_handle;
        item.origin = decoding.inline_events.size() > 1 ? origin + "#" + std::to_string(index) : origin;
        item.event = event.event;
        pending_.push_back(std::move(item));
        ++index;
    }
}

sdk::Batch SqsSource::hand_out(Item item) {
    if (item.kind == ItemKind::poison) throw sdk::BatchError(item.origin, item.error);
    Message& message = messages_.at(item.receipt_handle);
    --message.unsent;
    sdk::Batch batch;
    batch.origin = item.origin;
    if (item.kind == ItemKind::object) {
        try {
            const aws::S3Object object = aws::call_with_retries(
                [&] { return s3_.get_object(item.object.bucket, item.object.key); }, config_.retries);
            batch.data.assign(object.body.begin(), object.body.end());
        } catch (const aws::ServiceError& error) {
            const std::string message_id = message.handle.message_id;
            message.failed = true;
            finish_if_done(item.receipt_handle);
            throw sdk::BatchError(item.origin, std::string(error.what()) + " (notified by message " + message_id +
                                                   ", which is left in the queue)");
        }
    } else {
        const std::string text = json::serialize(item.event);
        batch.data.assign(text.begin(), text.end());
    }
    batch.id = next_batch_id_++;
    open_batches_[batch.id] = item.receipt_handle;
    ++message.open;
    return batch;
}

void SqsSource::ack(std::uint64_t batch_id, bool settled) {
    const auto batch = open_batches_.find(batch_id);
    if (batch == open_batches_.end()) return;
    const std::string receipt_handle = batch->second;
    open_batches_.erase(batch);
    const auto message = messages_.find(receipt_handle);
    if (message == messages_.end()) return;
    --message->second.open;
    if (!settled) message->second.failed = true;
    finish_if_done(receipt_handle);
}

void SqsSource::finish_if_done(const std::string& receipt_handle) {
    const auto found = messages_.find(receipt_handle);
    if (found == messages_.end()) return;
    const Message& message = found->second;
    if (message.unsent > 0 || message.open > 0) return;
    if (message.failed) {
        extender_->forget(receipt_handle);
        host_.warn("message " + message.handle.message_id + " (received " + std::to_string(message.receive_count) +
                   " time(s)) is left in the queue: not every batch of it was settled; it becomes visible again "
                   "within " + std::to_string(config_.visibility_timeout.count()) +
                   " s and the queue's redrive policy applies");
    } else {
        settled_.push_back(message.handle);
    }
    messages_.erase(found);
    // Deletes wait for the next receive, to go out together; after the last receive there is none.
    if (exhausted_ || settled_.size() >= 10) flush_deletes();
}

void SqsSource::flush_deletes() {
    if (settled_.empty()) return;
    const std::vector<MessageHandle> settled = std::exchange(settled_, {});
    // Stop extending first: an extension racing the delete would only be refused.
    for (const auto& message : settled) extender_->forget(message.receipt_handle);
    delete_now(settled);
}

void SqsSource::delete_now(const std::vector<MessageHandle>& messages) {
    if (messages.empty()) return;
    try {
        const auto failures =
            aws::call_with_retries([&] { return queue_.delete_messages(messages); }, config_.retries);
        for (const auto& failure : failures) {
            host_.error("cannot delete message " + failure.entry.message_id + ": " + failure.code +
                        (failure.message.empty() ? "" : " (" + failure.message + ")") +
                        "; it will be delivered again");
        }
        host_.debug("deleted " + std::to_string(messages.size() - failures.size()) + " message(s)");
    } catch (const aws::ServiceError& error) {
        host_.error("cannot delete " + std::to_string(messages.size()) +
                    " message(s), they will be delivered again: " + error.what());
    }
}

}  // namespace tattle::sources::sqs
