#pragma once

// Sends alerts as email through Amazon SES (v1 SendEmail) and says what SES's answer
// means for the core: delivered, try again (when), or give up (why).

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ses_message.hpp"
#include "tattle/aws/service_client.hpp"
#include "tattle/sdk.hpp"

namespace tattle::sinks::ses {

// SES v1 accepts at most 50 recipients per message (To, Cc and Bcc together).
inline constexpr std::size_t kMaxRecipients = 50;

struct SesSinkConfig {
    std::vector<std::string> to_emails;
    std::vector<std::string> cc_emails;
    std::string from_email;
    std::string configuration_set;
    std::optional<sinkkit::AlertTemplate> subject_template;
    aws::ServiceSettings aws;
};

// Reads the host-validated config. Throws std::invalid_argument naming the key for an
// address with a line break or no '@', more than kMaxRecipients recipients, or a bad
// subject template.
SesSinkConfig parse_config(const std::string& config_json);

// The Query-protocol parameters of SendEmail (Action and Version excluded).
std::vector<std::pair<std::string, std::string>> send_email_parameters(const Email& email, const SesSinkConfig& config);

// Advice for SES's permanent error codes, or empty.
std::string_view hint_for(std::string_view code);

class SesSink {
public:
    SesSink(SesSinkConfig config, aws::ServiceClient client);

    // One SendEmail, one verdict; never sleeps or retries.
    sdk::SendResult send(std::string_view alert_json);

    // The MessageId of the last email SES accepted (tests, debug logs).
    const std::string& last_message_id() const { return last_message_id_; }

private:
    SesSinkConfig config_;
    aws::ServiceClient client_;
    std::string what_;
    std::string last_message_id_;
};

}  // namespace tattle::sinks::ses
