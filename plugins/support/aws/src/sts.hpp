#pragma once

// The two STS calls the credentials chain makes (private to tattle::aws).

#include <optional>
#include <string>
#include <string_view>

#include "tattle/aws/credentials.hpp"
#include "tattle/aws/xml.hpp"

namespace tattle::aws::detail {

// "tattle-<unix time>", the session name when none is configured.
std::string default_session_name();

// sts:AssumeRole, signed with `base`. Throws CredentialsError naming the role and the
// endpoint (and STS's error code and message), never a key or token.
Credentials assume_role(const Credentials& base, const AssumeRoleParameters& parameters,
                        const http::ClientOptions& http_options);

// sts:AssumeRoleWithWebIdentity: unsigned, the OIDC token is the proof.
Credentials assume_role_with_web_identity(const std::string& web_identity_token, const AssumeRoleParameters& parameters,
                                          const http::ClientOptions& http_options);

}  // namespace tattle::aws::detail
