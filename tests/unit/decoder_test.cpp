#include "tattle/decoder.hpp"
#include "tattle/text_safety.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

// Fixtures: /work/shared/data (see its README for sources and licences):
//   cloudtrail/trailscraper_testdata     flosell/trailscraper, Apache-2.0
//   cloudtrail/invictus-ir_aws_dataset   invictus-ir/aws_dataset, MIT
//   cloudtrail/awsdocs_cloudtrail_userguide_examples  awsdocs, CC-BY-SA-4.0 / MIT-0
//   payloads/cloudtrail_s3_object_keys   awsdocs CC-BY-SA-4.0; elastic/integrations, Elastic License 2.0

namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

namespace fs = std::filesystem;

const fs::path shared_data_dir{TATTLE_SHARED_DATA_DIR};
const fs::path trailscraper_json =
    shared_data_dir / "cloudtrail/trailscraper_testdata/"
                      "111111111111_CloudTrail_eu-central-1_20171211T1505Z_A6kvhMoVeCsc7v8U.json";
const fs::path trailscraper_gz = fs::path(trailscraper_json).concat(".gz");
const fs::path invictus_dir = shared_data_dir / "cloudtrail/invictus-ir_aws_dataset/CloudTrail";
const fs::path awsdocs_examples =
    shared_data_dir / "cloudtrail/awsdocs_cloudtrail_userguide_examples/awsdocs_examples_Records.json";
const fs::path digest_dir = shared_data_dir / "payloads/cloudtrail_s3_object_keys";

std::vector<std::uint8_t> read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open fixture " + path.string());
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<std::uint8_t> bytes(std::string_view text) { return {text.begin(), text.end()}; }

// One gzip member, written by zlib itself so the tests do not depend on the decoder.
std::vector<std::uint8_t> gzip_member(std::span<const std::uint8_t> plain) {
    z_stream stream{};
    if (deflateInit2(&stream, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        throw std::runtime_error("deflateInit2 failed");
    }
    std::vector<std::uint8_t> out(deflateBound(&stream, static_cast<uLong>(plain.size())));
    std::vector<std::uint8_t> input(plain.begin(), plain.end());
    stream.next_in = input.data();
    stream.avail_in = static_cast<uInt>(input.size());
    stream.next_out = out.data();
    stream.avail_out = static_cast<uInt>(out.size());
    const int rc = deflate(&stream, Z_FINISH);
    out.resize(stream.total_out);
    deflateEnd(&stream);
    if (rc != Z_STREAM_END) throw std::runtime_error("deflate did not finish");
    return out;
}

std::vector<std::uint8_t> gzip_member(std::string_view text) { return gzip_member(bytes(text)); }

void append(std::vector<std::uint8_t>& to, const std::vector<std::uint8_t>& more) {
    to.insert(to.end(), more.begin(), more.end());
}

// What a test saw: every event with its index, plus the report.
struct Decoded {
    std::vector<boost::json::object> events;
    std::vector<std::size_t> indexes;
    tattle::DecodeReport report;
};

Decoded decode(std::span<const std::uint8_t> data, std::string_view origin = "test-origin") {
    Decoded decoded;
    decoded.report = tattle::decode_batch(data, origin, [&](boost::json::object&& event, std::size_t index) {
        decoded.events.push_back(std::move(event));
        decoded.indexes.push_back(index);
    });
    return decoded;
}

Decoded decode(std::string_view text, std::string_view origin = "test-origin") {
    const auto data = bytes(text);
    return decode(data, origin);
}

std::string decode_error_of(std::span<const std::uint8_t> data, std::string_view origin) {
    try {
        decode(data, origin);
    } catch (const tattle::DecodeError& e) {
        return e.what();
    }
    ADD_FAILURE() << "expected a DecodeError";
    return {};
}

std::string decode_error_of(std::string_view text, std::string_view origin = "test-origin") {
    const auto data = bytes(text);
    return decode_error_of(data, origin);
}

// The independent count: Boost.JSON's one-shot parse of the whole file.
std::size_t records_in(const fs::path& path) {
    const auto data = read_file(path);
    const auto document = boost::json::parse(
        std::string_view(reinterpret_cast<const char*>(data.data()), data.size()));
    return document.at("Records").as_array().size();
}

// ---------------------------------------------------------------------------
// Real CloudTrail data

TEST(DecoderRealData, TrailscraperPlainAndGzipGiveTheSameEvents) {
    const auto plain = decode(read_file(trailscraper_json), "plain.json");
    const auto gzipped = decode(read_file(trailscraper_gz), "file.json.gz");

    EXPECT_FALSE(plain.report.was_gzip);
    EXPECT_TRUE(gzipped.report.was_gzip);
    EXPECT_GT(plain.report.events, 0u);
    EXPECT_EQ(plain.report.events, records_in(trailscraper_json));
    EXPECT_EQ(plain.report.events, gzipped.report.events);
    EXPECT_EQ(plain.events, gzipped.events);
    EXPECT_THAT(gzipped.report.record_errors, IsEmpty());
    EXPECT_EQ(gzipped.report.skipped_documents, 0u);
}

TEST(DecoderRealData, InvictusDatasetCountMatchesAnIndependentParse) {
    std::size_t decoded_total = 0;
    std::size_t independent_total = 0;
    std::size_t files = 0;
    for (const auto& entry : fs::directory_iterator(invictus_dir)) {
        if (entry.path().extension() != ".json") continue;
        ++files;
        const auto decoded = decode(read_file(entry.path()), entry.path().filename().string());
        EXPECT_THAT(decoded.report.record_errors, IsEmpty()) << entry.path();
        decoded_total += decoded.report.events;
        independent_total += records_in(entry.path());
        // Every event is a real CloudTrail record, not a fragment of one.
        for (const auto& event : decoded.events) {
            ASSERT_TRUE(event.contains("eventName")) << entry.path();
            ASSERT_TRUE(event.contains("eventTime")) << entry.path();
        }
    }
    EXPECT_EQ(files, 55u);
    EXPECT_GT(decoded_total, 0u);
    EXPECT_EQ(decoded_total, independent_total);
    EXPECT_EQ(decoded_total, 2900u);  // the dataset README's figure
}

TEST(DecoderRealData, InvictusFileGzippedGivesTheSameEvents) {
    // The largest file of the set, so the gunzip buffer and parser see real volume.
    const auto path =
        invictus_dir / "218007301253_CloudTrail_us-east-1_20230710T1200Z_iLj9fb7yyUG9X4Bf.json";
    const auto plain_bytes = read_file(path);
    const auto plain = decode(plain_bytes);
    const auto gzipped = decode(gzip_member(plain_bytes));
    EXPECT_TRUE(gzipped.report.was_gzip);
    EXPECT_EQ(plain.report.events, records_in(path));
    EXPECT_EQ(plain.events, gzipped.events);
}

TEST(DecoderRealData, AwsDocsExamplesInOrder) {
    const auto decoded = decode(read_file(awsdocs_examples));
    ASSERT_EQ(decoded.report.events, records_in(awsdocs_examples));
    ASSERT_EQ(decoded.events.size(), 19u);
    EXPECT_EQ(decoded.events.front().at("eventName"), "ConsoleLogin");
    EXPECT_EQ(decoded.events[13].at("eventName"), "CreateUser");
    EXPECT_EQ(decoded.events.back().at("eventName"), "CreateServiceLinkedChannel");
    std::vector<std::size_t> expected_indexes(19);
    for (std::size_t i = 0; i < expected_indexes.size(); ++i) expected_indexes[i] = i;
    EXPECT_EQ(decoded.indexes, expected_indexes);
}

// ---------------------------------------------------------------------------
// Documents that are skipped, not errors

TEST(DecoderSkips, CloudTrailDigestFiles) {
    for (const char* name : {"awsdocs_digest_file_example.json", "awsdocs_digest_file_empty_example.json",
                             "elastic-integrations_test-cloudtrail-digest-json.log"}) {
        const auto decoded = decode(read_file(digest_dir / name), name);
        EXPECT_EQ(decoded.report.events, 0u) << name;
        EXPECT_EQ(decoded.report.skipped_documents, 1u) << name;
        EXPECT_THAT(decoded.report.record_errors, IsEmpty()) << name;
        ASSERT_THAT(decoded.report.skip_reasons, SizeIs(1)) << name;
        EXPECT_THAT(decoded.report.skip_reasons[0], HasSubstr(name));
        EXPECT_THAT(decoded.report.skip_reasons[0], HasSubstr("digest"));
    }
}

TEST(DecoderSkips, GzippedDigestFile) {
    const auto decoded = decode(gzip_member(read_file(digest_dir / "awsdocs_digest_file_example.json")));
    EXPECT_TRUE(decoded.report.was_gzip);
    EXPECT_EQ(decoded.report.events, 0u);
    EXPECT_EQ(decoded.report.skipped_documents, 1u);
}

TEST(DecoderSkips, EmptyObject) {
    const auto decoded = decode(" {} \n", "empty.json");
    EXPECT_EQ(decoded.report.events, 0u);
    EXPECT_EQ(decoded.report.skipped_documents, 1u);
    EXPECT_THAT(decoded.report.skip_reasons, ElementsAre(HasSubstr("empty.json: empty JSON object")));
    EXPECT_THAT(decoded.report.record_errors, IsEmpty());
}

TEST(DecoderSkips, EmptyAndWhitespaceOnlyInput) {
    for (std::string_view input : {std::string_view(""), std::string_view(" \n\t\r\n  ")}) {
        const auto decoded = decode(input, "blank");
        EXPECT_EQ(decoded.report.events, 0u);
        EXPECT_EQ(decoded.report.skipped_documents, 1u);
        EXPECT_THAT(decoded.report.skip_reasons, ElementsAre(HasSubstr("blank: empty input")));
    }
}

TEST(DecoderSkips, GzipOfNothing) {
    const auto decoded = decode(gzip_member(std::string_view("")));
    EXPECT_TRUE(decoded.report.was_gzip);
    EXPECT_EQ(decoded.report.skipped_documents, 1u);
}

TEST(DecoderSkips, EmptyArray) {
    const auto decoded = decode("[]");
    EXPECT_EQ(decoded.report.events, 0u);
    EXPECT_EQ(decoded.report.skipped_documents, 1u);
}

TEST(DecoderSkips, EmptyRecordsIsALogFileWithNoEvents) {
    const auto decoded = decode(R"({"Records": []})");
    EXPECT_EQ(decoded.report.events, 0u);
    EXPECT_EQ(decoded.report.skipped_documents, 0u);
    EXPECT_THAT(decoded.report.record_errors, IsEmpty());
}

// ---------------------------------------------------------------------------
// Shapes of input

TEST(DecoderShapes, SingleObjectIsOneEvent) {
    const auto decoded = decode(R"({"eventName": "CreateUser", "n": 1})");
    ASSERT_EQ(decoded.report.events, 1u);
    EXPECT_EQ(decoded.events[0].at("eventName"), "CreateUser");
    EXPECT_EQ(decoded.events[0].at("n"), 1);
}

TEST(DecoderShapes, TopLevelArrayOfObjects) {
    const auto decoded = decode(R"([{"a": 1}, 2, {"b": 2}, null])", "arr.json");
    ASSERT_EQ(decoded.report.events, 2u);
    EXPECT_EQ(decoded.events[0].at("a"), 1);
    EXPECT_EQ(decoded.events[1].at("b"), 2);
    EXPECT_THAT(decoded.indexes, ElementsAre(0u, 1u));
    EXPECT_THAT(decoded.report.record_errors,
                ElementsAre("arr.json: [1]: not an object (got number)",
                            "arr.json: [3]: not an object (got null)"));
}

TEST(DecoderShapes, TopLevelScalarIsARecordError) {
    const auto decoded = decode("42", "scalar.json");
    EXPECT_EQ(decoded.report.events, 0u);
    EXPECT_THAT(decoded.report.record_errors,
                ElementsAre("scalar.json: top-level number is not an event"));
}

TEST(DecoderShapes, RecordsElementThatIsNotAnObject) {
    std::string text = R"({"Records": [)";
    for (int i = 0; i < 7; ++i) text += R"({"i": )" + std::to_string(i) + "},";
    text += R"("oops", {"i": 8}]})";
    const auto decoded = decode(text, "s3://bucket/key.json.gz");
    EXPECT_EQ(decoded.report.events, 8u);
    EXPECT_EQ(decoded.events.back().at("i"), 8);
    EXPECT_THAT(decoded.report.record_errors,
                ElementsAre("s3://bucket/key.json.gz: Records[7]: not an object (got string)"));
}

TEST(DecoderShapes, RecordsThatIsNotAnArrayFailsTheBatch) {
    const auto message = decode_error_of(R"({"Records": {"eventName": "x"}})", "bad.json");
    EXPECT_THAT(message, HasSubstr("bad.json"));
    EXPECT_THAT(message, HasSubstr("\"Records\" is not an array (got object)"));
}

TEST(DecoderShapes, JsonLinesAndConcatenatedDocumentsKeepBatchOrder) {
    const auto decoded = decode(
        "{\"Records\": [{\"e\": 0}, {\"e\": 1}]}\n"
        "{\"e\": 2}\n"
        "[{\"e\": 3}]{\"e\": 4}   {\"e\": 5}\r\n"
        "{\n  \"e\": 6\n}\n");
    ASSERT_EQ(decoded.report.events, 7u);
    for (std::size_t i = 0; i < decoded.events.size(); ++i) {
        EXPECT_EQ(decoded.events[i].at("e"), static_cast<std::int64_t>(i));
        EXPECT_EQ(decoded.indexes[i], i);
    }
    EXPECT_THAT(decoded.report.record_errors, IsEmpty());
}

TEST(DecoderShapes, LaterDocumentsAreNamedByTheirPlace) {
    const auto decoded = decode("{\"a\": 1}\n{}\n  {\"Records\": [1]}", "multi");
    EXPECT_THAT(decoded.report.skip_reasons, ElementsAre("multi:2:1: empty JSON object"));
    EXPECT_THAT(decoded.report.record_errors,
                ElementsAre("multi:3:3: Records[0]: not an object (got number)"));
}

TEST(DecoderShapes, NumberEndingTheInputIsComplete) {
    const auto decoded = decode("{\"a\": 1}\n7");
    EXPECT_EQ(decoded.report.events, 1u);
    EXPECT_THAT(decoded.report.record_errors, ElementsAre(HasSubstr("top-level number")));
}

TEST(DecoderShapes, ByteOrderMarkIsIgnored) {
    const auto decoded = decode("\xEF\xBB\xBF{\"a\": 1}");
    EXPECT_EQ(decoded.report.events, 1u);
}

TEST(DecoderShapes, InvalidUtf8InStringsIsAccepted) {
    const auto decoded = decode("{\"userAgent\": \"evil\xff\xfe\xc0\"}\n");
    ASSERT_EQ(decoded.report.events, 1u);
    EXPECT_EQ(decoded.events[0].at("userAgent").as_string(), "evil\xff\xfe\xc0");
}

std::string nested(int depth) {
    std::string text = "{\"eventName\": \"x\", \"requestParameters\": ";
    for (int i = 0; i < depth; ++i) text += "{\"k\": ";
    text += "1";
    for (int i = 0; i < depth; ++i) text += "}";
    return text + "}";
}

TEST(DecoderShapes, DeepRequestParametersAreAccepted) {
    const auto decoded = decode(nested(100));
    EXPECT_EQ(decoded.report.events, 1u);
}

TEST(DecoderShapes, AbsurdNestingFailsTheDocument) {
    const auto message = decode_error_of(nested(200), "deep.json");
    EXPECT_THAT(message, HasSubstr("deep.json:1:"));
}

TEST(DecoderShapes, EventsAreMovedToTheCallback) {
    // The callback owns what it is given: it can keep the object and the decoder's
    // own copy (if any) does not matter afterwards.
    std::vector<boost::json::object> kept;
    const auto data = bytes(R"({"Records": [{"big": "0123456789012345678901234567890123456789"}]})");
    tattle::decode_batch(data, "o", [&](boost::json::object&& event, std::size_t) {
        kept.push_back(std::move(event));
        EXPECT_TRUE(event.empty());  // NOLINT(bugprone-use-after-move): moved-from object is empty
    });
    ASSERT_THAT(kept, SizeIs(1));
    EXPECT_EQ(kept[0].at("big"), "0123456789012345678901234567890123456789");
}

TEST(DecoderShapes, CallbackExceptionsPropagate) {
    const auto data = bytes(R"({"a": 1})");
    EXPECT_THROW(tattle::decode_batch(data, "o",
                                      [](boost::json::object&&, std::size_t) {
                                          throw std::logic_error("sink full");
                                      }),
                 std::logic_error);
}

// ---------------------------------------------------------------------------
// Broken JSON

TEST(DecoderSyntax, BrokenDocumentFailsWithLineAndColumn) {
    const auto message = decode_error_of("{\n  \"a\": 1,\n  \"b\": @\n}\n", "doc.json");
    EXPECT_THAT(message, HasSubstr("doc.json:3:8: JSON syntax error: "));
    EXPECT_THAT(message, HasSubstr("at '@'"));
}

TEST(DecoderSyntax, TruncatedDocumentFailsAtItsEnd) {
    const auto message = decode_error_of("{\"Records\": [\n  {\"a\": 1},\n  {\"b\"", "cut.json");
    EXPECT_THAT(message, HasSubstr("cut.json:3:7: JSON syntax error: "));
}

TEST(DecoderSyntax, BrokenPrettyPrintedLogFileIsNotTakenForJsonLines) {
    const auto message = decode_error_of(
        "{\n  \"Records\": [\n    {\"eventName\": @},\n    {\"eventName\": \"B\"}\n  ]\n}\n", "pretty.json");
    EXPECT_THAT(message, HasSubstr("pretty.json:3:19: JSON syntax error"));
}

TEST(DecoderSyntax, BrokenFirstLineOfACompactLogFileIsNotTakenForJsonLines) {
    // The line after the broken one is a complete object, but indented: part of a document.
    const auto message =
        decode_error_of("{\"Records\": [@\n  {\"eventName\": \"A\"}\n]}\n", "compact.json");
    EXPECT_THAT(message, HasSubstr("compact.json:1:14: JSON syntax error"));
}

TEST(DecoderSyntax, NonJsonBinaryFailsTheBatch) {
    static constexpr char binary[] = "\x00\x01\x02 not json";
    const auto message = decode_error_of(std::string_view(binary, sizeof binary - 1), "blob");
    EXPECT_THAT(message, HasSubstr("blob:1:1: JSON syntax error"));
    EXPECT_THAT(message, HasSubstr("at byte 0x00"));
}

TEST(DecoderSyntax, OneBrokenJsonLineDoesNotSinkTheBatch) {
    const auto decoded = decode("{\"a\": 1}\n{\"b\": @}\n{\"c\": 3}\n", "lines.jsonl");
    ASSERT_EQ(decoded.report.events, 2u);
    EXPECT_EQ(decoded.events[0].at("a"), 1);
    EXPECT_EQ(decoded.events[1].at("c"), 3);
    EXPECT_THAT(decoded.indexes, ElementsAre(0u, 1u));
    ASSERT_THAT(decoded.report.record_errors, SizeIs(1));
    EXPECT_THAT(decoded.report.record_errors[0], HasSubstr("lines.jsonl:2:7: JSON syntax error"));
}

TEST(DecoderSyntax, BrokenFirstJsonLine) {
    const auto decoded = decode("{\"a\": @}\n{\"b\": 2}\n{\"c\": 3}\n", "first.jsonl");
    EXPECT_EQ(decoded.report.events, 2u);
    EXPECT_THAT(decoded.report.record_errors, ElementsAre(HasSubstr("first.jsonl:1:7: JSON syntax error")));
}

TEST(DecoderSyntax, TruncatedJsonLineDoesNotTakeTheNextLineWithIt) {
    // The parser only notices the cut on line 3; line 3 itself is fine and kept.
    const auto decoded = decode("{\"a\": 1}\n{\"b\": 2,\n{\"c\": 3}\n", "cut.jsonl");
    ASSERT_EQ(decoded.report.events, 2u);
    EXPECT_EQ(decoded.events[1].at("c"), 3);
    ASSERT_THAT(decoded.report.record_errors, SizeIs(1));
    EXPECT_THAT(decoded.report.record_errors[0], HasSubstr("cut.jsonl:3:1: JSON syntax error"));
    EXPECT_THAT(decoded.report.record_errors[0], HasSubstr("skipped line 2"));
}

TEST(DecoderSyntax, TruncatedLastJsonLine) {
    const auto decoded = decode("{\"a\": 1}\n{\"b\": 2}\n{\"c\": ", "tail.jsonl");
    EXPECT_EQ(decoded.report.events, 2u);
    EXPECT_THAT(decoded.report.record_errors, ElementsAre(HasSubstr("tail.jsonl:3:7: JSON syntax error")));
}

TEST(DecoderSyntax, ManyBrokenLinesAreEachReported) {
    std::string text;
    for (int i = 1; i <= 50; ++i) text += (i % 10 == 0) ? "{broken\n" : "{\"ok\": true}\n";
    const auto decoded = decode(text, "many");
    EXPECT_EQ(decoded.report.events, 45u);
    ASSERT_THAT(decoded.report.record_errors, SizeIs(5));
    EXPECT_THAT(decoded.report.record_errors[0], HasSubstr("many:10:2:"));
    EXPECT_THAT(decoded.report.record_errors[4], HasSubstr("many:50:2:"));
}

TEST(DecoderSyntax, GzippedJsonLinesWithABrokenLine) {
    const auto decoded = decode(gzip_member(std::string_view("{\"a\": 1}\n{\"b\": }\n{\"c\": 3}\n")), "gz");
    EXPECT_TRUE(decoded.report.was_gzip);
    EXPECT_EQ(decoded.report.events, 2u);
    EXPECT_THAT(decoded.report.record_errors, ElementsAre(HasSubstr("gz:2:7:")));
}

// ---------------------------------------------------------------------------
// gzip

TEST(DecoderGzip, DetectsMagicBytes) {
    EXPECT_FALSE(tattle::is_gzip({}));
    EXPECT_FALSE(tattle::is_gzip(bytes("\x1f")));
    EXPECT_FALSE(tattle::is_gzip(bytes("{\"a\":1}")));
    EXPECT_TRUE(tattle::is_gzip(bytes("\x1f\x8b")));
    EXPECT_TRUE(tattle::is_gzip(read_file(trailscraper_gz)));
}

TEST(DecoderGzip, GunzipOfPlainDataIsACopy) {
    const auto plain = bytes("{\"a\": 1}");
    EXPECT_EQ(tattle::gunzip(plain, "o"), plain);
}

TEST(DecoderGzip, GunzipRestoresTheOriginal) {
    EXPECT_EQ(tattle::gunzip(read_file(trailscraper_gz), "o"), read_file(trailscraper_json));
}

TEST(DecoderGzip, CorruptDataNamesOriginAndOffset) {
    auto data = read_file(trailscraper_gz);
    ASSERT_GT(data.size(), 100u);
    for (std::size_t i = data.size() / 2; i < data.size() / 2 + 8; ++i) data[i] ^= 0x5a;
    const auto message = decode_error_of(data, "s3://bucket/corrupt.json.gz");
    EXPECT_THAT(message, HasSubstr("s3://bucket/corrupt.json.gz: gzip: corrupt data at compressed byte "));
}

TEST(DecoderGzip, BadChecksumIsCorrupt) {
    auto data = gzip_member(std::string_view("{\"a\": 1}"));
    data[data.size() - 8] ^= 0x01;  // first byte of the CRC-32 in the trailer
    EXPECT_THAT(decode_error_of(data, "crc"), HasSubstr("crc: gzip: corrupt data at compressed byte "));
}

TEST(DecoderGzip, TruncatedData) {
    const auto whole = read_file(trailscraper_gz);
    for (const std::size_t keep : {std::size_t{10}, whole.size() / 2, whole.size() - 4}) {
        const std::vector<std::uint8_t> cut(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(keep));
        const auto message = decode_error_of(cut, "cut.json.gz");
        EXPECT_THAT(message, HasSubstr("cut.json.gz: gzip: unexpected end of gzip data")) << keep;
    }
}

TEST(DecoderGzip, MultiMemberGzip) {
    auto data = gzip_member(std::string_view("{\"member\": 1}\n{\"member\": 1}\n"));
    append(data, gzip_member(read_file(trailscraper_json)));
    append(data, gzip_member(std::string_view("{\"member\": 3}")));
    const auto decoded = decode(data);
    EXPECT_TRUE(decoded.report.was_gzip);
    const std::size_t trailscraper_events = records_in(trailscraper_json);
    ASSERT_EQ(decoded.report.events, 3 + trailscraper_events);
    EXPECT_EQ(decoded.events.front().at("member"), 1);
    EXPECT_EQ(decoded.events.back().at("member"), 3);
    EXPECT_THAT(decoded.report.record_errors, IsEmpty());
}

TEST(DecoderGzip, MultiMemberWhoseLastMemberUnderstatesTheSize) {
    // The size hint in the trailer only covers the last, tiny member: the output
    // buffer has to grow several times.
    const auto big = invictus_dir / "218007301253_CloudTrail_us-east-1_20230710T1200Z_iLj9fb7yyUG9X4Bf.json";
    auto data = gzip_member(read_file(big));
    append(data, gzip_member(std::string_view("{}")));
    const auto decoded = decode(data);
    EXPECT_EQ(decoded.report.events, records_in(big));
    EXPECT_EQ(decoded.report.skipped_documents, 1u);
}

// A one-member file is inflated whole (libdeflate); several members stream through zlib.
// Both must give the same events, and name the same place in an error.
std::pair<std::vector<std::uint8_t>, std::vector<std::uint8_t>> whole_and_streamed(
    const std::vector<std::uint8_t>& text) {
    const std::size_t half = text.size() / 2;
    auto streamed = gzip_member(std::span<const std::uint8_t>(text.data(), half));
    append(streamed, gzip_member(std::span<const std::uint8_t>(text.data() + half, text.size() - half)));
    return {gzip_member(text), streamed};
}

TEST(DecoderGzip, WholeAndStreamedInflationAgree) {
    const auto big = invictus_dir / "218007301253_CloudTrail_us-east-1_20230710T1200Z_iLj9fb7yyUG9X4Bf.json";
    auto text = read_file(big);
    const auto [whole, streamed] = whole_and_streamed(text);
    const auto from_whole = decode(whole);
    const auto from_stream = decode(streamed);
    EXPECT_TRUE(from_whole.report.was_gzip);
    EXPECT_TRUE(from_stream.report.was_gzip);
    EXPECT_TRUE(from_whole.report.inflated_whole);
    EXPECT_FALSE(from_stream.report.inflated_whole);
    ASSERT_EQ(from_whole.report.events, records_in(big));
    ASSERT_EQ(from_whole.events.size(), from_stream.events.size());
    for (std::size_t i = 0; i < from_whole.events.size(); ++i) {
        EXPECT_EQ(boost::json::serialize(from_whole.events[i]), boost::json::serialize(from_stream.events[i]));
        EXPECT_EQ(from_whole.indexes[i], from_stream.indexes[i]);
    }

    // Broken in the middle: the same line:column either way.
    const std::string_view marker = "\"eventVersion\"";
    const auto middle = std::search(text.begin() + static_cast<std::ptrdiff_t>(text.size() / 2), text.end(),
                                    marker.begin(), marker.end());
    ASSERT_NE(middle, text.end());
    *middle = '?';
    const auto [broken_whole, broken_streamed] = whole_and_streamed(text);
    const std::string error = decode_error_of(broken_whole, "b.gz");
    EXPECT_THAT(error, HasSubstr("b.gz:1:"));
    EXPECT_EQ(error, decode_error_of(broken_streamed, "b.gz"));
}

TEST(DecoderGzip, ASizeTrailerThatUnderstatesTheTextIsCorrupt) {
    // The whole-file path sizes its buffer from the trailer: a smaller size must not cut
    // the text short or pass, it is the corrupt file zlib reports.
    auto data = gzip_member(std::string_view("{\"Records\": [{\"eventName\": \"A\"}, {\"eventName\": \"B\"}]}"));
    data[data.size() - 4] = static_cast<std::uint8_t>(data[data.size() - 4] - 10);
    EXPECT_THAT(decode_error_of(data, "short.gz"), HasSubstr("short.gz: gzip: corrupt data at compressed byte "));
}

TEST(DecoderGzip, TheSizeLimitHoldsForWholeFiles) {
    const std::string records = "{\"Records\": [" + std::string(1000, ' ') + "{\"eventName\": \"A\"}]}";
    const auto data = gzip_member(records);
    tattle::InputLimits limits;
    limits.max_decompressed_bytes = records.size();
    std::size_t events = 0;
    tattle::decode_batch(data, "fits.gz", [&](boost::json::object&&, std::size_t) { ++events; }, limits);
    EXPECT_EQ(events, 1u);
    limits.max_decompressed_bytes = records.size() - 1;
    try {
        tattle::decode_batch(data, "bomb.gz", [](boost::json::object&&, std::size_t) {}, limits);
        ADD_FAILURE() << "expected a DecodeLimitError";
    } catch (const tattle::DecodeLimitError& e) {
        EXPECT_THAT(e.what(), HasSubstr("bomb.gz: gzip: decompressed data exceeds the limit"));
    }
}

TEST(DecoderGzip, TrailingZeroPaddingIsIgnored) {
    auto data = gzip_member(std::string_view("{\"a\": 1}"));
    data.resize(data.size() + 512, 0);
    EXPECT_EQ(decode(data).report.events, 1u);
}

TEST(DecoderGzip, TrailingGarbageIsAnError) {
    auto data = gzip_member(std::string_view("{\"a\": 1}"));
    append(data, bytes("garbage"));
    EXPECT_THAT(decode_error_of(data, "tail.gz"), HasSubstr("tail.gz: gzip: trailing data after gzip member"));
}

TEST(DecoderGzip, OutputLimitIsEnforced) {
    const std::string zeros(100000, '0');
    const auto data = gzip_member(zeros);
    EXPECT_EQ(tattle::gunzip(data, "o", zeros.size()).size(), zeros.size());
    try {
        tattle::gunzip(data, "bomb.gz", zeros.size() - 1);
        ADD_FAILURE() << "expected a DecodeError";
    } catch (const tattle::DecodeError& e) {
        EXPECT_THAT(e.what(), HasSubstr("bomb.gz: gzip: decompressed data exceeds the limit"));
    }
}

// ---------------------------------------------------------------------------
// Streaming: records are split as the text is inflated

// Records whose strings hold what a splitter could trip on: brackets, braces,
// quotes and backslashes inside strings, escapes, multi-byte UTF-8.
std::string tricky_records_document(std::size_t count, std::size_t padding) {
    std::string text = "{\"Records\": [";
    for (std::size_t i = 0; i < count; ++i) {
        if (i > 0) text += i % 7 == 0 ? ",\n  " : ",";
        text += "{\"eventName\": \"E" + std::to_string(i) + "\", \"s\": \"]}[{\\\"\\\\ \\u00e9 \xc3\xa9\", ";
        text += "\"n\": [1, 2.5e3, -0, {\"x\": null}], \"pad\": \"" + std::string(padding + i % 13, 'p') + "\"}";
    }
    return text + "]}";
}

TEST(DecoderStreaming, RecordsSplitAcrossInflateChunksMatchAnIndependentParse) {
    // About 3 MB: many 256 KiB inflate slices, records cut at every possible place.
    const std::string text = tricky_records_document(6000, 400);
    const auto expected = boost::json::parse(text).at("Records").as_array();
    const auto decoded = decode(gzip_member(text), "big.json.gz");
    ASSERT_EQ(decoded.events.size(), expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
        ASSERT_EQ(boost::json::value(decoded.events[i]), expected[i]) << i;
    }
    EXPECT_THAT(decoded.report.record_errors, IsEmpty());
}

TEST(DecoderStreaming, MembersAfterRecordsAreReadAndIgnored) {
    const auto decoded = decode(R"({"Records": [{"a": 1}], "other": {"x": [1, "]"]}, "n": 2})");
    EXPECT_EQ(decoded.report.events, 1u);
    EXPECT_THAT(decoded.report.record_errors, IsEmpty());
}

TEST(DecoderStreaming, RecordsAfterOtherKeysAreStillFound) {
    const auto decoded = decode(R"({"version": 1, "Records": [{"a": 1}, {"b": 2}]})");
    EXPECT_EQ(decoded.report.events, 2u);
}

TEST(DecoderStreaming, BrokenRecordLateInALargeFileFailsTheBatchWithItsLine) {
    std::string text = tricky_records_document(3000, 300);
    const std::size_t cut = text.rfind("{\"eventName\"");
    text.insert(cut + 1, "@");
    try {
        decode(gzip_member(text), "late.json.gz");
        ADD_FAILURE() << "expected a DecodeError";
    } catch (const tattle::DecodeError& e) {
        const std::size_t line = 1 + static_cast<std::size_t>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(cut), '\n'));
        EXPECT_THAT(e.what(), HasSubstr("late.json.gz:" + std::to_string(line) + ":"));
        EXPECT_THAT(e.what(), HasSubstr("JSON syntax error"));
        EXPECT_THAT(e.what(), HasSubstr("at '@'"));
    }
}

// ---------------------------------------------------------------------------
// [limits]

Decoded decode_limited(std::span<const std::uint8_t> data, const tattle::InputLimits& limits,
                       std::string_view origin = "limited") {
    Decoded decoded;
    decoded.report = tattle::decode_batch(
        data, origin,
        [&](boost::json::object&& event, std::size_t index) {
            decoded.events.push_back(std::move(event));
            decoded.indexes.push_back(index);
        },
        limits);
    return decoded;
}

std::string limit_error_of(std::span<const std::uint8_t> data, const tattle::InputLimits& limits,
                           std::string& limit, std::size_t* events_before = nullptr) {
    std::size_t events = 0;
    try {
        tattle::decode_batch(data, "limited", [&](boost::json::object&&, std::size_t) { ++events; }, limits);
    } catch (const tattle::DecodeLimitError& e) {
        limit = e.limit();
        if (events_before != nullptr) *events_before = events;
        return e.what();
    }
    ADD_FAILURE() << "expected a DecodeLimitError";
    return {};
}

TEST(DecoderLimits, RecordOverMaxRecordBytesIsSkippedAndTheRestKept) {
    tattle::InputLimits limits;
    limits.max_record_bytes = 2048;
    const std::string big(5000, 'x');
    const auto text = bytes("{\"Records\": [{\"i\": 0}, {\"i\": 1, \"big\": \"" + big + "\"}, {\"i\": 2}]}");
    for (const bool gzipped : {false, true}) {
        const auto decoded = decode_limited(gzipped ? gzip_member(text) : text, limits);
        ASSERT_EQ(decoded.events.size(), 2u) << gzipped;
        EXPECT_EQ(decoded.events[0].at("i"), 0);
        EXPECT_EQ(decoded.events[1].at("i"), 2);
        EXPECT_THAT(decoded.report.limits_hit, ElementsAre("max_record_bytes"));
        ASSERT_THAT(decoded.report.record_errors, SizeIs(1));
        EXPECT_THAT(decoded.report.record_errors[0],
                    HasSubstr("limited:1:24: Records[1]: record larger than limits.max_record_bytes = 2048"));
    }
}

TEST(DecoderLimits, OversizedRecordSpanningManyInflateChunksIsSkipped) {
    tattle::InputLimits limits;
    limits.max_record_bytes = 64 * 1024;
    // 1 MiB of nested arrays and strings with brackets in them: skipped without parsing.
    std::string huge = "{\"deep\": [";
    for (int i = 0; i < 20000; ++i) huge += R"(["]\"", {"k": "}"}],)";
    huge += "0]}";
    const auto text = bytes("{\"a\": 1}\n" + huge + "\n{\"c\": 3}\n");
    const auto decoded = decode_limited(gzip_member(text), limits);
    ASSERT_EQ(decoded.events.size(), 2u);
    EXPECT_EQ(decoded.events[1].at("c"), 3);
    EXPECT_THAT(decoded.report.record_errors, ElementsAre(HasSubstr("limited:2:1: record larger than")));
}

TEST(DecoderLimits, RecordNestedDeeperThanMaxDepthIsSkipped) {
    tattle::InputLimits limits;
    limits.max_depth = 10;
    std::string deep = "{\"k\": ";
    for (int i = 0; i < 20; ++i) deep += "[";
    for (int i = 0; i < 20; ++i) deep += "]";
    deep += "}";
    const auto decoded = decode_limited(bytes("{\"Records\": [{\"i\": 0}, " + deep + ", {\"i\": 2}]}"), limits);
    ASSERT_EQ(decoded.events.size(), 2u);
    EXPECT_EQ(decoded.events[1].at("i"), 2);
    EXPECT_THAT(decoded.report.limits_hit, ElementsAre("max_depth"));
    EXPECT_THAT(decoded.report.record_errors, ElementsAre(HasSubstr("Records[1]: record nests deeper than limits.max_depth = 10")));
}

TEST(DecoderLimits, DepthCountsFromTheRecordNotTheLogFile) {
    tattle::InputLimits limits;
    limits.max_depth = 3;
    // The record has three levels; the file adds two (object, Records array).
    const auto decoded = decode_limited(bytes(R"({"Records": [{"a": {"b": [1]}}]})"), limits);
    EXPECT_EQ(decoded.events.size(), 1u);
    EXPECT_THAT(decoded.report.limits_hit, IsEmpty());
}

TEST(DecoderLimits, TooManyRecordsFailsTheBatchAfterTheLimit) {
    tattle::InputLimits limits;
    limits.max_records_per_batch = 3;
    std::string limit;
    std::size_t events = 0;
    const auto message =
        limit_error_of(bytes(R"({"Records": [{"i": 0}, {"i": 1}, {"i": 2}, {"i": 3}, {"i": 4}]})"), limits, limit, &events);
    EXPECT_EQ(limit, "max_records_per_batch");
    EXPECT_EQ(events, 3u);
    EXPECT_THAT(message, HasSubstr("limited: more than 3 records in the batch (limits.max_records_per_batch = 3)"));
    // Exactly at the limit is fine.
    EXPECT_EQ(decode_limited(bytes(R"([{"i": 0}, {"i": 1}, {"i": 2}])"), limits).events.size(), 3u);
}

TEST(DecoderLimits, BatchOverMaxBatchBytesIsRefusedUnread) {
    tattle::InputLimits limits;
    limits.max_batch_bytes = 10;
    std::string limit;
    std::size_t events = 99;
    const auto message = limit_error_of(bytes(R"({"eventName": "x"})"), limits, limit, &events);
    EXPECT_EQ(limit, "max_batch_bytes");
    EXPECT_EQ(events, 0u);
    EXPECT_THAT(message, HasSubstr("limited: batch of 18 bytes is larger than limits.max_batch_bytes = 10"));
}

TEST(DecoderLimits, GzipBombStopsAtMaxDecompressedBytes) {
    tattle::InputLimits limits;
    limits.max_decompressed_bytes = 1 << 20;
    // 16 MiB of one record's whitespace compresses to ~70 KiB.
    const auto bomb = gzip_member("{\"a\": 1" + std::string(16 << 20, ' ') + "}");
    ASSERT_LT(bomb.size(), 1u << 20);
    std::string limit;
    const auto message = limit_error_of(bomb, limits, limit);
    EXPECT_EQ(limit, "max_decompressed_bytes");
    EXPECT_THAT(message, HasSubstr("limited: gzip: decompressed data exceeds the limit of 1048576 bytes "
                                   "(limits.max_decompressed_bytes = 1048576)"));
}

// ---------------------------------------------------------------------------
// Hostile field values

TEST(DecoderHostile, OddValuesDecodeAndSerializeToValidJson) {
    const std::string text = std::string("{\"Records\": [") +
                             R"({"userAgent": "\u001b[31mred\u001b]0;title\u0007 \u0000 nul", "n": 1e400, "m": -1e400, )" +
                             R"("big": 1234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890, )" +
                             "\"bad\": \"\xff\xfe\xc0\x80\xed\xa0\x80\", \"dup\": 1, \"dup\": 2},\n" +
                             R"({"i": 1}]})";
    const auto decoded = decode(text, "hostile.json");
    ASSERT_EQ(decoded.events.size(), 2u);
    EXPECT_THAT(decoded.report.record_errors, IsEmpty());
    const auto& event = decoded.events[0];
    static constexpr char user_agent[] = "\x1b[31mred\x1b]0;title\x07 \0 nul";
    EXPECT_EQ(event.at("userAgent").as_string(), std::string_view(user_agent, sizeof user_agent - 1));
    EXPECT_TRUE(event.at("big").is_double());
    EXPECT_EQ(event.at("dup"), 2);  // the last one wins, like jq
    // What the pipeline sends: strict JSON (Boost's parser, UTF-8 checked), control
    // characters escaped, invalid UTF-8 replaced.
    const std::string json = tattle::valid_json_text(boost::json::serialize(event));
    boost::json::error_code ec;
    const auto reparsed = boost::json::parse(json, ec);
    ASSERT_FALSE(ec) << ec.message() << ": " << json;
    EXPECT_EQ(json.find('\x1b'), std::string::npos);
    EXPECT_EQ(json.find('\0'), std::string::npos);
    EXPECT_EQ(reparsed.at("n").as_double(), std::numeric_limits<double>::max());  // as jq reads 1e400
    EXPECT_EQ(reparsed.at("m").as_double(), -std::numeric_limits<double>::max());
    EXPECT_EQ(reparsed.at("bad").as_string(), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(DecoderHostile, RawControlCharacterInAStringIsThatRecordsError) {
    // JSON forbids a raw NUL (or any control character) inside a string.
    static constexpr char text[] = "{\"a\": 1}\n{\"b\": \"x\0y\"}\n{\"c\": 3}\n";
    const auto decoded = decode(std::string_view(text, sizeof text - 1), "nul.jsonl");
    EXPECT_EQ(decoded.report.events, 2u);
    EXPECT_THAT(decoded.report.record_errors, ElementsAre(HasSubstr("nul.jsonl:2:9: JSON syntax error")));
}

TEST(DecoderLifetime, EventsReadDuringTheCallbackAreTheSameWhateverTheirMemory) {
    // Records large enough to need more than the first block of reused memory, and every layout.
    std::string records;
    for (int i = 0; i < 30; ++i) {
        if (i > 0) records += ",";
        records += R"({"eventName":"E)" + std::to_string(i) + R"(","pad":")" + std::string(static_cast<std::size_t>(i) * 4000, 'x') +
                   R"(","nested":{"list":[1,2,{"k":"v"}],"n":)" + std::to_string(i) + "}}";
    }
    const std::vector<std::string> layouts = {R"({"Records":[)" + records + "]}", "[" + records + "]",
                                              "{\"a\":1}\n{\"b\":[2]}", R"({"eventName":"single"})"};
    for (const std::string& text : layouts) {
        const auto gz = gzip_member(text);
        const Decoded owned = decode(gz);
        std::vector<std::string> seen;
        tattle::decode_batch(
            gz, "test-origin",
            [&](boost::json::object&& event, std::size_t) { seen.push_back(boost::json::serialize(event)); }, {},
            tattle::EventLifetime::callback);
        ASSERT_EQ(seen.size(), owned.events.size());
        for (std::size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], boost::json::serialize(owned.events[i]));
    }
}

TEST(TextSafety, ValidUtf8KeepsValidTextAndReplacesTheRest) {
    EXPECT_EQ(tattle::valid_utf8("plain ascii"), "plain ascii");
    EXPECT_EQ(tattle::valid_utf8("caf\xc3\xa9 \xf0\x9f\x98\x80"), "caf\xc3\xa9 \xf0\x9f\x98\x80");
    EXPECT_EQ(tattle::valid_utf8("a\xff" "b"), "a\xEF\xBF\xBD" "b");
    EXPECT_EQ(tattle::valid_utf8("\xc0\xaf"), "\xEF\xBF\xBD\xEF\xBF\xBD");          // overlong '/'
    EXPECT_EQ(tattle::valid_utf8("\xed\xa0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
    EXPECT_EQ(tattle::valid_utf8("\xe2\x82"), "\xEF\xBF\xBD\xEF\xBF\xBD");          // cut short
}

TEST(TextSafety, ValidUtf8FindsABadByteAtAnyPositionInLongAsciiText) {
    // ASCII is skipped eight bytes at a time: a bad byte in any lane, and in the tail, is still found.
    for (std::size_t position = 0; position < 40; ++position) {
        std::string text(37, 'a');
        std::string expected = text;
        if (position < text.size()) {
            text[position] = '\xff';
            expected.replace(position, 1, "\xEF\xBF\xBD");
        }
        EXPECT_EQ(tattle::valid_utf8(text), expected) << "bad byte at " << position;
        EXPECT_EQ(tattle::valid_utf8(std::string(text)), expected) << "bad byte at " << position << " (moved)";
        EXPECT_EQ(tattle::valid_json_text("\"" + text + "\""), "\"" + expected + "\"") << "bad byte at " << position;
    }
}

TEST(TextSafety, ValidUtf8OfAMovedStringChecksEverySequence) {
    // The moved string is returned as it is only when every sequence in it holds.
    const std::string valid = std::string(20, 'a') + "caf\xc3\xa9 \xf0\x9f\x98\x80" + std::string(9, 'b');
    EXPECT_EQ(tattle::valid_utf8(std::string(valid)), valid);
    EXPECT_EQ(tattle::valid_utf8(valid + "\xe2\x82"), valid + "\xEF\xBF\xBD\xEF\xBF\xBD");
    EXPECT_EQ(tattle::valid_utf8("\xc3\xa9" + valid + "\xed\xa0\x80"),
              "\xc3\xa9" + valid + "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    EXPECT_EQ(tattle::valid_json_text(std::string("{\"a\":\"\xc0\xaf\"}")), "{\"a\":\"\xEF\xBF\xBD\xEF\xBF\xBD\"}");
}

TEST(TextSafety, ValidJsonTextWritesNonFiniteNumbersAsJqDoes) {
    EXPECT_EQ(tattle::valid_json_text(R"({"a":Infinity,"b":-Infinity,"c":NaN,"s":"Infinity NaN \"Infinity"})"),
              R"({"a":1.7976931348623157e+308,"b":-1.7976931348623157e+308,"c":null,"s":"Infinity NaN \"Infinity"})");
}

TEST(TextSafety, PrintableLogTextEscapesControlsAndBadBytes) {
    EXPECT_EQ(tattle::printable_log_text("key\n2026 ERROR forged"), "key\\x0a2026 ERROR forged");
    EXPECT_EQ(tattle::printable_log_text("\x1b[31mred\x7f"), "\\x1b[31mred\\x7f");
    EXPECT_EQ(tattle::printable_log_text("\xc2\x9b" "1m"), "\\xc2\\x9b1m");  // C1 CSI
    EXPECT_EQ(tattle::printable_log_text("caf\xc3\xa9\xff"), "caf\xc3\xa9\\xff");
}

}  // namespace
