#pragma once

// A link from an alert to its event in the AWS CloudTrail console.

#include <string>
#include <string_view>

namespace tattle::sinkkit {

// A plausible AWS region name (us-east-1): 2 to 32 of a-z, 0-9 and '-', starting
// with a letter. It becomes part of a host name, so nothing else may pass.
bool is_region_name(std::string_view region);

// RFC 3986 percent-encoding: everything but A-Z a-z 0-9 - . _ ~ becomes %XX.
std::string percent_encoded(std::string_view text);

// https://<region>.console.aws.amazon.com/cloudtrailv2/home?region=<region>#/events/<id>,
// or empty when the region is not a plausible region name or the event id is missing.
// The event id is percent-encoded.
std::string cloudtrail_console_url(std::string_view region, std::string_view event_id);

}  // namespace tattle::sinkkit
