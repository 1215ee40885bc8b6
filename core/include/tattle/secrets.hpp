#pragma once

#include <boost/json.hpp>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tattle/config.hpp"
#include "tattle/diagnostics.hpp"

namespace tattle {

// Values that must never be shown: every log line and every message printed by the
// CLI passes through redact(). Registered when a config is loaded; for a URL, its path
// (with the query) and each long segment of it are registered too (url_secret_pieces).
void register_secret(std::string value);
// text with every registered secret replaced by "<redacted>", and the beginning of one
// (8 characters or more) that a cut left at the end of the text or before "..." / "…".
std::string redact(std::string_view text);
// "https://host/services/T0/B0/tokenABCDEFGH?x=1" → "/services/T0/B0/tokenABCDEFGH?x=1",
// "tokenABCDEFGH"; nothing for a value that is not a URL.
std::vector<std::string> url_secret_pieces(std::string_view value);
// Forgets every registered secret and every value fetched from AWS (tests).
void clear_secrets();

// Resolves references in the values a plugin's schema marks "x-secret": true:
//   "env:NAME"   the environment variable NAME
//   "file:PATH"  the contents of PATH (relative to the config file), trailing newline removed
//   "ssm:NAME"   an SSM Parameter Store parameter (name, name:version or ARN), decrypted
//   "secretsmanager:NAME[#KEY]"  a Secrets Manager secret's SecretString (name or ARN);
//                with #KEY, that key of the JSON object it holds
// Any other value is taken literally. Every secret value is registered for redaction;
// AWS values are fetched once per process (see set_secret_lookup_environment).
// Problems (unset variable, unreadable file, missing parameter, access denied) are
// reported at the value's location, without the value.
void resolve_secrets(const boost::json::value& schema, boost::json::value& instance,
                     const PluginInstanceSpec& spec, const std::string& label,
                     std::vector<Diagnostic>& problems);

// Reads one environment variable (the signature of tattle::aws::Environment).
using SecretLookupEnvironment = std::function<std::optional<std::string>(std::string_view name)>;
// Where ssm: and secretsmanager: references take their region (an ARN's own region first),
// endpoint (AWS_ENDPOINT_URL_SSM, AWS_ENDPOINT_URL_SECRETS_MANAGER, AWS_ENDPOINT_URL) and
// credentials (the default chain). Empty: the process environment; tests pass a fixed one.
// Forgets the values fetched so far.
void set_secret_lookup_environment(SecretLookupEnvironment environment);

}  // namespace tattle
