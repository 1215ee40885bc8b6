#pragma once

// One delivery attempt of a sink that calls an AWS API (sns, ses): the call's
// ServiceError becomes the core's next step. Header-only, for sinks that link tattle::aws.

#include <string>
#include <string_view>
#include <utility>

#include "tattle/aws/service_client.hpp"
#include "tattle/sdk.hpp"

namespace tattle::sinkkit {

// What an operator should do about a permanent error code, or empty.
using AwsErrorHint = std::string_view (*)(std::string_view code);

// Runs call once. OK when it returns; RETRY (with the answer's Retry-After) for a
// ServiceError that is retryable — throttling, 5xx, transport and credential-fetch
// failures; FAIL with AWS's code and message (and the hint) for every other one:
// validation, authorization, a missing topic or identity will not change by waiting.
template <class Call>
sdk::SendResult deliver_aws_call(Call&& call, AwsErrorHint hint = nullptr) {
    try {
        std::forward<Call>(call)();
        return sdk::SendResult::ok();
    } catch (const aws::ServiceError& error) {
        if (error.retryable()) return sdk::SendResult::retry(error.what(), error.retry_after());
        std::string message = error.what();
        if (hint != nullptr) {
            if (const auto extra = hint(error.code()); !extra.empty()) message += "; " + std::string(extra);
        }
        return sdk::SendResult::fail(std::move(message));
    }
}

}  // namespace tattle::sinkkit
