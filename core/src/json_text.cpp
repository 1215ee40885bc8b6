#include "tattle/json_text.hpp"

#include "tattle/text_safety.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

namespace tattle {

namespace {

constexpr std::uint64_t ones = 0x0101010101010101ULL;
constexpr std::uint64_t high_bits = 0x8080808080808080ULL;
// Fills the bytes of a word past the end of a string: 'A' is never flagged.
constexpr std::uint64_t padding = ones * 'A';

// The high bit of each byte of word that needs a look: a control character (escaped),
// '"' or '\\' (escaped), or a byte >= 0x80 (maybe invalid UTF-8). The subtractions can
// borrow into the bytes above a flagged byte and flag them too, but never flag a byte
// below the first flagged one, and only the first is used.
std::uint64_t special_bytes(std::uint64_t word) noexcept {
    const std::uint64_t quotes = word ^ (ones * '"');
    const std::uint64_t backslashes = word ^ (ones * '\\');
    const std::uint64_t below_space = (word - ones * 0x20) & ~word;
    const std::uint64_t is_quote = (quotes - ones) & ~quotes;
    const std::uint64_t is_backslash = (backslashes - ones) & ~backslashes;
    return (below_space | is_quote | is_backslash | word) & high_bits;
}

// How many bytes of word, from its first in memory, need nothing: 8 when none does.
std::size_t clean_prefix(std::uint64_t word) noexcept {
    // countr_zero finds the first flagged byte (the borrows run away from it) only when
    // the first byte in memory is the least significant.
    if constexpr (std::endian::native == std::endian::big) word = __builtin_bswap64(word);
    return static_cast<std::size_t>(std::countr_zero(special_bytes(word))) / 8;
}

// The next (up to) 8 bytes of [in, end) as a word, padded when fewer are left, loaded
// without a call to memcpy (a variable length) and without reading outside the string:
// a short end of a long string comes from the word that ends at its end.
std::uint64_t next_word(const char* begin, const char* in, const char* end) noexcept {
    std::uint64_t word = padding;
    const auto left = static_cast<std::size_t>(end - in);
    if (left >= 8) {
        std::memcpy(&word, in, 8);
    } else if constexpr (std::endian::native == std::endian::little) {
        const std::size_t unused_bits = 8 * (8 - left);
        if (end - begin >= 8) {
            std::memcpy(&word, end - 8, 8);
            word >>= unused_bits;
        } else {
            word = 0;
            std::size_t at = 0;
            if (left & 4) {
                std::uint32_t four;
                std::memcpy(&four, in, 4);
                word = four;
                at = 4;
            }
            if (left & 2) {
                std::uint16_t two;
                std::memcpy(&two, in + at, 2);
                word |= std::uint64_t{two} << (8 * at);
                at += 2;
            }
            if (left & 1) word |= std::uint64_t{static_cast<std::uint8_t>(in[at])} << (8 * at);
        }
        word |= padding << (8 * left);
    } else {
        std::memcpy(&word, in, left);
    }
    return word;
}

char* write_escape(char* to, unsigned char c) noexcept {
    // Boost.JSON 1.81 (serializer.ipp) writes these short, the other control characters
    // as \u00XX with lowercase hex, and every other byte as it is.
    static constexpr std::string_view escaped_bytes = "\"\\\b\t\n\f\r";
    static constexpr std::string_view short_forms = "\"\\btnfr";
    static constexpr char hex[] = "0123456789abcdef";
    if (const auto at = escaped_bytes.find(static_cast<char>(c)); at != escaped_bytes.npos) {
        const char escaped[] = {'\\', short_forms[at]};
        std::memcpy(to, escaped, sizeof escaped);
        return to + sizeof escaped;
    }
    const char escaped[] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xF]};
    std::memcpy(to, escaped, sizeof escaped);
    return to + sizeof escaped;
}

// The flagged byte at in: escaped, or the start of a UTF-8 sequence, kept when valid and
// replaced by U+FFFD (one per byte that starts none, as valid_utf8 does) when not.
// Advances in past what it wrote; at most 6 bytes are written per byte read.
char* write_special(char* to, const char*& in, const char* end) noexcept {
    const auto c = static_cast<unsigned char>(*in);
    if (c < 0x80) {
        ++in;
        return write_escape(to, c);
    }
    if (const std::size_t length = utf8_sequence_length(std::string_view(in, static_cast<std::size_t>(end - in)), 0);
        length != 0) {
        std::memcpy(to, in, length);
        in += length;
        return to + length;
    }
    ++in;
    std::memcpy(to, "\xEF\xBF\xBD", 3);
    return to + 3;
}

// One step of writing a string: the next 8 bytes (fewer at its end) are stored whole,
// then to and in move past only the clean ones, and past the flagged byte after them.
char* word_step(char* to, const char*& in, const char* begin, const char* end) noexcept {
    const std::uint64_t word = next_word(begin, in, end);
    std::memcpy(to, &word, 8);
    const std::size_t clean = std::min(clean_prefix(word), static_cast<std::size_t>(end - in));
    to += clean;
    in += clean;
    // Fewer than 8 clean bytes: the string ended, or the next byte is flagged.
    if (clean < 8 && in != end) to = write_special(to, in, end);
    return to;
}

#ifdef __SSE2__
// word_step for 16 bytes (at least 16 left) at once.
char* block_step(char* to, const char*& in, const char* end) noexcept {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(to), bytes);
    // Compared as signed, bytes >= 0x80 are below 0x20 too.
    const __m128i flagged = _mm_or_si128(_mm_cmplt_epi8(bytes, _mm_set1_epi8(0x20)),
                                         _mm_or_si128(_mm_cmpeq_epi8(bytes, _mm_set1_epi8('"')),
                                                      _mm_cmpeq_epi8(bytes, _mm_set1_epi8('\\'))));
    const auto mask = static_cast<unsigned>(_mm_movemask_epi8(flagged));
    if (mask == 0) {
        in += 16;
        return to + 16;
    }
    const auto clean = static_cast<std::size_t>(std::countr_zero(mask));
    in += clean;
    return write_special(to + clean, in, end);
}
#endif

// The last bytes of a string (1 to 15) copied at once when none needs a look, as nearly
// always: two words that may overlap, or one padded. False, and nothing done, otherwise.
bool copy_clean_tail(char*& to, const char*& in, const char* begin, const char* end) noexcept {
    const auto left = static_cast<std::size_t>(end - in);
    if (left >= 8) {
        std::uint64_t first;
        std::uint64_t last;
        std::memcpy(&first, in, 8);
        std::memcpy(&last, end - 8, 8);
        if ((special_bytes(first) | special_bytes(last)) != 0) return false;
        std::memcpy(to, &first, 8);
        std::memcpy(to + left - 8, &last, 8);
    } else {
        const std::uint64_t word = next_word(begin, in, end);
        if (special_bytes(word) != 0) return false;
        std::memcpy(to, &word, 8);
    }
    to += left;
    in = end;
    return true;
}

// JSON text is written into a buffer of its own, where room for the worst case of a
// whole step (a string, a number) is made once and the step then stores bytes, and whole
// 8-byte words, with no checks (as Boost's serializer does); the caller's string gets it
// in large appends.
class Writer {
public:
    explicit Writer(std::string& out) : out_(out) {}
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;

    // Called once at the end (not from a destructor: appending can throw).
    void flush() {
        out_.append(buffer_, at_);
        at_ = buffer_;
    }

    void value(const boost::json::value& v) {
        switch (v.kind()) {
            case boost::json::kind::object:
                object(v.get_object());
                return;
            case boost::json::kind::array: {
                put('[');
                bool first = true;
                for (const auto& element : v.get_array()) {
                    if (!first) put(',');
                    first = false;
                    value(element);
                }
                put(']');
                return;
            }
            case boost::json::kind::string:
                string(v.get_string());
                return;
            case boost::json::kind::int64:
                integer(v.get_int64());
                return;
            case boost::json::kind::uint64:
                integer(v.get_uint64());
                return;
            case boost::json::kind::double_:
                number(v);
                return;
            case boost::json::kind::bool_:
                literal(v.get_bool() ? "true" : "false");
                return;
            case boost::json::kind::null:
                literal("null");
                return;
        }
    }

    void object(const boost::json::object& object) {
        put('{');
        bool first = true;
        for (const auto& member : object) {
            if (!first) put(',');
            first = false;
            string(member.key());
            put(':');
            value(member.value());
        }
        put('}');
    }

    void string(std::string_view s) {
        const char* in = s.data();
        const char* const end = in + s.size();
        room(max_step);  // the quotes of an empty string, or the first step
        // A local: stores through a char* could change any member, at_ included.
        char* to = at_;
        *to++ = '"';
        while (in != end) {
            // Room for this step, and after it for the closing quote.
            if (static_cast<std::size_t>(buffer_ + buffer_size - to) < max_step) {
                at_ = to;
                flush();
                to = at_;
            }
#ifdef __SSE2__
            if (end - in >= 16) {
                to = block_step(to, in, end);
                continue;
            }
#endif
            if (end - in < 16 && copy_clean_tail(to, in, s.data(), end)) break;
            to = word_step(to, in, s.data(), end);
        }
        *to++ = '"';
        at_ = to;
    }

private:
    static constexpr std::size_t buffer_size = 4096;
    // What one step of string() may write (a 16-byte block, or 15 clean bytes and a
    // special one's 6) and a closing quote, with room to spare.
    static constexpr std::size_t max_step = 32;

    template <typename Integer>
    void integer(Integer i) {
        // Plain decimal with a '-' for negatives, as Boost's format_int64/format_uint64.
        room(24);
        at_ = std::to_chars(at_, at_ + 24, i).ptr;
    }

    void number(const boost::json::value& v) {
        const double d = v.get_double();
        // What valid_json_text makes of Boost's NaN, Infinity and -Infinity.
        if (std::isnan(d)) {
            literal("null");
        } else if (std::isinf(d)) {
            literal(d < 0 ? "-1.7976931348623157e+308" : "1.7976931348623157e+308");
        } else {
            // Boost's own text for the number (its Ryu variant: "1E0", "-0E0", "1.5E-7"):
            // rare in events, so exactness matters more here than speed.
            boost::json::serializer serializer;
            serializer.reset(&v);
            room(64);
            at_ += serializer.read(at_, 64).size();
        }
    }

    void literal(std::string_view text) {
        room(text.size());
        std::memcpy(at_, text.data(), text.size());
        at_ += text.size();
    }

    void put(char c) {
        room(1);
        *at_++ = c;
    }

    // Makes sure n bytes (at most buffer_size) can be written at at_.
    void room(std::size_t n) {
        if (static_cast<std::size_t>(buffer_ + buffer_size - at_) < n) flush();
    }

    std::string& out_;
    char buffer_[buffer_size];
    char* at_ = buffer_;
};

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
    Writer writer(out);
    writer.string(s);
    writer.flush();
}

void append_json_text(std::string& out, const boost::json::value& v) {
    Writer writer(out);
    writer.value(v);
    writer.flush();
}

void append_json_text(std::string& out, const boost::json::object& object) {
    Writer writer(out);
    writer.object(object);
    writer.flush();
}

}  // namespace tattle
