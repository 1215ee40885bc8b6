// The alert text the batch workers make in parts (render_alert, event_json,
// alert_json) is byte for byte the document make_alert gives, serialized.
#include "tattle/alert.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tattle/sha256.hpp"
#include "tattle/text_safety.hpp"

namespace tattle {
namespace {

TEST(Sha256, KnownDigestsPrefixesAndThreads) {
    // FIPS 180-2 examples: alert ids and delivery keys persist in dedup state, so the
    // digest must never change.
    EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(sha256_hex("abc", 32), "ba7816bf8f01cfea414140de5dae2223");
    EXPECT_EQ(sha256_hex(std::string_view("a\0b", 3)), sha256_hex(std::string_view("a\0b", 3), 64));
    EXPECT_NE(sha256_hex(std::string_view("a\0b", 3)), sha256_hex("a"));
    // One context per thread: digests from several threads at once are all right.
    std::vector<std::string> seen(4);
    std::vector<std::thread> threads;
    for (std::size_t t = 0; t < seen.size(); ++t) {
        threads.emplace_back([&seen, t] {
            for (int i = 0; i < 200; ++i) seen[t] = sha256_hex("abc");
        });
    }
    for (auto& thread : threads) thread.join();
    for (const auto& digest : seen) EXPECT_EQ(digest, sha256_hex("abc"));
    // Parts hash as their concatenation.
    EXPECT_EQ(sha256_hex({"a", "", "bc"}), sha256_hex("abc"));
    EXPECT_EQ(sha256_hex({}, 32), sha256_hex("", 32));
}

TEST(AlertId, IsTheDigestOfRuleNewlineAndEventIdOrTheEventText) {
    // Persisted in dedup state: the same rule and event must keep their id across versions.
    EXPECT_EQ(alert_id("iam/create-user", boost::json::parse(R"({"eventID": "e-1", "x": 1})").as_object()),
              sha256_hex("iam/create-user\ne-1", 32));
    const auto without_id = boost::json::parse(R"({"eventName": "A", "n": [1, 2]})").as_object();
    EXPECT_EQ(alert_id("r", without_id), sha256_hex("r\n" + boost::json::serialize(without_id), 32));
}

// What the router wrote before the parts existed: the whole document, made valid at once.
std::string whole_document(const AlertRule& rule, const boost::json::object& event,
                           const std::optional<boost::json::value>& annotation, const EventOrigin& origin,
                           const std::string& destination, const boost::json::object& shaping_fields) {
    boost::json::object alert = make_alert(rule, event, annotation, origin);
    alert["destination"] = destination;
    for (const auto& field : shaping_fields) alert[field.key()] = field.value();
    return valid_json_text(boost::json::serialize(alert));
}

// The text a worker writes for the rule's first destination, as the router sends it:
// taken over for that destination, rewritten for another one or with shaping fields.
std::string in_parts(const AlertRule& rule, const boost::json::object& event,
                     const std::optional<boost::json::value>& annotation, const EventOrigin& origin,
                     const std::string& destination, const boost::json::object& shaping_fields,
                     const std::string& written_for) {
    AlertText alert = render_alert(rule, event, annotation, origin, written_for, event_json(event));
    const std::string copied = alert_json(alert, destination, shaping_fields);
    const std::string taken = alert_json(std::move(alert), destination, shaping_fields);
    EXPECT_EQ(copied, taken);
    return taken;
}

// Both: written for this destination, and for another one.
std::string in_parts(const AlertRule& rule, const boost::json::object& event,
                     const std::optional<boost::json::value>& annotation, const EventOrigin& origin,
                     const std::string& destination, const boost::json::object& shaping_fields) {
    const std::string own = in_parts(rule, event, annotation, origin, destination, shaping_fields, destination);
    EXPECT_EQ(in_parts(rule, event, annotation, origin, destination, shaping_fields, "another \"one\" \xff"), own);
    return own;
}

boost::json::object cloudtrail_event() {
    return boost::json::parse(R"({"eventID":"e-1","eventTime":"2026-01-02T03:04:05Z","eventName":"CreateUser",
        "eventSource":"iam.amazonaws.com","awsRegion":"eu-west-1","sourceIPAddress":"203.0.113.9",
        "userAgent":"aws-cli","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/a","accountId":"1"},
        "requestParameters":{"userName":"b","list":[1,2.5,true,null]}})")
        .as_object();
}

TEST(AlertText, PartsJoinToTheWholeDocument) {
    const AlertRule rule{"Create user", "A user was created", "iam/create-user", "iam", "high", {"cis", "iam"},
                         "https://runbooks.example/create-user"};
    const boost::json::object event = cloudtrail_event();
    const EventOrigin origin{"trail", "s3://bucket/key.json.gz", 17};
    const boost::json::object no_fields;
    const boost::json::object shaping{{"title", "b created"},
                                      {"dedup", {{"key", "b"}, {"window_seconds", 60}, {"suppressed", 2}}}};
    for (const auto& annotation :
         {std::optional<boost::json::value>(), std::optional<boost::json::value>("user b"),
          std::optional<boost::json::value>(boost::json::parse(R"({"user":"b","n":[1,{"x":null}]})"))}) {
        for (const auto* fields : {&no_fields, &shaping}) {
            EXPECT_EQ(in_parts(rule, event, annotation, origin, "slack \"ops\"", *fields),
                      whole_document(rule, event, annotation, origin, "slack \"ops\"", *fields));
        }
    }
    // A rule with only the required fields leaves the others out in both.
    const AlertRule bare{"Bare", "", "", "", "", {}, ""};
    EXPECT_EQ(in_parts(bare, event, std::nullopt, origin, "out", no_fields),
              whole_document(bare, event, std::nullopt, origin, "out", no_fields));
}

TEST(AlertText, HostileEventFieldsGiveTheSameValidJson) {
    // Invalid UTF-8 in fields the summary copies, in the event and in a key; non-finite numbers.
    boost::json::object event = cloudtrail_event();
    event["eventName"] = "Create\xff\xfeUser";
    event["userAgent"] = "curl \xc0\xaf NaN Infinity";
    static constexpr char kEscapes[] = "quote \" backslash \\ slash / controls \n\t\x01\x1f\x7f nul \0 end";
    event["sourceIPAddress"] = std::string(kEscapes, sizeof kEscapes - 1);
    event["n"] = std::numeric_limits<double>::infinity();
    event["m"] = -std::numeric_limits<double>::infinity();
    event["q"] = std::numeric_limits<double>::quiet_NaN();
    event["bad \xed\xa0\x80 key"] = "\xe2\x82";
    const AlertRule rule{"R\xff", "d \"q\"\n", "", "team\x01", "", {"t\\", "\xc3\xa9"}, "r\xff"};
    const EventOrigin origin{"s", "batch \xff", 0};
    const boost::json::object shaping{{"title", "t \xff"}};
    const std::optional<boost::json::value> annotation(std::numeric_limits<double>::infinity());
    const std::string parts = in_parts(rule, event, annotation, origin, "d\xff", shaping);
    EXPECT_EQ(parts, whole_document(rule, event, annotation, origin, "d\xff", shaping));
    boost::json::error_code ec;
    const auto reparsed = boost::json::parse(parts, ec);
    ASSERT_FALSE(ec) << ec.message() << ": " << parts;
    EXPECT_EQ(reparsed.at("event").at("n").as_double(), std::numeric_limits<double>::max());
    EXPECT_TRUE(reparsed.at("event").at("q").is_null());
    EXPECT_EQ(reparsed.at("summary").at("event_name").as_string(), "Create\xEF\xBF\xBD\xEF\xBF\xBDUser");
}

TEST(AlertText, EveryByteInEveryCopiedStringGivesTheWholeDocument) {
    // Strings that need no escape are copied, the others serialized: both must write
    // what serializing the whole document writes, whichever byte a string holds.
    const EventOrigin origin{"s", "b", 3};
    for (int byte = 0; byte < 256; ++byte) {
        const std::string text = "a" + std::string(1, static_cast<char>(byte)) + "z";
        SCOPED_TRACE(byte);
        boost::json::object event = cloudtrail_event();
        event["eventName"] = text;
        event["userAgent"] = std::string(1, static_cast<char>(byte));
        const AlertRule rule{text, text, text, "", "", {text}, ""};
        const EventOrigin hostile_origin{text, text, 0};
        EXPECT_EQ(in_parts(rule, event, std::nullopt, hostile_origin, text, {}),
                  whole_document(rule, event, std::nullopt, hostile_origin, text, {}));
        EXPECT_EQ(in_parts(rule, event, boost::json::value(text), origin, "out", {{"title", text}}),
                  whole_document(rule, event, boost::json::value(text), origin, "out", {{"title", text}}));
    }
}

TEST(AlertText, AlertIdIsTheDocumentsOwn) {
    const boost::json::object event = cloudtrail_event();
    const AlertRule rule{"Create user", "d", "iam/create-user", "", "", {}, ""};
    const AlertText text = render_alert(rule, event, std::nullopt, {"s", "b", 0}, "out", event_json(event));
    EXPECT_EQ(text.alert_id, make_alert(rule, event, std::nullopt, {"s", "b", 0}).at("alert_id").as_string());
    EXPECT_EQ(text.alert_id, alert_id("iam/create-user", event));
}

TEST(AlertText, IsTakenOverOnlyForItsOwnDestinationWithoutShapingFields) {
    const boost::json::object event = cloudtrail_event();
    const AlertRule rule{"Create user", "d", "", "", "", {}, ""};
    const AlertText alert = render_alert(rule, event, std::nullopt, {"s", "b", 0}, "out", event_json(event));
    EXPECT_EQ(alert.event_text(), event_json(event));
    EXPECT_EQ(std::string_view(alert.text).substr(alert.destination_at, alert.destination_end - alert.destination_at),
              "\"out\"");
    const auto moved_out = [&](std::string_view destination, const boost::json::object& shaping) {
        AlertText copy = alert;
        const std::string sent = alert_json(std::move(copy), destination, shaping);
        return copy.text.empty() && !sent.empty();
    };
    EXPECT_TRUE(moved_out("out", {}));
    EXPECT_FALSE(moved_out("outbound", {}));
    EXPECT_FALSE(moved_out("ou", {}));
    EXPECT_FALSE(moved_out("out", {{"title", "t"}}));
}

}  // namespace
}  // namespace tattle
