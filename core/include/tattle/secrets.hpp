#pragma once

#include <boost/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "tattle/config.hpp"
#include "tattle/diagnostics.hpp"

namespace tattle {

// Values that must never be shown: every log line and every message printed by the
// CLI passes through redact(). Registered when a config is loaded.
void register_secret(std::string value);
// text with every registered secret replaced by "<redacted>".
std::string redact(std::string_view text);
// Forgets every registered secret (tests).
void clear_secrets();

// Resolves references in the values a plugin's schema marks "x-secret": true:
//   "env:NAME"   the environment variable NAME
//   "file:PATH"  the contents of PATH (relative to the config file), trailing newline removed
// Any other value is taken literally. Every secret value is registered for redaction.
// Problems (unset variable, unreadable file) are reported at the value's location,
// without the value.
void resolve_secrets(const boost::json::value& schema, boost::json::value& instance,
                     const PluginInstanceSpec& spec, const std::string& label,
                     std::vector<Diagnostic>& problems);

}  // namespace tattle
