#pragma once

#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>

namespace tattle {

// The first hex_chars (at most 64) lowercase hex digits of data's SHA-256. Cheap enough
// for every alert: the algorithm is fetched once and each thread reuses one context.
std::string sha256_hex(std::string_view data, std::size_t hex_chars = 64);
// The same of the parts written one after another, without joining them first.
std::string sha256_hex(std::initializer_list<std::string_view> parts, std::size_t hex_chars = 64);

}  // namespace tattle
