#pragma once

// Keeping a sink's secrets (webhook URLs, routing keys, header values) out of the
// messages it reports.

#include <string>
#include <vector>

namespace tattle::sinkkit {

// text with every occurrence of every secret replaced by "<redacted>". Longest
// secrets first, so a secret that contains another is replaced whole; empty secrets
// are ignored.
std::string redact_secrets(std::string text, const std::vector<std::string>& secrets);

}  // namespace tattle::sinkkit
