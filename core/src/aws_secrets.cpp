#include "aws_secrets.hpp"

#include <boost/json.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "tattle/aws/service_client.hpp"

namespace tattle::aws_secrets {
namespace {

namespace json = boost::json;

constexpr std::string_view kParameterPrefix = "ssm:";
constexpr std::string_view kSecretPrefix = "secretsmanager:";

std::string_view store_prefix(Store store) {
    return store == Store::ParameterStore ? kParameterPrefix : kSecretPrefix;
}

// "arn:partition:service:region:account:resource"; the resource may hold more colons.
struct ArnParts {
    std::string service;
    std::string region;
    std::string resource;
};

std::optional<ArnParts> split_arn(std::string_view arn) {
    std::vector<std::string_view> fields;
    std::size_t start = 0;
    while (fields.size() < 5) {
        const std::size_t colon = arn.find(':', start);
        if (colon == std::string_view::npos) return std::nullopt;
        fields.push_back(arn.substr(start, colon - start));
        start = colon + 1;
    }
    if (fields[0] != "arn" || fields[1].empty()) return std::nullopt;
    return ArnParts{std::string(fields[2]), std::string(fields[3]), std::string(arn.substr(start))};
}

struct Cached {
    std::string value;
    std::string error;  // set: the lookup failed, and fails the same way for every later caller
};

// One per process: the values fetched so far and one client per (store, region). Lookups
// happen while a config is prepared, so holding the lock across a call costs nothing and
// makes "fetched once" hold even for concurrent callers.
struct LookupState {
    std::mutex mutex;
    SecretLookupEnvironment environment;
    std::map<std::string, Cached, std::less<>> values;
    std::map<std::string, std::unique_ptr<aws::ServiceClient>, std::less<>> clients;
};

LookupState& state() {
    static LookupState instance;
    return instance;
}

std::string reference_text(const Reference& reference) {
    return std::string(store_prefix(reference.store)) + reference.id;
}

aws::ServiceClient& client_for(LookupState& lookup, Store store, const std::string& region) {
    const std::string key = std::string(store_prefix(store)) + region;
    auto found = lookup.clients.find(key);
    if (found == lookup.clients.end()) {
        aws::ServiceSettings settings;
        settings.region = region;
        settings.environment = lookup.environment;
        const aws::ServiceId& service =
            store == Store::ParameterStore ? aws::service::ssm : aws::service::secrets_manager;
        try {
            found = lookup.clients.emplace(key, std::make_unique<aws::ServiceClient>(service, std::move(settings)))
                        .first;
        } catch (const aws::ConfigError& error) {
            // The library's advice names a plugin's `region` key, which references do not have.
            if (std::string_view(error.what()).starts_with("no AWS region")) {
                throw LookupError("no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION, or region in the AWS "
                                  "profile), or give the ARN, which names its region");
            }
            throw;
        }
    }
    return *found->second;
}

const json::string* string_member(const json::value& document, std::string_view key) {
    if (!document.is_object()) return nullptr;
    const json::value* member = document.get_object().if_contains(key);
    return member != nullptr && member->is_string() ? &member->get_string() : nullptr;
}

// The raw value the store holds (a parameter's Value, a secret's SecretString).
std::string fetch(LookupState& lookup, const Reference& reference) {
    aws::ServiceClient& client = client_for(lookup, reference.store, reference.region);
    if (reference.store == Store::ParameterStore) {
        const json::object request{{"Name", reference.id}, {"WithDecryption", true}};
        const json::value answer = aws::call_with_retries(
            [&] { return client.json_call("AmazonSSM.GetParameter", request, "ssm:GetParameter", "1.1"); },
            aws::RetryPolicy{});
        const json::value* parameter =
            answer.is_object() ? answer.get_object().if_contains("Parameter") : nullptr;
        const json::string* value = parameter != nullptr ? string_member(*parameter, "Value") : nullptr;
        if (value == nullptr) throw LookupError("ssm:GetParameter: the answer has no Parameter.Value");
        return std::string(*value);
    }
    const json::object request{{"SecretId", reference.id}};
    const json::value answer = aws::call_with_retries(
        [&] {
            return client.json_call("secretsmanager.GetSecretValue", request, "secretsmanager:GetSecretValue", "1.1");
        },
        aws::RetryPolicy{});
    const json::string* value = string_member(answer, "SecretString");
    if (value == nullptr) {
        throw LookupError("secretsmanager:GetSecretValue: the secret has no SecretString "
                          "(binary secrets are not supported)");
    }
    return std::string(*value);
}

// One key of a JSON secret ({"webhook_url": "…", "token": "…"}). Messages name the key,
// never the secret's text or the parser's view of it.
std::string pick_json_key(const std::string& secret, const std::string& key) {
    boost::system::error_code parse_error;
    const json::value document = json::parse(secret, parse_error);
    if (parse_error || !document.is_object()) {
        throw LookupError("the secret is not a JSON object, so #" + key + " cannot pick a key from it");
    }
    const json::value* member = document.get_object().if_contains(key);
    if (member == nullptr) throw LookupError("the secret's JSON object has no key \"" + key + "\"");
    if (member->is_string()) return std::string(member->get_string());
    if (member->is_null()) throw LookupError("the secret's key \"" + key + "\" is null");
    return json::serialize(*member);
}

}  // namespace

std::optional<Reference> parse_reference(std::string_view text) {
    Reference reference;
    if (text.starts_with(kParameterPrefix)) {
        reference.store = Store::ParameterStore;
        reference.id = std::string(text.substr(kParameterPrefix.size()));
    } else if (text.starts_with(kSecretPrefix)) {
        reference.store = Store::SecretsManager;
        std::string rest(text.substr(kSecretPrefix.size()));
        // Secret names cannot contain '#' (letters, digits and /_+=.@- only), so the first
        // one starts the key.
        if (const auto hash = rest.find('#'); hash != std::string::npos) {
            reference.json_key = rest.substr(hash + 1);
            rest.erase(hash);
            if (reference.json_key.empty()) {
                throw LookupError(std::string(text) + ": nothing follows '#' (expected a key of the JSON secret)");
            }
        }
        reference.id = std::move(rest);
    } else {
        return std::nullopt;
    }
    const std::string_view prefix = store_prefix(reference.store);
    if (reference.id.empty()) {
        throw LookupError(std::string(prefix) + " names no " +
                          (reference.store == Store::ParameterStore ? "parameter" : "secret"));
    }
    if (reference.id.starts_with("arn:")) {
        const auto arn = split_arn(reference.id);
        const std::string_view expected_service =
            reference.store == Store::ParameterStore ? "ssm" : "secretsmanager";
        const std::string_view expected_resource =
            reference.store == Store::ParameterStore ? "parameter/" : "secret:";
        if (!arn || arn->service != expected_service || !arn->resource.starts_with(expected_resource)) {
            throw LookupError(std::string(prefix) + reference.id + ": not an ARN of the form arn:aws:" +
                              std::string(expected_service) + ":REGION:ACCOUNT:" + std::string(expected_resource) +
                              "NAME");
        }
        reference.region = arn->region;
    }
    return reference;
}

std::string resolve(const Reference& reference) {
    LookupState& lookup = state();
    std::lock_guard lock(lookup.mutex);
    // The cache holds what the store returned; "#key" picks from it, so two keys of one
    // secret cost one call.
    const std::string cache_key = std::string(store_prefix(reference.store)) + reference.region + "|" + reference.id;
    auto cached = lookup.values.find(cache_key);
    if (cached == lookup.values.end()) {
        Cached outcome;
        try {
            outcome.value = fetch(lookup, reference);
            register_secret(outcome.value);
        } catch (const aws::ServiceError& error) {
            outcome.error = error.what();
        } catch (const aws::ConfigError& error) {
            outcome.error = error.what();
        } catch (const aws::CredentialsError& error) {
            outcome.error = std::string("no AWS credentials: ") + error.what();
        } catch (const LookupError& error) {
            outcome.error = error.what();
        } catch (const std::exception& error) {
            // Nothing was fetched yet, so no message here can hold the value.
            outcome.error = error.what();
        }
        cached = lookup.values.emplace(cache_key, std::move(outcome)).first;
    }
    const std::string name = reference_text(reference);
    if (!cached->second.error.empty()) throw LookupError(name + ": " + cached->second.error);
    if (reference.json_key.empty()) return cached->second.value;
    try {
        std::string picked = pick_json_key(cached->second.value, reference.json_key);
        register_secret(picked);
        return picked;
    } catch (const LookupError& error) {
        throw LookupError(name + "#" + reference.json_key + ": " + error.what());
    }
}

void set_environment(SecretLookupEnvironment environment) {
    LookupState& lookup = state();
    std::lock_guard lock(lookup.mutex);
    lookup.environment = std::move(environment);
    lookup.values.clear();
    lookup.clients.clear();
}

void clear_cache() {
    LookupState& lookup = state();
    std::lock_guard lock(lookup.mutex);
    lookup.values.clear();
    lookup.clients.clear();
}

}  // namespace tattle::aws_secrets
