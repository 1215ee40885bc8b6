#include "sts.hpp"

#include <stdexcept>
#include <utility>
#include <vector>

namespace tattle::aws::detail {

namespace {

constexpr std::string_view kStsVersion = "2011-06-15";
// The global endpoint's signing region, also used when no region is known at all.
constexpr std::string_view kDefaultSigningRegion = "us-east-1";
constexpr std::size_t kMaxMessageLength = 300;

// STS's message goes into our error: one line, bounded, and without the caller's secrets
// even if a (test) server were to echo them.
std::string printable_message(std::string message, const Credentials* base) {
    if (base != nullptr) {
        for (const std::string* secret : {&base->secret_access_key, &base->session_token}) {
            if (secret->empty()) continue;
            for (auto at = message.find(*secret); at != std::string::npos; at = message.find(*secret)) {
                message.replace(at, secret->size(), "(redacted)");
            }
        }
    }
    for (char& c : message) {
        if (static_cast<unsigned char>(c) < 0x20) c = ' ';
    }
    if (message.size() > kMaxMessageLength) message = message.substr(0, kMaxMessageLength) + "…";
    return message;
}

Credentials call_sts(std::string_view action, std::vector<std::pair<std::string, std::string>> form,
                     const AssumeRoleParameters& parameters, const http::ClientOptions& http_options,
                     const Credentials* signer) {
    const std::string url = parameters.sts_endpoint.url.empty() ? "https://sts.amazonaws.com" : parameters.sts_endpoint.url;
    const std::string context =
        "sts:" + std::string(action) + " of " + parameters.role_arn + " at " + http::redact_url(url);

    form.insert(form.begin(), {{"Action", std::string(action)}, {"Version", std::string(kStsVersion)}});
    http::Request request;
    request.method = "POST";
    request.url = url + "/";
    request.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded; charset=utf-8");
    request.headers.emplace_back("Accept", "text/xml");
    request.body = form_encode(form);
    if (signer != nullptr) {
        SigningOptions signing;
        signing.service = "sts";
        signing.region = parameters.region.empty() ? std::string(kDefaultSigningRegion) : parameters.region;
        try {
            sign_request(request, *signer, signing);
        } catch (const std::invalid_argument& error) {
            throw CredentialsError(context + ": " + error.what());
        }
    }

    http::Response response;
    try {
        http::Client client(http_options);
        // Plain http:// only reaches here from an explicitly configured endpoint (a local stack).
        client.allow_plain_http(url.starts_with("http://"));
        response = client.send(request);
    } catch (const http::TransportError& error) {
        throw CredentialsError(context + ": " + error.what());
    }
    if (response.status != 200) {
        std::string failure = context + ": HTTP " + std::to_string(response.status);
        if (const auto code = xml_text(response.body, "Code")) failure += " " + printable_message(*code, signer);
        if (const auto message = xml_text(response.body, "Message")) failure += ": " + printable_message(*message, signer);
        throw CredentialsError(failure);
    }

    const auto block = xml_inner(response.body, "Credentials");
    if (!block) throw CredentialsError(context + ": the response has no Credentials");
    Credentials credentials;
    credentials.access_key_id = xml_text(*block, "AccessKeyId").value_or("");
    credentials.secret_access_key = xml_text(*block, "SecretAccessKey").value_or("");
    credentials.session_token = xml_text(*block, "SessionToken").value_or("");
    if (credentials.access_key_id.empty() || credentials.secret_access_key.empty() || credentials.session_token.empty()) {
        throw CredentialsError(context + ": the response's Credentials lack a key, secret or session token");
    }
    const auto expiration = xml_text(*block, "Expiration");
    credentials.expiration = expiration ? parse_iso8601(*expiration) : std::nullopt;
    if (!credentials.expiration) throw CredentialsError(context + ": the response's Credentials have no valid Expiration");
    credentials.source = "sts:" + std::string(action) + " " + parameters.role_arn;
    return credentials;
}

}  // namespace

std::string default_session_name() {
    const auto seconds =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    return "tattle-" + std::to_string(seconds);
}

Credentials assume_role(const Credentials& base, const AssumeRoleParameters& parameters,
                        const http::ClientOptions& http_options) {
    std::vector<std::pair<std::string, std::string>> form = {
        {"RoleArn", parameters.role_arn},
        {"RoleSessionName", parameters.role_session_name.empty() ? default_session_name() : parameters.role_session_name},
        {"DurationSeconds", std::to_string(parameters.duration.count())},
    };
    if (!parameters.external_id.empty()) form.emplace_back("ExternalId", parameters.external_id);
    return call_sts("AssumeRole", std::move(form), parameters, http_options, &base);
}

Credentials assume_role_with_web_identity(const std::string& web_identity_token, const AssumeRoleParameters& parameters,
                                          const http::ClientOptions& http_options) {
    std::vector<std::pair<std::string, std::string>> form = {
        {"RoleArn", parameters.role_arn},
        {"RoleSessionName", parameters.role_session_name.empty() ? default_session_name() : parameters.role_session_name},
        {"WebIdentityToken", web_identity_token},
        {"DurationSeconds", std::to_string(parameters.duration.count())},
    };
    return call_sts("AssumeRoleWithWebIdentity", std::move(form), parameters, http_options, nullptr);
}

}  // namespace tattle::aws::detail
