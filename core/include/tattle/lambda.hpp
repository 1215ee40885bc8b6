#pragma once

// tattle as an AWS Lambda custom runtime (provided.al2023): the binary is the function's
// `bootstrap`. It loads the config once (cold start), then loops over the Runtime API:
// take the next invocation, turn its payload into batches (objects to fetch from S3,
// events carried inline), run them through the same pipeline as `tattle run`, and
// answer before the deadline.
//
// What a failure means to Lambda:
//  - SQS event: the answer lists the messages that were not fully handled in
//    batchItemFailures (the event source mapping needs ReportBatchItemFailures), so
//    only those come back; a message is failed when one of its objects could not be
//    read or one of its alerts could not be delivered (or only reached a spool in /tmp).
//  - any other event (S3, SNS, EventBridge, CloudWatch Logs): the invocation reports an
//    error, so Lambda's own retries and the function's on-failure destination / DLQ apply.
//  - a config that cannot be loaded: an init error, shown in the console and logs.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tattle/notifications/s3_notification.hpp"

namespace tattle::lambda {

// One unit of work of an invocation: an object to read, or events the payload carries.
struct WorkItem {
    enum class Kind { object, events };
    Kind kind = Kind::object;
    notifications::S3Object object;  // Kind::object
    std::string events;              // Kind::events: JSON documents (one event, or JSON lines)
    std::string origin;              // "s3://bucket/key", "eventbridge 9c…", "cloudwatch-logs group/stream"
    std::optional<std::string> sqs_message_id;
};

struct InvocationPlan {
    // "sqs", "s3", "sns", "eventbridge", "cloudwatch-logs", or "unknown".
    std::string event_kind;
    // An SQS event: answered with batchItemFailures.
    bool partial_batch_response = false;
    std::vector<WorkItem> items;
    std::vector<std::string> message_ids;  // every SQS record's messageId, in order
    std::vector<std::string> skipped;      // one line each: why nothing was done
    struct Problem {
        std::optional<std::string> sqs_message_id;
        std::string message;
    };
    std::vector<Problem> problems;  // parts of the payload that could not be read
};

// Reads an invocation payload: S3, SQS and SNS events (around any S3 notification shape),
// EventBridge "Object Created" and "AWS API Call via CloudTrail" events, and CloudWatch
// Logs subscription payloads (awslogs.data: base64 of gzip, one CloudTrail event per log
// event). Never throws for bad input: it becomes a problem.
InvocationPlan plan_invocation(std::string_view payload, const notifications::ObjectFilter& filter);

// The answer to an SQS event: {"batchItemFailures":[{"itemIdentifier":"<messageId>"}, …]}.
std::string batch_item_failures_json(const std::vector<std::string>& failed_message_ids);

struct RuntimeOptions {
    std::string runtime_api;  // host:port, from AWS_LAMBDA_RUNTIME_API
    // The config file: TATTLE_CONFIG, else $LAMBDA_TASK_ROOT/tattle.toml. With
    // S3_CONFIG_BUCKET and S3_CONFIG_PATH set (cloudtrail-tattletail's variables), the
    // config is read from S3 instead, kept for warm invocations and read again when its
    // ETag changes.
    std::string config_path;
    std::vector<std::string> plugin_dirs;
    // Work stops this long before the deadline, to answer in time.
    std::chrono::milliseconds deadline_margin{std::chrono::milliseconds(1500)};
    // Alerts still undelivered this long before the deadline are given up on.
    std::chrono::milliseconds delivery_margin{std::chrono::milliseconds(1000)};
    // Stop after this many invocations (tests); 0: run until the Runtime API goes away.
    std::uint64_t max_invocations = 0;
};

// The runtime loop. Returns the process exit code: 0 when max_invocations were served,
// 1 when the Runtime API failed, 2 after reporting an init error.
int run_runtime(const RuntimeOptions& options);

}  // namespace tattle::lambda
