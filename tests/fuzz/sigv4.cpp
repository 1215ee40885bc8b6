// SigV4 canonicalisation of arbitrary requests. The input is text:
//   line 1  the service ("s3" signs with S3's rules)
//   line 2  the method
//   line 3  the path and query, appended to https://service.example.amazonaws.com
//   lines   "Name: value" headers, up to an empty line
//   rest    the body
// Invariants (the SigV4 specification's): signing is deterministic; the canonical request
// is method, path, query, one "name:value" line per signed header (lower-case names,
// sorted, unique, values trimmed with inner whitespace runs as one space), an empty line,
// the signed header list, the payload hash; path and query are percent-encoded with
// upper-case hex and only unreserved bytes left bare; query pairs are sorted; the string to
// sign ends in the canonical request's hash and the signature is its HMAC under the
// derived key. Comparing against botocore itself happens outside the fuzzer: see
// tests/integration/sigv4_fuzz_corpus_test.py, which signs this target's corpus both ways.

#include <algorithm>
#include <cctype>
#include <chrono>
#include <string>
#include <vector>

#include "fuzz_support.hpp"
#include "sigv4_input.hpp"
#include "tattle/aws/sigv4.hpp"

namespace {

using tattle::fuzz::require;

bool is_unreserved(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '.' || c == '_' || c == '~';
}

// Only unreserved bytes, the allowed delimiters and %XX with upper-case hex.
bool is_encoded(std::string_view text, std::string_view delimiters) {
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '%') {
            if (i + 2 >= text.size()) return false;
            for (std::size_t k = 1; k <= 2; ++k) {
                const char h = text[i + k];
                if (!((h >= '0' && h <= '9') || (h >= 'A' && h <= 'F'))) return false;
            }
            i += 2;
        } else if (!is_unreserved(c) && delimiters.find(c) == std::string_view::npos) {
            return false;
        }
    }
    return true;
}

std::vector<std::string_view> lines_of(std::string_view text) {
    std::vector<std::string_view> lines;
    for (;;) {
        const auto end = text.find('\n');
        lines.push_back(text.substr(0, end));
        if (end == std::string_view::npos) return lines;
        text.remove_prefix(end + 1);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input = tattle::fuzz::as_text(data, size);
    const tattle::fuzz::SigningCase signing_case = tattle::fuzz::read_signing_case(input);
    tattle::http::Request first = signing_case.request;
    tattle::http::Request second = signing_case.request;
    tattle::aws::SignatureParts parts;
    try {
        parts = tattle::aws::sign_request(first, signing_case.credentials, signing_case.options);
    } catch (const std::invalid_argument&) {
        return 0;  // the URL cannot be signed (no host); the client refuses it as well
    }
    const tattle::aws::SignatureParts again = tattle::aws::sign_request(second, signing_case.credentials, signing_case.options);
    require(parts.canonical_request == again.canonical_request && parts.authorization == again.authorization &&
                first.headers == second.headers,
            "signing the same request twice differs", input);

    const auto lines = lines_of(parts.canonical_request);
    require(lines.size() >= 6, "a canonical request of fewer than six lines", parts.canonical_request);
    require(lines[0] == signing_case.request.method, "the canonical method is not the method", parts.canonical_request);
    require(!lines[1].empty() && lines[1][0] == '/', "a canonical path not starting with /", parts.canonical_request);
    require(is_encoded(lines[1], "/"), "a canonical path with a bare reserved byte", parts.canonical_request);
    require(is_encoded(lines[2], "=&"), "a canonical query with a bare reserved byte", parts.canonical_request);
    std::vector<std::string_view> pairs;
    for (std::string_view query = lines[2]; !query.empty();) {
        const auto amp = query.find('&');
        const std::string_view pair = query.substr(0, amp);
        require(std::count(pair.begin(), pair.end(), '=') == 1, "a canonical query pair without one =", lines[2]);
        pairs.push_back(pair);
        query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    }
    require(std::is_sorted(pairs.begin(), pairs.end(),
                           [](std::string_view a, std::string_view b) {
                               const auto name_a = a.substr(0, a.find('=')), name_b = b.substr(0, b.find('='));
                               return name_a != name_b ? name_a < name_b : a.substr(a.find('=')) < b.substr(b.find('='));
                           }),
            "canonical query pairs out of order", lines[2]);

    std::string signed_headers;
    std::string previous;
    std::size_t line = 3;
    for (; line < lines.size() && !lines[line].empty(); ++line) {
        const auto colon = lines[line].find(':');
        require(colon != std::string_view::npos && colon > 0, "a canonical header line without a name", lines[line]);
        const std::string name(lines[line].substr(0, colon));
        const std::string_view value = lines[line].substr(colon + 1);
        for (const char c : name) {
            require(std::tolower(static_cast<unsigned char>(c)) == static_cast<unsigned char>(c), "a canonical header name not lower-case", name);
        }
        require(previous.empty() || previous < name, "canonical headers not sorted or not unique", parts.canonical_request);
        require(value.empty() || (value.front() != ' ' && value.back() != ' '), "a header value not trimmed", value);
        require(value.find("  ") == std::string_view::npos, "a header value with a run of spaces", value);
        signed_headers += (signed_headers.empty() ? "" : ";") + name;
        previous = name;
    }
    require(line + 3 == lines.size(), "the canonical request does not end in signed headers and hash",
            parts.canonical_request);
    require(lines[line + 1] == signed_headers && parts.signed_headers == signed_headers,
            "the signed header list is not the header lines' names", parts.canonical_request);
    require(lines[line + 2] == tattle::aws::sha256_hex(signing_case.request.body),
            "the payload hash is not the body's SHA-256", parts.canonical_request);

    const auto sts_lines = lines_of(parts.string_to_sign);
    require(sts_lines.size() == 4 && sts_lines[3] == tattle::aws::sha256_hex(parts.canonical_request),
            "the string to sign does not end in the canonical request's hash", parts.string_to_sign);
    const std::string key = tattle::aws::signing_key(signing_case.credentials.secret_access_key, "20150830",
                                                     signing_case.options.region, signing_case.options.service);
    require(parts.signature == tattle::aws::to_hex(tattle::aws::hmac_sha256(key, parts.string_to_sign)),
            "the signature is not the HMAC of the string to sign", input);
    require(std::count_if(first.headers.begin(), first.headers.end(),
                          [&](const auto& header) { return header.first == "Authorization"; }) == 1,
            "not exactly one Authorization header", input);
    return 0;
}
