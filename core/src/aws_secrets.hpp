#pragma once

// Secret references that live in AWS: "ssm:NAME-OR-ARN" (Systems Manager Parameter Store,
// GetParameter with decryption) and "secretsmanager:NAME-OR-ARN[#json-key]" (Secrets
// Manager, GetSecretValue). Private to the core: secrets.cpp is the only caller.

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "tattle/secrets.hpp"

namespace tattle::aws_secrets {

enum class Store { ParameterStore, SecretsManager };

struct Reference {
    Store store = Store::ParameterStore;
    std::string id;        // what the API takes: a parameter name or ARN, a secret name or ARN
    std::string json_key;  // secretsmanager "#key": pick one key of a JSON secret; empty: the whole value
    std::string region;    // from an ARN, which names its region; empty: the environment's
};

// Why a reference could not be resolved. The message names the reference and AWS's error
// code and message; never a value.
class LookupError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// nullopt when `text` is not an AWS reference at all (a literal, env:, file:). A reference
// that is malformed (empty name, an ARN of another service) throws LookupError.
std::optional<Reference> parse_reference(std::string_view text);

// The value, fetched once per process: later calls with the same parameter or secret (from
// any plugin) are answered from the cache, failures included, so a missing parameter costs
// one round of retries however many destinations name it. Every value fetched is registered
// for redaction before it is returned. Throws LookupError.
std::string resolve(const Reference& reference);

// Region, endpoint and credentials come from this environment (AWS_REGION,
// AWS_ENDPOINT_URL_SSM / _SECRETS_MANAGER / AWS_ENDPOINT_URL, the credentials chain);
// an empty function means the process environment. Forgets cached values and clients.
void set_environment(SecretLookupEnvironment environment);
void clear_cache();

}  // namespace tattle::aws_secrets
