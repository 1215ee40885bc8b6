// The one-pass JSON writer (json_text.hpp) against what it replaces,
// valid_json_text(boost::json::serialize(v)): the same bytes for real CloudTrail events,
// for every single byte in keys and strings, and for seeded random values.
//
// Fixtures: /work/shared/data (see its README for sources and licences):
//   cloudtrail/trailscraper_testdata     flosell/trailscraper, Apache-2.0
//   cloudtrail/invictus-ir_aws_dataset   invictus-ir/aws_dataset, MIT
//   cloudtrail/awsdocs_cloudtrail_userguide_examples  awsdocs, CC-BY-SA-4.0 / MIT-0
#include "tattle/json_text.hpp"
#include "tattle/decoder.hpp"
#include "tattle/text_safety.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace tattle {
namespace {

namespace fs = std::filesystem;

std::string reference_text(const boost::json::value& v) {
    return valid_json_text(boost::json::serialize(v));
}

std::string reference_string(std::string_view s) {
    return valid_json_text(boost::json::serialize(boost::json::string_view(s)));
}

std::string written_text(const boost::json::value& v) {
    std::string out;
    append_json_text(out, v);
    return out;
}

std::string written_string(std::string_view s) {
    std::string out;
    append_json_string(out, s);
    return out;
}

std::vector<std::uint8_t> read_bytes(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open fixture " + path.string());
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(JsonText, EveryCloudTrailEventOfTheSharedDataIsWrittenAsBoostWritesIt) {
    std::vector<fs::path> files;
    for (const auto& entry :
         fs::recursive_directory_iterator(fs::path(TATTLE_SHARED_DATA_DIR) / "cloudtrail")) {
        const std::string name = entry.path().filename().string();
        if (entry.is_regular_file() && (name.ends_with(".json") || name.ends_with(".json.gz"))) {
            files.push_back(entry.path());
        }
    }
    std::sort(files.begin(), files.end());
    std::size_t events = 0;
    std::size_t mismatches = 0;
    for (const auto& file : files) {
        decode_batch(
            read_bytes(file), file.string(), [&](boost::json::object&& event, std::size_t index) {
                ++events;
                const std::string expected = reference_text(event);
                // Appended after what the buffer holds already, as a document is built.
                std::string from_object = "prefix";
                append_json_text(from_object, event);
                const std::string from_value = written_text(boost::json::value(std::move(event)));
                if (from_object != "prefix" + expected || from_value != expected) {
                    // One full report is enough to debug; the count says how many more.
                    if (++mismatches == 1) {
                        ADD_FAILURE()
                            << file << " event " << index << "\nexpected: " << expected
                            << "\nobject:   " << from_object << "\nvalue:    " << from_value;
                    }
                }
            });
    }
    EXPECT_EQ(mismatches, 0u) << "of " << events << " events";
    // The README counts 2,900 events in the invictus-ir files alone.
    EXPECT_GT(events, 2900u);
}

TEST(JsonText, EverySingleByteInAKeyAndAStringIsWrittenAsBoostWritesIt) {
    for (int byte = 0; byte < 256; ++byte) {
        SCOPED_TRACE(byte);
        const std::string alone(1, static_cast<char>(byte));
        const boost::json::value object = {{alone, alone}};
        EXPECT_EQ(written_text(object), reference_text(object));
        EXPECT_EQ(written_string(alone), reference_string(alone));
        // At every place of the words the string is scanned in, and of the short last one.
        for (std::size_t at = 0; at < 17; ++at) {
            std::string text(17, 'x');
            text[at] = static_cast<char>(byte);
            EXPECT_EQ(written_string(text), reference_string(text)) << "at " << at;
        }
    }
}

TEST(JsonText, EscapesAndReplacementsAreTheDocumentedOnes) {
    // Fixed expectations, so that a change in the reference itself shows too.
    EXPECT_EQ(written_string("a\"b\\c/\b\f\n\r\t\x01\x1f\x7f"),
              "\"a\\\"b\\\\c/\\b\\f\\n\\r\\t\\u0001\\u001f\x7f\"");
    EXPECT_EQ(written_string("\xE2\x80\xA8 \xC3\xA9"), "\"\xE2\x80\xA8 \xC3\xA9\"");
    EXPECT_EQ(written_string("\xFF\xE2\x82"), "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");
    const boost::json::value numbers = {std::numeric_limits<double>::infinity(),
                                        -std::numeric_limits<double>::infinity(),
                                        std::numeric_limits<double>::quiet_NaN(),
                                        -0.0,
                                        1e300,
                                        std::numeric_limits<std::int64_t>::min(),
                                        std::numeric_limits<std::uint64_t>::max()};
    EXPECT_EQ(written_text(numbers),
              "[1.7976931348623157e+308,-1.7976931348623157e+308,null,-0E0,1E300,"
              "-9223372036854775808,18446744073709551615]");
    EXPECT_EQ(written_text(boost::json::parse(R"({"a":{},"b":[],"c":[{}],"d":null})")),
              R"({"a":{},"b":[],"c":[{}],"d":null})");
}

// Values built from seeded random choices, weighted towards what is hard to write:
// escapes, UTF-8 valid and not, word boundaries, special doubles, nesting.
class RandomValues {
public:
    explicit RandomValues(std::uint64_t seed) : random_(seed) {}

    std::string text() {
        // Valid sequences (2, 3, 4 bytes, U+2028, the largest code point), the invalid kinds
        // valid_utf8 replaces (overlong, surrogate, above U+10FFFF, truncated, lone
        // continuation, bytes that never start one), and the characters JSON escapes.
        static const std::vector<std::string> pieces = {"\xC3\xA9",
                                                        "\xE2\x82\xAC",
                                                        "\xF0\x9F\x98\x80",
                                                        "\xE2\x80\xA8",
                                                        "\xF4\x8F\xBF\xBF",
                                                        "\xC0\x80",
                                                        "\xC1\xBF",
                                                        "\xE0\x80\x80",
                                                        "\xE0\x9F\xBF",
                                                        "\xED\xA0\x80",
                                                        "\xED\xBF\xBF",
                                                        "\xF0\x80\x80\x80",
                                                        "\xF0\x8F\xBF\xBF",
                                                        "\xF4\x90\x80\x80",
                                                        "\xF5\x80\x80\x80",
                                                        "\xE2\x82",
                                                        "\xF0\x9F\x98",
                                                        "\xC3",
                                                        "\x80",
                                                        "\xBF",
                                                        "\xFE",
                                                        "\xFF",
                                                        "\"",
                                                        "\\",
                                                        "\n",
                                                        std::string(1, '\0'),
                                                        "\x1f",
                                                        "\x7f",
                                                        "Infinity",
                                                        "NaN",
                                                        "AKIA/abc+=",
                                                        "arn:aws:iam::1:role/x"};
        std::string s;
        const std::size_t parts = below(12);
        for (std::size_t i = 0; i < parts; ++i) {
            switch (below(4)) {
                case 0:
                    s += pieces[below(pieces.size())];
                    break;
                case 1:
                    s += static_cast<char>(below(256));
                    break;
                default:
                    s.append(below(20), static_cast<char>('a' + below(26)));
                    break;
            }
        }
        return s;
    }

    double number() {
        static const std::vector<double> special = {std::numeric_limits<double>::infinity(),
                                                    -std::numeric_limits<double>::infinity(),
                                                    std::numeric_limits<double>::quiet_NaN(),
                                                    -std::numeric_limits<double>::quiet_NaN(),
                                                    0.0,
                                                    -0.0,
                                                    1e300,
                                                    -1e-300,
                                                    std::numeric_limits<double>::denorm_min(),
                                                    std::numeric_limits<double>::min() / 3,
                                                    std::numeric_limits<double>::max(),
                                                    -std::numeric_limits<double>::max(),
                                                    0.1,
                                                    1.5,
                                                    100.0,
                                                    123456789012345678.0};
        if (below(2) == 0) return special[below(special.size())];
        // Any bit pattern: every exponent, NaNs with payloads included.
        const std::uint64_t bits = random_();
        double d;
        std::memcpy(&d, &bits, sizeof d);
        return d;
    }

    boost::json::value value(int depth) {
        switch (below(depth > 0 ? 10 : 7)) {
            case 0:
                return nullptr;
            case 1:
                return below(2) == 0;
            case 2:
                return static_cast<std::int64_t>(random_()) >> below(64);
            case 3:
                return random_() >> below(64);
            case 4:
                return number();
            case 5:
            case 6:
                return boost::json::string(text());
            case 7:
            case 8: {
                boost::json::object object;
                const std::size_t members = below(6);
                for (std::size_t i = 0; i < members; ++i) object[text()] = value(depth - 1);
                return object;
            }
            default: {
                boost::json::array array;
                const std::size_t elements = below(6);
                for (std::size_t i = 0; i < elements; ++i) array.push_back(value(depth - 1));
                return array;
            }
        }
    }

private:
    std::size_t below(std::size_t n) { return static_cast<std::size_t>(random_() % n); }

    std::mt19937_64 random_;
};

TEST(JsonText, SeededRandomValuesAreWrittenAsBoostWritesThem) {
    RandomValues random(20261128);
    for (int i = 0; i < 3000; ++i) {
        SCOPED_TRACE(i);
        const boost::json::value v = random.value(4);
        ASSERT_EQ(written_text(v), reference_text(v));
        if (v.is_object()) {
            std::string from_object;
            append_json_text(from_object, v.get_object());
            ASSERT_EQ(from_object, reference_text(v));
        }
        const std::string s = random.text();
        ASSERT_EQ(written_string(s), reference_string(s));
    }
}

TEST(JsonText, StringsLongerThanTheWritersBufferAreWrittenWhole) {
    // The writer goes through a buffer of a few KiB: long strings are flushed mid-way, at
    // any byte, escaped or not.
    RandomValues random(7);
    for (int i = 0; i < 20; ++i) {
        SCOPED_TRACE(i);
        std::string long_text;
        while (long_text.size() < 20000) long_text += random.text();
        ASSERT_EQ(written_string(long_text), reference_string(long_text));
        const boost::json::value v = {{long_text, boost::json::array{long_text, long_text}}};
        ASSERT_EQ(written_text(v), reference_text(v));
    }
    const std::string all_escaped(10000, '\x01');
    EXPECT_EQ(written_string(all_escaped), reference_string(all_escaped));
}

}  // namespace
}  // namespace tattle
