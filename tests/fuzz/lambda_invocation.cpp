// plan_invocation over any Lambda invocation payload (S3, SQS, SNS, EventBridge,
// CloudWatch Logs, anything else): never throws, each SQS message id listed once per
// record, and the batch failure response is JSON naming exactly the ids given.

#include <boost/json.hpp>

#include "fuzz_support.hpp"
#include "tattle/lambda.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace tattle;
    const std::string_view payload = fuzz::as_text(data, size);
    const lambda::InvocationPlan plan =
        lambda::plan_invocation(payload, notifications::ObjectFilter::cloudtrail_logs());
    for (const lambda::WorkItem& item : plan.items) {
        if (item.kind == lambda::WorkItem::Kind::object) {
            fuzz::require(!item.object.bucket.empty(), "an object work item without a bucket", payload);
        }
        if (item.sqs_message_id) {
            bool listed = false;
            for (const auto& id : plan.message_ids) listed = listed || id == *item.sqs_message_id;
            fuzz::require(listed, "a work item from an SQS message that is not listed", payload);
        }
    }
    const std::string response = lambda::batch_item_failures_json(plan.message_ids);
    boost::system::error_code error;
    const boost::json::value parsed = boost::json::parse(response, error);
    fuzz::require(!error, "the batch item failures are not JSON", response);
    const auto& failures = parsed.at("batchItemFailures").as_array();
    fuzz::require(failures.size() == plan.message_ids.size(), "batch item failures lose ids", response);
    for (std::size_t i = 0; i < failures.size(); ++i) {
        fuzz::require(failures[i].at("itemIdentifier").as_string() == plan.message_ids[i],
                      "a batch item failure names another id", response);
    }
    return 0;
}
