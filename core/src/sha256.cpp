#include "tattle/sha256.hpp"

#include <openssl/evp.h>

#include <array>
#include <memory>
#include <stdexcept>

namespace tattle {

std::string sha256_hex(std::string_view data, std::size_t hex_chars) { return sha256_hex({data}, hex_chars); }

std::string sha256_hex(std::initializer_list<std::string_view> parts, std::size_t hex_chars) {
    // EVP_Digest with EVP_sha256() looks the algorithm up in the provider and allocates
    // a context on every call, which costs more than hashing an alert's few bytes.
    static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    thread_local const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(
        EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int digest_size = 0;
    bool ok = sha256 != nullptr && context != nullptr && EVP_DigestInit_ex2(context.get(), sha256, nullptr) == 1;
    for (const auto part : parts) {
        ok = ok && EVP_DigestUpdate(context.get(), part.data(), part.size()) == 1;
    }
    if (!ok || EVP_DigestFinal_ex(context.get(), digest.data(), &digest_size) != 1) {
        throw std::runtime_error("SHA-256 failed");
    }
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(hex_chars);
    for (unsigned int i = 0; i < digest_size && out.size() < hex_chars; ++i) {
        out += kHex[digest[i] >> 4U];
        out += kHex[digest[i] & 0x0fU];
    }
    return out;
}

}  // namespace tattle
