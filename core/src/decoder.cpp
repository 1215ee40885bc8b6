#include "tattle/decoder.hpp"

// Lets zlib take const input buffers without casts.
#define ZLIB_CONST
#include <libdeflate.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <optional>
#include <utility>

namespace tattle {

const std::vector<std::string>& input_limit_keys() {
    static const std::vector<std::string> keys = {"max_batch_bytes",  "max_decompressed_bytes",
                                                  "max_record_bytes", "max_depth",
                                                  "max_records_per_batch", "max_alerts_per_batch"};
    return keys;
}

const std::vector<std::string>& limit_keys() {
    static const std::vector<std::string> keys = [] {
        std::vector<std::string> all = input_limit_keys();
        all.emplace_back("max_rule_cpu_ms");
        all.emplace_back("max_rule_memory_bytes");
        return all;
    }();
    return keys;
}

namespace {

constexpr std::uint8_t gzip_magic_first = 0x1f;
constexpr std::uint8_t gzip_magic_second = 0x8b;

// Inflated text arrives in slices of this size: large enough that zlib and the
// parser run in long stretches, small enough to stay out of the way of memory.
constexpr std::size_t inflate_chunk_bytes = std::size_t{256} << 10;

std::string with_origin(std::string_view origin, std::string_view message) {
    std::string out;
    out.reserve(origin.size() + 2 + message.size());
    out.append(origin).append(": ").append(message);
    return out;
}

std::string limit_text(std::string_view key, std::size_t value) {
    return "limits." + std::string(key) + " = " + std::to_string(value);
}

// A gzip file that inflates to at most this much (what a CloudTrail file holds) is
// inflated whole by libdeflate, about twice as fast as zlib's inflate and CRC-32 here;
// larger ones stream through zlib, so memory stays bounded whatever the file's size.
constexpr std::size_t whole_inflate_max_bytes = std::size_t{16} << 20;

// The text of a single-member gzip file inflated at once, or nullopt when it is not
// one that inflates cleanly within max_bytes (several members, a size trailer that
// lies, corrupt data): the zlib stream then reads it and says what is wrong and where.
struct WholeText {
    std::unique_ptr<char[]> bytes;
    std::size_t size = 0;
};
std::optional<WholeText> inflate_whole(std::span<const std::uint8_t> data, std::size_t max_bytes) {
    constexpr std::size_t trailer_bytes = 8;  // CRC-32 and ISIZE, the size mod 2^32
    if (data.size() < 18 + trailer_bytes) return std::nullopt;
    std::uint32_t declared_size = 0;
    for (std::size_t i = 0; i < 4; ++i) {
        declared_size |= static_cast<std::uint32_t>(data[data.size() - 4 + i]) << (8 * i);
    }
    if (declared_size == 0 || declared_size > std::min(max_bytes, whole_inflate_max_bytes)) return std::nullopt;
    thread_local const std::unique_ptr<libdeflate_decompressor, decltype(&libdeflate_free_decompressor)>
        decompressor(libdeflate_alloc_decompressor(), &libdeflate_free_decompressor);
    if (decompressor == nullptr) return std::nullopt;
    WholeText text{std::make_unique_for_overwrite<char[]>(declared_size), 0};
    std::size_t consumed = 0;
    const libdeflate_result result = libdeflate_gzip_decompress_ex(
        decompressor.get(), data.data(), data.size(), text.bytes.get(), declared_size, &consumed, &text.size);
    if (result != LIBDEFLATE_SUCCESS || text.size != declared_size || consumed != data.size()) return std::nullopt;
    return text;
}

// zlib counts in uInt (32 bits); batches may be bigger, so feed it in slices.
uInt clamp_to_uint(std::size_t n) {
    return static_cast<uInt>(std::min<std::size_t>(n, std::numeric_limits<uInt>::max()));
}

bool all_zero(std::span<const std::uint8_t> bytes) {
    return std::all_of(bytes.begin(), bytes.end(), [](std::uint8_t b) { return b == 0; });
}

// Inflates a (possibly multi-member) gzip stream a slice at a time.
class GzipStream {
public:
    GzipStream(std::span<const std::uint8_t> data, std::string_view origin, std::size_t max_output_bytes,
               std::string_view limit_key)
        : data_(data), origin_(origin), max_output_(max_output_bytes), limit_key_(limit_key) {
        // 15 window bits + 16 selects the gzip wrapper (header and CRC-32 trailer).
        const int rc = inflateInit2(&stream_, 15 + 16);
        if (rc == Z_MEM_ERROR) throw std::bad_alloc();
        if (rc != Z_OK) {
            throw DecodeError(with_origin(origin, std::string("gzip: cannot start zlib: ") +
                                                      (stream_.msg ? stream_.msg : zError(rc))));
        }
    }
    ~GzipStream() { inflateEnd(&stream_); }
    GzipStream(const GzipStream&) = delete;
    GzipStream& operator=(const GzipStream&) = delete;

    // Appends up to max_bytes of output to out; returns how many (0 only at the end).
    std::size_t read(std::string& out, std::size_t max_bytes) {
        const std::size_t old_size = out.size();
        out.resize(old_size + max_bytes);
        std::size_t produced = 0;
        while (produced == 0 && !finished_) produced = inflate_into(out.data() + old_size, max_bytes);
        out.resize(old_size + produced);
        total_out_ += produced;
        if (total_out_ > max_output_) {
            const std::string message = "gzip: decompressed data exceeds the limit of " +
                                        std::to_string(max_output_) + " bytes";
            if (limit_key_.empty()) throw DecodeError(with_origin(origin_, message));
            throw DecodeLimitError(with_origin(origin_, message + " (" + limit_text(limit_key_, max_output_) + ")"),
                                   std::string(limit_key_));
        }
        return produced;
    }

private:
    DecodeError fail(const std::string& what) const { return DecodeError(with_origin(origin_, "gzip: " + what)); }

    std::size_t inflate_into(char* out, std::size_t room) {
        const uInt input_offered = clamp_to_uint(data_.size() - consumed_);
        const uInt output_offered = clamp_to_uint(room);
        stream_.next_in = data_.data() + consumed_;
        stream_.avail_in = input_offered;
        stream_.next_out = reinterpret_cast<Bytef*>(out);
        stream_.avail_out = output_offered;

        const int rc = inflate(&stream_, Z_NO_FLUSH);
        consumed_ += input_offered - stream_.avail_in;
        const std::size_t produced = output_offered - stream_.avail_out;

        if (rc == Z_STREAM_END) {
            // gzip allows several members back to back (what `cat a.gz b.gz` makes);
            // trailing zeros are padding some writers leave behind.
            const auto rest = data_.subspan(consumed_);
            if (rest.empty() || all_zero(rest)) {
                finished_ = true;
            } else if (!is_gzip(rest)) {
                throw fail("trailing data after gzip member at compressed byte " + std::to_string(consumed_));
            } else {
                inflateReset(&stream_);
            }
            return produced;
        }
        if (rc == Z_OK || (rc == Z_BUF_ERROR && stream_.avail_out == 0)) {
            if (consumed_ == data_.size() && stream_.avail_out != 0) {
                // All input taken and room left, yet the member has not ended.
                throw fail("unexpected end of gzip data after " + std::to_string(consumed_) + " compressed bytes");
            }
            return produced;
        }
        if (rc == Z_BUF_ERROR) {
            throw fail("unexpected end of gzip data after " + std::to_string(consumed_) + " compressed bytes");
        }
        if (rc == Z_MEM_ERROR) throw std::bad_alloc();
        throw fail("corrupt data at compressed byte " + std::to_string(consumed_) + ": " +
                   (stream_.msg ? stream_.msg : zError(rc)));
    }

    std::span<const std::uint8_t> data_;
    std::string origin_;
    std::size_t max_output_;
    std::string_view limit_key_;  // empty: plain DecodeError (gunzip())
    z_stream stream_{};
    std::size_t consumed_ = 0;
    std::size_t total_out_ = 0;
    bool finished_ = false;
};

// The batch's text as a sliding window over byte offsets of the whole (inflated)
// text. Plain input is viewed where it lies; gzip is inflated into a buffer that
// drops what the reader has declared done (release_before), so the buffer holds one
// record and a slice whatever the batch's size. Also keeps the line count up to the
// release point, so any place still in the window can be named line:column.
class TextWindow {
public:
    TextWindow(std::span<const std::uint8_t> data, std::string_view origin, const InputLimits& limits)
        : origin_(origin) {
        if (!is_gzip(data)) {
            view_ = std::string_view(reinterpret_cast<const char*>(data.data()), data.size());
            return;
        }
        was_gzip_ = true;
        if (auto whole = inflate_whole(data, limits.max_decompressed_bytes)) {
            whole_ = std::move(whole->bytes);
            view_ = std::string_view(whole_.get(), whole->size);
            return;
        }
        gzip_.emplace(data, origin, limits.max_decompressed_bytes, "max_decompressed_bytes");
    }

    bool is_gzip_input() const noexcept { return was_gzip_; }
    bool inflated_whole() const noexcept { return whole_ != nullptr; }

    // One past the last offset available now.
    std::size_t end() const noexcept { return base_ + text().size(); }
    const char* at(std::size_t offset) const noexcept { return text().data() + (offset - base_); }

    // Reads more; false at the end of the text.
    bool fill() {
        if (!gzip_) return false;
        // Drop what is released once it is a good part of the buffer, so the copy
        // of what stays is paid for by the data passing through.
        const std::size_t releasable = released_to_ - base_;
        if (releasable > 0 && releasable >= buffer_.size() / 2) {
            buffer_.erase(0, releasable);
            base_ = released_to_;
        }
        return gzip_->read(buffer_, inflate_chunk_bytes) > 0;
    }

    // Makes offset available (or learns there is no such byte): the char there, or -1.
    int peek(std::size_t offset) {
        while (offset >= end()) {
            if (!fill()) return -1;
        }
        return static_cast<unsigned char>(*at(offset));
    }

    // Nothing before offset will be looked at again.
    void release_before(std::size_t offset) {
        count_lines_to(offset);
        released_to_ = offset;
    }
    std::size_t released_to() const noexcept { return released_to_; }

    struct Position {
        std::size_t line;
        std::size_t column;  // in bytes, like compilers report it
    };

    // The line:column of an offset at or after released_to().
    Position position(std::size_t offset) const {
        std::size_t line = line_;
        std::size_t line_start = line_start_;
        std::size_t from = released_to_;
        offset = std::min(offset, end());
        while (from < offset) {
            const void* newline = std::memchr(at(from), '\n', offset - from);
            if (newline == nullptr) break;
            const std::size_t newline_offset = offset_of(newline);
            ++line;
            line_start = newline_offset + 1;
            from = newline_offset + 1;
        }
        return {line, offset - line_start + 1};
    }

    // Offset of the next '\n' at or after from, or the end of the text. When
    // may_release, bytes searched are released (a long broken line is not kept);
    // otherwise gives up (nullopt) past max_span bytes.
    std::optional<std::size_t> find_newline(std::size_t from, bool may_release, std::size_t max_span) {
        std::size_t searched = from;
        for (;;) {
            if (searched < end()) {
                if (const void* newline = std::memchr(at(searched), '\n', end() - searched)) {
                    return offset_of(newline);
                }
                searched = end();
            }
            if (!may_release && searched - from > max_span) return std::nullopt;
            if (may_release) release_before(searched);
            if (!fill()) return end();
        }
    }

private:
    std::string_view text() const noexcept { return gzip_ ? std::string_view(buffer_) : view_; }
    std::size_t offset_of(const void* in_text) const noexcept {
        return base_ + static_cast<std::size_t>(static_cast<const char*>(in_text) - text().data());
    }

    void count_lines_to(std::size_t offset) {
        const Position position_there = position(offset);
        line_ = position_there.line;
        line_start_ = offset + 1 - position_there.column;
    }

    std::string origin_;
    bool was_gzip_ = false;
    std::optional<GzipStream> gzip_;           // a gzip file inflated as it is read
    std::unique_ptr<char[]> whole_;            // or inflated at once (inflate_whole)
    std::string_view view_;                    // plain input, or whole_
    std::string buffer_;
    std::size_t base_ = 0;         // offset of buffer_[0]
    std::size_t released_to_ = 0;  // line_ and line_start_ are counted up to here
    std::size_t line_ = 1;
    std::size_t line_start_ = 0;
};

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

bool is_json_whitespace(int c) noexcept { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

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

boost::json::parse_options json_options(std::size_t max_depth) {
    boost::json::parse_options options;
    options.max_depth = max_depth;
    // CloudTrail copies attacker-chosen strings into records; one stray byte
    // must not make the whole log file unreadable (and skipping validation is faster).
    options.allow_invalid_utf8 = true;
    return options;
}

// A syntax error (or a limit that makes the value unreadable) at an offset; the
// top-level loop decides whether it sinks the batch or only its line.
struct SyntaxProblem {
    std::size_t offset;
    std::string message;
    std::string limit;  // the [limits] key when a limit caused it
};

// Reads one batch value by value and hands out events.
class BatchDecoder {
public:
    BatchDecoder(TextWindow& window, std::string_view origin, const EventCallback& on_event,
                 DecodeReport& report, const InputLimits& limits, EventLifetime lifetime)
        : window_(window),
          origin_(origin),
          on_event_(on_event),
          report_(report),
          limits_(limits),
          lifetime_(lifetime),
          // One level for the document object and one for its Records array are
          // not the record's own: a record's depth is counted from itself.
          parser_(boost::json::storage_ptr(), json_options(limits.max_depth)) {}

    void run() {
        std::size_t pos = 0;
        // Some editors on Windows write a UTF-8 byte order mark; it is not JSON.
        if (window_.peek(0) == 0xEF && window_.peek(1) == 0xBB && window_.peek(2) == 0xBF) pos = 3;
        pos = skip_whitespace(pos);
        if (window_.peek(pos) < 0) {
            skip_document(with_origin(origin_, "empty input"));
            return;
        }
        first_value_offset_ = pos;

        while (window_.peek(pos) >= 0) {
            start_value(pos);
            try {
                pos = read_top_level_value(pos);
                ++values_parsed_;
            } catch (const SyntaxProblem& problem) {
                pos = recover_from_syntax_error(problem);
            }
            pos = skip_whitespace(pos);
        }
    }

private:
    std::size_t skip_whitespace(std::size_t pos) {
        while (is_json_whitespace(window_.peek(pos))) ++pos;
        return pos;
    }

    void start_value(std::size_t pos) {
        window_.release_before(pos);
        value_start_ = pos;
        value_position_ = window_.position(pos);
        // Messages about one document carry its place only when the batch holds more
        // than one; "file.json: Records[7]" reads better than "file.json:1:1: Records[7]".
        value_prefix_ = pos == first_value_offset_ ? origin_ : origin_ + ':' + describe(value_position_);
    }

    static std::string describe(const TextWindow::Position& position) {
        return std::to_string(position.line) + ':' + std::to_string(position.column);
    }

    std::string place(std::size_t offset) const { return origin_ + ':' + describe(window_.position(offset)); }

    // Whether the text at pos is `{ "Records" : [`; on success, pos is moved past the '['.
    bool at_records_array(std::size_t& pos) {
        static constexpr std::string_view key = "\"Records\"";
        std::size_t cursor = skip_whitespace(pos + 1);
        for (const char expected : key) {
            if (window_.peek(cursor) != static_cast<unsigned char>(expected)) return false;
            ++cursor;
        }
        cursor = skip_whitespace(cursor);
        if (window_.peek(cursor) != ':') return false;
        cursor = skip_whitespace(cursor + 1);
        if (window_.peek(cursor) != '[') return false;
        pos = cursor + 1;
        return true;
    }

    std::size_t read_top_level_value(std::size_t pos) {
        const int first = window_.peek(pos);
        std::size_t after_bracket = pos;
        if (first == '{' && at_records_array(after_bracket)) {
            const std::size_t pos_after_array = read_elements(after_bracket, "Records");
            return read_members_after_records(pos_after_array);
        }
        if (first == '[') {
            std::size_t elements = 0;
            const std::size_t end = read_elements(pos + 1, "", &elements);
            if (elements == 0) skip_document(value_prefix_ + ": empty JSON array");
            return end;
        }
        // Anything else is parsed whole: a single event, a digest file, an object
        // whose Records come after other keys.
        ParsedValue parsed = parse_value(pos, false);
        if (parsed.skipped_for_limit) return parsed.end;
        classify(std::move(parsed.value));
        return parsed.end;
    }

    // The elements of an array from just after its '[': each is handed out (objects)
    // or reported. Returns the offset after the ']'.
    std::size_t read_elements(std::size_t pos, std::string_view label, std::size_t* count = nullptr) {
        std::size_t index = 0;
        pos = skip_whitespace(pos);
        if (window_.peek(pos) == ']') {
            if (count != nullptr) *count = 0;
            return pos + 1;
        }
        for (;;) {
            window_.release_before(pos);
            std::size_t end = 0;
            {
                ParsedValue parsed = parse_value(pos, true, label, index, element_storage());
                if (!parsed.skipped_for_limit) {
                    if (parsed.value.is_object()) {
                        emit(std::move(parsed.value.get_object()));
                    } else {
                        report_.record_errors.push_back(value_prefix_ + ": " + std::string(label) + '[' +
                                                        std::to_string(index) + "]: not an object (got " +
                                                        kind_name(parsed.value.kind()) + ')');
                    }
                }
                end = parsed.end;
            }
            // The element is gone: its memory serves the next one.
            if (lifetime_ == EventLifetime::callback) renew_element_memory();
            ++index;
            pos = skip_whitespace(end);
            const int next = window_.peek(pos);
            if (next == ',') {
                pos = skip_whitespace(pos + 1);
                continue;
            }
            if (next == ']') break;
            throw syntax_problem(pos, "expected ',' or ']' after an array element");
        }
        if (count != nullptr) *count = index;
        return pos + 1;
    }

    // After {"Records": [...]: more members (read and dropped), then '}'.
    std::size_t read_members_after_records(std::size_t pos) {
        for (;;) {
            pos = skip_whitespace(pos);
            const int next = window_.peek(pos);
            if (next == '}') return pos + 1;
            if (next != ',') throw syntax_problem(pos, "expected ',' or '}' after the Records array");
            pos = skip_whitespace(pos + 1);
            window_.release_before(pos);
            if (window_.peek(pos) != '"') throw syntax_problem(pos, "expected a key string");
            pos = skip_whitespace(parse_value(pos, false).end);
            if (window_.peek(pos) != ':') throw syntax_problem(pos, "expected ':' after a key");
            pos = skip_whitespace(pos + 1);
            window_.release_before(pos);
            const ParsedValue member = parse_value(pos, true, "", 0);
            pos = member.end;
        }
    }

    struct ParsedValue {
        boost::json::value value;
        std::size_t end = 0;
        bool skipped_for_limit = false;
    };

    // Parses the JSON value starting at start, reading more text as needed. A value
    // over max_record_bytes is skipped (record error) and so is, within an array
    // (in_array), one over max_depth; both are counted. Syntax errors throw.
    ParsedValue parse_value(std::size_t start, bool in_array, std::string_view label = {}, std::size_t index = 0,
                            boost::json::storage_ptr storage = {}) {
        parser_.reset(std::move(storage));
        std::size_t pos = start;
        boost::json::error_code ec;
        for (;;) {
            if (pos == window_.end() && !window_.fill()) {
                parser_.finish(ec);
                if (ec) throw syntax_problem(pos, "JSON syntax error: " + ec.message());
                break;
            }
            const std::size_t allowed = limits_.max_record_bytes - (pos - start);
            if (allowed == 0) {
                return skip_oversized(start, label, index, in_array);
            }
            const std::size_t offered = std::min(window_.end() - pos, allowed);
            pos += parser_.write_some(window_.at(pos), offered, ec);
            if (ec) {
                if (ec == boost::json::error::too_deep) {
                    if (in_array) return skip_too_deep(start, label, index);
                    throw SyntaxProblem{pos,
                                        with_found_at("JSON syntax error: " + ec.message() + " (" +
                                                          limit_text("max_depth", limits_.max_depth) + ")",
                                                      pos),
                                        "max_depth"};
                }
                throw syntax_problem(pos, "JSON syntax error: " + ec.message());
            }
            if (parser_.done()) break;
        }
        return ParsedValue{parser_.release(), pos, false};
    }

    std::string record_name(std::size_t start, std::string_view label, std::size_t index, bool in_array) const {
        std::string name = place(start);
        if (in_array) name.append(": ").append(label).append("[").append(std::to_string(index)).append("]");
        return name;
    }

    ParsedValue skip_oversized(std::size_t start, std::string_view label, std::size_t index, bool in_array) {
        report_limit(record_name(start, label, index, in_array) + ": record larger than " +
                         limit_text("max_record_bytes", limits_.max_record_bytes) + "; skipped",
                     "max_record_bytes");
        return ParsedValue{{}, skip_value(start), true};
    }

    ParsedValue skip_too_deep(std::size_t start, std::string_view label, std::size_t index) {
        report_limit(record_name(start, label, index, true) + ": record nests deeper than " +
                         limit_text("max_depth", limits_.max_depth) + "; skipped",
                     "max_depth");
        return ParsedValue{{}, skip_value(start), true};
    }

    void report_limit(std::string message, const char* limit) {
        report_.record_errors.push_back(std::move(message));
        report_.limits_hit.emplace_back(limit);
    }

    // The end of the value at start, found by tracking strings, escapes and nesting
    // only (what is skipped is not parsed). Bytes are released as they are passed.
    std::size_t skip_value(std::size_t start) {
        std::size_t depth = 0;
        bool in_string = false;
        bool escaped = false;
        std::size_t pos = start;
        for (;; ++pos) {
            if (pos >= window_.end()) {
                window_.release_before(pos);
                if (!window_.fill()) throw syntax_problem(pos, "JSON syntax error: unexpected end of input");
            }
            const char c = *window_.at(pos);
            if (in_string) {
                if (escaped) {
                    escaped = false;
                } else if (c == '\\') {
                    escaped = true;
                } else if (c == '"') {
                    in_string = false;
                    if (depth == 0) return pos + 1;
                }
            } else if (c == '"') {
                in_string = true;
            } else if (c == '{' || c == '[') {
                ++depth;
            } else if (c == '}' || c == ']') {
                if (depth == 0) return pos;  // the end of a scalar, not part of it
                if (--depth == 0) return pos + 1;
            } else if (depth == 0 && (c == ',' || is_json_whitespace(c))) {
                return pos;  // the end of a scalar
            }
        }
    }

    SyntaxProblem syntax_problem(std::size_t offset, std::string message) {
        return SyntaxProblem{offset, with_found_at(std::move(message), offset), {}};
    }

    // Boost's messages are terse ("syntax error"); the offending byte says more.
    std::string with_found_at(std::string message, std::size_t offset) {
        const int byte = window_.peek(offset);
        if (byte < 0) return message;
        if (byte >= 0x21 && byte < 0x7f) {
            message.append(" at '").append(1, static_cast<char>(byte)).append("'");
        } else {
            static constexpr char hex_digits[] = "0123456789abcdef";
            message.append(" at byte 0x").append(1, hex_digits[byte >> 4]).append(1, hex_digits[byte & 0xf]);
        }
        return message;
    }

    // The first value of a batch is a whole JSON document unless the batch is
    // evidently JSON Lines: the next non-blank line starts, unindented, with an
    // object that ends on that line. A broken pretty-printed document fails that
    // test (its inner lines are indented, or are not values on their own), so it
    // fails as a whole instead of yielding fragments.
    bool looks_like_json_lines(std::size_t value_line_end) {
        const std::size_t next_line = value_line_end + 1;
        std::size_t candidate = skip_whitespace(next_line);
        const int first = window_.peek(candidate);
        if (first != '{' || *window_.at(candidate - 1) != '\n') return false;
        const auto candidate_end = window_.find_newline(candidate, false, limits_.max_record_bytes);
        if (!candidate_end) return false;

        boost::json::parser probe(boost::json::storage_ptr(), json_options(limits_.max_depth));
        boost::json::error_code ec;
        const std::size_t consumed = probe.write_some(window_.at(candidate), *candidate_end - candidate, ec);
        return !ec && candidate + consumed == *candidate_end;
    }

    std::size_t recover_from_syntax_error(const SyntaxProblem& problem) {
        const auto error_position = window_.position(problem.offset);
        std::string message = origin_ + ':' + describe(error_position) + ": " + problem.message;
        if (!problem.limit.empty()) report_.limits_hit.push_back(problem.limit);

        // The value's first line is still in the window unless a long document was
        // streamed past it; then it is not JSON Lines, and the line to skip from is
        // the one the current record started on.
        const std::size_t from = std::max(value_start_, window_.released_to());
        const bool value_line_known =
            value_start_ >= window_.released_to() || window_.position(from).line == value_position_.line;
        const auto fail_batch = [&] {
            if (!problem.limit.empty()) throw DecodeLimitError(message, problem.limit);
            throw DecodeError(message);
        };
        if (values_parsed_ == 0 && !value_line_known) fail_batch();
        const std::size_t line_end = *window_.find_newline(from, true, 0);
        if (values_parsed_ == 0 && !looks_like_json_lines(line_end)) fail_batch();
        // Resume after the line where the broken value began, not where the parser
        // noticed: a truncated JSON line is only noticed on the next line, which is
        // itself fine and must not be lost with it.
        if (value_position_.line != error_position.line) {
            message.append(" (skipped line ").append(std::to_string(value_position_.line)).append(")");
        }
        report_.record_errors.push_back(std::move(message));
        return line_end + 1;
    }

    void skip_document(std::string reason) {
        ++report_.skipped_documents;
        report_.skip_reasons.push_back(std::move(reason));
    }

    void emit(boost::json::object&& event) {
        if (report_.events >= limits_.max_records_per_batch) {
            throw DecodeLimitError(origin_ + ": more than " + std::to_string(limits_.max_records_per_batch) +
                                       " records in the batch (" +
                                       limit_text("max_records_per_batch", limits_.max_records_per_batch) +
                                       "); the batch is failed",
                                   "max_records_per_batch");
        }
        const std::size_t index = report_.events++;
        on_event_(std::move(event), index);
    }

    // A document parsed whole.
    void classify(boost::json::value&& document) {
        if (document.is_object()) {
            auto& object = document.get_object();
            if (auto records = object.find("Records"); records != object.end()) {
                if (!records->value().is_array()) {
                    throw DecodeError(value_prefix_ + ": \"Records\" is not an array (got " +
                                      kind_name(records->value().kind()) + ')');
                }
                auto& elements = records->value().get_array();
                for (std::size_t i = 0; i < elements.size(); ++i) {
                    if (elements[i].is_object()) {
                        emit(std::move(elements[i].get_object()));
                    } else {
                        report_.record_errors.push_back(value_prefix_ + ": Records[" + std::to_string(i) +
                                                        "]: not an object (got " + kind_name(elements[i].kind()) +
                                                        ')');
                    }
                }
            } else if (object.empty()) {
                skip_document(value_prefix_ + ": empty JSON object");
            } else if (is_cloudtrail_digest(object)) {
                skip_document(value_prefix_ + ": CloudTrail digest file");
            } else {
                emit(std::move(object));
            }
        } else {
            report_.record_errors.push_back(value_prefix_ + ": top-level " + kind_name(document.kind()) +
                                            " is not an event");
        }
    }

    // Where an array element is parsed: with EventLifetime::callback, memory reused
    // from one element to the next (most records fit in its first block), instead of
    // hundreds of allocations and frees per record.
    boost::json::storage_ptr element_storage() {
        if (lifetime_ == EventLifetime::owned) return {};
        if (!element_memory_) renew_element_memory();
        return boost::json::storage_ptr(&*element_memory_);
    }
    // A new resource rather than monotonic_resource::release(): in Boost 1.81 that
    // keeps the size of the next block, which doubles with every block, until an
    // allocation fails.
    void renew_element_memory() {
        parser_.reset();  // what it still holds (a record it skipped) goes first
        element_memory_.reset();
        element_memory_.emplace(element_first_block_.data(), element_first_block_.size());
    }

    TextWindow& window_;
    std::string origin_;
    const EventCallback& on_event_;
    DecodeReport& report_;
    const InputLimits& limits_;
    EventLifetime lifetime_;
    // Before the parser, which may point at it until it is destroyed.
    std::array<unsigned char, 32 * 1024> element_first_block_{};
    std::optional<boost::json::monotonic_resource> element_memory_;
    boost::json::stream_parser parser_;
    std::size_t first_value_offset_ = 0;
    std::size_t values_parsed_ = 0;
    std::size_t value_start_ = 0;
    TextWindow::Position value_position_{1, 1};
    std::string value_prefix_;
};

}  // namespace

bool is_gzip(std::span<const std::uint8_t> data) noexcept {
    return data.size() >= 2 && data[0] == gzip_magic_first && data[1] == gzip_magic_second;
}

std::vector<std::uint8_t> gunzip(std::span<const std::uint8_t> data, std::string_view origin,
                                 std::size_t max_output_bytes) {
    if (!is_gzip(data)) return {data.begin(), data.end()};
    GzipStream stream(data, origin, max_output_bytes, {});
    std::string out;
    while (stream.read(out, inflate_chunk_bytes) > 0) {
    }
    return {out.begin(), out.end()};
}

DecodeReport decode_batch(std::span<const std::uint8_t> data, std::string_view origin,
                          const EventCallback& on_event, const InputLimits& limits, EventLifetime lifetime) {
    if (data.size() > limits.max_batch_bytes) {
        throw DecodeLimitError(with_origin(origin, "batch of " + std::to_string(data.size()) +
                                                       " bytes is larger than " +
                                                       limit_text("max_batch_bytes", limits.max_batch_bytes)),
                               "max_batch_bytes");
    }
    DecodeReport report;
    TextWindow window(data, origin, limits);
    report.was_gzip = window.is_gzip_input();
    report.inflated_whole = window.inflated_whole();
    BatchDecoder(window, origin, on_event, report, limits, lifetime).run();
    return report;
}

}  // namespace tattle
