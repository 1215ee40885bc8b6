#include "tattle/aws/credentials.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include "sts.hpp"

namespace tattle::aws {

namespace {

using Clock = std::chrono::system_clock;
using namespace std::chrono_literals;
using Fetch = std::function<Credentials()>;
using TimeSource = std::function<Clock::time_point()>;

// The options' clock, the system clock when they name none.
TimeSource time_source(const CredentialsOptions& options) {
    if (options.clock) return options.clock;
    return [] { return Clock::now(); };
}

// Link-local metadata endpoints answer within milliseconds when they exist at all; a long
// wait would only delay the "no credentials" error off EC2.
constexpr auto kContainerTimeout = 2s;
constexpr int kContainerAttempts = 3;
constexpr std::string_view kEcsHost = "169.254.170.2";
constexpr std::string_view kImdsDefaultEndpoint = "http://169.254.169.254";
constexpr std::string_view kImdsIpv6Endpoint = "http://[fd00:ec2::254]";
constexpr std::string_view kImdsTokenTtlSeconds = "21600";
// After a failed refresh, credentials that still work are kept and the fetch is retried
// no sooner than this.
constexpr auto kRetryAfterFailedRefresh = 10s;

std::string in_quotes(std::string_view text) { return "\"" + std::string(text) + "\""; }

std::string trim_copy(std::string_view text) {
    const auto first = text.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos) return {};
    const auto last = text.find_last_not_of(" \t\r\n");
    return std::string(text.substr(first, last - first + 1));
}

std::string lower(std::string_view text) {
    std::string result(text);
    std::transform(result.begin(), result.end(), result.begin(),
                   [](unsigned char c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c); });
    return result;
}

std::string join(const std::vector<std::string>& parts, std::string_view separator) {
    std::string result;
    for (const auto& part : parts) {
        if (!result.empty()) result += separator;
        result += part;
    }
    return result;
}

std::string read_text_file(const std::string& path, std::string_view what) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw CredentialsError("cannot read " + std::string(what) + " (" + path + "): " + std::strerror(errno));
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

std::optional<std::string> property(const Properties& properties, std::string_view key) {
    const auto found = properties.find(key);
    if (found == properties.end() || found->second.empty()) return std::nullopt;
    return found->second;
}

// ---------------------------------------------------------------------------------------
// Caching

class StaticProvider final : public CredentialsProvider {
public:
    explicit StaticProvider(Credentials credentials) : credentials_(std::move(credentials)) {}
    Credentials credentials() override { return credentials_; }

private:
    const Credentials credentials_;
};

// Credentials and when their fetch began: their lifetime is counted from then.
struct FetchedCredentials {
    Credentials credentials;
    Clock::time_point fetched_at;
};

// Holds the last credentials and fetches new ones when they come near expiry. Callers wait
// on the lock during a fetch: they would need the new credentials anyway.
class RefreshingProvider final : public CredentialsProvider {
public:
    RefreshingProvider(Fetch fetch, std::chrono::seconds margin, TimeSource now)
        : fetch_(std::move(fetch)), margin_(margin), now_(std::move(now)) {}
    // Starts with credentials fetched before (a source that had to be asked to know it is
    // there), refreshed as if this provider had fetched them when they were.
    RefreshingProvider(Fetch fetch, std::chrono::seconds margin, TimeSource now, FetchedCredentials first)
        : fetch_(std::move(fetch)),
          margin_(margin),
          now_(std::move(now)),
          cached_(std::move(first.credentials)),
          fetched_at_(first.fetched_at) {}

    Credentials credentials() override {
        std::lock_guard lock(mutex_);
        const auto now = now_();
        if (cached_ && !due_for_refresh(now)) return *cached_;
        if (cached_ && still_valid(now) && now < next_attempt_) return *cached_;
        try {
            Credentials fresh = fetch_();
            cached_ = fresh;
            fetched_at_ = now;
            return fresh;
        } catch (const CredentialsError&) {
            if (cached_ && still_valid(now)) {
                next_attempt_ = now + kRetryAfterFailedRefresh;
                return *cached_;
            }
            throw;
        }
    }

private:
    bool due_for_refresh(Clock::time_point now) const {
        if (!cached_->expiration) return false;
        const auto lifetime = *cached_->expiration - fetched_at_;
        const auto margin = std::min<Clock::duration>(margin_, lifetime / 2);
        return now >= *cached_->expiration - margin;
    }
    bool still_valid(Clock::time_point now) const { return !cached_->expiration || now < *cached_->expiration; }

    std::mutex mutex_;
    const Fetch fetch_;
    const std::chrono::seconds margin_;
    const TimeSource now_;
    std::optional<Credentials> cached_;
    Clock::time_point fetched_at_{};
    Clock::time_point next_attempt_{};
};

// ---------------------------------------------------------------------------------------
// Metadata endpoints (container, IMDS): plain HTTP to link-local or loopback addresses,
// never through a proxy.

http::ClientOptions metadata_client_options(std::chrono::milliseconds timeout, const http::ClientOptions& base) {
    http::ClientOptions options;
    options.connect_timeout = timeout;
    options.total_timeout = timeout * 2;
    options.https_proxy = "";
    options.no_proxy = "";
    options.ca_file = base.ca_file;
    options.verify_peer = base.verify_peer;
    options.user_agent = base.user_agent;
    options.max_response_bytes = 64 * 1024;
    return options;
}

// The JSON both metadata services answer with.
Credentials parse_credentials_json(std::string_view body, const std::string& context) {
    boost::system::error_code error;
    const auto document = boost::json::parse(body, error);
    if (error || !document.is_object()) throw CredentialsError(context + ": the response is not a JSON object");
    const auto& object = document.as_object();
    auto text = [&](std::string_view key) -> std::string {
        const auto* value = object.if_contains(key);
        return value != nullptr && value->is_string() ? std::string(value->as_string()) : std::string{};
    };
    if (const auto code = text("Code"); !code.empty() && code != "Success") {
        throw CredentialsError(context + ": the service answered Code " + in_quotes(code));
    }
    Credentials credentials;
    credentials.access_key_id = text("AccessKeyId");
    credentials.secret_access_key = text("SecretAccessKey");
    credentials.session_token = text("Token");
    if (credentials.access_key_id.empty() || credentials.secret_access_key.empty()) {
        throw CredentialsError(context + ": the response has no AccessKeyId or SecretAccessKey");
    }
    if (const auto expiration = text("Expiration"); !expiration.empty()) {
        credentials.expiration = parse_iso8601(expiration);
        if (!credentials.expiration) throw CredentialsError(context + ": the response's Expiration is not a date");
    }
    return credentials;
}

bool is_allowed_plain_http_host(std::string_view host) {
    // Loopback, and the fixed ECS and EKS Pod Identity agent addresses: the only places
    // where a plain-HTTP credentials endpoint is not an invitation to steal the token.
    if (host == "localhost" || host == "::1" || host == "169.254.170.2" || host == "169.254.170.23" ||
        host == "fd00:ec2::23") {
        return true;
    }
    return host.starts_with("127.") &&
           std::all_of(host.begin(), host.end(), [](char c) { return c == '.' || (c >= '0' && c <= '9'); });
}

struct ContainerEndpoint {
    std::string url;
    std::string variable;  // the variable it came from, for messages
};

std::optional<ContainerEndpoint> container_endpoint(const Environment& env) {
    if (auto relative = env_value(env, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")) {
        if (!relative->starts_with('/')) relative = "/" + *relative;
        return ContainerEndpoint{"http://" + std::string(kEcsHost) + *relative, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"};
    }
    if (auto full = env_value(env, "AWS_CONTAINER_CREDENTIALS_FULL_URI")) {
        const std::string variable = "AWS_CONTAINER_CREDENTIALS_FULL_URI";
        const auto parsed = boost::urls::parse_uri(*full);
        if (!parsed || !parsed->has_authority() ||
            (parsed->scheme_id() != boost::urls::scheme::http && parsed->scheme_id() != boost::urls::scheme::https)) {
            throw CredentialsError(variable + " is not an http:// or https:// URL");
        }
        if (parsed->scheme_id() == boost::urls::scheme::http) {
            std::string host = parsed->host_address();
            if (host.starts_with('[')) host = host.substr(1, host.size() - 2);
            if (!is_allowed_plain_http_host(host)) {
                throw CredentialsError(variable +
                                       ": plain http:// is allowed only to a loopback address or the ECS/EKS "
                                       "credentials endpoints; use https://");
            }
        }
        return ContainerEndpoint{*full, variable};
    }
    return std::nullopt;
}

Fetch container_fetch(ContainerEndpoint endpoint, Environment env, http::ClientOptions base_http) {
    return [endpoint = std::move(endpoint), env = std::move(env), base_http = std::move(base_http)]() {
        const std::string context = "credentials from " + endpoint.variable + " (" + http::redact_url(endpoint.url) + ")";
        // Read on every fetch: EKS Pod Identity rotates the token file.
        std::string token;
        if (const auto token_file = env_value(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")) {
            token = trim_copy(read_text_file(*token_file, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"));
        } else if (const auto token_value = env_value(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN")) {
            token = *token_value;
        }
        if (token.find_first_of("\r\n") != std::string::npos) {
            throw CredentialsError(context + ": the authorization token contains a line break");
        }

        http::Request request;
        request.method = "GET";
        request.url = endpoint.url;
        request.headers.emplace_back("Accept", "application/json");
        if (!token.empty()) request.headers.emplace_back("Authorization", token);

        http::Client client(metadata_client_options(kContainerTimeout, base_http));
        client.allow_plain_http(true);
        std::string last_failure;
        for (int attempt = 1; attempt <= kContainerAttempts; ++attempt) {
            if (attempt > 1) std::this_thread::sleep_for(std::chrono::milliseconds(250 * attempt));
            try {
                const auto response = client.send(request);
                if (response.status == 200) {
                    Credentials credentials = parse_credentials_json(response.body, context);
                    credentials.source = "container credentials (" + endpoint.variable + ")";
                    return credentials;
                }
                last_failure = "HTTP " + std::to_string(response.status);
                // Only a server error may go away by itself; a 4xx (bad token) will not.
                if (response.status < 500) break;
            } catch (const http::TransportError& error) {
                last_failure = error.what();
                if (error.kind() == http::TransportError::Kind::InvalidRequest) break;
            }
        }
        throw CredentialsError(context + ": " + last_failure);
    };
}

// IMDSv2: a session token from PUT /latest/api/token, sent with every GET. Falls back to
// IMDSv1 (no token) when the token call is refused as unsupported, as the SDKs do, unless
// AWS_EC2_METADATA_V1_DISABLED=true.
class InstanceMetadata {
public:
    InstanceMetadata(std::string endpoint, std::chrono::milliseconds timeout, int attempts, bool v1_allowed,
                     const http::ClientOptions& base_http, TimeSource now)
        : endpoint_(std::move(endpoint)),
          attempts_(std::max(1, attempts)),
          v1_allowed_(v1_allowed),
          now_(std::move(now)),
          client_(metadata_client_options(timeout, base_http)) {
        client_.allow_plain_http(true);
    }

    const std::string& endpoint() const { return endpoint_; }

    Credentials fetch() {
        const std::string role =
            first_line(get("/latest/meta-data/iam/security-credentials/", "the instance's IAM role"));
        if (role.empty()) throw CredentialsError(context() + ": no IAM role is attached to the instance");
        Credentials credentials = parse_credentials_json(
            get("/latest/meta-data/iam/security-credentials/" + role, "the role's credentials"), context());
        credentials.source = "EC2 instance metadata (role " + role + ")";
        return credentials;
    }

private:
    std::string context() const { return "credentials from EC2 instance metadata at " + endpoint_; }

    static std::string first_line(const std::string& text) { return trim_copy(text.substr(0, text.find('\n'))); }

    // One client for every request of this instance (a fetch is three): its connection is
    // kept alive between them. Callers take turns (the refreshing provider's lock).
    http::Response send(http::Request request) {
        std::string last_failure;
        for (int attempt = 1; attempt <= attempts_; ++attempt) {
            try {
                return client_.send(request);
            } catch (const http::TransportError& error) {
                last_failure = error.what();
            }
        }
        throw CredentialsError(context() + ": " + last_failure);
    }

    // Empty when IMDSv1 is in use.
    std::string session_token() {
        const auto now = now_();
        if (token_ && now < token_expiry_) return *token_;
        http::Request request;
        request.method = "PUT";
        request.url = endpoint_ + "/latest/api/token";
        request.headers.emplace_back("X-aws-ec2-metadata-token-ttl-seconds", std::string(kImdsTokenTtlSeconds));
        const auto response = send(request);
        if (response.status == 200 && !trim_copy(response.body).empty()) {
            token_ = trim_copy(response.body);
            // Renewed well before the 6 hours the token was asked for.
            token_expiry_ = now + 5h;
            return *token_;
        }
        if ((response.status == 403 || response.status == 404 || response.status == 405) && v1_allowed_) {
            token_ = std::string{};
            token_expiry_ = now + 5min;  // ask again later: IMDSv2 may be enabled meanwhile
            return *token_;
        }
        throw CredentialsError(context() + ": the IMDSv2 session token request got HTTP " +
                               std::to_string(response.status));
    }

    std::string get(const std::string& path, std::string_view what) {
        for (int round = 0; round < 2; ++round) {
            http::Request request;
            request.method = "GET";
            request.url = endpoint_ + path;
            if (const std::string token = session_token(); !token.empty()) {
                request.headers.emplace_back("X-aws-ec2-metadata-token", token);
            }
            const auto response = send(request);
            if (response.status == 200) return response.body;
            if (response.status == 401 && round == 0) {
                token_.reset();  // expired or revoked session token: get a new one, once
                continue;
            }
            if (response.status == 404) {
                throw CredentialsError(context() + ": " + std::string(what) + " not found (HTTP 404)" +
                                       (path.ends_with('/') ? "; is an IAM role attached to the instance?" : ""));
            }
            throw CredentialsError(context() + ": " + std::string(what) + ": HTTP " + std::to_string(response.status));
        }
        throw CredentialsError(context() + ": " + std::string(what) + ": HTTP 401");
    }

    const std::string endpoint_;
    const int attempts_;
    const bool v1_allowed_;
    const TimeSource now_;
    http::Client client_;
    std::optional<std::string> token_;
    Clock::time_point token_expiry_{};
};

std::shared_ptr<InstanceMetadata> make_instance_metadata(const Environment& env, const http::ClientOptions& http,
                                                         const TimeSource& now) {
    std::string endpoint(kImdsDefaultEndpoint);
    if (auto configured = env_value(env, "AWS_EC2_METADATA_SERVICE_ENDPOINT")) {
        endpoint = trim_copy(*configured);
    } else if (auto mode = env_value(env, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE"); mode && lower(*mode) == "ipv6") {
        endpoint = kImdsIpv6Endpoint;
    }
    while (endpoint.ends_with('/')) endpoint.pop_back();

    auto seconds_setting = [&](std::string_view name, int default_value) {
        const auto value = env_value(env, name);
        if (!value) return default_value;
        int parsed = 0;
        const auto [end, error] = std::from_chars(value->data(), value->data() + value->size(), parsed);
        if (error != std::errc{} || end != value->data() + value->size() || parsed < 1) {
            throw CredentialsError(std::string(name) + " must be a whole number of at least 1");
        }
        return parsed;
    };
    const auto timeout = std::chrono::seconds(seconds_setting("AWS_METADATA_SERVICE_TIMEOUT", 1));
    const int attempts = seconds_setting("AWS_METADATA_SERVICE_NUM_ATTEMPTS", 1);
    const bool v1_allowed = !env_flag(env, "AWS_EC2_METADATA_V1_DISABLED");
    return std::make_shared<InstanceMetadata>(endpoint, timeout, attempts, v1_allowed, http, now);
}

// ---------------------------------------------------------------------------------------
// The chain

// What a chain step found: a provider, or nullptr and why not (for the final message).
struct StepResult {
    std::shared_ptr<CredentialsProvider> provider;
    std::string not_found;
};

class Chain {
public:
    explicit Chain(CredentialsOptions options) : options_(std::move(options)), now_(time_source(options_)) {
        if (!options_.environment) options_.environment = process_environment();
    }

    std::shared_ptr<CredentialsProvider> resolve() {
        std::vector<std::string> tried;
        for (auto step : {&Chain::from_environment, &Chain::from_web_identity, &Chain::from_shared_files,
                          &Chain::from_container, &Chain::from_instance_metadata}) {
            auto [provider, not_found] = (this->*step)();
            if (provider) return provider;
            tried.push_back(std::move(not_found));
        }
        throw CredentialsError("no AWS credentials found; tried " + join(tried, "; "));
    }

private:
    const Environment& env() const { return options_.environment; }

    const SharedConfig& shared_config() {
        if (!shared_config_) {
            try {
                shared_config_ = SharedConfig::load(env());
            } catch (const ConfigError& error) {
                throw CredentialsError(std::string("shared AWS config: ") + error.what());
            }
        }
        return *shared_config_;
    }

    std::string profile_name() const { return selected_profile(env(), options_.profile); }

    std::string sts_region(std::string_view profile) {
        try {
            return find_region(options_.region, env(), shared_config(), profile).value_or("");
        } catch (const ConfigError& error) {
            throw CredentialsError(error.what());
        }
    }

    AssumeRoleParameters role_parameters(std::string role_arn, std::string session_name, std::string external_id,
                                         std::chrono::seconds duration, std::string_view profile) {
        AssumeRoleParameters parameters;
        parameters.role_arn = std::move(role_arn);
        parameters.role_session_name = std::move(session_name);
        parameters.external_id = std::move(external_id);
        parameters.duration = duration;
        parameters.region = sts_region(profile);
        try {
            parameters.sts_endpoint = resolve_endpoint(service::sts, parameters.region, options_.sts_endpoint_url, env(),
                                                       shared_config(), profile);
        } catch (const ConfigError& error) {
            throw CredentialsError(std::string("the STS endpoint: ") + error.what());
        }
        return parameters;
    }

    StepResult from_environment() {
        const auto access_key = env_value(env(), "AWS_ACCESS_KEY_ID");
        const auto secret_key = env_value(env(), "AWS_SECRET_ACCESS_KEY");
        if (!access_key && !secret_key) return {nullptr, "environment (AWS_ACCESS_KEY_ID not set)"};
        if (!access_key) throw CredentialsError("environment: AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not");
        if (!secret_key) throw CredentialsError("environment: AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
        Credentials credentials;
        credentials.access_key_id = trim_copy(*access_key);
        credentials.secret_access_key = trim_copy(*secret_key);
        credentials.session_token =
            trim_copy(env_value(env(), "AWS_SESSION_TOKEN").value_or(env_value(env(), "AWS_SECURITY_TOKEN").value_or("")));
        credentials.source = "environment";
        return {std::make_shared<StaticProvider>(std::move(credentials)), {}};
    }

    StepResult from_web_identity() {
        const auto token_file = env_value(env(), "AWS_WEB_IDENTITY_TOKEN_FILE");
        const auto role_arn = env_value(env(), "AWS_ROLE_ARN");
        if (!token_file || !role_arn) return {nullptr, "web identity (AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN not set)"};
        auto parameters = role_parameters(*role_arn, env_value(env(), "AWS_ROLE_SESSION_NAME").value_or(""), "",
                                          options_.role_duration, profile_name());
        if (parameters.role_session_name.empty()) parameters.role_session_name = detail::default_session_name();
        Fetch fetch = [parameters, token_file = *token_file, http = options_.http]() {
            const std::string token = trim_copy(read_text_file(token_file, "AWS_WEB_IDENTITY_TOKEN_FILE"));
            return detail::assume_role_with_web_identity(token, parameters, http);
        };
        return {std::make_shared<RefreshingProvider>(std::move(fetch), options_.refresh_margin, now_),
                {}};
    }

    StepResult from_shared_files() {
        const SharedConfig& config = shared_config();
        const std::string profile = profile_name();
        const bool chosen_explicitly = !trim_copy(options_.profile).empty() || env_value(env(), "AWS_PROFILE") ||
                                       env_value(env(), "AWS_DEFAULT_PROFILE");
        const std::string where = config.credentials_path() + (config.credentials_found() ? "" : " (not found)") +
                                  " and " + config.config_path() + (config.config_found() ? "" : " (not found)");
        if (!config.profile(profile)) {
            if (chosen_explicitly) {
                throw CredentialsError("profile " + in_quotes(profile) + " not found in " + where);
            }
            return {nullptr, "shared files (no profile " + in_quotes(profile) + " in " + where + ")"};
        }
        std::set<std::string> visited;
        auto provider = profile_provider(profile, visited);
        if (!provider) {
            return {nullptr, "shared files (profile " + in_quotes(profile) + " in " + where +
                                 " has no aws_access_key_id or role_arn)"};
        }
        return {std::move(provider), {}};
    }

    // nullptr when the profile holds neither keys nor a role.
    std::shared_ptr<CredentialsProvider> profile_provider(const std::string& profile, std::set<std::string>& visited) {
        const SharedConfig& config = shared_config();
        const auto properties = config.profile(profile);
        if (!properties) throw CredentialsError("source_profile " + in_quotes(profile) + " not found");
        const std::string label = "profile " + in_quotes(profile);
        visited.insert(profile);

        for (const char* unsupported : {"credential_process", "sso_session", "sso_start_url", "mfa_serial"}) {
            if (property(*properties, unsupported) && !property(*properties, "aws_access_key_id")) {
                throw CredentialsError(label + " uses " + unsupported + ", which tattle does not support; give it "
                                       "access keys, a role_arn with source_profile or credential_source, or use "
                                       "another source of credentials");
            }
        }

        if (const auto role_arn = property(*properties, "role_arn")) {
            std::shared_ptr<CredentialsProvider> base;
            const auto source_profile = property(*properties, "source_profile");
            const auto credential_source = property(*properties, "credential_source");
            if (source_profile && credential_source) {
                throw CredentialsError(label + " has both source_profile and credential_source");
            }
            if (source_profile) {
                // A profile naming itself means "my own keys" (the SDKs allow it); any other
                // repeat is a loop.
                if (*source_profile == profile) {
                    base = static_profile_provider(profile, *properties);
                    if (!base) throw CredentialsError(label + " is its own source_profile but has no access keys");
                } else if (visited.contains(*source_profile)) {
                    throw CredentialsError(label + ": the source_profile chain loops back to " +
                                           in_quotes(*source_profile));
                } else {
                    base = profile_provider(*source_profile, visited);
                    if (!base) {
                        throw CredentialsError("source_profile " + in_quotes(*source_profile) + " of " + label +
                                               " has no access keys or role");
                    }
                }
            } else if (credential_source) {
                base = credential_source_provider(*credential_source, label);
            } else {
                throw CredentialsError(label + " has role_arn but neither source_profile nor credential_source");
            }
            std::chrono::seconds duration = options_.role_duration;
            if (const auto seconds = property(*properties, "duration_seconds")) {
                int parsed = 0;
                const auto [end, error] = std::from_chars(seconds->data(), seconds->data() + seconds->size(), parsed);
                if (error != std::errc{} || end != seconds->data() + seconds->size() || parsed < 900) {
                    throw CredentialsError(label + ": duration_seconds must be a whole number of at least 900");
                }
                duration = std::chrono::seconds(parsed);
            }
            auto parameters = role_parameters(*role_arn, property(*properties, "role_session_name").value_or(""),
                                              property(*properties, "external_id").value_or(""), duration, profile);
            return make_assume_role_provider(std::move(base), std::move(parameters), options_);
        }
        return static_profile_provider(profile, *properties);
    }

    std::shared_ptr<CredentialsProvider> static_profile_provider(const std::string& profile,
                                                                 const Properties& properties) {
        const SharedConfig& config = shared_config();
        const auto access_key = property(properties, "aws_access_key_id");
        if (!access_key) return nullptr;
        // Name the file the key came from: the credentials file wins when both have it.
        const Properties* in_credentials = config.credentials_profile(profile);
        const bool from_credentials_file = in_credentials != nullptr && property(*in_credentials, "aws_access_key_id");
        const std::string label = "profile " + in_quotes(profile) + " in " +
                                  (from_credentials_file ? config.credentials_path() : config.config_path());
        const auto secret_key = property(properties, "aws_secret_access_key");
        if (!secret_key) throw CredentialsError(label + " has aws_access_key_id but no aws_secret_access_key");
        Credentials credentials;
        credentials.access_key_id = *access_key;
        credentials.secret_access_key = *secret_key;
        credentials.session_token =
            property(properties, "aws_session_token").value_or(property(properties, "aws_security_token").value_or(""));
        credentials.source = label;
        return std::make_shared<StaticProvider>(std::move(credentials));
    }

    std::shared_ptr<CredentialsProvider> credential_source_provider(const std::string& source, const std::string& label) {
        if (source == "Environment") {
            auto [provider, not_found] = from_environment();
            if (!provider) throw CredentialsError(label + ": credential_source Environment, but " + not_found);
            return provider;
        }
        if (source == "EcsContainer") {
            auto [provider, not_found] = from_container();
            if (!provider) throw CredentialsError(label + ": credential_source EcsContainer, but " + not_found);
            return provider;
        }
        if (source == "Ec2InstanceMetadata") {
            auto metadata = make_instance_metadata(env(), options_.http, now_);
            return std::make_shared<RefreshingProvider>([metadata] { return metadata->fetch(); },
                                                        options_.refresh_margin, now_);
        }
        throw CredentialsError(label + ": credential_source must be Environment, EcsContainer or Ec2InstanceMetadata");
    }

    StepResult from_container() {
        auto endpoint = container_endpoint(env());
        if (!endpoint) {
            return {nullptr,
                    "container credentials (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and "
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI not set)"};
        }
        return {std::make_shared<RefreshingProvider>(container_fetch(std::move(*endpoint), env(), options_.http),
                                                     options_.refresh_margin, now_),
                {}};
    }

    StepResult from_instance_metadata() {
        if (env_flag(env(), "AWS_EC2_METADATA_DISABLED")) {
            return {nullptr, "EC2 instance metadata (disabled by AWS_EC2_METADATA_DISABLED)"};
        }
        auto metadata = make_instance_metadata(env(), options_.http, now_);
        // Unlike the other sources, being configured cannot be told from the environment:
        // the first fetch decides, and a failure means "not on EC2".
        try {
            const auto fetched_at = now_();
            FetchedCredentials first{metadata->fetch(), fetched_at};
            auto provider = std::make_shared<RefreshingProvider>([metadata] { return metadata->fetch(); },
                                                                 options_.refresh_margin, now_,
                                                                 std::move(first));
            return {std::move(provider), {}};
        } catch (const CredentialsError& error) {
            std::string reason = error.what();
            if (const std::string_view prefix = "credentials from "; reason.starts_with(prefix)) {
                reason.erase(0, prefix.size());
            }
            return {nullptr, reason};
        }
    }

    CredentialsOptions options_;
    const TimeSource now_;  // for every provider the chain makes
    std::optional<SharedConfig> shared_config_;
};

// Resolves the chain on first use; retries the resolution after a failure (the metadata
// endpoint may come up, a file may be fixed) until one source has answered.
class ChainProvider final : public CredentialsProvider {
public:
    explicit ChainProvider(CredentialsOptions options) : options_(std::move(options)) {}

    Credentials credentials() override {
        std::shared_ptr<CredentialsProvider> provider;
        {
            std::lock_guard lock(mutex_);
            if (!chosen_) chosen_ = Chain(options_).resolve();
            provider = chosen_;
        }
        return provider->credentials();
    }

private:
    std::mutex mutex_;
    const CredentialsOptions options_;
    std::shared_ptr<CredentialsProvider> chosen_;
};

}  // namespace

std::optional<std::chrono::system_clock::time_point> parse_iso8601(std::string_view text) {
    const auto leading = text.find_first_not_of(" \t\r\n");
    if (leading == std::string_view::npos) return std::nullopt;
    text.remove_prefix(leading);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);

    std::size_t position = 0;
    auto number = [&](std::size_t digits) -> std::optional<int> {
        if (position + digits > text.size()) return std::nullopt;
        int value = 0;
        const auto [end, error] = std::from_chars(text.data() + position, text.data() + position + digits, value);
        if (error != std::errc{} || end != text.data() + position + digits) return std::nullopt;
        position += digits;
        return value;
    };
    auto expect = [&](char c) {
        if (position < text.size() && text[position] == c) {
            ++position;
            return true;
        }
        return false;
    };
    const auto year = number(4);
    if (!year || !expect('-')) return std::nullopt;
    const auto month = number(2);
    if (!month || !expect('-')) return std::nullopt;
    const auto day = number(2);
    if (!day || !(expect('T') || expect('t') || expect(' '))) return std::nullopt;
    const auto hour = number(2);
    if (!hour || !expect(':')) return std::nullopt;
    const auto minute = number(2);
    if (!minute || !expect(':')) return std::nullopt;
    const auto second = number(2);
    if (!second) return std::nullopt;
    std::chrono::nanoseconds fraction{0};
    if (expect('.')) {
        long long scale = 100'000'000;
        const std::size_t start = position;
        while (position < text.size() && text[position] >= '0' && text[position] <= '9') {
            fraction += std::chrono::nanoseconds((text[position] - '0') * scale);
            scale /= 10;
            ++position;
        }
        if (position == start) return std::nullopt;
    }
    std::chrono::minutes offset{0};
    if (expect('Z') || expect('z')) {
    } else if (position < text.size() && (text[position] == '+' || text[position] == '-')) {
        const bool negative = text[position] == '-';
        ++position;
        const auto offset_hours = number(2);
        if (!offset_hours) return std::nullopt;
        expect(':');
        const auto offset_minutes = number(2);
        if (!offset_minutes) return std::nullopt;
        offset = std::chrono::hours(*offset_hours) + std::chrono::minutes(*offset_minutes);
        if (negative) offset = -offset;
    } else {
        return std::nullopt;
    }
    if (position != text.size()) return std::nullopt;

    const std::chrono::year_month_day date{std::chrono::year{*year}, std::chrono::month{static_cast<unsigned>(*month)},
                                           std::chrono::day{static_cast<unsigned>(*day)}};
    if (!date.ok() || *hour > 23 || *minute > 59 || *second > 60) return std::nullopt;
    const auto time = std::chrono::sys_days{date} + std::chrono::hours(*hour) + std::chrono::minutes(*minute) +
                      std::chrono::seconds(*second) - offset;
    return std::chrono::time_point_cast<Clock::duration>(time + fraction);
}

std::shared_ptr<CredentialsProvider> make_static_credentials_provider(Credentials credentials) {
    return std::make_shared<StaticProvider>(std::move(credentials));
}

std::shared_ptr<CredentialsProvider> make_assume_role_provider(std::shared_ptr<CredentialsProvider> base,
                                                               AssumeRoleParameters parameters,
                                                               CredentialsOptions options) {
    if (!base) throw CredentialsError("sts:AssumeRole needs base credentials");
    if (parameters.role_arn.empty()) throw CredentialsError("sts:AssumeRole needs a role ARN");
    if (parameters.role_session_name.empty()) parameters.role_session_name = detail::default_session_name();
    Fetch fetch = [base = std::move(base), parameters = std::move(parameters), http = options.http]() {
        return detail::assume_role(base->credentials(), parameters, http);
    };
    return std::make_shared<RefreshingProvider>(std::move(fetch), options.refresh_margin, time_source(options));
}

std::shared_ptr<CredentialsProvider> make_credentials_provider(CredentialsOptions options) {
    if (!options.environment) options.environment = process_environment();
    auto chain = std::make_shared<ChainProvider>(options);
    if (trim_copy(options.role_arn).empty()) return chain;

    const std::string profile = selected_profile(options.environment, options.profile);
    AssumeRoleParameters parameters;
    parameters.role_arn = trim_copy(options.role_arn);
    parameters.role_session_name = trim_copy(options.role_session_name);
    parameters.external_id = options.external_id;
    parameters.duration = options.role_duration;
    try {
        const SharedConfig config = SharedConfig::load(options.environment);
        parameters.region = find_region(options.region, options.environment, config, profile).value_or("");
        parameters.sts_endpoint = resolve_endpoint(service::sts, parameters.region, options.sts_endpoint_url,
                                                   options.environment, config, profile);
    } catch (const ConfigError& error) {
        throw CredentialsError(std::string("sts:AssumeRole of ") + parameters.role_arn + ": " + error.what());
    }
    return make_assume_role_provider(std::move(chain), std::move(parameters), std::move(options));
}

}  // namespace tattle::aws
