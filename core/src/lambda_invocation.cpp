// Invocation payload → work items (see lambda.hpp).

#include <openssl/evp.h>

#include <boost/json.hpp>
#include <span>

#include "tattle/decoder.hpp"
#include "tattle/lambda.hpp"

namespace tattle::lambda {

namespace json = boost::json;

namespace {

// CloudWatch Logs payloads are at most 1 MB of gzip; their text a few MB.
constexpr std::size_t kMaxLogsPayloadBytes = std::size_t{64} << 20;

const json::object* first_record(const json::object& payload) {
    const json::value* records = payload.if_contains("Records");
    if (records == nullptr || !records->is_array() || records->as_array().empty()) return nullptr;
    const json::value& first = records->as_array().front();
    return first.is_object() ? &first.as_object() : nullptr;
}

std::string string_field(const json::object& object, std::string_view key) {
    const json::value* value = object.if_contains(key);
    return value != nullptr && value->is_string() ? std::string(value->as_string()) : std::string();
}

std::string event_kind(const json::object& payload) {
    if (payload.contains("awslogs")) return "cloudwatch-logs";
    if (payload.contains("detail-type")) return "eventbridge";
    if (const json::object* record = first_record(payload)) {
        if (string_field(*record, "eventSource") == "aws:sqs") return "sqs";
        if (string_field(*record, "eventSource") == "aws:s3") return "s3";
        if (string_field(*record, "EventSource") == "aws:sns") return "sns";
    }
    return "unknown";
}

std::optional<std::string> base64_decode(std::string_view text) {
    std::string compact;
    compact.reserve(text.size());
    for (const char c : text) {
        if (c != '\n' && c != '\r' && c != ' ') compact += c;
    }
    if (compact.size() % 4 != 0) return std::nullopt;
    std::string bytes(compact.size() / 4 * 3, '\0');
    const int length = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(bytes.data()),
                                       reinterpret_cast<const unsigned char*>(compact.data()),
                                       static_cast<int>(compact.size()));
    if (length < 0) return std::nullopt;
    // EVP_DecodeBlock counts the padding as zero bytes.
    std::size_t size = static_cast<std::size_t>(length);
    if (!compact.empty() && compact.back() == '=') --size;
    if (compact.size() > 1 && compact[compact.size() - 2] == '=') --size;
    bytes.resize(size);
    return bytes;
}

// A CloudWatch Logs subscription delivery: {"awslogs":{"data":"<base64 of gzip JSON>"}}, the
// JSON holding logGroup, logStream and logEvents[].message (one CloudTrail event each).
void plan_cloudwatch_logs(const json::object& payload, InvocationPlan& plan) {
    const json::value* awslogs = payload.if_contains("awslogs");
    const json::value* data = awslogs != nullptr && awslogs->is_object() ? awslogs->as_object().if_contains("data") : nullptr;
    if (data == nullptr || !data->is_string()) {
        plan.problems.push_back({std::nullopt, ".awslogs.data: missing or not a string"});
        return;
    }
    const auto compressed = base64_decode(data->as_string());
    if (!compressed) {
        plan.problems.push_back({std::nullopt, ".awslogs.data: not valid base64"});
        return;
    }
    std::vector<std::uint8_t> text;
    try {
        text = gunzip(std::span(reinterpret_cast<const std::uint8_t*>(compressed->data()), compressed->size()),
                      ".awslogs.data", kMaxLogsPayloadBytes);
    } catch (const DecodeError& error) {
        plan.problems.push_back({std::nullopt, error.what()});
        return;
    }
    boost::system::error_code parse_error;
    const json::value document =
        json::parse(std::string_view(reinterpret_cast<const char*>(text.data()), text.size()), parse_error);
    if (parse_error || !document.is_object()) {
        plan.problems.push_back({std::nullopt, ".awslogs.data: the decompressed text is not a JSON object"});
        return;
    }
    const json::object& logs = document.as_object();
    const std::string where = "cloudwatch-logs " + string_field(logs, "logGroup") + "/" + string_field(logs, "logStream");
    if (string_field(logs, "messageType") == "CONTROL_MESSAGE") {
        plan.skipped.push_back(where + ": a CloudWatch Logs control message (subscription check)");
        return;
    }
    const json::value* events = logs.if_contains("logEvents");
    if (events == nullptr || !events->is_array()) {
        plan.problems.push_back({std::nullopt, where + ": no logEvents array"});
        return;
    }
    WorkItem item;
    item.kind = WorkItem::Kind::events;
    item.origin = where;
    for (const json::value& event : events->as_array()) {
        if (!event.is_object()) continue;
        const std::string message = string_field(event.as_object(), "message");
        if (message.empty()) continue;
        item.events += message;
        item.events += '\n';
    }
    if (item.events.empty()) {
        plan.skipped.push_back(where + ": no log events");
        return;
    }
    plan.items.push_back(std::move(item));
}

}  // namespace

InvocationPlan plan_invocation(std::string_view payload, const notifications::ObjectFilter& filter) {
    InvocationPlan plan;
    boost::system::error_code parse_error;
    const json::value parsed = json::parse(payload, parse_error);
    if (parse_error || !parsed.is_object()) {
        plan.event_kind = "unknown";
        plan.problems.push_back({std::nullopt, "the invocation payload is not a JSON object"});
        return plan;
    }
    const json::object& object = parsed.as_object();
    plan.event_kind = event_kind(object);
    if (plan.event_kind == "cloudwatch-logs") {
        plan_cloudwatch_logs(object, plan);
        return plan;
    }
    if (plan.event_kind == "sqs") {
        plan.partial_batch_response = true;
        for (const json::value& record : object.at("Records").as_array()) {
            if (record.is_object()) {
                if (std::string id = string_field(record.as_object(), "messageId"); !id.empty()) {
                    plan.message_ids.push_back(std::move(id));
                }
            }
        }
    }

    notifications::NotificationDecoding decoded = notifications::decode_notification(payload, filter);
    for (auto& fetch : decoded.objects) {
        WorkItem item;
        item.kind = WorkItem::Kind::object;
        item.origin = "s3://" + fetch.object.bucket + "/" + fetch.object.key;
        item.object = std::move(fetch.object);
        item.sqs_message_id = fetch.origin.sqs_message_id;
        plan.items.push_back(std::move(item));
    }
    for (auto& inline_event : decoded.inline_events) {
        WorkItem item;
        item.kind = WorkItem::Kind::events;
        const std::string event_id = string_field(inline_event.event, "eventID");
        item.origin = "eventbridge " + (event_id.empty() ? inline_event.origin.path : event_id);
        item.events = json::serialize(inline_event.event);
        item.sqs_message_id = inline_event.origin.sqs_message_id;
        plan.items.push_back(std::move(item));
    }
    for (const auto& skipped : decoded.skipped) {
        std::string line(notifications::skip_code_name(skipped.code));
        if (skipped.object) line += " s3://" + skipped.object->bucket + "/" + skipped.object->key;
        line += ": " + skipped.reason;
        plan.skipped.push_back(std::move(line));
    }
    for (const auto& error : decoded.errors) {
        plan.problems.push_back({error.origin.sqs_message_id, error.message});
    }
    return plan;
}

std::string batch_item_failures_json(const std::vector<std::string>& failed_message_ids) {
    json::array failures;
    for (const auto& id : failed_message_ids) failures.push_back(json::object{{"itemIdentifier", id}});
    return json::serialize(json::object{{"batchItemFailures", std::move(failures)}});
}

}  // namespace tattle::lambda
