// Retry-After (RFC 9110 section 10.2.3): delta-seconds or an HTTP-date.

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <string>
#include <vector>

#include "tattle/http/client.hpp"

namespace tattle::http {

namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// A delay this long (about 300 years) already means "not in this process's lifetime";
// capping it keeps the millisecond arithmetic far from overflow.
constexpr std::uint64_t kMaxDelaySeconds = 9'999'999'999;
constexpr milliseconds kMaxDelay = seconds(static_cast<seconds::rep>(kMaxDelaySeconds));

std::string_view trim(std::string_view text) {
    const auto first = text.find_first_not_of(" \t");
    if (first == std::string_view::npos) return {};
    const auto last = text.find_last_not_of(" \t");
    return text.substr(first, last - first + 1);
}

bool all_digits(std::string_view text) {
    return !text.empty() && std::all_of(text.begin(), text.end(),
                                        [](unsigned char c) { return std::isdigit(c) != 0; });
}

std::optional<unsigned> number(std::string_view text, std::size_t min_digits,
                               std::size_t max_digits) {
    if (text.size() < min_digits || text.size() > max_digits || !all_digits(text))
        return std::nullopt;
    unsigned value = 0;
    std::from_chars(text.data(), text.data() + text.size(), value);
    return value;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](unsigned char x, unsigned char y) {
               return std::tolower(x) == std::tolower(y);
           });
}

bool is_day_name(std::string_view token) {
    static constexpr std::array<std::string_view, 7> kShort = {"Mon", "Tue", "Wed", "Thu",
                                                               "Fri", "Sat", "Sun"};
    static constexpr std::array<std::string_view, 7> kLong = {
        "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"};
    const auto same = [token](std::string_view name) { return equals_ignoring_case(token, name); };
    return std::any_of(kShort.begin(), kShort.end(), same) ||
           std::any_of(kLong.begin(), kLong.end(), same);
}

std::optional<unsigned> month_number(std::string_view token) {
    static constexpr std::array<std::string_view, 12> kMonths = {
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    for (std::size_t i = 0; i < kMonths.size(); ++i) {
        if (equals_ignoring_case(token, kMonths.at(i))) return static_cast<unsigned>(i + 1);
    }
    return std::nullopt;
}

std::optional<seconds> time_of_day(std::string_view token) {
    if (token.size() != 8 || token[2] != ':' || token[5] != ':') return std::nullopt;
    const auto hours = number(token.substr(0, 2), 2, 2);
    const auto minutes = number(token.substr(3, 2), 2, 2);
    const auto secs = number(token.substr(6, 2), 2, 2);
    // 60 is a leap second; it lands on the next minute, close enough for a delay.
    if (!hours || !minutes || !secs || *hours > 23 || *minutes > 59 || *secs > 60)
        return std::nullopt;
    return std::chrono::hours(*hours) + std::chrono::minutes(*minutes) + seconds(*secs);
}

std::vector<std::string_view> tokens_of(std::string_view text, std::string_view separators) {
    std::vector<std::string_view> tokens;
    std::size_t start = 0;
    while (start < text.size()) {
        const auto end = text.find_first_of(separators, start);
        const auto stop = end == std::string_view::npos ? text.size() : end;
        if (stop > start) tokens.push_back(text.substr(start, stop - start));
        start = stop + 1;
    }
    return tokens;
}

// The three forms a recipient must accept:
//   IMF-fixdate  Sun, 06 Nov 1994 08:49:37 GMT
//   RFC 850      Sunday, 06-Nov-94 08:49:37 GMT
//   asctime      Sun Nov  6 08:49:37 1994
std::optional<std::chrono::sys_seconds> parse_http_date(std::string_view text) {
    const auto tokens = tokens_of(text, " ,-");
    std::optional<unsigned> day;
    std::optional<unsigned> month;
    std::optional<unsigned> year;
    std::optional<seconds> clock_time;
    if (tokens.size() == 6 && is_day_name(tokens[0]) && equals_ignoring_case(tokens[5], "GMT")) {
        day = number(tokens[1], 1, 2);
        month = month_number(tokens[2]);
        year = number(tokens[3], 2, 4);
        if (year && tokens[3].size() == 2) {
            // RFC 850's two-digit year: RFC 9110 says read it as the most recent past
            // year with those digits; for a Retry-After that is this century.
            *year += *year < 70 ? 2000U : 1900U;
        } else if (tokens[3].size() != 4) {
            return std::nullopt;
        }
        clock_time = time_of_day(tokens[4]);
    } else if (tokens.size() == 5 && is_day_name(tokens[0])) {
        month = month_number(tokens[1]);
        day = number(tokens[2], 1, 2);
        clock_time = time_of_day(tokens[3]);
        year = number(tokens[4], 4, 4);
    }
    if (!day || !month || !year || !clock_time) return std::nullopt;
    const std::chrono::year_month_day date{std::chrono::year(static_cast<int>(*year)),
                                           std::chrono::month(*month), std::chrono::day(*day)};
    if (!date.ok()) return std::nullopt;
    return std::chrono::sys_days(date) + *clock_time;
}

}  // namespace

std::optional<milliseconds> parse_retry_after(std::string_view value,
                                              std::chrono::system_clock::time_point now) {
    const auto text = trim(value);
    if (all_digits(text)) {
        std::uint64_t delay = 0;
        for (const char digit : text) {
            delay =
                std::min(kMaxDelaySeconds, delay * 10 + static_cast<std::uint64_t>(digit - '0'));
        }
        return std::chrono::duration_cast<milliseconds>(seconds(static_cast<seconds::rep>(delay)));
    }
    const auto date = parse_http_date(text);
    if (!date) return std::nullopt;
    // In milliseconds, a year-9999 date is still far from overflow (nanoseconds are not).
    const milliseconds delay = std::chrono::time_point_cast<milliseconds>(*date) -
                               std::chrono::time_point_cast<milliseconds>(now);
    return std::clamp(delay, milliseconds(0), kMaxDelay);
}

std::optional<milliseconds> parse_retry_after(std::string_view value) {
    return parse_retry_after(value, std::chrono::system_clock::now());
}

}  // namespace tattle::http
