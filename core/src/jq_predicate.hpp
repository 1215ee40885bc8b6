#pragma once

// A reader for the part of jq that rules use to decide a match, an evaluator of
// that part over Boost.JSON with jq 1.6's semantics, and the conditions every
// match requires, which the rule index routes events by. Whatever it cannot
// read or decide exactly is left to libjq: the reader says why, the evaluator
// answers "ask libjq".

#include <boost/json.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tattle::jq_native {

struct Node;
using NodePtr = std::shared_ptr<const Node>;

// A path from the event's root made only of `.name` and `.[integer]` steps.
struct FieldPath {
    struct Step {
        std::string field;           // when !is_index
        bool is_index = false;
        std::int64_t index = 0;
    };
    std::vector<Step> steps;

    std::string text() const;  // as jq writes it: .userIdentity.type, .a[0], .["x y"]
    bool operator==(const FieldPath& other) const;
};

// Every match requires, for at least one term, the value at its path to be one
// of its values (jq equality): `eventName ∈ {A, B}` or `eventSource = x`; or, for
// a term that holds no values, to be anything but null: `errorCode ≠ null`.
struct IndexCondition {
    struct Term {
        FieldPath path;
        std::vector<boost::json::value> values;  // scalars only
        bool not_null = false;                   // values are empty
    };
    std::vector<Term> terms;

    std::string text() const;
};

enum class RuleForm {
    unread,            // no deciding condition found
    select_only,       // select(P): a match is the event itself, no annotation
    select_then_rest,  // select(P) | REST (or if P then REST else empty end): REST is libjq's
    bare,              // P: its first output is the rule's output
};

struct ReadRule {
    RuleForm form = RuleForm::unread;
    NodePtr predicate;
    NodePtr annotation;  // select(P) | REST with a REST the evaluator handles
    // The whole program as the evaluator runs it when some part of it may yield
    // several outputs (or hold a try that catches later errors): then the rule's
    // first output is taken from the stream, as libjq's first jq_next gives it.
    NodePtr program;
    bool streams = false;
    // The predicate holds only what the evaluator decides exactly.
    bool native = false;
    // Every character of the program was read, with the grammar jq 1.6 accepts,
    // so libjq would compile it: it need not be compiled until libjq must run.
    bool fully_read = false;
    std::string not_native_reason;  // when !native: the construct and where
    std::optional<IndexCondition> condition;
    std::string not_indexed_reason;  // when !condition
};

ReadRule read_rule(std::string_view program);

enum class Verdict { no_match, match, ask_libjq };

// What the rule does on this event, when the evaluator can tell exactly: no
// match, a match (with a scalar annotation or none), or "run it in libjq" (an
// annotation it does not build, a jq error to report, a value it does not model).
Verdict decide(const ReadRule& rule, const boost::json::object& event);
// The same; a match's annotation, when it has one, is set.
Verdict decide(const ReadRule& rule, const boost::json::object& event,
               std::optional<boost::json::value>& annotation);

// Routes events to the rules whose conditions their field values meet.
class RuleIndex {
public:
    // conditions[i] empty: rule i runs on every event.
    explicit RuleIndex(const std::vector<std::optional<IndexCondition>>& conditions);

    // Sets bit i of candidates (one bit per rule) for every rule that may match.
    // A field whose lookup jq would fail on (a step through a string, say) or
    // whose string is not valid UTF-8 makes every rule indexed on it a candidate.
    void candidates(const boost::json::object& event, std::vector<std::uint64_t>& bits);

    std::size_t indexed_rules() const noexcept { return indexed_; }

private:
    // Looks strings up by their bytes, without a copy per event, with a hash made
    // for the short names conditions hold (std::hash's runs a loop per byte).
    struct TextHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view text) const noexcept;
    };
    struct PathEntry {
        FieldPath path;
        // String values by their bytes (most conditions), other scalars by index_key.
        std::unordered_map<std::string, std::vector<std::uint32_t>, TextHash, std::equal_to<>> rules_by_string;
        std::unordered_map<std::string, std::vector<std::uint32_t>> rules_by_value;
        std::vector<std::uint32_t> not_null_rules;
        std::vector<std::uint32_t> all_rules;
    };
    std::vector<PathEntry> paths_;
    std::vector<std::uint64_t> always_;
    std::size_t indexed_ = 0;
    std::string key_buffer_;
};

// Canonical text of a scalar for the index: jq equality holds exactly when the
// keys are equal (numbers as doubles, strings as bytes). nullopt for arrays and
// objects.
bool index_key(const boost::json::value& value, std::string& key);

}  // namespace tattle::jq_native
