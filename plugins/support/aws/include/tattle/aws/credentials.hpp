#pragma once

// AWS credentials: the SDKs' default chain, caching with refresh before expiry, and
// sts:AssumeRole on top of it.
//
// Chain order (as botocore and the other SDKs):
//   1. environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN (Lambda);
//   2. web identity: AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN (EKS service accounts);
//   3. shared files: the selected profile in ~/.aws/credentials, then ~/.aws/config; a
//      profile with role_arn assumes that role from source_profile or credential_source;
//   4. container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (against http://169.254.170.2) or
//      AWS_CONTAINER_CREDENTIALS_FULL_URI, with the Authorization header from
//      AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE or AWS_CONTAINER_AUTHORIZATION_TOKEN (ECS,
//      EKS Pod Identity, Lambda SnapStart);
//   5. EC2 instance metadata, IMDSv2 (AWS_EC2_METADATA_SERVICE_ENDPOINT,
//      AWS_EC2_METADATA_DISABLED).
// The first source that is configured is used from then on; a source that is configured
// but fails (a 403 from the container endpoint, a malformed file) is an error, not a reason
// to fall through to the next one and run as some other identity.
//
// Messages name the source and the failure, never a secret key, session token or
// authorization token.

#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>

#include "tattle/aws/config.hpp"
#include "tattle/aws/sigv4.hpp"
#include "tattle/http/client.hpp"

namespace tattle::aws {

class CredentialsError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Thread-safe: plugins share one provider between their worker threads.
class CredentialsProvider {
public:
    virtual ~CredentialsProvider() = default;
    // Valid credentials, fetched on first use and again before they expire. Throws
    // CredentialsError when none can be had.
    virtual Credentials credentials() = 0;
};

struct CredentialsOptions {
    // The keys AWS plugins share in their settings; empty means "not set".
    std::string profile;           // else AWS_PROFILE, else "default"
    std::string region;            // for STS calls; else resolved like any region (see config.hpp)
    std::string sts_endpoint_url;  // else AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL, the profile, regional STS
    // sts:AssumeRole on top of the chain's credentials, when role_arn is set.
    std::string role_arn;
    std::string role_session_name;  // else "tattle-<unix time>"; shows as the session name in CloudTrail
    std::string external_id;
    std::chrono::seconds role_duration{3600};

    // Temporary credentials are refreshed this long before they expire (or at half their
    // lifetime when that is shorter, so short-lived ones are not fetched on every call).
    std::chrono::seconds refresh_margin{300};
    // For STS (TLS settings, proxy). The metadata endpoints use their own short timeouts.
    http::ClientOptions http;
    // Empty: the process environment.
    Environment environment;
    // What time it is when deciding to refresh; empty: the system clock. Tests move their
    // own instead of sleeping through a credential's lifetime.
    std::function<std::chrono::system_clock::time_point()> clock;
};

// The default chain (above), with AssumeRole on top when options.role_arn is set. Nothing is
// fetched until the first credentials() call; with role_arn the shared config is read at once
// (for the STS region and endpoint), so a malformed file throws CredentialsError here.
std::shared_ptr<CredentialsProvider> make_credentials_provider(CredentialsOptions options = {});

// Fixed credentials (tests, or keys from a plugin's own secret settings).
std::shared_ptr<CredentialsProvider> make_static_credentials_provider(Credentials credentials);

struct AssumeRoleParameters {
    std::string role_arn;
    std::string role_session_name;  // else "tattle-<unix time>"
    std::string external_id;
    std::chrono::seconds duration{3600};
    Endpoint sts_endpoint;   // from resolve_endpoint(service::sts, …)
    std::string region;      // signing region; empty: us-east-1 (the global endpoint's)
};

// sts:AssumeRole (Query protocol, signed with `base`'s credentials), cached and refreshed
// before expiry.
std::shared_ptr<CredentialsProvider> make_assume_role_provider(std::shared_ptr<CredentialsProvider> base,
                                                               AssumeRoleParameters parameters,
                                                               CredentialsOptions options = {});

// "2015-08-30T12:36:00Z", with optional fractional seconds and a Z or ±hh:mm offset
// (the Expiration of STS, IMDS and container responses). nullopt when malformed.
std::optional<std::chrono::system_clock::time_point> parse_iso8601(std::string_view text);

}  // namespace tattle::aws
