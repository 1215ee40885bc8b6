#pragma once

// Publishes alerts to an SNS topic and says what SNS's answer means for the core:
// delivered, try again (when), or give up (why).

#include <optional>
#include <string>
#include <string_view>

#include "sns_message.hpp"
#include "tattle/aws/service_client.hpp"
#include "tattle/sdk.hpp"

namespace tattle::sinks::sns {

struct SnsSinkConfig {
    std::string topic_arn;
    std::optional<sinkkit::AlertTemplate> subject;
    aws::ServiceSettings aws;
};

// Reads the host-validated config. The region defaults to the topic ARN's: Publish must
// go to the topic's region. Throws std::invalid_argument naming the key for a bad
// sns_arn or subject template.
SnsSinkConfig parse_config(const std::string& config_json);

// Advice for SNS's permanent error codes, or empty.
std::string_view hint_for(std::string_view code);

class SnsSink {
public:
    SnsSink(SnsSinkConfig config, aws::ServiceClient client);

    // One Publish, one verdict; never sleeps or retries.
    sdk::SendResult send(std::string_view alert_json);

    // The MessageId of the last message SNS accepted (tests, debug logs).
    const std::string& last_message_id() const { return last_message_id_; }

private:
    SnsSinkConfig config_;
    PublishOptions options_;
    aws::ServiceClient client_;
    std::string what_;
    std::string last_message_id_;
};

}  // namespace tattle::sinks::sns
