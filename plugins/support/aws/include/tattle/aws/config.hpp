#pragma once

// Where AWS settings come from, the way the AWS SDKs and CLI read them: environment
// variables, the shared config file (~/.aws/config, "[profile name]" sections) and the
// shared credentials file (~/.aws/credentials, "[name]" sections); region and endpoint
// resolution on top of them.

#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace tattle::aws {

// A bad setting or a malformed file. Messages name the file and line or the variable,
// never a value that could be a secret.
class ConfigError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Reads one environment variable. Tests pass a fixed map instead of changing the process's.
using Environment = std::function<std::optional<std::string>(std::string_view name)>;
Environment process_environment();
Environment fixed_environment(std::map<std::string, std::string, std::less<>> variables);

// The variable's value, or nullopt when unset or empty (the SDKs treat both alike).
std::optional<std::string> env_value(const Environment& env, std::string_view name);
// "true"/"false" in any case; anything else is a ConfigError naming the variable.
bool env_flag(const Environment& env, std::string_view name, bool default_value = false);

// Lower-cased keys. A nested property ("s3 =" followed by indented "endpoint_url = …")
// is stored as "s3.endpoint_url".
using Properties = std::map<std::string, std::string, std::less<>>;

// One file of the shared format: section name (as written between the brackets, trimmed)
// to its properties. Lines starting with '#' or ';' are comments, as is the rest of a line
// after whitespace and '#' or ';'. Throws ConfigError("path:line: …").
std::map<std::string, Properties, std::less<>> parse_ini(std::string_view text, std::string_view path_for_errors);

// Both shared files, read once.
class SharedConfig {
public:
    // Paths from AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/config and
    // ~/.aws/credentials ("~" is HOME). A missing file is empty, not an error; an
    // unreadable or malformed one throws ConfigError.
    static SharedConfig load(const Environment& env);
    static SharedConfig load(const std::string& config_path, const std::string& credentials_path);

    const std::string& config_path() const { return config_path_; }
    const std::string& credentials_path() const { return credentials_path_; }
    bool config_found() const { return config_found_; }
    bool credentials_found() const { return credentials_found_; }

    // A profile's properties in one file, if that file has the profile.
    const Properties* config_profile(std::string_view name) const;
    const Properties* credentials_profile(std::string_view name) const;
    // Both files merged, the credentials file winning (as the SDKs do); nullopt when neither has it.
    std::optional<Properties> profile(std::string_view name) const;
    // A "[services name]" section of the config file.
    const Properties* services(std::string_view name) const;

private:
    std::string config_path_;
    std::string credentials_path_;
    bool config_found_ = false;
    bool credentials_found_ = false;
    std::map<std::string, Properties, std::less<>> config_profiles_;
    std::map<std::string, Properties, std::less<>> credentials_profiles_;
    std::map<std::string, Properties, std::less<>> services_;
};

// The profile in use: `configured` (a plugin's `profile` key) when set, else AWS_PROFILE,
// else AWS_DEFAULT_PROFILE, else "default".
std::string selected_profile(const Environment& env, std::string_view configured = {});

// Region: `configured` (a plugin's `region` key), AWS_REGION, AWS_DEFAULT_REGION, then the
// profile's `region` in the config file.
std::optional<std::string> find_region(std::string_view configured, const Environment& env, const SharedConfig& config,
                                       std::string_view profile);
// The same, or a ConfigError saying every place that was looked at.
std::string resolve_region(std::string_view configured, const Environment& env, const SharedConfig& config,
                           std::string_view profile);

// How one service is named in host names, signatures and settings.
struct ServiceId {
    std::string_view endpoint_prefix;  // host label: "s3", "sqs", "email" (SES)
    std::string_view signing_name;     // SigV4 service: "s3", "sqs", "ses"
    std::string_view env_suffix;       // AWS_ENDPOINT_URL_<env_suffix>: "S3", "SECRETS_MANAGER"
    std::string_view config_key;       // key in a "[services …]" section: "s3", "secrets_manager"
};

namespace service {
inline constexpr ServiceId s3{"s3", "s3", "S3", "s3"};
inline constexpr ServiceId sqs{"sqs", "sqs", "SQS", "sqs"};
inline constexpr ServiceId sns{"sns", "sns", "SNS", "sns"};
inline constexpr ServiceId ses{"email", "ses", "SES", "ses"};
inline constexpr ServiceId sts{"sts", "sts", "STS", "sts"};
inline constexpr ServiceId ssm{"ssm", "ssm", "SSM", "ssm"};
inline constexpr ServiceId secrets_manager{"secretsmanager", "secretsmanager", "SECRETS_MANAGER", "secrets_manager"};
}  // namespace service

struct Endpoint {
    std::string url;     // scheme://host[:port][/base path], never a trailing slash
    std::string source;  // "endpoint_url", "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL", "profile \"p\" in <file>", "default"
    bool is_custom() const { return source != "default"; }
};

// Endpoint, in the SDKs' order: `configured` (a plugin's `endpoint_url`), AWS_ENDPOINT_URL_<SERVICE>,
// AWS_ENDPOINT_URL, the profile's "[services …]" section, the profile's `endpoint_url`
// (the four configured ones skipped when AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true or the
// profile says ignore_configured_endpoint_urls = true), else
// https://<prefix>.<region>.amazonaws.com (.amazonaws.com.cn in China; STS without a region:
// the global https://sts.amazonaws.com). Throws ConfigError for a URL that is not http(s)
// with a host, or for no region when one is needed.
Endpoint resolve_endpoint(const ServiceId& service, std::string_view region, std::string_view configured,
                          const Environment& env, const SharedConfig& config, std::string_view profile);

enum class S3AddressingStyle {
    Auto,     // virtual-hosted when the bucket name allows it and the host is a name, not an IP or localhost
    Path,     // https://s3.<region>.amazonaws.com/<bucket>/<key>: local stacks (moto, MinIO, LocalStack)
    Virtual,  // https://<bucket>.s3.<region>.amazonaws.com/<key>
};

// The wire-form URL of an object (or of the bucket when `key` is empty); the key is
// uri_encode()d with its slashes kept. Add the query yourself.
std::string s3_url(const Endpoint& endpoint, std::string_view bucket, std::string_view key,
                   S3AddressingStyle style = S3AddressingStyle::Auto);

}  // namespace tattle::aws
