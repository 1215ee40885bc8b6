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

#include "tattle/limits.hpp"

namespace tattle {

// The whole batch could not be decoded (corrupt gzip, broken JSON document).
// what() names the origin and the place: "s3://b/k: gzip: ... at byte 123",
// "file.json:3:17: JSON syntax error: ...".
class DecodeError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The batch was given up because it went over one of the InputLimits; limit() is
// the [limits] key ("max_records_per_batch").
class DecodeLimitError : public DecodeError {
public:
    DecodeLimitError(const std::string& message, std::string limit)
        : DecodeError(message), limit_(std::move(limit)) {}
    const std::string& limit() const noexcept { return limit_; }

private:
    std::string limit_;
};

struct DecodeReport {
    std::size_t events = 0;         // events handed to the callback
    std::size_t skipped_documents = 0;  // digest files, empty objects
    std::vector<std::string> skip_reasons;   // one line per skipped document
    // Records that were not usable (a broken JSON line, a record that is not an
    // object, one over a limit); each message names the origin and place. The rest
    // of the batch goes on.
    std::vector<std::string> record_errors;
    // The [limits] key of every record skipped for a limit (also in record_errors).
    std::vector<std::string> limits_hit;
    bool was_gzip = false;
    // Inflated at once (a one-member gzip file of up to 16 MiB) rather than streamed.
    bool inflated_whole = false;
};

// Called once per event, in batch order. index is the event's position in the batch.
using EventCallback = std::function<void(boost::json::object&& event, std::size_t index)>;

// What the callback may do with an event.
enum class EventLifetime {
    owned,     // keep it, move it: it is the callback's
    // Read it during the call only: its memory is reused for the next record. To
    // keep it, copy it into memory of one's own (object(event, storage_ptr())).
    callback,
};

// Decodes one batch as a stream: gzip is detected by its magic bytes (multi-member
// gzip supported) and inflated a chunk at a time; CloudTrail's {"Records":[...]} and
// top-level arrays are split into records as they are inflated, so memory holds one
// record and a buffer, not the file. JSON Lines / concatenated JSON and a single
// object work too. CloudTrail digest files and empty documents are skipped
// (reported in skip_reasons), not errors. A record over limits.max_record_bytes or
// limits.max_depth is a record error; the batch goes on.
// Throws DecodeError when the batch as a whole is unreadable, and DecodeLimitError
// when it is over max_batch_bytes, max_decompressed_bytes or max_records_per_batch.
// Events handed out before such an error stay handed out.
DecodeReport decode_batch(std::span<const std::uint8_t> data, std::string_view origin,
                          const EventCallback& on_event, const InputLimits& limits = {},
                          EventLifetime lifetime = EventLifetime::owned);

// What gunzip() accepts by default: it holds its whole output in memory (decode_batch
// does not; it uses InputLimits::max_decompressed_bytes).
inline constexpr std::size_t default_max_decompressed_bytes = std::size_t{1} << 30;  // 1 GiB

// Gunzips data if it starts with the gzip magic (otherwise returns a copy);
// throws DecodeError naming origin (corrupt, truncated, or over max_output_bytes).
std::vector<std::uint8_t> gunzip(std::span<const std::uint8_t> data, std::string_view origin,
                                 std::size_t max_output_bytes = default_max_decompressed_bytes);
bool is_gzip(std::span<const std::uint8_t> data) noexcept;

}  // namespace tattle
