#include "tattle/decoder.hpp"

// Lets zlib take const input buffers without casts.
#define ZLIB_CONST
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <new>
#include <utility>

namespace tattle {

namespace {

constexpr std::uint8_t gzip_magic_first = 0x1f;
constexpr std::uint8_t gzip_magic_second = 0x8b;

// Deflate cannot expand data by more than about 1032:1; a larger size claimed by
// a gzip trailer is a lie and must not drive an allocation.
constexpr std::size_t deflate_max_ratio = 1032;
constexpr std::size_t gunzip_min_growth = std::size_t{64} << 10;

// CloudTrail's requestParameters/responseElements nest deeply for some services;
// Boost's default of 32 rejects real records.
constexpr std::size_t json_max_depth = 128;

std::string with_origin(std::string_view origin, std::string_view message) {
    std::string out;
    out.reserve(origin.size() + 2 + message.size());
    out.append(origin).append(": ").append(message);
    return out;
}

// zlib counts in uInt (32 bits); batches may be bigger, so feed it in slices.
uInt clamp_to_uint(std::size_t n) {
    return static_cast<uInt>(std::min<std::size_t>(n, std::numeric_limits<uInt>::max()));
}

// Owns an inflate stream so every exit path releases zlib's state.
class GzipInflater {
public:
    explicit GzipInflater(std::string_view origin) {
        // 15 window bits + 16 selects the gzip wrapper (header and CRC-32 trailer).
        const int rc = inflateInit2(&stream_, 15 + 16);
        if (rc == Z_MEM_ERROR) throw std::bad_alloc();
        if (rc != Z_OK) {
            throw DecodeError(with_origin(origin, std::string("gzip: cannot start zlib: ") +
                                                      (stream_.msg ? stream_.msg : zError(rc))));
        }
    }
    ~GzipInflater() { inflateEnd(&stream_); }
    GzipInflater(const GzipInflater&) = delete;
    GzipInflater& operator=(const GzipInflater&) = delete;

    z_stream& stream() noexcept { return stream_; }

private:
    z_stream stream_{};
};

// One byte over the limit is how gunzip learns that the output does not fit.
std::size_t room_for(std::size_t limit) noexcept {
    return limit == std::numeric_limits<std::size_t>::max() ? limit : limit + 1;
}

// The gzip trailer's ISIZE is the last member's size mod 2^32: exact for the
// usual single-member file, so one allocation usually suffices.
std::size_t initial_output_size(std::span<const std::uint8_t> data, std::size_t limit) {
    std::size_t guess = data.size() * 4;
    constexpr std::size_t min_gzip_member = 18;  // 10-byte header, empty body, 8-byte trailer
    if (data.size() >= min_gzip_member) {
        const auto* trailer = data.data() + data.size() - 4;
        const std::size_t claimed = std::size_t{trailer[0]} | (std::size_t{trailer[1]} << 8) |
                                    (std::size_t{trailer[2]} << 16) |
                                    (std::size_t{trailer[3]} << 24);
        guess = std::max(guess, claimed);
    }
    guess = std::min(guess, data.size() * deflate_max_ratio);
    return std::max<std::size_t>(std::min(guess, room_for(limit)), 1);
}

bool all_zero(std::span<const std::uint8_t> bytes) {
    return std::all_of(bytes.begin(), bytes.end(), [](std::uint8_t b) { return b == 0; });
}

// ---------------------------------------------------------------------------
// JSON

const char* kind_name(boost::json::kind k) noexcept {
    switch (k) {
        case boost::json::kind::null: return "null";
        case boost::json::kind::bool_: return "boolean";
        case boost::json::kind::int64:
        case boost::json::kind::uint64:
        case boost::json::kind::double_: return "number";
        case boost::json::kind::string: return "string";
        case boost::json::kind::array: return "array";
        case boost::json::kind::object: return "object";
    }
    return "value";
}

bool is_json_whitespace(char c) noexcept { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

// Digest files sit next to log files in the same bucket and notifications; they
// carry signatures over the log files, not events. Two of their own keys are
// enough to tell them apart from any event.
bool is_cloudtrail_digest(const boost::json::object& document) {
    static constexpr std::array<std::string_view, 6> digest_keys = {
        "digestS3Bucket",           "digestS3Object",  "digestPublicKeyFingerprint",
        "digestSignatureAlgorithm", "digestStartTime", "digestEndTime"};
    int found = 0;
    for (const auto key : digest_keys) {
        if (document.contains(key) && ++found >= 2) return true;
    }
    return false;
}

// Turns byte offsets into 1-based line:column. Offsets are mostly asked for in
// increasing order (errors as the batch is read), so it counts on from the last answer.
class LineLocator {
public:
    explicit LineLocator(std::string_view text) : text_(text) {}

    struct Position {
        std::size_t line;
        std::size_t column;  // in bytes, like compilers report it
    };

    Position at(std::size_t offset) {
        offset = std::min(offset, text_.size());
        if (offset < counted_to_) {
            counted_to_ = 0;
            line_ = 1;
            line_start_ = 0;
        }
        while (counted_to_ < offset) {
            const void* newline = std::memchr(text_.data() + counted_to_, '\n', offset - counted_to_);
            if (newline == nullptr) {
                counted_to_ = offset;
                break;
            }
            const auto newline_offset =
                static_cast<std::size_t>(static_cast<const char*>(newline) - text_.data());
            ++line_;
            line_start_ = newline_offset + 1;
            counted_to_ = newline_offset + 1;
        }
        return {line_, offset - line_start_ + 1};
    }

    std::string describe(std::size_t offset) {
        const Position position = at(offset);
        return std::to_string(position.line) + ':' + std::to_string(position.column);
    }

private:
    std::string_view text_;
    std::size_t counted_to_ = 0;
    std::size_t line_ = 1;
    std::size_t line_start_ = 0;
};

boost::json::parse_options json_options() {
    boost::json::parse_options options;
    options.max_depth = json_max_depth;
    // CloudTrail copies attacker-chosen strings into records; one stray byte
    // must not make the whole log file unreadable (and skipping validation is faster).
    options.allow_invalid_utf8 = true;
    return options;
}

// Reads one batch's text value by value and hands out events.
class BatchDecoder {
public:
    BatchDecoder(std::string_view text, std::string_view origin, const EventCallback& on_event,
                 DecodeReport& report)
        : text_(text),
          origin_(origin),
          on_event_(on_event),
          report_(report),
          lines_(text),
          parser_(boost::json::storage_ptr(), json_options()) {}

    void run() {
        std::size_t pos = 0;
        // Some editors on Windows write a UTF-8 byte order mark; it is not JSON.
        if (text_.starts_with("\xEF\xBB\xBF")) pos = 3;
        pos = skip_whitespace(pos);
        if (pos == text_.size()) {
            skip_document(with_origin(origin_, "empty input"));
            return;
        }
        first_value_offset_ = pos;

        while (pos < text_.size()) {
            const std::size_t value_start = pos;
            boost::json::error_code ec;
            parser_.reset();
            // parser (unlike stream_parser) treats the end of the buffer as the end
            // of input, so a number that ends the batch is complete; it stops after
            // one value and its trailing whitespace, which is what lets JSON Lines
            // and concatenated JSON through.
            const std::size_t consumed =
                parser_.write_some(text_.data() + pos, text_.size() - pos, ec);
            if (ec) {
                pos = recover_from_syntax_error(value_start, value_start + consumed, ec);
            } else {
                pos += consumed;
                classify(parser_.release(), value_start);
                ++values_parsed_;
            }
            pos = skip_whitespace(pos);
        }
    }

private:
    std::size_t skip_whitespace(std::size_t pos) const noexcept {
        while (pos < text_.size() && is_json_whitespace(text_[pos])) ++pos;
        return pos;
    }

    std::size_t end_of_line(std::size_t pos) const noexcept {
        const std::size_t newline = text_.find('\n', pos);
        return newline == std::string_view::npos ? text_.size() : newline;
    }

    // The first value of a batch is a whole JSON document unless the batch is
    // evidently JSON Lines: the next non-blank line starts, unindented, with an
    // object that ends on that line. A broken pretty-printed document fails that
    // test (its inner lines are indented, or are not values on their own), so it
    // fails as a whole instead of yielding fragments.
    bool looks_like_json_lines(std::size_t broken_value_start) const {
        const std::size_t next_line = end_of_line(broken_value_start) + 1;
        if (next_line >= text_.size()) return false;
        const std::size_t candidate = skip_whitespace(next_line);
        if (candidate >= text_.size() || text_[candidate] != '{' || text_[candidate - 1] != '\n') {
            return false;
        }
        const std::size_t candidate_end = end_of_line(candidate);

        boost::json::parser probe(boost::json::storage_ptr(), json_options());
        boost::json::error_code ec;
        const std::size_t consumed =
            probe.write_some(text_.data() + candidate, candidate_end - candidate, ec);
        return !ec && candidate + consumed == candidate_end;
    }

    // Boost's messages are terse ("syntax error"); the offending byte says more.
    void append_found_at(std::string& message, std::size_t offset) const {
        if (offset >= text_.size()) return;
        const auto byte = static_cast<unsigned char>(text_[offset]);
        if (byte >= 0x21 && byte < 0x7f) {
            message.append(" at '").append(1, static_cast<char>(byte)).append("'");
        } else {
            static constexpr char hex_digits[] = "0123456789abcdef";
            message.append(" at byte 0x").append(1, hex_digits[byte >> 4]).append(1, hex_digits[byte & 0xf]);
        }
    }

    std::size_t recover_from_syntax_error(std::size_t value_start, std::size_t error_offset,
                                          const boost::json::error_code& ec) {
        // Asked in increasing order so the locator never rescans from the top.
        const auto value_position = lines_.at(value_start);
        const auto error_position = lines_.at(error_offset);
        std::string message = origin_;
        message.append(":").append(std::to_string(error_position.line));
        message.append(":").append(std::to_string(error_position.column));
        message.append(": JSON syntax error: ").append(ec.message());
        append_found_at(message, error_offset);

        const bool keep_going = values_parsed_ > 0 || looks_like_json_lines(value_start);
        if (!keep_going) throw DecodeError(message);

        // Resume after the line where the broken value began, not where the parser
        // noticed: a truncated JSON line is only noticed on the next line, which is
        // itself fine and must not be lost with it.
        if (value_position.line != error_position.line) {
            message.append(" (skipped line ").append(std::to_string(value_position.line)).append(")");
        }
        report_.record_errors.push_back(std::move(message));
        return std::min(end_of_line(value_start) + 1, text_.size());
    }

    // Messages about one document carry its place only when the batch holds more
    // than one; "file.json: Records[7]" reads better than "file.json:1:1: Records[7]".
    std::string document_prefix(std::size_t value_start) {
        if (value_start == first_value_offset_) return origin_;
        return origin_ + ':' + lines_.describe(value_start);
    }

    void skip_document(std::string reason) {
        ++report_.skipped_documents;
        report_.skip_reasons.push_back(std::move(reason));
    }

    void emit(boost::json::object&& event) {
        const std::size_t index = report_.events++;
        on_event_(std::move(event), index);
    }

    void emit_elements(boost::json::array& elements, std::size_t value_start,
                       std::string_view label) {
        for (std::size_t i = 0; i < elements.size(); ++i) {
            auto& element = elements[i];
            if (element.is_object()) {
                emit(std::move(element.get_object()));
            } else {
                report_.record_errors.push_back(
                    document_prefix(value_start) + ": " + std::string(label) + '[' +
                    std::to_string(i) + "]: not an object (got " + kind_name(element.kind()) + ')');
            }
        }
    }

    void classify(boost::json::value&& document, std::size_t value_start) {
        if (document.is_object()) {
            auto& object = document.get_object();
            if (auto records = object.find("Records"); records != object.end()) {
                if (!records->value().is_array()) {
                    throw DecodeError(document_prefix(value_start) + ": \"Records\" is not an array (got " +
                                      kind_name(records->value().kind()) + ')');
                }
                emit_elements(records->value().get_array(), value_start, "Records");
            } else if (object.empty()) {
                skip_document(document_prefix(value_start) + ": empty JSON object");
            } else if (is_cloudtrail_digest(object)) {
                skip_document(document_prefix(value_start) + ": CloudTrail digest file");
            } else {
                emit(std::move(object));
            }
        } else if (document.is_array()) {
            auto& elements = document.get_array();
            if (elements.empty()) {
                skip_document(document_prefix(value_start) + ": empty JSON array");
            } else {
                emit_elements(elements, value_start, "");
            }
        } else {
            report_.record_errors.push_back(document_prefix(value_start) + ": top-level " +
                                            kind_name(document.kind()) + " is not an event");
        }
    }

    std::string_view text_;
    std::string origin_;
    const EventCallback& on_event_;
    DecodeReport& report_;
    LineLocator lines_;
    boost::json::parser parser_;
    std::size_t first_value_offset_ = 0;
    std::size_t values_parsed_ = 0;
};

}  // namespace

bool is_gzip(std::span<const std::uint8_t> data) noexcept {
    return data.size() >= 2 && data[0] == gzip_magic_first && data[1] == gzip_magic_second;
}

std::vector<std::uint8_t> gunzip(std::span<const std::uint8_t> data, std::string_view origin,
                                 std::size_t max_output_bytes) {
    if (!is_gzip(data)) return {data.begin(), data.end()};

    GzipInflater inflater(origin);
    z_stream& stream = inflater.stream();
    std::vector<std::uint8_t> out(initial_output_size(data, max_output_bytes));
    std::size_t consumed = 0;
    std::size_t produced = 0;

    const auto fail = [&](std::string what) -> DecodeError {
        return DecodeError(with_origin(origin, "gzip: " + what));
    };

    for (;;) {
        if (produced == out.size()) {
            if (out.size() > max_output_bytes) {
                throw fail("decompressed data exceeds the limit of " +
                           std::to_string(max_output_bytes) + " bytes");
            }
            const std::size_t grown = std::max(out.size() * 2, out.size() + gunzip_min_growth);
            out.resize(std::min(grown, room_for(max_output_bytes)));
        }

        const uInt input_offered = clamp_to_uint(data.size() - consumed);
        const uInt output_offered = clamp_to_uint(out.size() - produced);
        stream.next_in = data.data() + consumed;
        stream.avail_in = input_offered;
        stream.next_out = out.data() + produced;
        stream.avail_out = output_offered;

        const int rc = inflate(&stream, Z_NO_FLUSH);
        consumed += input_offered - stream.avail_in;
        produced += output_offered - stream.avail_out;

        if (rc == Z_STREAM_END) {
            // gzip allows several members back to back (what `cat a.gz b.gz` makes);
            // trailing zeros are padding some writers leave behind.
            const auto rest = data.subspan(consumed);
            if (rest.empty() || all_zero(rest)) break;
            if (!is_gzip(rest)) {
                throw fail("trailing data after gzip member at compressed byte " +
                           std::to_string(consumed));
            }
            inflateReset(&stream);
            continue;
        }
        if (rc == Z_OK || (rc == Z_BUF_ERROR && stream.avail_out == 0)) {
            if (consumed == data.size() && stream.avail_out != 0) {
                // All input taken and room left, yet the member has not ended.
                throw fail("unexpected end of gzip data after " + std::to_string(consumed) +
                           " compressed bytes");
            }
            continue;
        }
        if (rc == Z_BUF_ERROR) {
            throw fail("unexpected end of gzip data after " + std::to_string(consumed) +
                       " compressed bytes");
        }
        if (rc == Z_MEM_ERROR) throw std::bad_alloc();
        throw fail("corrupt data at compressed byte " + std::to_string(consumed) + ": " +
                   (stream.msg ? stream.msg : zError(rc)));
    }

    out.resize(produced);
    if (produced > max_output_bytes) {
        throw fail("decompressed data exceeds the limit of " + std::to_string(max_output_bytes) +
                   " bytes");
    }
    return out;
}

DecodeReport decode_batch(std::span<const std::uint8_t> data, std::string_view origin,
                          const EventCallback& on_event) {
    DecodeReport report;
    std::vector<std::uint8_t> inflated;
    std::span<const std::uint8_t> json = data;
    if (is_gzip(data)) {
        report.was_gzip = true;
        inflated = gunzip(data, origin);
        json = inflated;
    }
    const std::string_view text(reinterpret_cast<const char*>(json.data()), json.size());
    BatchDecoder(text, origin, on_event, report).run();
    return report;
}

}  // namespace tattle
