#pragma once

#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace tattle {

// The whole batch could not be decoded (corrupt gzip, broken JSON document).
// what() names the origin and the place: "s3://b/k: gzip: ... at byte 123",
// "file.json:3:17: JSON syntax error: ...".
class DecodeError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct DecodeReport {
    std::size_t events = 0;         // events handed to the callback
    std::size_t skipped_documents = 0;  // digest files, empty objects
    std::vector<std::string> skip_reasons;   // one line per skipped document
    // Records that were not usable (a broken JSON line, a record that is not an
    // object); each message names the origin and place. The rest of the batch goes on.
    std::vector<std::string> record_errors;
    bool was_gzip = false;
};

// Called once per event, in batch order. index is the event's position in the batch.
using EventCallback = std::function<void(boost::json::object&& event, std::size_t index)>;

// Decodes one batch: gzip is detected by its magic bytes (multi-member gzip
// supported); then CloudTrail {"Records":[...]}, JSON Lines / concatenated JSON,
// a single object, or a JSON array of objects. CloudTrail digest files and empty
// documents are skipped (reported in skip_reasons), not errors.
// Throws DecodeError when the batch as a whole is unreadable.
DecodeReport decode_batch(std::span<const std::uint8_t> data, std::string_view origin,
                          const EventCallback& on_event);

// Output bigger than this is refused: a few KiB of gzip can inflate to gigabytes,
// and a Lambda has little memory. Real CloudTrail log files are far smaller.
inline constexpr std::size_t default_max_decompressed_bytes = std::size_t{1} << 30;  // 1 GiB

// Gunzips data if it starts with the gzip magic (otherwise returns a copy);
// throws DecodeError naming origin (corrupt, truncated, or over max_output_bytes).
std::vector<std::uint8_t> gunzip(std::span<const std::uint8_t> data, std::string_view origin,
                                 std::size_t max_output_bytes = default_max_decompressed_bytes);
bool is_gzip(std::span<const std::uint8_t> data) noexcept;

}  // namespace tattle
