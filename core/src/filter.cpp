#include "tattle/filter.hpp"

#include "jq_compile.hpp"
#include "jq_predicate.hpp"
#include "tattle/alert.hpp"
#include "tattle/rule_sandbox.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>

#include "owned_jv.hpp"

namespace tattle {

namespace {

// ---------------------------------------------------------------------------
// Sandbox: what rules may not call, and why.

constexpr std::string_view kNoOutsideReads =
    "rules cannot read the environment, files or other inputs";
constexpr std::string_view kNoSideEffects = "rules cannot halt jq or write to stderr";

struct RefusalGroup {
    std::string_view consequence;
    std::string_view policy;
};

constexpr RefusalGroup kEnvironment{"could read the process environment (secrets)",
                                    kNoOutsideReads};
constexpr RefusalGroup kArguments{"could read the program's arguments", kNoOutsideReads};
constexpr RefusalGroup kOtherInputs{"could read events other than the one being matched",
                                    kNoOutsideReads};
constexpr RefusalGroup kInputDetails{"could read where the input came from", kNoOutsideReads};
constexpr RefusalGroup kFiles{"could read files", kNoOutsideReads};
constexpr RefusalGroup kPaths{"could read file-system paths of the process", kNoOutsideReads};
constexpr RefusalGroup kHalting{"would stop jq instead of deciding a match", kNoSideEffects};
constexpr RefusalGroup kStderr{"would write to stderr", kNoSideEffects};

struct ForbiddenName {
    std::string_view name;
    const RefusalGroup* group;
};

// Variables, written without the '$'.
constexpr std::array kForbiddenVariables{
    ForbiddenName{"ENV", &kEnvironment},
    ForbiddenName{"__prog_args", &kArguments},
};

// Builtins and keywords. _input is the C builtin behind input and inputs.
constexpr std::array kForbiddenCalls{
    ForbiddenName{"env", &kEnvironment},
    ForbiddenName{"input", &kOtherInputs},
    ForbiddenName{"inputs", &kOtherInputs},
    ForbiddenName{"_input", &kOtherInputs},
    ForbiddenName{"input_filename", &kInputDetails},
    ForbiddenName{"input_line_number", &kInputDetails},
    ForbiddenName{"import", &kFiles},
    ForbiddenName{"include", &kFiles},
    ForbiddenName{"modulemeta", &kFiles},
    ForbiddenName{"get_search_list", &kPaths},
    ForbiddenName{"get_prog_origin", &kPaths},
    ForbiddenName{"get_jq_origin", &kPaths},
    ForbiddenName{"halt", &kHalting},
    ForbiddenName{"halt_error", &kHalting},
    ForbiddenName{"debug", &kStderr},
    ForbiddenName{"stderr", &kStderr},
};

template <std::size_t N>
const ForbiddenName* find_forbidden(const std::array<ForbiddenName, N>& table,
                                    std::string_view name) {
    for (const auto& entry : table) {
        if (entry.name == name) return &entry;
    }
    return nullptr;
}

std::string refusal_message(std::string_view shown_name, const RefusalGroup& group) {
    std::string message = "uses \"";
    message += shown_name;
    message += "\", which ";
    message += group.consequence;
    message += "; ";
    message += group.policy;
    return message;
}

// Redefines every refused builtin so that, should the scanner ever miss a use,
// the call fails instead of reaching the real builtin. All on one line: jq's
// error messages and $__loc__ report line numbers, and they must stay the user's.
constexpr std::string_view kSandboxDefinitions =
    "def env: error(\"env is not available to rules\"); "
    "def input: error(\"input is not available to rules\"); "
    "def inputs: error(\"inputs is not available to rules\"); "
    "def _input: error(\"input is not available to rules\"); "
    "def input_filename: error(\"input_filename is not available to rules\"); "
    "def input_line_number: error(\"input_line_number is not available to rules\"); "
    "def modulemeta: error(\"modulemeta is not available to rules\"); "
    "def get_search_list: error(\"get_search_list is not available to rules\"); "
    "def get_prog_origin: error(\"get_prog_origin is not available to rules\"); "
    "def get_jq_origin: error(\"get_jq_origin is not available to rules\"); "
    "def halt: error(\"halt is not available to rules\"); "
    "def halt_error: error(\"halt_error is not available to rules\"); "
    "def halt_error($code): error(\"halt_error is not available to rules\"); "
    "def debug: error(\"debug is not available to rules\"); "
    "def debug($message): error(\"debug is not available to rules\"); "
    "def stderr: error(\"stderr is not available to rules\"); ";
constexpr std::string_view kSandboxBindings =
    // An unbound $ENV is what libjq replaces with the environment; a bound one
    // is an ordinary variable. Coming after the prelude's definitions also
    // makes import/include/module directives a syntax error.
    "null as $ENV | null as $__prog_args | ";

// Scans a jq program the way jq 1.6's lexer splits it, and reports the first use
// of a refused variable, builtin or directive. It errs towards refusing: a name
// is only let through when the lexer would certainly not make it a call (a
// field, an object key followed by ':', a string, a comment, a definition's name).
class SandboxScanner {
public:
    explicit SandboxScanner(std::string_view program) : text_(program) {}

    // jq compiles such a program as `.`, which would match every event.
    bool only_blanks_and_comments() {
        skip_blanks_and_comments();
        return pos_ >= text_.size();
    }

    std::optional<std::string> find_violation() {
        while (pos_ < text_.size()) {
            if (auto violation = scan_token()) return violation;
        }
        return std::nullopt;
    }

    // Whether every bracket and string the program opens is closed again, in
    // order. Only such a program, wrapped in "(" and ")", stays inside them:
    // the combined program relies on it to keep one rule from reaching another.
    bool brackets_balanced() {
        while (pos_ < text_.size()) static_cast<void>(scan_token());
        return !mismatched_ && frames_.empty() && !inside_string_;
    }

private:
    enum class Frame : char { paren, bracket, brace, interpolation };

    static bool is_identifier_start(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    }
    static bool is_identifier_char(char c) {
        return is_identifier_start(c) || (c >= '0' && c <= '9');
    }
    static bool is_digit(char c) { return c >= '0' && c <= '9'; }
    static bool is_blank(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
    }

    char at(std::size_t index) const { return index < text_.size() ? text_[index] : '\0'; }

    // jq 1.6 comments run from '#' to the end of the line, with no continuation.
    void skip_comment() {
        while (pos_ < text_.size() && text_[pos_] != '\n' && text_[pos_] != '\r') ++pos_;
    }

    void skip_blanks_and_comments() {
        while (pos_ < text_.size()) {
            if (is_blank(text_[pos_])) {
                ++pos_;
            } else if (text_[pos_] == '#') {
                skip_comment();
            } else {
                break;
            }
        }
    }

    char next_significant_char() {
        const std::size_t saved = pos_;
        skip_blanks_and_comments();
        const char next = at(pos_);
        pos_ = saved;
        return next;
    }

    // ([a-zA-Z_][a-zA-Z_0-9]*::)*[a-zA-Z_][a-zA-Z_0-9]*, as jq's IDENT.
    std::string_view read_identifier() {
        const std::size_t start = pos_;
        for (;;) {
            while (is_identifier_char(at(pos_))) ++pos_;
            if (at(pos_) == ':' && at(pos_ + 1) == ':' && is_identifier_start(at(pos_ + 2))) {
                pos_ += 2;
                continue;
            }
            break;
        }
        return text_.substr(start, pos_ - start);
    }

    // Length of [0-9.]+([eE][+-]?[0-9]+)? at index, jq's numeric literal.
    std::size_t number_length(std::size_t index) const {
        std::size_t end = index;
        while (is_digit(at(end)) || at(end) == '.') ++end;
        if (end == index) return 0;
        if (at(end) == 'e' || at(end) == 'E') {
            std::size_t exponent = end + 1;
            if (at(exponent) == '+' || at(exponent) == '-') ++exponent;
            if (is_digit(at(exponent))) {
                while (is_digit(at(exponent))) ++exponent;
                end = exponent;
            }
        }
        return end - index;
    }

    static char closing_char(Frame frame) {
        switch (frame) {
            case Frame::paren:
            case Frame::interpolation:
                return ')';
            case Frame::bracket:
                return ']';
            case Frame::brace:
                return '}';
        }
        return ')';
    }

    bool innermost_is_brace() const { return !frames_.empty() && frames_.back() == Frame::brace; }

    // Scans string text up to its closing quote, or up to an interpolation,
    // whose code is then scanned as code until its ')'.
    void scan_string_text() {
        inside_string_ = true;
        while (pos_ < text_.size()) {
            const char c = text_[pos_];
            if (c == '"') {
                ++pos_;
                inside_string_ = false;
                return;
            }
            if (c == '\\') {
                if (at(pos_ + 1) == '(') {
                    pos_ += 2;
                    frames_.push_back(Frame::interpolation);
                    inside_string_ = false;
                    return;
                }
                pos_ += 2;  // an escape: the escaped character is text, never a quote
                continue;
            }
            ++pos_;
        }
    }

    std::optional<std::string> scan_token() {
        const char c = text_[pos_];
        const bool key_position = key_may_follow_;
        key_may_follow_ = false;

        if (is_blank(c)) {
            ++pos_;
            key_may_follow_ = key_position;
            return std::nullopt;
        }
        if (c == '#') {
            skip_comment();
            key_may_follow_ = key_position;
            return std::nullopt;
        }
        if (c == '"') {
            ++pos_;
            scan_string_text();
            return std::nullopt;
        }
        if (c == '$') {
            ++pos_;
            skip_blanks_and_comments();  // jq 1.6 lexes '$' and the name separately
            if (!is_identifier_start(at(pos_))) return std::nullopt;
            const std::string_view name = read_identifier();
            if (const auto* forbidden = find_forbidden(kForbiddenVariables, name)) {
                return refusal_message("$" + std::string(name), *forbidden->group);
            }
            return std::nullopt;
        }
        if (c == '@') {  // a format such as @base64: a name, never a call
            ++pos_;
            while (is_identifier_char(at(pos_))) ++pos_;
            return std::nullopt;
        }
        if (c == '.' || is_digit(c)) {
            // flex takes the longest match; on a tie the number rule wins over FIELD.
            const std::size_t as_number = number_length(pos_);
            std::size_t as_field = 0;
            if (c == '.' && is_identifier_start(at(pos_ + 1))) {
                as_field = 1;
                while (is_identifier_char(at(pos_ + as_field))) ++as_field;
            }
            pos_ += std::max({as_number, as_field, std::size_t{1}});
            return std::nullopt;
        }
        if (is_identifier_start(c)) return scan_word(key_position);

        switch (c) {
            case '(':
                frames_.push_back(Frame::paren);
                break;
            case '[':
                frames_.push_back(Frame::bracket);
                break;
            case '{':
                frames_.push_back(Frame::brace);
                key_may_follow_ = true;
                break;
            case ')':
            case ']':
            case '}':
                if (frames_.empty()) {
                    mismatched_ = true;
                } else {
                    const Frame closed = frames_.back();
                    frames_.pop_back();
                    if (c != closing_char(closed)) mismatched_ = true;
                    if (closed == Frame::interpolation && c == ')') {
                        ++pos_;
                        scan_string_text();
                        return std::nullopt;
                    }
                }
                break;
            case ',':
                key_may_follow_ = innermost_is_brace();
                break;
            default:
                break;
        }
        ++pos_;
        return std::nullopt;
    }

    std::optional<std::string> scan_word(bool key_position) {
        const std::string_view word = read_identifier();
        // {env: 1} names a key; a shorthand {env} stays refused because later
        // jq versions let the term before it contain commas.
        if (key_position && innermost_is_brace() && next_significant_char() == ':') {
            return std::nullopt;
        }
        if (word == "def") {
            skip_blanks_and_comments();
            if (is_identifier_start(at(pos_))) read_identifier();  // the new name is no call
            return std::nullopt;
        }
        if (const auto* forbidden = find_forbidden(kForbiddenCalls, word)) {
            return refusal_message(word, *forbidden->group);
        }
        return std::nullopt;
    }

    std::string_view text_;
    std::size_t pos_ = 0;
    std::vector<Frame> frames_;
    bool key_may_follow_ = false;  // last token was '{', or ',' directly inside braces
    bool mismatched_ = false;      // a closing bracket that closes nothing, or the wrong one
    bool inside_string_ = false;   // the text ended inside a string literal
};

// ---------------------------------------------------------------------------
// jv ownership and conversion.


int jq_length(std::size_t size) {
    if (size > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
        throw std::length_error("JSON value too large for jq");
    }
    return static_cast<int>(size);
}

// CloudTrail events repeat the same few hundred keys. Handing out a cached jv
// string (a reference count increment) skips the allocation, UTF-8 check and
// hashing that building each key again would cost.
class KeyCache {
public:
    jv key(std::string_view text) {
        if (const auto found = keys_.find(text); found != keys_.end()) {
            return found->second.copy();
        }
        OwnedJv created(jv_string_sized(text.data(), jq_length(text.size())));
        // Bounded, so events with ever-new keys cannot grow it without limit.
        if (keys_.size() < kMaxKeys) keys_.emplace(std::string(text), OwnedJv(created.copy()));
        return created.release();
    }

private:
    struct TransparentHash {
        using is_transparent = void;
        std::size_t operator()(std::string_view text) const noexcept {
            return std::hash<std::string_view>{}(text);
        }
    };
    static constexpr std::size_t kMaxKeys = 4096;
    std::unordered_map<std::string, OwnedJv, TransparentHash, std::equal_to<>> keys_;
};

class JvBuilder {
public:
    explicit JvBuilder(KeyCache& keys) : keys_(keys) {}

    jv object_to_jv(const boost::json::object& object) {
        OwnedJv result(jv_object());
        for (const auto& member : object) {
            OwnedJv field_value(value_to_jv(member.value()));
            jv key = keys_.key(member.key());
            result = OwnedJv(jv_object_set(result.release(), key, field_value.release()));
        }
        return result.release();
    }

    jv value_to_jv(const boost::json::value& value) {
        switch (value.kind()) {
            case boost::json::kind::null:
                return jv_null();
            case boost::json::kind::bool_:
                return jv_bool(value.get_bool() ? 1 : 0);
            // jq 1.6 keeps every number as a double; large integers lose
            // precision exactly as they do in the jq command.
            case boost::json::kind::int64:
                return jv_number(static_cast<double>(value.get_int64()));
            case boost::json::kind::uint64:
                return jv_number(static_cast<double>(value.get_uint64()));
            case boost::json::kind::double_:
                return jv_number(value.get_double());
            case boost::json::kind::string: {
                const auto& text = value.get_string();
                return jv_string_sized(text.data(), jq_length(text.size()));
            }
            case boost::json::kind::array: {
                const auto& elements = value.get_array();
                OwnedJv result(jv_array_sized(jq_length(elements.size())));
                for (const auto& element : elements) {
                    OwnedJv converted(value_to_jv(element));
                    result = OwnedJv(jv_array_append(result.release(), converted.release()));
                }
                return result.release();
            }
            case boost::json::kind::object:
                return object_to_jv(value.get_object());
        }
        return jv_null();
    }

private:
    KeyCache& keys_;
};

struct AnnotationTooDeep : std::runtime_error {
    AnnotationTooDeep() : std::runtime_error("the rule's output is nested too deeply") {}
};

// Deeper than any alert needs, shallow enough that recursion stays cheap.
constexpr int kMaxAnnotationDepth = 256;

boost::json::value jv_number_to_json(double number) {
    // jq prints NaN as null and infinities as the largest finite doubles.
    if (std::isnan(number)) return nullptr;
    if (std::isinf(number)) {
        return number > 0 ? std::numeric_limits<double>::max()
                          : std::numeric_limits<double>::lowest();
    }
    constexpr double two_to_63 = 9223372036854775808.0;
    if (std::trunc(number) == number && number >= -two_to_63 && number < two_to_63) {
        return static_cast<std::int64_t>(number);
    }
    return number;
}

// Reads value without taking its reference.
boost::json::value jv_to_json(jv value, int depth) {
    if (depth > kMaxAnnotationDepth) throw AnnotationTooDeep();
    switch (jv_get_kind(value)) {
        case JV_KIND_INVALID:
        case JV_KIND_NULL:
            return nullptr;
        case JV_KIND_FALSE:
            return false;
        case JV_KIND_TRUE:
            return true;
        case JV_KIND_NUMBER:
            return jv_number_to_json(jv_number_value(value));
        case JV_KIND_STRING: {
            const int length = jv_string_length_bytes(jv_copy(value));
            return boost::json::string(jv_string_value(value), static_cast<std::size_t>(length));
        }
        case JV_KIND_ARRAY: {
            const int length = jv_array_length(jv_copy(value));
            boost::json::array result;
            result.reserve(static_cast<std::size_t>(length));
            for (int index = 0; index < length; ++index) {
                OwnedJv element(jv_array_get(jv_copy(value), index));
                result.push_back(jv_to_json(element.borrow(), depth + 1));
            }
            return result;
        }
        case JV_KIND_OBJECT: {
            boost::json::object result;
            // jv_object_iter walks the slots in insertion order, which keeps the
            // rule author's key order in the alert.
            for (int it = jv_object_iter(value); jv_object_iter_valid(value, it);
                 it = jv_object_iter_next(value, it)) {
                OwnedJv key(jv_object_iter_key(value, it));
                OwnedJv field_value(jv_object_iter_value(value, it));
                const int key_length = jv_string_length_bytes(key.copy());
                result.insert_or_assign(
                    boost::json::string_view(jv_string_value(key.borrow()),
                                             static_cast<std::size_t>(key_length)),
                    jv_to_json(field_value.borrow(), depth + 1));
            }
            return result;
        }
    }
    return nullptr;
}

// Text of a jq error value: strings as they are, anything else as JSON, as the
// jq command reports it.
std::string error_text(OwnedJv message) {
    if (message.kind() == JV_KIND_STRING) {
        const int length = jv_string_length_bytes(message.copy());
        return std::string(jv_string_value(message.borrow()), static_cast<std::size_t>(length));
    }
    OwnedJv dumped(jv_dump_string(message.release(), 0));
    return std::string(jv_string_value(dumped.borrow())) + " (not a string)";
}

// Error values can hold a whole event; a log line needs the start of it.
std::string truncated_for_log(std::string text) {
    constexpr std::size_t limit = 512;
    if (text.size() <= limit) return text;
    std::size_t cut = limit;
    // Never split a UTF-8 sequence.
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0U) == 0x80U) --cut;
    text.resize(cut);
    text += "...";
    return text;
}

// ---------------------------------------------------------------------------
// Compilation.

CompileResult compile_rule(std::string_view jq_program) {
    return compile_jq_program(sandboxed_jq_program(jq_program));
}

// Rules whose text could behave differently inside the combined program get a
// program of their own: $__loc__ would report the combined program's lines, a
// name starting with __tattle_ could call another rule, a '\r' is where the
// scanner's idea of a comment's end and jq 1.6's differ, and unbalanced
// brackets or strings could reach past their rule. And a `try` or `?`: the
// combined program takes a rule's first output with first(), whose break jq 1.6
// lets a try still open in the rule catch; the rule then runs on, and an error
// after its first output would fail it there. Alone, one jq_next takes the first
// output and nothing after it runs. (Found by text, strings and comments included:
// too many rules alone costs compile time, never a result.)
bool needs_own_program(std::string_view jq_program) {
    return jq_program.find("__loc__") != std::string_view::npos ||
           jq_program.find("__tattle_") != std::string_view::npos ||
           jq_program.find('\r') != std::string_view::npos || jq_program.find('?') != std::string_view::npos ||
           jq_program.find("try") != std::string_view::npos || !SandboxScanner(jq_program).brackets_balanced();
}

// One program for many rules: each rule becomes a definition, its text on lines
// of its own (a '#' comment ends at its line) inside parentheses (its own defs,
// bindings and pipes stay inside). The program's input is [event, [slot...]]:
// it runs only the rules at those slots, in that order, and outputs one array
// with an element per slot given:
//   []        no output
//   [first]   the rule's first output, the only one evaluated
//   {"error": message}  a runtime error before the first output
std::string pick_rule_text(std::size_t low, std::size_t high) {
    if (high - low == 1) {
        return "(try [first(__tattle_rule_" + std::to_string(low) + ")] catch {\"error\": .})";
    }
    const std::size_t middle = low + (high - low) / 2;
    return "(if $__tattle_i < " + std::to_string(middle) + " then " + pick_rule_text(low, middle) +
           " else " + pick_rule_text(middle, high) + " end)";
}

std::string combined_program_text(const std::vector<FilterRule>& rules,
                                  const std::vector<std::size_t>& indices, bool selecting = true) {
    std::string text(kSandboxDefinitions);
    text += kSandboxBindings;
    text += '\n';
    for (std::size_t slot = 0; slot < indices.size(); ++slot) {
        text += "def __tattle_rule_" + std::to_string(slot) + ": (\n";
        text += rules[indices[slot]].jq_program;
        text += "\n);\n";
    }
    if (!selecting) {
        // Every rule on every event (RuleCompilation::combined): the input is
        // the event itself, and nothing is spent on choosing rules.
        text += '[';
        for (std::size_t slot = 0; slot < indices.size(); ++slot) {
            if (slot > 0) text += ", ";
            text += "(try [first(__tattle_rule_" + std::to_string(slot) + ")] catch {\"error\": .})";
        }
        text += "]\n";
        return text;
    }
    text += "def __tattle_pick($__tattle_i): " + pick_rule_text(0, indices.size()) + ";\n";
    text += ".[0] as $__tattle_event | [.[1][] as $__tattle_i | $__tattle_event | "
            "__tattle_pick($__tattle_i)]\n";
    return text;
}

// libjq 1.6 silently adds the definitions in $HOME/.jq to every program it
// compiles, which makes rules behave differently from one machine to the next.
void warn_about_home_jq_file() {
    const char* home = std::getenv("HOME");
    if (home == nullptr || *home == '\0') return;
    const std::filesystem::path library = std::filesystem::path(home) / ".jq";
    std::error_code error;
    if (std::filesystem::is_regular_file(library, error)) {
        spdlog::warn(
            "libjq loads {} into every rule; its definitions change what rules do. Remove it "
            "or run tattle with another HOME",
            library.string());
    }
}

}  // namespace

std::optional<std::string> sandbox_violation(std::string_view jq_program) {
    return SandboxScanner(jq_program).find_violation();
}

std::string sandboxed_jq_program(std::string_view jq_program) {
    std::string text;
    text.reserve(kSandboxDefinitions.size() + kSandboxBindings.size() + jq_program.size());
    text += kSandboxDefinitions;
    text += kSandboxBindings;
    text += jq_program;
    return text;
}

// ---------------------------------------------------------------------------
// FilterStage.

// Rules turned off because of what they did to the rule evaluator, shared by the
// FilterStages of every worker thread. Read for every event, so the check is an atomic.
class RuleQuarantine {
public:
    explicit RuleQuarantine(std::size_t rules) : off_(rules), reasons_(rules) {}

    bool any_disabled() const noexcept { return any_.load(std::memory_order_acquire); }
    bool disabled(std::size_t rule) const noexcept {
        return rule < off_.size() && off_[rule].load(std::memory_order_acquire);
    }
    // True for the caller that disabled it first.
    bool disable(std::size_t rule, const std::string& reason) {
        if (rule >= off_.size()) return false;
        std::lock_guard lock(mutex_);
        if (off_[rule].load(std::memory_order_relaxed)) return false;
        reasons_[rule] = reason;
        off_[rule].store(true, std::memory_order_release);
        any_.store(true, std::memory_order_release);
        return true;
    }
    std::optional<std::string> reason(std::size_t rule) const {
        if (!disabled(rule)) return std::nullopt;
        std::lock_guard lock(mutex_);
        return reasons_[rule];
    }

private:
    std::vector<std::atomic<bool>> off_;
    std::atomic<bool> any_{false};
    mutable std::mutex mutex_;
    std::vector<std::string> reasons_;
};

// A thread that hands one request at a time to a rule evaluator and waits for its answers
// (RuleSandbox::run, which watches the evaluator's CPU time and memory meanwhile), so that
// the thread that asked goes on with other work.
class EvaluatorRequests {
public:
    EvaluatorRequests() : thread_([this] { serve(); }) {}
    ~EvaluatorRequests() {
        {
            std::lock_guard lock(mutex_);
            closing_ = true;
        }
        wake_.notify_all();
        thread_.join();
    }
    EvaluatorRequests(const EvaluatorRequests&) = delete;
    EvaluatorRequests& operator=(const EvaluatorRequests&) = delete;

    // sandbox and jobs must stay as they are until wait returns.
    void submit(RuleSandbox& sandbox, std::span<const RuleSandbox::Job> jobs) {
        {
            std::lock_guard lock(mutex_);
            sandbox_ = &sandbox;
            jobs_ = jobs;
            state_ = State::submitted;
            answered_.store(false, std::memory_order_relaxed);
        }
        wake_.notify_all();
    }

    bool answered() const noexcept { return answered_.load(std::memory_order_acquire); }

    // The answers to the request submitted; rethrows what run threw.
    std::vector<std::vector<LibjqOutcome>> wait() {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [this] { return state_ == State::answered; });
        state_ = State::idle;
        if (failure_) std::rethrow_exception(std::exchange(failure_, nullptr));
        return std::move(results_);
    }

private:
    enum class State : std::uint8_t { idle, submitted, answered };

    void serve() {
        std::unique_lock lock(mutex_);
        for (;;) {
            wake_.wait(lock, [this] { return closing_ || state_ == State::submitted; });
            if (closing_) return;
            RuleSandbox* sandbox = sandbox_;
            const std::span<const RuleSandbox::Job> jobs = jobs_;
            lock.unlock();
            std::vector<std::vector<LibjqOutcome>> results;
            std::exception_ptr failure;
            try {
                results = sandbox->run(jobs);
            } catch (...) {
                failure = std::current_exception();
            }
            lock.lock();
            results_ = std::move(results);
            failure_ = failure;
            state_ = State::answered;
            answered_.store(true, std::memory_order_release);
            wake_.notify_all();
        }
    }

    std::mutex mutex_;
    std::condition_variable wake_;  // a request for the thread, or its answer for the caller
    State state_ = State::idle;
    bool closing_ = false;
    RuleSandbox* sandbox_ = nullptr;
    std::span<const RuleSandbox::Job> jobs_;
    std::vector<std::vector<LibjqOutcome>> results_;
    std::exception_ptr failure_;
    std::atomic<bool> answered_{false};
    std::thread thread_;  // last: it starts using the members above at once
};

struct FilterStage::Impl {
    struct CompiledRule {
        JqStatePtr own_program;   // a program of its own (per_rule, or a rule kept apart)
        bool in_combined = false; // evaluated by a combined program instead
        std::size_t combined_program = 0;
        std::size_t combined_slot = 0;
        // Read in full by the native reader, so libjq would compile it (or, in a sibling
        // whose libjq runs in the evaluator, compiled by the first stage already): its
        // program is compiled the first time libjq must run it in this process.
        bool deferred = false;
        std::size_t deferred_group = 0;
        std::optional<std::string> deferred_failure;  // libjq refused it after all
        std::size_t runtime_errors = 0;
        bool error_logged_in_batch = false;
        bool native = false;  // decided over the Boost.JSON event
        jq_native::ReadRule read;

        bool compiled() const noexcept { return own_program != nullptr || in_combined || deferred; }
    };

    std::vector<FilterRule> rules;
    std::vector<CompiledRule> compiled;
    std::size_t compiled_count = 0;
    RuleCompilation compilation = RuleCompilation::indexed;
    FilterOptions options;
    std::shared_ptr<RuleQuarantine> quarantine;
    std::vector<DisabledRule> newly_disabled;
    // Started the first time libjq must run; null when isolation is off or it could not start.
    std::unique_ptr<RuleSandbox> sandbox;
    bool sandbox_unavailable = false;
    struct CombinedProgram {
        JqStatePtr state;
        std::size_t size = 0;
        std::vector<std::size_t> members;
    };
    // libjq 1.6 binds every definition over the rest of the program, so one
    // program's compile time grows with the square of its rules; programs of
    // kRulesPerProgram keep it near linear (600 eventName rules: 2.9 s CPU in
    // programs of 256, 1.3 s in programs of 48; 85 rules: the same either way).
    static constexpr std::size_t kRulesPerProgram = 48;
    std::vector<CombinedProgram> combined;
    struct DeferredGroup {
        std::vector<std::size_t> members;
        bool own_programs = false;  // each member alone (needs_own_program, per_rule)
    };
    std::vector<DeferredGroup> deferred_groups;
    // Which rules compiled when this stage was made (siblings leave the others out).
    std::vector<bool> compiled_at_load;
    // Some rule's matches are decided by libjq: the evaluator is started at the first batch.
    bool expects_libjq = false;
    std::unique_ptr<jq_native::RuleIndex> router;
    std::string batch_origin = "<no batch>";
    KeyCache event_keys;

    // Per-event scratch, kept to avoid allocating on every event.
    std::vector<std::uint64_t> candidate_bits;
    std::vector<std::size_t> needs_libjq;
    std::vector<std::vector<int>> selected_slots;
    std::vector<std::size_t> output_position;

    // A group between start_finish and complete_finish.
    struct Group {
        bool open = false;
        std::vector<const boost::json::object*> events;  // the caller's
        std::span<PendingEvaluation> pending;            // the caller's
        std::vector<std::size_t> asking;                 // positions with rules left for libjq
        bool sent = false;                               // to the evaluator thread
        // What the evaluator is given, ours: the caller may move its copies meanwhile.
        std::vector<std::shared_ptr<const std::string>> texts;
        std::vector<std::vector<std::size_t>> rules;
        std::vector<RuleSandbox::Job> jobs;
        std::vector<std::vector<LibjqOutcome>> results;
        std::optional<std::string> not_ready;  // the evaluator never got ready: why
    };
    Group group;
    // Declared after what its thread uses (sandbox, group), so it is stopped first.
    std::unique_ptr<EvaluatorRequests> requests;

    void record_runtime_error(std::size_t index, const std::string& message) {
        CompiledRule& rule = compiled[index];
        ++rule.runtime_errors;
        const auto level = rule.error_logged_in_batch ? spdlog::level::debug : spdlog::level::warn;
        rule.error_logged_in_batch = true;
        spdlog::log(level, "rule \"{}\": jq error on an event from {}: {}", rules[index].name,
                    batch_origin, truncated_for_log(message));
    }

    static LibjqOutcome matched(std::size_t index, std::optional<boost::json::value> annotation) {
        return LibjqOutcome{index, LibjqOutcome::Kind::match, std::move(annotation), {}};
    }
    static LibjqOutcome failed(std::size_t index, std::string message) {
        return LibjqOutcome{index, LibjqOutcome::Kind::error, std::nullopt, std::move(message)};
    }

    // Applies tattletail's rule to a program's first output.
    void decide(std::size_t index, OwnedJv first, const OwnedJv& event,
                std::vector<LibjqOutcome>& outcomes) {
        switch (first.kind()) {
            case JV_KIND_INVALID:
            case JV_KIND_NULL:
            case JV_KIND_FALSE:
                return;
            case JV_KIND_TRUE:
                outcomes.push_back(matched(index, std::nullopt));
                return;
            default:
                break;
        }
        if (first.kind() == JV_KIND_OBJECT && jv_equal(first.copy(), event.copy()) != 0) {
            outcomes.push_back(matched(index, std::nullopt));
            return;
        }
        try {
            outcomes.push_back(matched(index, jv_to_json(first.borrow(), 0)));
        } catch (const AnnotationTooDeep& error) {
            outcomes.push_back(failed(index, error.what()));
        }
    }

    void evaluate_own_program(std::size_t index, const OwnedJv& event,
                              std::vector<LibjqOutcome>& outcomes) {
        jq_state* state = compiled[index].own_program.get();
        jq_start(state, event.copy(), 0);
        OwnedJv first(jq_next(state));
        if (first.kind() == JV_KIND_INVALID) {
            if (jq_halted(state) != 0) {
                OwnedJv halt_message(jq_get_error_message(state));
                std::string message = "the program halted";
                if (halt_message.kind() != JV_KIND_INVALID) {
                    message += ": " + error_text(std::move(halt_message));
                }
                outcomes.push_back(failed(index, message));
            } else if (jv_invalid_has_msg(first.copy()) != 0) {
                outcomes.push_back(failed(index, error_text(OwnedJv(jv_invalid_get_msg(first.release())))));
            }
            return;  // without a message: no output at all
        }
        decide(index, std::move(first), event, outcomes);
    }

    // The combined program's array for the slots selected, or why there is none.
    // Each rule's errors are caught inside the program, so a failure here is
    // libjq's own (out of memory) and counts against every rule selected.
    // Programs that take [event, slots]; with every rule on every event they take the event.
    bool selecting() const noexcept { return compilation == RuleCompilation::indexed; }

    OwnedJv run_combined(std::size_t program, const OwnedJv& event, const std::vector<int>& slots,
                         std::vector<LibjqOutcome>& outcomes) {
        jq_state* state = combined[program].state.get();
        if (selecting()) {
            OwnedJv slot_list(jv_array_sized(jq_length(slots.size())));
            for (int slot : slots) {
                slot_list = OwnedJv(jv_array_append(slot_list.release(), jv_number(slot)));
            }
            OwnedJv input(
                jv_array_append(jv_array_append(jv_array_sized(2), event.copy()), slot_list.release()));
            jq_start(state, input.release(), 0);
        } else {
            jq_start(state, event.copy(), 0);  // every member, in slot order
        }
        OwnedJv outputs(jq_next(state));
        if (outputs.kind() == JV_KIND_ARRAY &&
            static_cast<std::size_t>(jv_array_length(outputs.copy())) == slots.size()) {
            return outputs;
        }
        std::string message = "the combined rule program produced no result";
        if (outputs.kind() == JV_KIND_INVALID && jv_invalid_has_msg(outputs.copy()) != 0) {
            message += ": " + error_text(OwnedJv(jv_invalid_get_msg(outputs.release())));
        }
        for (int slot : slots) {
            outcomes.push_back(failed(combined[program].members[static_cast<std::size_t>(slot)], message));
        }
        return OwnedJv(jv_invalid());
    }

    void decide_from_combined(std::size_t index, const OwnedJv& outputs, std::size_t position,
                              const OwnedJv& event, std::vector<LibjqOutcome>& outcomes) {
        if (outputs.kind() != JV_KIND_ARRAY) return;
        OwnedJv element(jv_array_get(outputs.copy(), jq_length(position)));
        if (element.kind() == JV_KIND_OBJECT) {
            OwnedJv message(jv_object_get(element.release(), jv_string("error")));
            // error(null) is no error to libjq's caller either: just no output.
            if (message.kind() != JV_KIND_NULL) outcomes.push_back(failed(index, error_text(std::move(message))));
            return;
        }
        if (jv_array_length(element.copy()) == 0) return;
        decide(index, OwnedJv(jv_array_get(element.release(), 0)), event, outcomes);
    }

    // Compiles the rules at candidates into one program. A rule that breaks the
    // whole is found by halving (a few compilations per broken rule, not one
    // per rule) and compiled alone, which gives exactly the message the
    // per-rule path gives. Returns the compile errors by rule index.
    std::vector<std::pair<std::size_t, std::string>> compile_combined(
        const std::vector<std::size_t>& candidates) {
        std::vector<std::pair<std::size_t, std::string>> errors;
        std::vector<std::size_t> accepted;
        if (CompileResult whole = compile_jq_program(combined_program_text(rules, candidates, selecting()));
            whole.program) {
            accepted = candidates;
            adopt_combined(std::move(whole.program), accepted);
            return errors;
        }
        sort_out(candidates, accepted, errors);
        if (accepted.empty()) return errors;
        CompileResult good = compile_jq_program(combined_program_text(rules, accepted, selecting()));
        if (good.program) {
            adopt_combined(std::move(good.program), accepted);
        } else {
            // Rules that compile alone but not together: give each its own program.
            for (std::size_t index : accepted) compile_own(index, errors);
        }
        return errors;
    }

    void sort_out(const std::vector<std::size_t>& candidates, std::vector<std::size_t>& accepted,
                  std::vector<std::pair<std::size_t, std::string>>& errors) {
        if (candidates.size() == 1) {
            CompileResult alone = compile_rule(rules[candidates.front()].jq_program);
            if (alone.program) {
                accepted.push_back(candidates.front());
            } else {
                errors.emplace_back(candidates.front(), std::move(alone.error));
            }
            return;
        }
        const auto middle = candidates.begin() + static_cast<std::ptrdiff_t>(candidates.size() / 2);
        for (std::vector<std::size_t> half : {std::vector<std::size_t>(candidates.begin(), middle),
                                              std::vector<std::size_t>(middle, candidates.end())}) {
            if (half.size() > 1 && compile_jq_program(combined_program_text(rules, half, selecting())).program) {
                accepted.insert(accepted.end(), half.begin(), half.end());
            } else {
                sort_out(half, accepted, errors);
            }
        }
    }

    void adopt_combined(JqStatePtr program, const std::vector<std::size_t>& members) {
        combined.push_back(CombinedProgram{std::move(program), members.size(), members});
        selected_slots.emplace_back();
        for (std::size_t slot = 0; slot < members.size(); ++slot) {
            compiled[members[slot]].in_combined = true;
            compiled[members[slot]].combined_program = combined.size() - 1;
            compiled[members[slot]].combined_slot = slot;
        }
    }

    void compile_own(std::size_t index, std::vector<std::pair<std::size_t, std::string>>& errors) {
        CompileResult result = compile_rule(rules[index].jq_program);
        if (result.program) {
            compiled[index].own_program = std::move(result.program);
        } else {
            errors.emplace_back(index, std::move(result.error));
        }
    }

    void compile_in_groups(const std::vector<std::size_t>& members,
                           std::vector<std::pair<std::size_t, std::string>>& errors) {
        for (std::size_t start = 0; start < members.size(); start += kRulesPerProgram) {
            const auto first = members.begin() + static_cast<std::ptrdiff_t>(start);
            const auto last = members.begin() +
                              static_cast<std::ptrdiff_t>(std::min(members.size(), start + kRulesPerProgram));
            auto group_errors = compile_combined(std::vector<std::size_t>(first, last));
            errors.insert(errors.end(), std::make_move_iterator(group_errors.begin()),
                          std::make_move_iterator(group_errors.end()));
        }
    }

    // The first time one of a deferred group's rules needs libjq.
    void compile_deferred(std::size_t group_index) {
        std::vector<std::size_t> members;
        members.swap(deferred_groups[group_index].members);
        std::vector<std::pair<std::size_t, std::string>> errors;
        if (deferred_groups[group_index].own_programs) {
            for (std::size_t index : members) compile_own(index, errors);
        } else {
            compile_combined(members).swap(errors);
        }
        for (std::size_t index : members) compiled[index].deferred = false;
        for (auto& [index, error] : errors) {
            spdlog::error("rule \"{}\": libjq refused a program the native reader accepted: {}",
                          rules[index].name, error);
            compiled[index].deferred_failure = "jq: " + error;
        }
    }

    PendingEvaluation evaluate_natively(const boost::json::object& event);
    void libjq_in_process(const boost::json::object& event, const std::vector<std::size_t>& rule_indices,
                          std::vector<LibjqOutcome>& outcomes);
    RuleSandbox* running_sandbox();
    void apply(std::vector<LibjqOutcome>& outcomes, PendingEvaluation& pending);
    // finish: open a group; ask the evaluator (here, or on the requests thread) or run
    // libjq in this process; take in the answers; close it.
    void start_finish(std::span<const LibjqEvent> events, std::span<PendingEvaluation> pending, bool wait_here);
    bool complete_finish();
    void run_group_in_process();
    void close_group();

    void set_up(std::vector<Diagnostic>& problems, const std::vector<bool>* compiled_in_first);
    void defer_in_groups(const std::vector<std::size_t>& members, bool own_programs);
    // The rule's matches need libjq: it is not native, or libjq computes the annotation of
    // its native condition.
    static bool libjq_decides(const CompiledRule& rule) {
        return !rule.native || (rule.read.form == jq_native::RuleForm::select_then_rest && !rule.read.annotation);
    }
};

PendingEvaluation FilterStage::Impl::evaluate_natively(const boost::json::object& event) {
    PendingEvaluation pending;
    const std::size_t words = (compiled.size() + 63) / 64;
    if (router) {
        router->candidates(event, candidate_bits);
    } else {
        candidate_bits.assign(words, ~std::uint64_t{0});
    }
    const bool some_disabled = quarantine->any_disabled();
    for (std::size_t word = 0; word < words; ++word) {
        std::uint64_t bits = candidate_bits[word];
        while (bits != 0) {
            const std::size_t index_in_word = static_cast<std::size_t>(__builtin_ctzll(bits));
            bits &= bits - 1;
            const std::size_t rule_index = word * 64 + index_in_word;
            if (rule_index >= compiled.size()) break;
            CompiledRule& rule = compiled[rule_index];
            if (!rule.compiled()) continue;
            if (some_disabled && quarantine->disabled(rule_index)) continue;
            if (rule.native) {
                std::optional<boost::json::value> annotation;
                switch (jq_native::decide(rule.read, event, annotation)) {
                    case jq_native::Verdict::no_match:
                        continue;
                    case jq_native::Verdict::match:
                        pending.matches.push_back(RuleMatch{rule_index, std::move(annotation)});
                        continue;
                    case jq_native::Verdict::ask_libjq:
                        break;
                }
            }
            pending.libjq_rules.push_back(rule_index);
        }
    }
    return pending;
}

void FilterStage::Impl::libjq_in_process(const boost::json::object& event,
                                         const std::vector<std::size_t>& rule_indices,
                                         std::vector<LibjqOutcome>& outcomes) {
    needs_libjq.clear();
    for (std::size_t rule_index : rule_indices) {
        if (rule_index < compiled.size() && compiled[rule_index].compiled()) needs_libjq.push_back(rule_index);
    }
    if (needs_libjq.empty()) return;
    // Built once and shared: every program gets a reference, not a conversion.
    const OwnedJv event_jv(JvBuilder(event_keys).object_to_jv(event));
    for (std::size_t rule_index : needs_libjq) {
        CompiledRule& rule = compiled[rule_index];
        if (rule.deferred) compile_deferred(rule.deferred_group);
    }
    for (auto& slots : selected_slots) slots.clear();
    output_position.assign(needs_libjq.size(), 0);
    for (std::size_t k = 0; k < needs_libjq.size(); ++k) {
        CompiledRule& rule = compiled[needs_libjq[k]];
        if (rule.in_combined) {
            auto& slots = selected_slots[rule.combined_program];
            output_position[k] = slots.size();
            slots.push_back(static_cast<int>(rule.combined_slot));
        }
    }
    std::vector<OwnedJv> outputs;
    outputs.reserve(combined.size());
    for (std::size_t program = 0; program < combined.size(); ++program) {
        outputs.emplace_back(selected_slots[program].empty()
                                 ? jv_invalid()
                                 : run_combined(program, event_jv, selected_slots[program], outcomes).release());
    }
    for (std::size_t k = 0; k < needs_libjq.size(); ++k) {
        const std::size_t rule_index = needs_libjq[k];
        CompiledRule& rule = compiled[rule_index];
        if (rule.deferred_failure) {
            outcomes.push_back(failed(rule_index, *rule.deferred_failure));
        } else if (rule.own_program) {
            evaluate_own_program(rule_index, event_jv, outcomes);
        } else if (rule.in_combined) {
            decide_from_combined(rule_index, outputs[rule.combined_program], output_position[k], event_jv,
                                 outcomes);
        }
    }
}

RuleSandbox* FilterStage::Impl::running_sandbox() {
    if (!options.isolation || sandbox_unavailable) return nullptr;
    if (sandbox) return sandbox.get();
    std::vector<FilterRule> sent = rules;
    // Rules that did not compile here are not compiled there either.
    for (std::size_t i = 0; i < sent.size(); ++i) {
        if (!compiled[i].compiled()) sent[i].jq_program.clear();
    }
    sandbox = start_rule_sandbox(std::move(sent), compilation, *options.isolation, "rules",
                                 EvaluatorStart::ready_at_first_run);
    sandbox_unavailable = sandbox == nullptr;
    return sandbox.get();
}

void FilterStage::Impl::apply(std::vector<LibjqOutcome>& outcomes, PendingEvaluation& pending) {
    for (auto& outcome : outcomes) {
        switch (outcome.kind) {
            case LibjqOutcome::Kind::no_match:
                break;
            case LibjqOutcome::Kind::match:
                pending.matches.push_back(RuleMatch{outcome.rule_index, std::move(outcome.annotation)});
                break;
            case LibjqOutcome::Kind::error:
                record_runtime_error(outcome.rule_index, outcome.message);
                break;
            case LibjqOutcome::Kind::stopped:
                ++compiled[outcome.rule_index].runtime_errors;
                if (quarantine->disable(outcome.rule_index, outcome.message)) {
                    spdlog::error("rule \"{}\" disabled: it {} (an event from {}); the other rules keep running. "
                                  "Fix the rule and reload",
                                  rules[outcome.rule_index].name, outcome.message, batch_origin);
                    newly_disabled.push_back(DisabledRule{outcome.rule_index, outcome.message, batch_origin, outcome.cause});
                }
                break;
        }
    }
}

void FilterStage::Impl::start_finish(std::span<const LibjqEvent> events, std::span<PendingEvaluation> pending,
                                     bool wait_here) {
    if (group.open) throw std::logic_error("FilterStage: a group is being finished already");
    if (events.size() != pending.size()) throw std::invalid_argument("FilterStage::finish: one event per evaluation");
    group.open = true;
    group.sent = false;
    group.not_ready.reset();
    group.results.clear();
    group.pending = pending;
    group.events.clear();
    group.asking.clear();
    try {
        for (std::size_t i = 0; i < pending.size(); ++i) {
            group.events.push_back(events[i].event);
            auto& rules_left = pending[i].libjq_rules;
            if (quarantine->any_disabled()) {
                std::erase_if(rules_left, [&](std::size_t rule) { return quarantine->disabled(rule); });
            }
            if (!rules_left.empty()) group.asking.push_back(i);
        }
        if (group.asking.empty()) return;
        RuleSandbox* evaluator = running_sandbox();
        if (evaluator == nullptr) {
            run_group_in_process();
            return;
        }
        group.texts.clear();
        group.rules.clear();
        group.jobs.clear();
        for (std::size_t i : group.asking) {
            // The evaluator parses what it is given: text that is JSON whatever the event held.
            group.texts.push_back(events[i].json ? events[i].json
                                                 : std::make_shared<const std::string>(event_json(*events[i].event)));
            group.rules.push_back(pending[i].libjq_rules);
        }
        for (std::size_t k = 0; k < group.asking.size(); ++k) {
            group.jobs.push_back(RuleSandbox::Job{group.texts[k].get(), &group.rules[k]});
        }
        if (wait_here) {
            try {
                group.results = evaluator->run(group.jobs);
            } catch (const RuleEvaluatorNotReady& e) {
                group.not_ready = e.what();
            }
            return;
        }
        if (!requests) requests = std::make_unique<EvaluatorRequests>();
        requests->submit(*evaluator, group.jobs);
        group.sent = true;
    } catch (...) {
        group.open = false;
        throw;
    }
}

void FilterStage::Impl::run_group_in_process() {
    std::vector<LibjqOutcome> outcomes;
    for (std::size_t i : group.asking) {
        outcomes.clear();
        libjq_in_process(*group.events[i], group.pending[i].libjq_rules, outcomes);
        apply(outcomes, group.pending[i]);
    }
    group.asking.clear();
}

bool FilterStage::Impl::complete_finish() {
    if (!group.open) return false;
    const std::size_t disabled_before = newly_disabled.size();
    try {
        if (group.sent) {
            group.sent = false;
            try {
                group.results = requests->wait();
            } catch (const RuleEvaluatorNotReady& e) {
                group.not_ready = e.what();
            }
        }
        if (group.not_ready) {
            log_rule_evaluator_unavailable(*group.not_ready, "rules");
            sandbox.reset();
            sandbox_unavailable = true;
            run_group_in_process();
        } else {
            for (std::size_t k = 0; k < group.results.size() && k < group.asking.size(); ++k) {
                apply(group.results[k], group.pending[group.asking[k]]);
            }
        }
    } catch (...) {
        group.open = false;
        throw;
    }
    close_group();
    return newly_disabled.size() > disabled_before;
}

void FilterStage::Impl::close_group() {
    for (auto& evaluation : group.pending) {
        evaluation.libjq_rules.clear();
        std::sort(evaluation.matches.begin(), evaluation.matches.end(),
                  [](const RuleMatch& a, const RuleMatch& b) { return a.rule_index < b.rule_index; });
    }
    group.open = false;
    group.pending = {};
    group.results.clear();
}

namespace {

RuleCompilation compilation_from_environment() {
    const char* chosen = std::getenv("TATTLE_RULE_COMPILATION");
    if (chosen == nullptr || *chosen == '\0') return RuleCompilation::indexed;
    const std::string_view name(chosen);
    if (name == "combined") return RuleCompilation::combined;
    if (name == "per_rule") return RuleCompilation::per_rule;
    if (name != "indexed") {
        spdlog::warn("TATTLE_RULE_COMPILATION={} is not indexed, combined or per_rule; using indexed",
                     name);
    }
    return RuleCompilation::indexed;
}

}  // namespace

const char* stop_cause_label(StopCause cause) noexcept {
    switch (cause) {
        case StopCause::cpu:
            return "cpu";
        case StopCause::memory:
            return "memory";
        case StopCause::crash:
            break;
    }
    return "crash";
}

FilterOptions filter_options(const InputLimits& limits) {
    FilterOptions options;
    options.compilation = compilation_from_environment();
    const char* isolation = std::getenv("TATTLE_RULE_ISOLATION");
    if (isolation != nullptr && std::string_view(isolation) == "none") return options;
    if (isolation != nullptr && *isolation != '\0' && std::string_view(isolation) != "process") {
        spdlog::warn("TATTLE_RULE_ISOLATION={} is not process or none; using process", isolation);
    }
    options.isolation = RuleBudget{std::chrono::milliseconds(limits.max_rule_cpu_ms), limits.max_rule_memory_bytes};
    return options;
}

FilterStage::FilterStage(std::vector<FilterRule> rules, std::vector<Diagnostic>& problems)
    : FilterStage(std::move(rules), problems, compilation_from_environment()) {}

FilterStage::FilterStage(std::vector<FilterRule> rules, std::vector<Diagnostic>& problems,
                         RuleCompilation compilation)
    : FilterStage(std::move(rules), problems, FilterOptions{compilation, std::nullopt}) {}

FilterStage::FilterStage(std::vector<FilterRule> rules, std::vector<Diagnostic>& problems, FilterOptions options)
    : impl_(std::make_unique<Impl>()) {
    impl_->rules = std::move(rules);
    impl_->options = options;
    impl_->set_up(problems, nullptr);
}

FilterStage::FilterStage(std::vector<FilterRule> rules, FilterOptions options, const std::vector<bool>& compiled_in_first)
    : impl_(std::make_unique<Impl>()) {
    impl_->rules = std::move(rules);
    impl_->options = options;
    std::vector<Diagnostic> same_problems_as_the_first;
    impl_->set_up(same_problems_as_the_first, &compiled_in_first);
}

void FilterStage::Impl::defer_in_groups(const std::vector<std::size_t>& members, bool own_programs) {
    for (std::size_t start = 0; start < members.size(); start += kRulesPerProgram) {
        const auto first = members.begin() + static_cast<std::ptrdiff_t>(start);
        const auto last =
            members.begin() + static_cast<std::ptrdiff_t>(std::min(members.size(), start + kRulesPerProgram));
        for (auto it = first; it != last; ++it) {
            compiled[*it].deferred = true;
            compiled[*it].deferred_group = deferred_groups.size();
        }
        deferred_groups.push_back(DeferredGroup{std::vector<std::size_t>(first, last), own_programs});
    }
}

void FilterStage::Impl::set_up(std::vector<Diagnostic>& problems, const std::vector<bool>* compiled_in_first) {
    compilation = options.compilation;
    compiled.resize(rules.size());
    quarantine = std::make_shared<RuleQuarantine>(rules.size());
    if (!rules.empty()) warn_about_home_jq_file();
    // A sibling whose libjq runs in the evaluator needs no programs of its own unless the
    // evaluator cannot start; the first stage compiled them, and found their errors.
    const bool compile_later = compiled_in_first != nullptr && options.isolation.has_value();

    // Problems are reported in rule order, whichever way a rule was compiled.
    std::vector<std::optional<std::string>> rule_problems(rules.size());
    std::vector<std::pair<std::size_t, std::string>> compile_errors;
    std::vector<std::size_t> combine;
    std::vector<std::size_t> defer;
    std::vector<std::size_t> own_later;
    for (std::size_t index = 0; index < rules.size(); ++index) {
        if (compiled_in_first != nullptr && !(index < compiled_in_first->size() && (*compiled_in_first)[index])) {
            continue;  // the first stage reported why
        }
        const FilterRule& rule = rules[index];
        // libjq reads the program as a C string: a NUL would hide the rest of it.
        if (rule.jq_program.find('\0') != std::string::npos) {
            rule_problems[index] = "the jq program contains a NUL character";
            continue;
        }
        if (SandboxScanner(rule.jq_program).only_blanks_and_comments()) {
            rule_problems[index] = "the jq program is empty";
            continue;
        }
        if (auto violation = sandbox_violation(rule.jq_program)) {
            rule_problems[index] = std::move(violation);
            continue;
        }
        auto& compiled_rule = compiled[index];
        if (compilation == RuleCompilation::indexed) {
            compiled_rule.read = jq_native::read_rule(rule.jq_program);
            compiled_rule.native = compiled_rule.read.native;
        }
        if (compilation == RuleCompilation::per_rule || needs_own_program(rule.jq_program)) {
            if (compile_later || compiled_rule.read.fully_read) {
                own_later.push_back(index);
            } else {
                compile_own(index, compile_errors);
            }
        } else if (compiled_rule.read.fully_read || compile_later) {
            defer.push_back(index);
        } else {
            combine.push_back(index);
        }
    }
    compile_in_groups(combine, compile_errors);
    defer_in_groups(defer, false);
    defer_in_groups(own_later, true);
    for (auto& [index, error] : compile_errors) rule_problems[index] = "jq: " + error;

    std::vector<std::optional<jq_native::IndexCondition>> conditions(rules.size());
    compiled_at_load.assign(rules.size(), false);
    for (std::size_t index = 0; index < rules.size(); ++index) {
        const FilterRule& rule = rules[index];
        if (rule_problems[index]) {
            problems.push_back({rule.where, "rule \"" + rule.name + "\": " + *rule_problems[index]});
        } else if (compiled[index].compiled()) {
            ++compiled_count;
            compiled_at_load[index] = true;
            conditions[index] = compiled[index].read.condition;
            if (libjq_decides(compiled[index])) expects_libjq = true;
        }
    }
    if (compilation == RuleCompilation::indexed) {
        router = std::make_unique<jq_native::RuleIndex>(conditions);
    }
}

FilterStage::~FilterStage() = default;
FilterStage::FilterStage(FilterStage&&) noexcept = default;
FilterStage& FilterStage::operator=(FilterStage&&) noexcept = default;

void FilterStage::begin_batch(std::string_view origin) {
    impl_->batch_origin = origin.empty() ? std::string("<unknown origin>") : std::string(origin);
    for (auto& rule : impl_->compiled) rule.error_logged_in_batch = false;
    // Started now, the evaluator compiles its programs while this batch is decoded.
    if (impl_->expects_libjq) impl_->running_sandbox();
}

std::vector<RuleMatch> FilterStage::evaluate(const boost::json::object& event) {
    if (impl_->compiled_count == 0) return {};
    PendingEvaluation pending = impl_->evaluate_natively(event);
    if (!pending.libjq_rules.empty()) {
        const LibjqEvent events[] = {{&event, nullptr}};
        impl_->start_finish(events, std::span(&pending, 1), true);
        impl_->complete_finish();
    }
    return std::move(pending.matches);
}

PendingEvaluation FilterStage::evaluate_natively(const boost::json::object& event) {
    if (impl_->compiled_count == 0) return {};
    return impl_->evaluate_natively(event);
}

void FilterStage::finish(std::span<const boost::json::object* const> events, std::span<PendingEvaluation> pending) {
    std::vector<LibjqEvent> group;
    group.reserve(events.size());
    for (const auto* event : events) group.push_back(LibjqEvent{event, nullptr});
    impl_->start_finish(group, pending, true);
    impl_->complete_finish();
}

void FilterStage::start_finish(std::span<const LibjqEvent> events, std::span<PendingEvaluation> pending) {
    impl_->start_finish(events, pending, false);
}

bool FilterStage::finish_ready() const noexcept {
    return !impl_->group.open || !impl_->group.sent || impl_->requests->answered();
}

bool FilterStage::complete_finish() { return impl_->complete_finish(); }

bool FilterStage::finishing() const noexcept { return impl_->group.open; }

std::vector<LibjqOutcome> FilterStage::run_libjq(const boost::json::object& event,
                                                 const std::vector<std::size_t>& rule_indices) {
    std::vector<LibjqOutcome> outcomes;
    impl_->libjq_in_process(event, rule_indices, outcomes);
    return outcomes;
}

std::unique_ptr<FilterStage> FilterStage::sibling() const {
    std::unique_ptr<FilterStage> copy(new FilterStage(impl_->rules, impl_->options, impl_->compiled_at_load));
    copy->impl_->quarantine = impl_->quarantine;
    return copy;
}

std::vector<DisabledRule> FilterStage::take_disabled() {
    std::vector<DisabledRule> taken;
    taken.swap(impl_->newly_disabled);
    return taken;
}

std::optional<std::string> FilterStage::disabled_reason(std::size_t rule_index) const {
    return impl_->quarantine->reason(rule_index);
}

const std::vector<FilterRule>& FilterStage::rules() const noexcept { return impl_->rules; }

bool FilterStage::compiled(std::size_t rule_index) const noexcept {
    return rule_index < impl_->compiled.size() && impl_->compiled[rule_index].compiled();
}

std::size_t FilterStage::runtime_errors(std::size_t rule_index) const noexcept {
    return rule_index < impl_->compiled.size() ? impl_->compiled[rule_index].runtime_errors : 0;
}

RuleExplanation FilterStage::explain(std::size_t rule_index) const {
    RuleExplanation explanation;
    if (rule_index >= impl_->compiled.size()) return explanation;
    const auto& rule = impl_->compiled[rule_index];
    if (impl_->compilation != RuleCompilation::indexed) {
        explanation.evaluation = "libjq (the index and native evaluation are off)";
        explanation.index = "every event (the index is off)";
        return explanation;
    }
    if (!rule.compiled()) {
        explanation.evaluation = "not compiled";
        explanation.index = "none";
        return explanation;
    }
    explanation.native = rule.native;
    if (rule.native) {
        explanation.evaluation = Impl::libjq_decides(rule)
                                     ? "native condition; libjq computes the annotation of a match"
                                     : "native";
    } else {
        explanation.evaluation = "libjq: " + rule.read.not_native_reason;
    }
    if (rule.read.condition) {
        explanation.indexed = true;
        explanation.index = rule.read.condition->text();
    } else {
        explanation.index = "every event: " + rule.read.not_indexed_reason;
    }
    return explanation;
}

}  // namespace tattle
