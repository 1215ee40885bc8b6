#include "tattle/aws/config.hpp"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/url/parse.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "tattle/aws/sigv4.hpp"
#include "tattle/http/client.hpp"

namespace tattle::aws {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }

std::string_view trim(std::string_view text) {
    while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
    while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
    return text;
}

std::string lower(std::string_view text) {
    std::string result(text);
    std::transform(result.begin(), result.end(), result.begin(),
                   [](unsigned char c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c); });
    return result;
}

std::string in_quotes(std::string_view text) { return "\"" + std::string(text) + "\""; }

// "value  # note" → "value": a comment starts at '#' or ';' after whitespace, so that a
// value may still contain either character (URLs with fragments, for instance).
std::string_view without_inline_comment(std::string_view value) {
    for (std::size_t i = 1; i < value.size(); ++i) {
        if ((value[i] == '#' || value[i] == ';') && is_space(value[i - 1])) return trim(value.substr(0, i));
    }
    return value;
}

std::string home_directory(const Environment& env) {
    if (auto home = env_value(env, "HOME")) return *home;
    std::array<char, 4096> buffer{};
    passwd entry{};
    passwd* found = nullptr;
    if (getpwuid_r(getuid(), &entry, buffer.data(), buffer.size(), &found) == 0 && found != nullptr &&
        found->pw_dir != nullptr) {
        return found->pw_dir;
    }
    return "~";
}

std::string expand_home(const std::string& path, const Environment& env) {
    if (path == "~") return home_directory(env);
    if (path.starts_with("~/")) return home_directory(env) + path.substr(1);
    return path;
}

// nullopt when the file does not exist.
std::optional<std::string> read_optional_file(const std::string& path) {
    std::error_code error;
    if (!std::filesystem::exists(path, error)) return std::nullopt;
    std::ifstream in(path, std::ios::binary);
    if (!in) throw ConfigError("cannot read " + path + ": " + std::strerror(errno));
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

void merge_into(Properties& target, const Properties& source) {
    for (const auto& [key, value] : source) target.insert_or_assign(key, value);
}

bool is_ip_or_localhost(std::string_view host) {
    if (host.starts_with('[')) return true;  // IPv6 literal
    if (host == "localhost" || host.ends_with(".localhost")) return true;
    return !host.empty() && std::all_of(host.begin(), host.end(), [](char c) { return c == '.' || (c >= '0' && c <= '9'); });
}

// Names that work as a DNS label under s3.<region>.amazonaws.com and its TLS wildcard.
bool is_virtual_host_compatible(std::string_view bucket) {
    if (bucket.size() < 3 || bucket.size() > 63) return false;
    if (bucket.front() == '-' || bucket.back() == '-') return false;
    return std::all_of(bucket.begin(), bucket.end(),
                       [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; });
}

bool is_valid_region(std::string_view region) {
    return !region.empty() && region.size() <= 64 &&
           std::all_of(region.begin(), region.end(),
                       [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; });
}

Endpoint checked_endpoint(std::string_view url, std::string source) {
    const auto parsed = boost::urls::parse_uri(url);
    const bool usable = parsed && (parsed->scheme_id() == boost::urls::scheme::https ||
                                   parsed->scheme_id() == boost::urls::scheme::http) &&
                        parsed->has_authority() && !parsed->host().empty() && !parsed->has_query() &&
                        !parsed->has_fragment() && !parsed->has_userinfo();
    if (!usable) {
        throw ConfigError(source + ": " + in_quotes(http::redact_url(url)) +
                          " is not an http:// or https:// URL with a host (and no user, query or fragment)");
    }
    std::string text(url);
    while (text.ends_with('/')) text.pop_back();
    return Endpoint{text, std::move(source)};
}

std::string profile_location(const SharedConfig& config, std::string_view profile) {
    return "profile " + in_quotes(profile) + " in " + config.config_path();
}

}  // namespace

Environment process_environment() {
    return [](std::string_view name) -> std::optional<std::string> {
        if (const char* value = std::getenv(std::string(name).c_str())) return std::string(value);
        return std::nullopt;
    };
}

Environment fixed_environment(std::map<std::string, std::string, std::less<>> variables) {
    return [variables = std::move(variables)](std::string_view name) -> std::optional<std::string> {
        if (const auto found = variables.find(name); found != variables.end()) return found->second;
        return std::nullopt;
    };
}

std::optional<std::string> env_value(const Environment& env, std::string_view name) {
    // An empty Environment means the process's, so option structs can leave it unset.
    auto value = env ? env(name) : process_environment()(name);
    if (!value || value->empty()) return std::nullopt;
    return value;
}

bool env_flag(const Environment& env, std::string_view name, bool default_value) {
    const auto value = env_value(env, name);
    if (!value) return default_value;
    const std::string text = lower(trim(*value));
    if (text == "true") return true;
    if (text == "false") return false;
    throw ConfigError(std::string(name) + " must be true or false");
}

std::map<std::string, Properties, std::less<>> parse_ini(std::string_view text, std::string_view path_for_errors) {
    std::map<std::string, Properties, std::less<>> sections;
    Properties* section = nullptr;
    std::string last_key;
    std::size_t line_number = 0;
    // Messages give the place only: a malformed line may hold a secret key.
    auto fail = [&](std::string_view what) {
        throw ConfigError(std::string(path_for_errors) + ":" + std::to_string(line_number) + ": " + std::string(what));
    };
    while (!text.empty()) {
        const auto end = text.find('\n');
        const std::string_view line = text.substr(0, end);
        text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
        ++line_number;

        const std::string_view content = trim(line);
        if (content.empty() || content.front() == '#' || content.front() == ';') continue;
        if (content.front() == '[') {
            const auto close = content.find(']');
            if (close == std::string_view::npos) fail("a section header without its closing ']'");
            const std::string_view name = trim(content.substr(1, close - 1));
            if (name.empty()) fail("a section header with no name");
            section = &sections[std::string(name)];
            last_key.clear();
            continue;
        }
        if (section == nullptr) fail("a property before the first [section]");

        const auto equals = content.find('=');
        const bool indented = is_space(line.front());
        if (indented && !last_key.empty()) {
            std::string& parent_value = (*section)[last_key];
            if (parent_value.empty() && equals != std::string_view::npos) {
                // A nested property of a key left empty: "s3 =" then "  endpoint_url = …".
                const std::string key = lower(trim(content.substr(0, equals)));
                if (key.empty()) fail("a nested property with no name");
                (*section)[last_key + "." + key] = std::string(without_inline_comment(trim(content.substr(equals + 1))));
            } else {
                parent_value += "\n" + std::string(without_inline_comment(content));  // a continued value
            }
            continue;
        }
        if (equals == std::string_view::npos) fail("expected \"[section]\" or \"key = value\"");
        const std::string key = lower(trim(content.substr(0, equals)));
        if (key.empty()) fail("a property with no name");
        (*section)[key] = std::string(without_inline_comment(trim(content.substr(equals + 1))));
        last_key = key;
    }
    return sections;
}

SharedConfig SharedConfig::load(const Environment& env) {
    const std::string config_path = expand_home(env_value(env, "AWS_CONFIG_FILE").value_or("~/.aws/config"), env);
    const std::string credentials_path =
        expand_home(env_value(env, "AWS_SHARED_CREDENTIALS_FILE").value_or("~/.aws/credentials"), env);
    return load(config_path, credentials_path);
}

SharedConfig SharedConfig::load(const std::string& config_path, const std::string& credentials_path) {
    SharedConfig shared;
    shared.config_path_ = config_path;
    shared.credentials_path_ = credentials_path;

    if (const auto text = read_optional_file(config_path)) {
        shared.config_found_ = true;
        for (auto& [name, properties] : parse_ini(*text, config_path)) {
            // "[default]" and "[profile name]" are profiles; "[services name]" are endpoint
            // sets; other sections (sso-session, plain names) are not profiles in this file.
            if (name == "default") {
                merge_into(shared.config_profiles_["default"], properties);
            } else if (name.starts_with("profile") && name.size() > 7 && is_space(name[7])) {
                merge_into(shared.config_profiles_[std::string(trim(std::string_view(name).substr(7)))], properties);
            } else if (name.starts_with("services") && name.size() > 8 && is_space(name[8])) {
                merge_into(shared.services_[std::string(trim(std::string_view(name).substr(8)))], properties);
            }
        }
    }
    if (const auto text = read_optional_file(credentials_path)) {
        shared.credentials_found_ = true;
        shared.credentials_profiles_ = parse_ini(*text, credentials_path);
    }
    return shared;
}

const Properties* SharedConfig::config_profile(std::string_view name) const {
    const auto found = config_profiles_.find(name);
    return found == config_profiles_.end() ? nullptr : &found->second;
}

const Properties* SharedConfig::credentials_profile(std::string_view name) const {
    const auto found = credentials_profiles_.find(name);
    return found == credentials_profiles_.end() ? nullptr : &found->second;
}

std::optional<Properties> SharedConfig::profile(std::string_view name) const {
    const Properties* from_config = config_profile(name);
    const Properties* from_credentials = credentials_profile(name);
    if (from_config == nullptr && from_credentials == nullptr) return std::nullopt;
    Properties merged;
    if (from_config != nullptr) merged = *from_config;
    if (from_credentials != nullptr) merge_into(merged, *from_credentials);
    return merged;
}

const Properties* SharedConfig::services(std::string_view name) const {
    const auto found = services_.find(name);
    return found == services_.end() ? nullptr : &found->second;
}

std::string selected_profile(const Environment& env, std::string_view configured) {
    if (!trim(configured).empty()) return std::string(trim(configured));
    if (auto profile = env_value(env, "AWS_PROFILE")) return *profile;
    if (auto profile = env_value(env, "AWS_DEFAULT_PROFILE")) return *profile;
    return "default";
}

std::optional<std::string> find_region(std::string_view configured, const Environment& env, const SharedConfig& config,
                                       std::string_view profile) {
    if (!trim(configured).empty()) return std::string(trim(configured));
    if (auto region = env_value(env, "AWS_REGION")) return std::string(trim(*region));
    if (auto region = env_value(env, "AWS_DEFAULT_REGION")) return std::string(trim(*region));
    if (const Properties* properties = config.config_profile(profile)) {
        if (const auto found = properties->find("region"); found != properties->end() && !found->second.empty()) {
            return found->second;
        }
    }
    return std::nullopt;
}

std::string resolve_region(std::string_view configured, const Environment& env, const SharedConfig& config,
                           std::string_view profile) {
    if (auto region = find_region(configured, env, config, profile)) {
        if (!is_valid_region(*region)) throw ConfigError("region " + in_quotes(*region) + " is not a valid AWS region name");
        return *region;
    }
    throw ConfigError("no AWS region: set `region` in the plugin's settings, AWS_REGION or AWS_DEFAULT_REGION, or "
                      "`region` in " +
                      profile_location(config, profile) + (config.config_found() ? "" : " (file not found)"));
}

Endpoint resolve_endpoint(const ServiceId& service, std::string_view region, std::string_view configured,
                          const Environment& env, const SharedConfig& config, std::string_view profile) {
    if (!trim(configured).empty()) return checked_endpoint(trim(configured), "endpoint_url");

    const Properties* profile_properties = config.config_profile(profile);
    auto profile_value = [&](std::string_view key) -> std::optional<std::string> {
        if (profile_properties == nullptr) return std::nullopt;
        const auto found = profile_properties->find(key);
        if (found == profile_properties->end() || found->second.empty()) return std::nullopt;
        return found->second;
    };
    bool ignore_configured = env_flag(env, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
    if (const auto ignore = profile_value("ignore_configured_endpoint_urls")) {
        ignore_configured = ignore_configured || lower(trim(*ignore)) == "true";
    }
    if (!ignore_configured) {
        const std::string service_variable = "AWS_ENDPOINT_URL_" + std::string(service.env_suffix);
        if (auto url = env_value(env, service_variable)) return checked_endpoint(trim(*url), service_variable);
        if (auto url = env_value(env, "AWS_ENDPOINT_URL")) return checked_endpoint(trim(*url), "AWS_ENDPOINT_URL");
        if (const auto services_name = profile_value("services")) {
            if (const Properties* services = config.services(*services_name)) {
                const auto found = services->find(std::string(service.config_key) + ".endpoint_url");
                if (found != services->end() && !found->second.empty()) {
                    return checked_endpoint(found->second, "[services " + *services_name + "] in " + config.config_path());
                }
            }
        }
        if (const auto url = profile_value("endpoint_url")) {
            return checked_endpoint(*url, profile_location(config, profile));
        }
    }

    const std::string region_name(trim(region));
    if (region_name.empty()) {
        // STS is the one service here with a global endpoint; it signs as us-east-1.
        if (service.endpoint_prefix == "sts") return Endpoint{"https://sts.amazonaws.com", "default"};
        throw ConfigError("no AWS region to build the " + std::string(service.endpoint_prefix) + " endpoint from");
    }
    if (!is_valid_region(region_name)) {
        throw ConfigError("region " + in_quotes(region_name) + " is not a valid AWS region name");
    }
    const std::string domain = region_name.starts_with("cn-") ? "amazonaws.com.cn" : "amazonaws.com";
    return Endpoint{"https://" + std::string(service.endpoint_prefix) + "." + region_name + "." + domain, "default"};
}

std::string s3_url(const Endpoint& endpoint, std::string_view bucket, std::string_view key, S3AddressingStyle style) {
    const std::string_view url = endpoint.url;
    const auto scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos) throw ConfigError("the S3 endpoint is not an absolute URL");
    const std::string_view scheme = url.substr(0, scheme_end + 3);
    const std::string_view rest = url.substr(scheme_end + 3);
    const auto authority_end = rest.find('/');
    const std::string_view authority = rest.substr(0, authority_end);
    const std::string_view base_path = authority_end == std::string_view::npos ? "" : rest.substr(authority_end);
    std::string_view host = authority;
    if (!host.starts_with('[')) host = host.substr(0, host.find(':'));

    bool virtual_hosted = style == S3AddressingStyle::Virtual;
    if (style == S3AddressingStyle::Auto) virtual_hosted = is_virtual_host_compatible(bucket) && !is_ip_or_localhost(host);

    const std::string encoded_key = uri_encode(key, true);
    if (virtual_hosted) {
        // The bucket becomes part of the host name: nothing but a DNS name's characters.
        const bool host_safe = !bucket.empty() && std::all_of(bucket.begin(), bucket.end(), [](char c) {
            return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
        });
        if (!host_safe) {
            throw ConfigError("the bucket name " + in_quotes(bucket) +
                              " cannot be part of a host name: use path-style addressing");
        }
        return std::string(scheme) + std::string(bucket) + "." + std::string(authority) + std::string(base_path) + "/" +
               encoded_key;
    }
    std::string result = std::string(url) + "/" + uri_encode(bucket);
    if (!key.empty()) result += "/" + encoded_key;
    return result;
}

}  // namespace tattle::aws
