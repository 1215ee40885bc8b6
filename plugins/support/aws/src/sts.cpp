#include "sts.hpp"

#include <charconv>
#include <stdexcept>
#include <utility>
#include <vector>

namespace tattle::aws::detail {

namespace {

constexpr std::string_view kStsVersion = "2011-06-15";
// The global endpoint's signing region, also used when no region is known at all.
constexpr std::string_view kDefaultSigningRegion = "us-east-1";
constexpr std::size_t kMaxMessageLength = 300;

void append_utf8(std::string& out, unsigned long code_point) {
    if (code_point < 0x80) {
        out += static_cast<char>(code_point);
    } else if (code_point < 0x800) {
        out += static_cast<char>(0xC0 | (code_point >> 6));
        out += static_cast<char>(0x80 | (code_point & 0x3F));
    } else if (code_point < 0x10000) {
        out += static_cast<char>(0xE0 | (code_point >> 12));
        out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (code_point & 0x3F));
    } else if (code_point < 0x110000) {
        out += static_cast<char>(0xF0 | (code_point >> 18));
        out += static_cast<char>(0x80 | ((code_point >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (code_point & 0x3F));
    }
}

std::string decode_entities(std::string_view text) {
    std::string result;
    result.reserve(text.size());
    while (!text.empty()) {
        const auto amp = text.find('&');
        result += text.substr(0, amp);
        if (amp == std::string_view::npos) break;
        text.remove_prefix(amp);
        const auto semicolon = text.find(';');
        const std::string_view entity = semicolon == std::string_view::npos ? std::string_view{} : text.substr(1, semicolon - 1);
        bool decoded = true;
        if (entity == "amp") {
            result += '&';
        } else if (entity == "lt") {
            result += '<';
        } else if (entity == "gt") {
            result += '>';
        } else if (entity == "quot") {
            result += '"';
        } else if (entity == "apos") {
            result += '\'';
        } else if (entity.size() > 1 && entity.front() == '#') {
            const bool hex = entity[1] == 'x' || entity[1] == 'X';
            const std::string_view digits = entity.substr(hex ? 2 : 1);
            unsigned long code_point = 0;
            const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), code_point, hex ? 16 : 10);
            decoded = error == std::errc{} && end == digits.data() + digits.size() && !digits.empty();
            if (decoded) append_utf8(result, code_point);
        } else {
            decoded = false;
        }
        if (decoded) {
            text.remove_prefix(semicolon + 1);
        } else {
            result += '&';
            text.remove_prefix(1);
        }
    }
    return result;
}

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

std::optional<std::string_view> xml_inner(std::string_view xml, std::string_view name) {
    const std::string open = "<" + std::string(name);
    const std::string close = "</" + std::string(name) + ">";
    for (auto at = xml.find(open); at != std::string_view::npos; at = xml.find(open, at + 1)) {
        const auto after_name = at + open.size();
        if (after_name >= xml.size()) return std::nullopt;
        const char next = xml[after_name];
        if (next != '>' && next != ' ' && next != '/' && next != '\t' && next != '\n' && next != '\r') continue;
        const auto tag_end = xml.find('>', after_name);
        if (tag_end == std::string_view::npos) return std::nullopt;
        if (xml[tag_end - 1] == '/') return std::string_view{};  // <Name/>
        const auto content_end = xml.find(close, tag_end + 1);
        if (content_end == std::string_view::npos) return std::nullopt;
        return xml.substr(tag_end + 1, content_end - tag_end - 1);
    }
    return std::nullopt;
}

std::optional<std::string> xml_text(std::string_view xml, std::string_view name) {
    const auto inner = xml_inner(xml, name);
    if (!inner) return std::nullopt;
    return decode_entities(*inner);
}

}  // namespace tattle::aws::detail
