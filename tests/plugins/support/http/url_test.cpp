// Retry-After parsing, URL redaction and NO_PROXY matching: no network involved.

#include <gtest/gtest.h>

#include <chrono>

#include "../../../../plugins/support/http/src/url_parts.hpp"
#include "tattle/http/client.hpp"

namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;
using tattle::http::no_proxy_matches;
using tattle::http::parse_retry_after;
using tattle::http::redact_url;

// Wed, 21 Oct 2015 07:28:00 GMT
const auto kNow = std::chrono::sys_days(std::chrono::year_month_day(
                      std::chrono::year(2015), std::chrono::October, std::chrono::day(21))) +
                  7h + 28min;

TEST(HttpRetryAfter, DelaySeconds) {
    EXPECT_EQ(parse_retry_after("120", kNow), milliseconds(120'000));
    EXPECT_EQ(parse_retry_after("0", kNow), milliseconds(0));
    EXPECT_EQ(parse_retry_after(" 7\t", kNow), milliseconds(7'000));
    EXPECT_EQ(parse_retry_after("2"), milliseconds(2'000));
}

TEST(HttpRetryAfter, HugeDelaysSaturateInsteadOfOverflowing) {
    const auto delay = parse_retry_after("99999999999999999999999", kNow);
    ASSERT_TRUE(delay);
    EXPECT_GT(*delay, std::chrono::hours(24 * 365 * 100));
}

TEST(HttpRetryAfter, HttpDateInAllThreeForms) {
    EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", kNow), milliseconds(30'000));
    EXPECT_EQ(parse_retry_after("Wednesday, 21-Oct-15 07:29:00 GMT", kNow), milliseconds(60'000));
    EXPECT_EQ(parse_retry_after("Wed Oct 21 07:28:05 2015", kNow), milliseconds(5'000));
    EXPECT_EQ(parse_retry_after("Thu Oct  1 00:00:00 2015", kNow),
              milliseconds(0));  // asctime pads the day
    EXPECT_EQ(parse_retry_after("Thu, 22 Oct 2015 07:28:00 GMT", kNow), milliseconds(24h));
    EXPECT_EQ(parse_retry_after("wed, 21 oct 2015 07:28:01 gmt", kNow), milliseconds(1'000));
}

TEST(HttpRetryAfter, ADateInThePastMeansNow) {
    EXPECT_EQ(parse_retry_after("Tue, 20 Oct 2015 07:28:00 GMT", kNow), milliseconds(0));
    EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", kNow), milliseconds(0));
}

TEST(HttpRetryAfter, AFarFutureDateDoesNotOverflow) {
    const auto delay = parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", kNow);
    ASSERT_TRUE(delay);
    EXPECT_GT(*delay, std::chrono::hours(24 * 365 * 100));
    EXPECT_EQ(delay, parse_retry_after("99999999999999999999999", kNow));  // the same cap
}

TEST(HttpRetryAfter, NonsenseIsNotADelay) {
    for (const char* value :
         {"", "  ", "-1", "1.5", "+3", "soon", "12 s", "Wed, 32 Oct 2015 07:28:00 GMT",
          "Wed, 21 Foo 2015 07:28:00 GMT", "Wed, 21 Oct 2015 24:00:00 GMT",
          "Wed, 21 Oct 2015 07:28:00 PST", "Wed, 21 Oct 2015 07:28 GMT",
          "Wed, 29 Feb 2015 07:28:00 GMT", "Someday, 21 Oct 2015 07:28:00 GMT",
          "Wed, 21 Oct 215 07:28:00 GMT"}) {
        EXPECT_EQ(parse_retry_after(value, kNow), std::nullopt) << '"' << value << '"';
    }
}

TEST(HttpUrl, RedactionKeepsOnlySchemeHostAndPort) {
    EXPECT_EQ(redact_url("https://hooks.slack.com/services/T000/B000/SECRETTOKEN"),
              "https://hooks.slack.com");
    EXPECT_EQ(redact_url("https://events.pagerduty.com:8443/v2/enqueue?key=SECRET#frag"),
              "https://events.pagerduty.com:8443");
    EXPECT_EQ(redact_url("https://user:SECRET@example.com/x"), "https://example.com");
    EXPECT_EQ(redact_url("HTTP://Example.COM"), "http://example.com");
    EXPECT_EQ(redact_url("https://[::1]:8443/SECRET"), "https://[::1]:8443");
    EXPECT_EQ(redact_url("not a url /SECRET"), "(invalid URL)");
    EXPECT_EQ(redact_url("/relative/SECRET"), "(invalid URL)");
    EXPECT_EQ(redact_url("mailto:SECRET@example.com"), "(invalid URL)");
}

TEST(HttpUrl, NoProxyDomains) {
    EXPECT_TRUE(no_proxy_matches("example.com", "example.com", 443));
    EXPECT_TRUE(no_proxy_matches("example.com", "api.example.com", 443));
    EXPECT_TRUE(no_proxy_matches(".example.com", "api.example.com", 443));
    EXPECT_TRUE(no_proxy_matches(".example.com", "example.com", 443));
    EXPECT_TRUE(no_proxy_matches("*.example.com", "a.b.example.com", 443));
    EXPECT_FALSE(no_proxy_matches("example.com", "badexample.com", 443));
    EXPECT_FALSE(no_proxy_matches("api.example.com", "example.com", 443));
    EXPECT_TRUE(no_proxy_matches(" other.org , Example.COM ", "API.example.com", 443));
    EXPECT_TRUE(no_proxy_matches("*", "anything", 1));
    EXPECT_FALSE(no_proxy_matches("", "example.com", 443));
    EXPECT_FALSE(no_proxy_matches(",,", "example.com", 443));
}

TEST(HttpUrl, NoProxyAddressesBlocksAndPorts) {
    EXPECT_TRUE(no_proxy_matches("127.0.0.1", "127.0.0.1", 443));
    EXPECT_FALSE(no_proxy_matches("127.0.0.1", "127.0.0.10", 443));
    EXPECT_TRUE(no_proxy_matches("10.0.0.0/8", "10.20.30.40", 443));
    EXPECT_FALSE(no_proxy_matches("10.0.0.0/8", "11.0.0.1", 443));
    EXPECT_TRUE(no_proxy_matches("192.168.1.0/23", "192.168.0.7", 443));
    EXPECT_FALSE(no_proxy_matches("192.168.1.0/24", "192.168.0.7", 443));
    EXPECT_FALSE(no_proxy_matches("10.0.0.0/8", "example.com", 443));
    EXPECT_TRUE(no_proxy_matches("::1", "::1", 443));
    EXPECT_TRUE(no_proxy_matches("[::1]", "::1", 443));
    EXPECT_TRUE(no_proxy_matches("[::1]:8443", "::1", 8443));
    EXPECT_FALSE(no_proxy_matches("[::1]:8443", "::1", 443));
    EXPECT_TRUE(no_proxy_matches("fd00::/8", "fd12:3456::1", 443));
    EXPECT_TRUE(no_proxy_matches("example.com:8443", "api.example.com", 8443));
    EXPECT_FALSE(no_proxy_matches("example.com:8443", "api.example.com", 443));
    EXPECT_TRUE(no_proxy_matches("127.0.0.1:8443", "127.0.0.1", 8443));
}

// Found by fuzzing (tests/fuzz/corpus/http_settings/regression-port-with-letters): Boost.URL
// 1.81 reads "[::0]:8h443/path" as port 8 and the rootless path "h443/path", which would
// go out as the request line "POST h443/path HTTP/1.1".
TEST(HttpUrl, AnAuthorityFollowedByARootlessPathIsRefused) {
    using tattle::http::TransportError;
    for (const char* url : {"https://[::0]:8h443/path", "https://hooks.example:8h/services/x", "http://1.2.3.4:80x/y"}) {
        try {
            tattle::http::detail::parse_endpoint(url);
            ADD_FAILURE() << url << " was accepted";
        } catch (const TransportError& error) {
            EXPECT_EQ(error.kind(), TransportError::Kind::InvalidRequest) << url;
        }
    }
}

TEST(HttpUrl, AQueryWithoutAPathTargetsTheRoot) {
    EXPECT_EQ(tattle::http::detail::parse_endpoint("https://hooks.example?token=1").target, "/?token=1");
    EXPECT_EQ(tattle::http::detail::parse_endpoint("https://hooks.example").target, "/");
    EXPECT_EQ(tattle::http::detail::parse_endpoint("https://hooks.example:8443/a/b?c").target, "/a/b?c");
}

}  // namespace
