#include "jq_predicate.hpp"

#include "tattle/text_safety.hpp"

#include <oniguruma.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>

namespace tattle::jq_native {

// ---------------------------------------------------------------------------
// UTF-8: libjq replaces invalid sequences in event strings (which the decoder
// lets through) with U+FFFD, so a native answer on such a string could differ.

namespace {

// Event strings are nearly all ASCII: one OR over their words answers for them
// (the last word overlaps the one before it), inlined where it is asked.
inline bool is_ascii(std::string_view text) {
    const char* data = text.data();
    const std::size_t size = text.size();
    std::uint64_t high_bits = 0;
    if (size >= 8) {
        std::uint64_t word = 0;
        for (std::size_t i = 0; i + 8 < size; i += 8) {
            std::memcpy(&word, data + i, 8);
            high_bits |= word;
        }
        std::memcpy(&word, data + size - 8, 8);
        high_bits |= word;
    } else if (size >= 4) {
        std::uint32_t word = 0;
        std::memcpy(&word, data, 4);
        high_bits |= word;
        std::memcpy(&word, data + size - 4, 4);
        high_bits |= word;
    } else {
        for (std::size_t i = 0; i < size; ++i) high_bits |= static_cast<unsigned char>(data[i]);
    }
    return (high_bits & 0x8080808080808080ULL) == 0;
}

inline bool valid_utf8(std::string_view text) { return is_ascii(text) || is_valid_utf8(text); }

// The first and the last sizeof(Word) bytes of a and b (size at least that, at most
// twice that) are equal.
template <typename Word>
inline bool same_ends(const char* a, const char* b, std::size_t size) {
    Word x = 0;
    Word y = 0;
    std::memcpy(&x, a, sizeof x);
    std::memcpy(&y, b, sizeof y);
    if (x != y) return false;
    std::memcpy(&x, a + size - sizeof x, sizeof x);
    std::memcpy(&y, b + size - sizeof y, sizeof y);
    return x == y;
}

// Equal texts of the same size, compared a word at a time (the last word
// overlapping the one before it) rather than by a call to memcmp.
inline bool same_bytes(const char* a, const char* b, std::size_t size) {
    if (size > 16) return std::memcmp(a, b, size) == 0;
    if (size >= 8) return same_ends<std::uint64_t>(a, b, size);
    if (size >= 4) return same_ends<std::uint32_t>(a, b, size);
    for (std::size_t i = 0; i < size; ++i) {
        if (a[i] != b[i]) return false;
    }
    return true;
}

// object.if_contains(name) for the members rules ask about. Boost.JSON scans objects
// of up to 18 members through three calls and a memcmp per key of the name's size,
// and hashes the name to look in larger ones; up to 32 members (CloudTrail events'
// top level) this inlined scan costs fewer instructions than either. Keys are
// unique, so the first equal key is the one.
inline const boost::json::value* member(const boost::json::object& object, std::string_view name) {
    if (object.size() > 32) return object.if_contains(name);
    for (const auto& entry : object) {
        const auto key = entry.key();
        if (key.size() == name.size() && same_bytes(key.data(), name.data(), name.size())) return &entry.value();
    }
    return nullptr;
}

std::size_t codepoint_count(std::string_view text) {
    std::size_t count = 0;
    for (char c : text) {
        if ((static_cast<unsigned char>(c) & 0xC0U) != 0x80U) ++count;
    }
    return count;
}

void append_utf8(std::string& out, std::uint32_t codepoint) {
    if (codepoint < 0x80) {
        out += static_cast<char>(codepoint);
    } else if (codepoint < 0x800) {
        out += static_cast<char>(0xC0U | (codepoint >> 6U));
        out += static_cast<char>(0x80U | (codepoint & 0x3FU));
    } else {
        out += static_cast<char>(0xE0U | (codepoint >> 12U));
        out += static_cast<char>(0x80U | ((codepoint >> 6U) & 0x3FU));
        out += static_cast<char>(0x80U | (codepoint & 0x3FU));
    }
}

// ---------------------------------------------------------------------------
// test(): the regex library, syntax (Perl with named groups) and options jq
// 1.6's f_match uses.

class Regex {
public:
    static std::shared_ptr<Regex> compile(const std::string& pattern, const std::string& flags,
                                          std::string& error) {
        OnigOptionType options = ONIG_OPTION_CAPTURE_GROUP;
        for (char flag : flags) {
            switch (flag) {
                case 'g':
                    break;  // global: test stops at the first match anyway
                case 'i':
                    options |= ONIG_OPTION_IGNORECASE;
                    break;
                case 'x':
                    options |= ONIG_OPTION_EXTEND;
                    break;
                case 'n':
                    options |= ONIG_OPTION_FIND_NOT_EMPTY;
                    break;
                case 's':
                    options |= ONIG_OPTION_SINGLELINE;
                    break;
                case 'p':
                    options |= ONIG_OPTION_MULTILINE | ONIG_OPTION_SINGLELINE;
                    break;
                case 'l':
                    options |= ONIG_OPTION_FIND_LONGEST;
                    break;
                default:
                    error = "test() flags \"" + flags + "\" are not valid";
                    return nullptr;
            }
        }
        auto regex = std::shared_ptr<Regex>(new Regex());
        OnigErrorInfo info{};
        const auto* begin = reinterpret_cast<const OnigUChar*>(pattern.data());
        const int status = onig_new(&regex->compiled_, begin, begin + pattern.size(), options,
                                    ONIG_ENCODING_UTF8, ONIG_SYNTAX_PERL_NG, &info);
        if (status != ONIG_NORMAL) {
            regex->compiled_ = nullptr;
            error = "test() regex \"" + pattern + "\" does not compile";
            return nullptr;
        }
        // Most events are asked about an empty string (`(.errorCode // "") | test(...)`
        // on an event without an error): its answer is the same every time.
        regex->on_empty_ = regex->run(std::string_view());
        return regex;
    }

    ~Regex() {
        if (compiled_ != nullptr) onig_free(compiled_);
    }
    Regex(const Regex&) = delete;
    Regex& operator=(const Regex&) = delete;

    // nullopt when the library reports an error (jq then fails the rule).
    std::optional<bool> search(std::string_view text) const { return text.empty() ? on_empty_ : run(text); }

private:
    Regex() = default;

    std::optional<bool> run(std::string_view text) const {
        static constexpr OnigUChar kNothing[1] = {0};
        const auto* start = text.empty() ? kNothing : reinterpret_cast<const OnigUChar*>(text.data());
        const auto* end = start + text.size();
        const int status = onig_search(compiled_, start, end, start, end, nullptr, ONIG_OPTION_NONE);
        if (status >= 0) return true;
        if (status == ONIG_MISMATCH) return false;
        return std::nullopt;
    }

    OnigRegex compiled_ = nullptr;
    std::optional<bool> on_empty_;
};

}  // namespace

// ---------------------------------------------------------------------------
// The syntax tree.

enum class Op {
    identity,
    field,
    index,
    try_,
    literal,
    eq,
    ne,
    lt,
    le,
    gt,
    ge,
    and_,
    or_,
    alt,
    pipe,
    comma,
    not_,
    select,
    if_,
    empty,
    in_generator,  // IN(s): kids are s's outputs
    in_source,     // IN(src; s): kids are src's outputs, more are s's
    test,
    startswith,
    endswith,
    contains,
    tostring,
    ascii_downcase,
    ascii_upcase,
    length,
    has,
    type,
    split,          // split("literal separator")
    interpolation,  // "a\\(x)b": keys are the literal pieces, kids the interpolated expressions
    object,         // {key: value, ...}: keys and kids in the program's order
    variable,       // $name: index is how many bindings lie between it and its own
    bind,           // E as $name | BODY: kids are E and BODY
    iterate,        // .[] (optional: .[]?)
    collect,        // [E]
    any2,           // any(GENERATOR; CONDITION)
    unique,
    join,           // join("literal separator"): the kid is the literal
    fromjson,
    add,            // a + b
    opaque,  // something only libjq evaluates; reason says what
};

struct Node {
    Op op = Op::opaque;
    std::vector<NodePtr> kids;
    std::vector<NodePtr> more;
    std::string name;
    std::int64_t index = 0;
    boost::json::value literal;
    std::shared_ptr<Regex> regex;
    std::string reason;
    std::vector<std::string> keys;
    // .a? .[0]? .[]?: jq 1.6's optional steps suppress only their own error.
    bool optional = false;
    // May yield several outputs, or holds a try that catches later errors: evaluated
    // as a stream (generate), never as one value. Set once after reading.
    mutable bool stream = false;
};

namespace {

NodePtr make(Op op, std::vector<NodePtr> kids = {}) {
    auto node = std::make_shared<Node>();
    node->op = op;
    node->kids = std::move(kids);
    return node;
}

NodePtr make_literal(boost::json::value value) {
    auto node = std::make_shared<Node>();
    node->op = Op::literal;
    node->literal = std::move(value);
    return node;
}

NodePtr make_opaque(std::string reason, std::vector<NodePtr> kids = {}) {
    auto node = std::make_shared<Node>();
    node->op = Op::opaque;
    node->reason = std::move(reason);
    node->kids = std::move(kids);
    return node;
}

// ---------------------------------------------------------------------------
// Lexer: jq 1.6's tokens, enough to parse the subset and to skip the rest.

enum class Tok { end, dot, field, ident, string, number, punct, variable, format, recurse };

struct Token {
    Tok kind = Tok::end;
    std::string text;   // field name, identifier, operator, number text
    std::string value;  // a string literal's decoded value
    bool interpolated = false;
    std::size_t offset = 0;
    // An interpolated string: the literal text around each "\\(...)" (one more
    // than there are interpolations), and where each one's expression lies.
    std::vector<std::string> pieces;
    std::vector<std::pair<std::size_t, std::size_t>> interpolations;  // [begin, end) in the program
};

struct ReadFailure {
    std::string reason;
    std::size_t offset = 0;
};

bool is_ident_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_ident_char(char c) { return is_ident_start(c) || (c >= '0' && c <= '9'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

class Lexer {
public:
    explicit Lexer(std::string_view text, std::size_t start = 0) : text_(text), pos_(start) {}

    std::vector<Token> run() {
        std::vector<Token> tokens;
        for (;;) {
            skip_blanks();
            Token token;
            token.offset = pos_;
            if (pos_ >= text_.size()) {
                tokens.push_back(token);
                return tokens;
            }
            lex_one(token);
            tokens.push_back(std::move(token));
        }
    }

private:
    char at(std::size_t i) const { return i < text_.size() ? text_[i] : '\0'; }

    void skip_blanks() {
        while (pos_ < text_.size()) {
            const char c = text_[pos_];
            if (c == ' ' || c == '\t' || c == '\n') {
                ++pos_;
            } else if (c == '#') {
                while (pos_ < text_.size() && text_[pos_] != '\n') ++pos_;
            } else {
                return;
            }
        }
    }

    std::string read_ident() {
        const std::size_t start = pos_;
        for (;;) {
            while (is_ident_char(at(pos_))) ++pos_;
            if (at(pos_) == ':' && at(pos_ + 1) == ':' && is_ident_start(at(pos_ + 2))) {
                pos_ += 2;
                continue;
            }
            break;
        }
        return std::string(text_.substr(start, pos_ - start));
    }

    // After the opening quote; leaves pos_ after the closing one.
    void lex_string(Token& token) {
        for (;;) {
            if (pos_ >= text_.size()) throw ReadFailure{"an unterminated string", token.offset};
            const char c = text_[pos_++];
            if (c == '"') {
                if (token.interpolated) {
                    token.pieces.push_back(std::move(token.value));
                    token.value.clear();
                }
                return;
            }
            if (c != '\\') {
                token.value += c;
                continue;
            }
            const char escape = at(pos_++);
            switch (escape) {
                case '"':
                case '\\':
                case '/':
                    token.value += escape;
                    break;
                case 'b':
                    token.value += '\b';
                    break;
                case 'f':
                    token.value += '\f';
                    break;
                case 'n':
                    token.value += '\n';
                    break;
                case 'r':
                    token.value += '\r';
                    break;
                case 't':
                    token.value += '\t';
                    break;
                case 'u': {
                    std::uint32_t codepoint = 0;
                    for (int k = 0; k < 4; ++k) {
                        const int digit = hex_value(at(pos_++));
                        if (digit < 0) throw ReadFailure{"a \\u escape", token.offset};
                        codepoint = codepoint * 16 + static_cast<std::uint32_t>(digit);
                    }
                    if (codepoint >= 0xD800 && codepoint <= 0xDFFF) {
                        throw ReadFailure{"a surrogate \\u escape", token.offset};
                    }
                    append_utf8(token.value, codepoint);
                    break;
                }
                case '(': {
                    token.interpolated = true;
                    token.pieces.push_back(std::move(token.value));
                    token.value.clear();
                    const std::size_t begin = pos_;
                    skip_interpolation(token.offset);
                    token.interpolations.emplace_back(begin, pos_ - 1);
                    break;
                }
                default:
                    throw ReadFailure{"an unknown string escape", token.offset};
            }
        }
    }

    // After "\(": up to and past the matching ')'.
    void skip_interpolation(std::size_t where) {
        int depth = 1;
        while (depth > 0) {
            if (pos_ >= text_.size()) throw ReadFailure{"an unterminated interpolation", where};
            const char c = text_[pos_++];
            if (c == '(') {
                ++depth;
            } else if (c == ')') {
                --depth;
            } else if (c == '"') {
                Token inner;
                inner.offset = pos_ - 1;
                lex_string(inner);
            } else if (c == '#') {
                // A comment could hide a ')' from this count but not from jq's lexer.
                throw ReadFailure{"a comment inside an interpolation", where};
            }
        }
    }

    void lex_one(Token& token) {
        const char c = text_[pos_];
        if (c == '"') {
            ++pos_;
            token.kind = Tok::string;
            lex_string(token);
            return;
        }
        if (c == '.') {
            if (at(pos_ + 1) == '.') {
                pos_ += 2;
                token.kind = Tok::recurse;
                return;
            }
            if (is_ident_start(at(pos_ + 1))) {
                ++pos_;
                token.kind = Tok::field;
                const std::size_t start = pos_;
                while (is_ident_char(at(pos_))) ++pos_;
                token.text = std::string(text_.substr(start, pos_ - start));
                return;
            }
            if (is_digit(at(pos_ + 1))) throw ReadFailure{"a number starting with '.'", pos_};
            ++pos_;
            token.kind = Tok::dot;
            return;
        }
        if (is_digit(c)) {
            const std::size_t start = pos_;
            while (is_digit(at(pos_))) ++pos_;
            if (at(pos_) == '.') {
                ++pos_;
                if (!is_digit(at(pos_))) throw ReadFailure{"a number ending in '.'", start};
                while (is_digit(at(pos_))) ++pos_;
            }
            if (at(pos_) == 'e' || at(pos_) == 'E') {
                ++pos_;
                if (at(pos_) == '+' || at(pos_) == '-') ++pos_;
                if (!is_digit(at(pos_))) throw ReadFailure{"a number with an empty exponent", start};
                while (is_digit(at(pos_))) ++pos_;
            }
            if (at(pos_) == '.' || is_ident_start(at(pos_))) {
                throw ReadFailure{"a number followed by '.' or a name", start};
            }
            token.kind = Tok::number;
            token.text = std::string(text_.substr(start, pos_ - start));
            return;
        }
        if (is_ident_start(c)) {
            token.kind = Tok::ident;
            token.text = read_ident();
            return;
        }
        if (c == '$') {
            ++pos_;
            skip_blanks();
            if (!is_ident_start(at(pos_))) throw ReadFailure{"a '$' without a name", token.offset};
            token.kind = Tok::variable;
            token.text = read_ident();
            return;
        }
        if (c == '@') {
            ++pos_;
            token.kind = Tok::format;
            const std::size_t start = pos_;
            while (is_ident_char(at(pos_))) ++pos_;
            token.text = std::string(text_.substr(start, pos_ - start));
            return;
        }
        static constexpr std::string_view kLong[] = {"//=", "!=", "==", "//", "|=", "+=", "-=",
                                                    "*=", "/=", "%=", "<=", ">="};
        for (std::string_view op : kLong) {
            if (text_.substr(pos_, op.size()) == op) {
                pos_ += op.size();
                token.kind = Tok::punct;
                token.text = std::string(op);
                return;
            }
        }
        static constexpr std::string_view kShort = "[]{}()|,:;=<>+-*/%?";
        if (kShort.find(c) != std::string_view::npos) {
            ++pos_;
            token.kind = Tok::punct;
            token.text = std::string(1, c);
            return;
        }
        throw ReadFailure{std::string("the character '") + c + "'", pos_};
    }

    std::string_view text_;
    std::size_t pos_ = 0;
};

// ---------------------------------------------------------------------------
// Parser: jq 1.6's precedence (lowest first): '|', ',', '//', comparison-free
// 'or', 'and', comparisons (non-associative), '+' '-', '*' '/' '%', postfix.

bool is_keyword(std::string_view word) {
    static constexpr std::string_view kKeywords[] = {
        "def", "if", "then", "elif", "else", "end", "as", "reduce", "foreach", "try",
        "catch", "label", "import", "include", "and", "or", "__loc__"};
    return std::find(std::begin(kKeywords), std::end(kKeywords), word) != std::end(kKeywords);
}

// A name jq 1.6 takes after '$' in a binding: no keyword (its lexer makes those
// tokens of their own) and no module path.
bool plain_variable_name(std::string_view name) {
    return !is_keyword(name) && name.find("::") == std::string_view::npos;
}

struct Definition {
    std::string name;
    std::size_t arity = 0;
    NodePtr body;        // null: not read (reason says why)
    std::string reason;
};

class Parser {
public:
    Parser(std::string_view text, std::vector<Token> tokens)
        : text_(text), tokens_(std::move(tokens)) {}

    std::string where(std::size_t offset) const {
        std::size_t line = 1;
        std::size_t column = 1;
        for (std::size_t i = 0; i < offset && i < text_.size(); ++i) {
            if (text_[i] == '\n') {
                ++line;
                column = 1;
            } else {
                ++column;
            }
        }
        return "line " + std::to_string(line) + ", column " + std::to_string(column);
    }

    const Token& peek(std::size_t ahead = 0) const {
        return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)];
    }
    bool at_punct(std::string_view op, std::size_t ahead = 0) const {
        return peek(ahead).kind == Tok::punct && peek(ahead).text == op;
    }
    bool at_word(std::string_view word, std::size_t ahead = 0) const {
        return peek(ahead).kind == Tok::ident && peek(ahead).text == word;
    }
    bool at_end() const { return peek().kind == Tok::end; }
    std::size_t position() const { return pos_; }
    void rewind(std::size_t position) { pos_ = position; }
    const std::vector<Definition>& definitions() const { return defs_; }

    [[noreturn]] void fail(std::string what) const {
        throw ReadFailure{std::move(what), peek().offset};
    }
    void expect_punct(std::string_view op) {
        if (!at_punct(op)) fail("'" + std::string(op) + "' expected");
        ++pos_;
    }
    void expect_word(std::string_view word) {
        if (!at_word(word)) fail("'" + std::string(word) + "' expected");
        ++pos_;
    }

    // `def NAME: BODY;` and `def NAME(params): BODY;` before the program.
    void read_definitions() {
        while (at_word("def")) {
            const std::size_t def_offset = peek().offset;
            ++pos_;
            if (peek().kind != Tok::ident || is_keyword(peek().text)) fail("a definition's name expected");
            Definition definition;
            definition.name = peek().text;
            ++pos_;
            if (at_punct("(")) {
                std::size_t arity = 1;
                int depth = 0;
                for (;; ++pos_) {
                    if (at_end()) fail("an unterminated parameter list");
                    if (at_punct("(")) ++depth;
                    if (at_punct(")") && --depth == 0) break;
                    if (at_punct(";") && depth == 1) ++arity;
                }
                ++pos_;
                definition.arity = arity;
                definition.reason = "definition \"" + definition.name + "\" has parameters (at " +
                                    where(def_offset) + ")";
                expect_punct(":");
                skip_definition_body();
                defs_.push_back(std::move(definition));
                continue;
            }
            expect_punct(":");
            // The body sees itself (recursion, which is not read) and earlier definitions.
            Definition placeholder{definition.name, 0, nullptr,
                                   "definition \"" + definition.name + "\" is recursive"};
            defs_.push_back(placeholder);
            const std::size_t body_start = pos_;
            try {
                definition.body = parse_pipe();
                expect_punct(";");
            } catch (const ReadFailure& failure) {
                pos_ = body_start;
                skip_definition_body();
                definition.body = nullptr;
                definition.reason = "definition \"" + definition.name + "\": " + failure.reason +
                                    " at " + where(failure.offset);
            }
            defs_.back() = std::move(definition);
        }
    }

    NodePtr parse_pipe() {
        NodePtr left = parse_comma();
        if (at_punct("|")) {
            ++pos_;
            return make(Op::pipe, {left, parse_pipe()});
        }
        return left;
    }

private:
    // Past the ';' that ends the current definition (nested ones counted).
    void skip_definition_body() {
        int depth = 0;
        int open_definitions = 1;
        for (;; ++pos_) {
            if (at_end()) fail("an unterminated definition");
            const Token& token = peek();
            if (token.kind == Tok::punct) {
                if (token.text == "(" || token.text == "[" || token.text == "{") ++depth;
                if (token.text == ")" || token.text == "]" || token.text == "}") --depth;
                if (token.text == ";" && depth == 0 && --open_definitions == 0) {
                    ++pos_;
                    return;
                }
            } else if (token.kind == Tok::ident && token.text == "def" && depth == 0) {
                ++open_definitions;
            }
        }
    }

    NodePtr parse_comma() {
        NodePtr left = parse_alternative();
        while (at_punct(",")) {
            ++pos_;
            left = make(Op::comma, {left, parse_alternative()});
        }
        return left;
    }

    NodePtr parse_alternative() {
        NodePtr left = parse_or();
        if (at_punct("//")) {
            ++pos_;
            return make(Op::alt, {left, parse_alternative()});
        }
        for (std::string_view op : {"=", "|=", "+=", "-=", "*=", "/=", "%=", "//="}) {
            if (at_punct(op)) fail("an assignment");
        }
        return left;
    }

    NodePtr parse_or() {
        NodePtr left = parse_and();
        while (at_word("or")) {
            ++pos_;
            left = make(Op::or_, {left, parse_and()});
        }
        return left;
    }

    NodePtr parse_and() {
        NodePtr left = parse_comparison();
        while (at_word("and")) {
            ++pos_;
            left = make(Op::and_, {left, parse_comparison()});
        }
        return left;
    }

    std::optional<Op> comparison_op() const {
        if (peek().kind != Tok::punct) return std::nullopt;
        const std::string& text = peek().text;
        if (text == "==") return Op::eq;
        if (text == "!=") return Op::ne;
        if (text == "<") return Op::lt;
        if (text == "<=") return Op::le;
        if (text == ">") return Op::gt;
        if (text == ">=") return Op::ge;
        return std::nullopt;
    }

    NodePtr parse_comparison() {
        NodePtr left = parse_additive();
        if (auto op = comparison_op()) {
            ++pos_;
            NodePtr right = parse_additive();
            if (comparison_op()) fail("chained comparisons");
            return make(*op, {left, right});
        }
        return left;
    }

    NodePtr parse_additive() {
        NodePtr left = parse_multiplicative();
        while (at_punct("+") || at_punct("-")) {
            const std::string op = peek().text;
            const std::size_t offset = peek().offset;
            ++pos_;
            if (op == "+") {
                left = make(Op::add, {left, parse_multiplicative()});
                continue;
            }
            left = make_opaque("arithmetic '" + op + "' at " + where(offset),
                               {left, parse_multiplicative()});
        }
        return left;
    }

    NodePtr parse_multiplicative() {
        NodePtr left = parse_postfix();
        while (at_punct("*") || at_punct("/") || at_punct("%")) {
            const std::string op = peek().text;
            const std::size_t offset = peek().offset;
            ++pos_;
            left = make_opaque("arithmetic '" + op + "' at " + where(offset), {left, parse_postfix()});
        }
        return left;
    }

    NodePtr field_step(NodePtr base, std::string name) {
        auto node = std::make_shared<Node>();
        node->op = Op::field;
        node->kids = {std::move(base)};
        node->name = std::move(name);
        return node;
    }

    // A term and its suffixes; with allow_binding, `TERM as $name | BODY` too (the
    // body reaches as far right as it can, as in jq 1.6's grammar).
    NodePtr parse_postfix(bool allow_binding = true) {
        const bool negated = at_punct("-");
        // `.a`, `."a"`, `.[...]`: a step, which a '?' makes optional.
        bool after_step = peek().kind == Tok::field ||
                          (peek().kind == Tok::dot && ((peek(1).kind == Tok::string && !peek(1).interpolated) ||
                                                       at_punct("[", 1)));
        NodePtr term = parse_primary();
        for (;;) {
            if (peek().kind == Tok::field) {
                term = field_step(term, peek().text);
                ++pos_;
                after_step = true;
            } else if (peek().kind == Tok::dot) {
                if (peek(1).kind != Tok::string || peek(1).interpolated) fail("'.' after a term");
                term = field_step(term, peek(1).value);
                pos_ += 2;
                after_step = true;
            } else if (at_punct("[")) {
                term = parse_bracket_step(term);
                after_step = true;
            } else if (at_punct("?")) {
                ++pos_;
                if (after_step && term->op != Op::opaque) {
                    // `.a?`, `.[0]?`, `.[]?`: only the step's own error is suppressed.
                    auto optional = std::make_shared<Node>(*term);
                    optional->optional = true;
                    term = optional;
                    after_step = false;
                    continue;
                }
                // jq 1.6 reads this as `Exp '?'` (a try, which in 1.6 also catches
                // errors raised after its body's output): nothing may follow but more '?'.
                term = make(Op::try_, {term});
                while (at_punct("?")) {
                    ++pos_;
                    term = make(Op::try_, {term});
                }
                break;
            } else if (at_word("as") && allow_binding) {
                if (negated) fail("'-' before an 'as' binding");
                ++pos_;
                if (peek().kind != Tok::variable) fail("a destructuring 'as' pattern");
                std::string name = peek().text;
                if (!plain_variable_name(name)) fail("variable name $" + name);
                ++pos_;
                expect_punct("|");
                scope_.push_back(std::move(name));
                NodePtr body;
                try {
                    body = parse_pipe();
                } catch (...) {
                    scope_.pop_back();
                    throw;
                }
                scope_.pop_back();
                return make(Op::bind, {term, body});
            } else {
                break;
            }
        }
        return term;
    }

    NodePtr parse_bracket_step(NodePtr base) {
        const std::size_t offset = peek().offset;
        ++pos_;  // '['
        if (at_punct("]")) {
            ++pos_;
            return make(Op::iterate, {base});
        }
        NodePtr key = parse_pipe();
        if (at_punct(":")) fail("a slice");
        expect_punct("]");
        if (key->op == Op::literal && key->literal.is_string()) {
            return field_step(base, std::string(key->literal.get_string()));
        }
        if (key->op == Op::literal && key->literal.is_number()) {
            const double number = key->literal.to_number<double>();
            if (std::trunc(number) == number && std::fabs(number) < 1e9) {
                auto node = std::make_shared<Node>();
                node->op = Op::index;
                node->kids = {base};
                node->index = static_cast<std::int64_t>(number);
                return node;
            }
        }
        return make_opaque("a computed index at " + where(offset), {base, key});
    }

    static void flatten(const NodePtr& node, std::vector<NodePtr>& items) {
        if (node->op == Op::comma) {
            flatten(node->kids[0], items);
            flatten(node->kids[1], items);
        } else {
            items.push_back(node);
        }
    }

    NodePtr parse_if() {
        ++pos_;  // if
        NodePtr condition = parse_pipe();
        expect_word("then");
        NodePtr then_branch = parse_pipe();
        NodePtr else_branch;
        if (at_word("elif")) {
            else_branch = parse_if();  // consumes through the shared 'end'
            return make(Op::if_, {condition, then_branch, else_branch});
        }
        expect_word("else");
        else_branch = parse_pipe();
        expect_word("end");
        return make(Op::if_, {condition, then_branch, else_branch});
    }

    const Definition* find_definition(const std::string& name, std::size_t arity) const {
        for (auto it = defs_.rbegin(); it != defs_.rend(); ++it) {
            if (it->name == name && it->arity == arity) return &*it;
        }
        return nullptr;
    }

    NodePtr parse_call(const Token& name_token) {
        const std::string name = name_token.text;
        std::vector<NodePtr> args;
        if (at_punct("(")) {
            ++pos_;
            for (;;) {
                args.push_back(parse_pipe());
                if (at_punct(";")) {
                    ++pos_;
                    continue;
                }
                expect_punct(")");
                break;
            }
        }
        const std::string at = " at " + where(name_token.offset);
        if (args.empty()) {
            // jq 1.6 reads these three as constants, whatever is defined.
            if (name == "true") return make_literal(true);
            if (name == "false") return make_literal(false);
            if (name == "null") return make_literal(nullptr);
        }
        if (const Definition* definition = find_definition(name, args.size())) {
            if (definition->body) return definition->body;
            return make_opaque(definition->reason + ", used" + at, std::move(args));
        }
        const auto arity = args.size();
        auto simple = [&](Op op) { return make(op, std::move(args)); };
        if (arity == 0) {
            if (name == "empty") return simple(Op::empty);
            if (name == "not") return simple(Op::not_);
            if (name == "tostring") return simple(Op::tostring);
            if (name == "ascii_downcase") return simple(Op::ascii_downcase);
            if (name == "ascii_upcase") return simple(Op::ascii_upcase);
            if (name == "length") return simple(Op::length);
            if (name == "type") return simple(Op::type);
            if (name == "unique") return simple(Op::unique);
            if (name == "fromjson") return simple(Op::fromjson);
            // jq 1.6: def objects: select(type == "object"); and so on.
            static constexpr std::pair<std::string_view, std::string_view> kTypeSelectors[] = {
                {"objects", "object"}, {"arrays", "array"},     {"strings", "string"},
                {"numbers", "number"}, {"booleans", "boolean"}, {"nulls", "null"}};
            for (const auto& [selector, type_name] : kTypeSelectors) {
                if (name == selector) {
                    return make(Op::select,
                                {make(Op::eq, {make(Op::type), make_literal(boost::json::string(type_name))})});
                }
            }
            if (name == "values") {  // def values: select(. != null);
                return make(Op::select, {make(Op::ne, {make(Op::identity), make_literal(nullptr)})});
            }
            if (name == "last") {  // jq 1.6: def last: .[-1];
                auto node = std::make_shared<Node>();
                node->op = Op::index;
                node->kids = {make(Op::identity)};
                node->index = -1;
                return node;
            }
        } else if (arity == 1) {
            if (name == "select") return simple(Op::select);
            if (name == "startswith") return simple(Op::startswith);
            if (name == "endswith") return simple(Op::endswith);
            if (name == "contains") return simple(Op::contains);
            if (name == "has") return simple(Op::has);
            if (name == "split") {
                // A literal separator that is not empty: jq 1.6 splits "" by codepoints.
                if (args[0]->op == Op::literal && args[0]->literal.is_string() &&
                    !args[0]->literal.get_string().empty()) {
                    return simple(Op::split);
                }
                return make_opaque("split/1 with a separator that is not a non-empty string literal" + at,
                                   std::move(args));
            }
            if (name == "IN") {
                std::vector<NodePtr> items;
                flatten(args[0], items);
                return make(Op::in_generator, std::move(items));
            }
            if (name == "test") return make_test(args[0], nullptr, at);
            if (name == "join") {
                if (args[0]->op == Op::literal && args[0]->literal.is_string()) return simple(Op::join);
                return make_opaque("join/1 with a separator that is not a string literal" + at, std::move(args));
            }
        } else if (arity == 2) {
            if (name == "IN") {
                auto node = std::make_shared<Node>();
                node->op = Op::in_source;
                flatten(args[0], node->kids);
                flatten(args[1], node->more);
                return node;
            }
            if (name == "test") return make_test(args[0], args[1], at);
            if (name == "any") return simple(Op::any2);
        }
        return make_opaque("\"" + name + "/" + std::to_string(arity) + "\"" + at, std::move(args));
    }

    NodePtr make_test(const NodePtr& pattern, const NodePtr& flags, const std::string& at) {
        if (pattern->op != Op::literal || !pattern->literal.is_string()) {
            return make_opaque("test() with a regex that is not a string literal" + at);
        }
        std::string flag_text;
        if (flags) {
            if (flags->op == Op::literal && flags->literal.is_string()) {
                flag_text = std::string(flags->literal.get_string());
            } else if (!(flags->op == Op::literal && flags->literal.is_null())) {
                return make_opaque("test() with flags that are not a string literal" + at);
            }
        }
        std::string error;
        auto regex = Regex::compile(std::string(pattern->literal.get_string()), flag_text, error);
        if (!regex) return make_opaque(error + at);
        auto node = std::make_shared<Node>();
        node->op = Op::test;
        node->regex = std::move(regex);
        return node;
    }

    // The key of an object member: a plain string or a name (named), else ReadFailure:
    // computed and interpolated keys are left to libjq.
    std::string member_key(bool& named) {
        named = peek().kind == Tok::ident && !is_keyword(peek().text);
        std::string key;
        if (peek().kind == Tok::string && !peek().interpolated) {
            key = peek().value;
        } else if (named) {
            key = peek().text;
        } else {
            throw ReadFailure{};
        }
        ++pos_;
        return key;
    }

    // After an object member: ',' and another member, or the closing '}'.
    void end_of_member() {
        if (at_punct(",")) {
            ++pos_;
            if (at_punct("}")) throw ReadFailure{};
        } else if (!at_punct("}")) {
            throw ReadFailure{};
        }
    }

    // {"key": literal, name: literal, ...}; null (position unchanged) for any other object.
    NodePtr constant_object() {
        const std::size_t start = pos_;
        ++pos_;  // '{'
        boost::json::object object;
        try {
            while (!at_punct("}")) {
                bool named = false;
                const std::string key = member_key(named);
                expect_punct(":");
                NodePtr value = parse_postfix(false);
                if (value->op != Op::literal || !valid_utf8(key)) throw ReadFailure{};
                object[key] = value->literal;
                end_of_member();
            }
            ++pos_;
            return make_literal(std::move(object));
        } catch (const ReadFailure&) {
            pos_ = start;
            return nullptr;
        }
    }

    // {key: ExpD, name, ...} with literal keys, each once: what jq 1.6 reads as an
    // object construction whose values are terms or pipes of terms. null (position
    // unchanged) for anything else, which is left to libjq.
    NodePtr object_construction() {
        const std::size_t start = pos_;
        ++pos_;  // '{'
        auto node = std::make_shared<Node>();
        node->op = Op::object;
        try {
            while (!at_punct("}")) {
                bool named = false;
                std::string key = member_key(named);
                if (!valid_utf8(key) || std::find(node->keys.begin(), node->keys.end(), key) != node->keys.end()) {
                    throw ReadFailure{};
                }
                // jq 1.6 takes no 'if' here (and reads '-' ExpD its own way).
                auto term = [this] {
                    if (at_word("if") || at_punct("-")) throw ReadFailure{};
                    return parse_postfix(false);
                };
                NodePtr value;
                if (at_punct(":")) {
                    ++pos_;
                    value = term();
                    while (at_punct("|")) {
                        ++pos_;
                        value = make(Op::pipe, {value, term()});
                    }
                } else if (named && (at_punct(",") || at_punct("}"))) {
                    value = field_step(make(Op::identity), key);  // {name} is {name: .name}
                } else {
                    throw ReadFailure{};
                }
                node->keys.push_back(std::move(key));
                node->kids.push_back(std::move(value));
                end_of_member();
            }
            ++pos_;
            return node;
        } catch (const ReadFailure&) {
            pos_ = start;
            return nullptr;
        }
    }

    // "text \\(expression) text": each expression read as a program of its own.
    NodePtr interpolation(const Token& token) {
        auto node = std::make_shared<Node>();
        node->op = Op::interpolation;
        node->keys = token.pieces;
        for (const auto& [begin, end] : token.interpolations) {
            Parser inner(text_, Lexer(text_.substr(0, end), begin).run());
            inner.defs_ = defs_;
            inner.scope_ = scope_;
            NodePtr expression = inner.parse_pipe();
            if (!inner.at_end()) inner.fail("unexpected '" + inner.peek().text + "'");
            node->kids.push_back(std::move(expression));
        }
        return node;
    }

    // Skips a balanced {...}; returns its opening offset.
    std::size_t skip_braces() {
        const std::size_t offset = peek().offset;
        int depth = 0;
        for (;; ++pos_) {
            if (at_end()) fail("an unterminated '{'");
            if (at_punct("{")) ++depth;
            if (at_punct("}") && --depth == 0) {
                ++pos_;
                return offset;
            }
        }
    }

    NodePtr parse_primary() {
        const Token& token = peek();
        switch (token.kind) {
            case Tok::end:
                fail("an expression expected");
            case Tok::dot:
                if (peek(1).kind == Tok::string && !peek(1).interpolated) {
                    std::string name = peek(1).value;
                    pos_ += 2;
                    return field_step(make(Op::identity), std::move(name));
                }
                ++pos_;
                if (at_punct("[")) return parse_bracket_step(make(Op::identity));
                return make(Op::identity);
            case Tok::field: {
                std::string name = token.text;
                ++pos_;
                return field_step(make(Op::identity), std::move(name));
            }
            case Tok::recurse: {
                const std::size_t offset = token.offset;
                ++pos_;
                return make_opaque("recursion '..' at " + where(offset));
            }
            case Tok::variable: {
                const std::size_t offset = token.offset;
                const std::string name = token.text;
                if (!plain_variable_name(name) && name != "__loc__") fail("variable name $" + name);
                ++pos_;
                for (std::size_t i = scope_.size(); i-- > 0;) {
                    if (scope_[i] == name) {
                        auto node = std::make_shared<Node>();
                        node->op = Op::variable;
                        node->name = name;
                        node->index = static_cast<std::int64_t>(scope_.size() - 1 - i);
                        return node;
                    }
                }
                return make_opaque("variable $" + name + " (not bound by 'as' in the rule) at " + where(offset));
            }
            case Tok::format: {
                const std::size_t offset = token.offset;
                const std::string name = token.text;
                ++pos_;
                if (peek().kind == Tok::string) ++pos_;
                return make_opaque("format @" + name + " at " + where(offset));
            }
            case Tok::number: {
                const double number = std::strtod(token.text.c_str(), nullptr);
                ++pos_;
                return make_literal(number);
            }
            case Tok::string: {
                if (token.interpolated) {
                    const Token string_token = token;
                    ++pos_;
                    try {
                        return interpolation(string_token);
                    } catch (const ReadFailure& failure) {
                        return make_opaque("string interpolation (" + failure.reason + ") at " +
                                           where(string_token.offset));
                    }
                }
                if (!valid_utf8(token.value)) fail("a string that is not valid UTF-8");
                boost::json::value literal = boost::json::string(token.value);
                ++pos_;
                return make_literal(std::move(literal));
            }
            case Tok::ident: {
                if (token.text == "if") {
                    NodePtr result = parse_if();
                    if (peek().kind == Tok::field || peek().kind == Tok::dot || at_punct("[") ||
                        at_punct("?") || at_word("as")) {
                        fail("a suffix after 'end'");
                    }
                    return result;
                }
                if (is_keyword(token.text)) fail("'" + token.text + "'");
                const Token name_token = token;
                ++pos_;
                return parse_call(name_token);
            }
            case Tok::punct:
                break;
        }
        if (at_punct("(")) {
            ++pos_;
            NodePtr inner = parse_pipe();
            expect_punct(")");
            return inner;
        }
        if (at_punct("[")) {
            ++pos_;
            if (at_punct("]")) {
                ++pos_;
                return make_literal(boost::json::array());
            }
            NodePtr inner = parse_pipe();
            expect_punct("]");
            std::vector<NodePtr> items;
            flatten(inner, items);
            boost::json::array elements;
            for (const auto& item : items) {
                if (item->op != Op::literal) return make(Op::collect, {inner});
                elements.push_back(item->literal);
            }
            return make_literal(std::move(elements));
        }
        if (at_punct("{")) {
            if (auto constant = constant_object()) return constant;
            if (auto constructed = object_construction()) return constructed;
            const std::size_t offset = skip_braces();
            return make_opaque("object construction at " + where(offset));
        }
        if (at_punct("-") && peek(1).kind == Tok::number && !at_punct("*", 2) && !at_punct("/", 2) &&
            !at_punct("%", 2) && !(peek(2).kind == Tok::field) && !at_punct("[", 2) &&
            !at_punct("?", 2) && !(peek(2).kind == Tok::dot)) {
            const double number = -std::strtod(peek(1).text.c_str(), nullptr);
            pos_ += 2;
            return make_literal(number);
        }
        fail("'" + token.text + "'");
    }

    std::string_view text_;
    std::vector<Token> tokens_;
    std::size_t pos_ = 0;
    std::vector<Definition> defs_;
    std::vector<std::string> scope_;  // variables bound where the parser is, innermost last
};

// ---------------------------------------------------------------------------
// Static analysis.

// Sets Node::stream bottom-up; returns it.
bool mark_streams(const Node& node) {
    bool kid_streams = false;
    for (const auto& kid : node.kids) kid_streams = mark_streams(*kid) || kid_streams;
    for (const auto& kid : node.more) kid_streams = mark_streams(*kid) || kid_streams;
    switch (node.op) {
        case Op::comma:
        case Op::iterate:
        case Op::bind:
        case Op::try_:
            node.stream = true;
            break;
        case Op::collect:
        case Op::any2:
            node.stream = false;  // they consume their generators
            break;
        default:
            node.stream = kid_streams;
            break;
    }
    return node.stream;
}

// A try (jq 1.6's FORK_OPT) whose fork point could still be active when a
// consumer of node's outputs raises an error: jq 1.6 lets it catch that error.
bool holds_open_try(const Node& node) {
    if (node.op == Op::try_) return true;
    if (node.op == Op::collect || node.op == Op::any2) return false;
    for (const auto& kid : node.kids) {
        if (holds_open_try(*kid)) return true;
    }
    for (const auto& kid : node.more) {
        if (holds_open_try(*kid)) return true;
    }
    return false;
}

// How a reason names an operator or builtin that takes one value per operand.
std::string operand_text(Op op) {
    switch (op) {
        case Op::eq: return "'=='";
        case Op::ne: return "'!='";
        case Op::lt: return "'<'";
        case Op::le: return "'<='";
        case Op::gt: return "'>'";
        case Op::ge: return "'>='";
        case Op::add: return "'+'";
        case Op::in_generator:
        case Op::in_source: return "IN(...)";
        case Op::interpolation: return "a string interpolation";
        case Op::object: return "an object construction";
        case Op::startswith: return "startswith/1";
        case Op::endswith: return "endswith/1";
        case Op::contains: return "contains/1";
        case Op::has: return "has/1";
        default: return "a builtin";
    }
}

// What the evaluator cannot decide exactly in node (after mark_streams).
std::optional<std::string> unsupported(const Node& node) {
    if (node.op == Op::opaque) return node.reason;
    bool kids_may_stream = false;
    switch (node.op) {
        case Op::pipe:
        case Op::comma:
        case Op::iterate:
        case Op::field:
        case Op::index:
        case Op::try_:
        case Op::alt:
        case Op::select:
        case Op::if_:
        case Op::bind:
        case Op::and_:
        case Op::or_:
        case Op::collect:
            kids_may_stream = true;
            break;
        case Op::any2:
            if (node.kids[1]->stream) return std::string("any/2 with a condition that has several outputs");
            // any/2 stops its generator with `break`, which a try left open in it would catch.
            if (holds_open_try(*node.kids[0])) return std::string("any/2 over a generator holding a try");
            kids_may_stream = true;
            break;
        default:
            break;
    }
    for (const auto* list : {&node.kids, &node.more}) {
        for (const auto& kid : *list) {
            if (!kids_may_stream && kid->stream) {
                return "an operand of " + operand_text(node.op) +
                       " with several outputs (or a try or binding in it)";
            }
            if (auto reason = unsupported(*kid)) return reason;
        }
    }
    return std::nullopt;
}

// Whether evaluating node (on the event itself when at_root) could raise a jq error.
bool may_error(const Node& node, bool at_root) {
    switch (node.op) {
        case Op::identity:
        case Op::literal:
        case Op::empty:
        case Op::not_:
        case Op::type:
        case Op::try_:
            return false;
        case Op::tostring:
            return false;
        case Op::field:
            if (node.optional) return may_error(*node.kids[0], at_root);
            return !(at_root && node.kids[0]->op == Op::identity);
        case Op::pipe:
            return may_error(*node.kids[0], at_root) || may_error(*node.kids[1], false);
        case Op::eq:
        case Op::ne:
        case Op::lt:
        case Op::le:
        case Op::gt:
        case Op::ge:
        case Op::and_:
        case Op::or_:
        case Op::alt:
        case Op::select:
        case Op::if_:
        case Op::comma:
        case Op::in_generator:
        case Op::in_source: {
            for (const auto& kid : node.kids) {
                if (may_error(*kid, at_root)) return true;
            }
            for (const auto& kid : node.more) {
                if (may_error(*kid, at_root)) return true;
            }
            return false;
        }
        default:
            return true;
    }
}

std::optional<FieldPath> path_of(const Node& node) {
    switch (node.op) {
        case Op::identity:
            return FieldPath{};
        case Op::try_:
            return path_of(*node.kids[0]);
        case Op::field:
        case Op::index: {
            auto base = path_of(*node.kids[0]);
            if (!base) return std::nullopt;
            FieldPath::Step step;
            if (node.op == Op::field) {
                step.field = node.name;
            } else {
                step.is_index = true;
                step.index = node.index;
            }
            base->steps.push_back(std::move(step));
            return base;
        }
        default:
            return std::nullopt;
    }
}

const boost::json::value kNullValue;

bool is_scalar_literal(const Node& node) {
    return node.op == Op::literal && !node.literal.is_array() && !node.literal.is_object();
}

std::optional<IndexCondition> single_term(const Node& path_node, const std::vector<NodePtr>& values) {
    auto path = path_of(path_node);
    if (!path || path->steps.empty()) return std::nullopt;
    IndexCondition::Term term{std::move(*path), {}};
    for (const auto& value : values) {
        if (!is_scalar_literal(*value)) return std::nullopt;
        term.values.push_back(value->literal);
    }
    if (term.values.empty()) return std::nullopt;
    IndexCondition condition;
    condition.terms.push_back(std::move(term));
    return condition;
}

void flatten_and(const NodePtr& node, std::vector<NodePtr>& conjuncts) {
    if (node->op == Op::and_) {
        flatten_and(node->kids[0], conjuncts);
        flatten_and(node->kids[1], conjuncts);
    } else {
        conjuncts.push_back(node);
    }
}

IndexCondition not_null_condition(FieldPath path) {
    IndexCondition condition;
    condition.terms.push_back(IndexCondition::Term{std::move(path), {}, true});
    return condition;
}

bool uses_bindings(const Node& node) {
    if (node.op == Op::variable || node.op == Op::bind) return true;
    for (const auto* list : {&node.kids, &node.more}) {
        for (const auto& kid : *list) {
            if (uses_bindings(*kid)) return true;
        }
    }
    return false;
}

bool rejects_without_error(const Node& filter, const boost::json::value& input);

// PATH | REST or (PATH // LITERAL) | REST, where REST yields nothing truthy and raises
// no error when PATH is null: every match (and every error) needs PATH not null.
// REST sees only its input, so the evaluator decides that once, at load.
std::optional<IndexCondition> not_null_before(const Node& left, const Node& rest) {
    const Node* path_node = &left;
    const boost::json::value* input = &kNullValue;
    if (left.op == Op::alt && left.kids[1]->op == Op::literal) {
        path_node = left.kids[0].get();
        input = &left.kids[1]->literal;
    }
    auto path = path_of(*path_node);
    if (!path || path->steps.empty() || uses_bindings(rest) || unsupported(rest)) return std::nullopt;
    if (!rejects_without_error(rest, *input)) return std::nullopt;
    return not_null_condition(std::move(*path));
}

// A bare PATH, PATH // null or PATH // false: truthy only where PATH is.
std::optional<IndexCondition> truthy_path(const Node& node) {
    const Node* path_node = &node;
    if (node.op == Op::alt) {
        const Node& fallback = *node.kids[1];
        if (fallback.op != Op::literal || !(fallback.literal.is_null() || fallback.literal == false)) {
            return std::nullopt;
        }
        path_node = node.kids[0].get();
    }
    auto path = path_of(*path_node);
    if (!path || path->steps.empty()) return std::nullopt;
    return not_null_condition(std::move(*path));
}

bool has_not_null_term(const IndexCondition& condition) {
    return std::any_of(condition.terms.begin(), condition.terms.end(),
                       [](const IndexCondition::Term& term) { return term.not_null; });
}

bool names_event_name(const IndexCondition& condition) {
    return condition.terms.size() == 1 && condition.terms[0].path.steps.size() == 1 &&
           condition.terms[0].path.steps[0].field == "eventName";
}

std::size_t value_count(const IndexCondition& condition) {
    std::size_t count = 0;
    for (const auto& term : condition.terms) count += term.values.size();
    return count;
}

// A condition that holds for every event on which node (evaluated on the event)
// yields a truthy value or raises an error: on any other event it yields
// false, null or nothing, without error.
std::optional<IndexCondition> condition_of(const NodePtr& node, std::string& why) {
    switch (node->op) {
        case Op::eq: {
            const Node& left = *node->kids[0];
            const Node& right = *node->kids[1];
            if (is_scalar_literal(right)) {
                if (auto condition = single_term(left, {node->kids[1]})) return condition;
            }
            if (is_scalar_literal(left)) {
                if (auto condition = single_term(right, {node->kids[0]})) return condition;
            }
            why = "'==' between something other than a field path and a literal";
            return std::nullopt;
        }
        case Op::ne: {
            const Node& left = *node->kids[0];
            const Node& right = *node->kids[1];
            const Node* path_node = right.op == Op::literal && right.literal.is_null()   ? &left
                                    : left.op == Op::literal && left.literal.is_null() ? &right
                                                                                       : nullptr;
            if (path_node != nullptr) {
                if (auto path = path_of(*path_node); path && !path->steps.empty()) {
                    return not_null_condition(std::move(*path));
                }
            }
            why = "'!=' other than between a field path and null";
            return std::nullopt;
        }
        case Op::field:
        case Op::index:
        case Op::try_:
        case Op::alt:
            if (auto condition = truthy_path(*node)) return condition;
            why = node->op == Op::alt ? "an alternative ('//') other than 'PATH // null' or 'PATH // false'"
                                      : "no equality or IN condition on a field path";
            return std::nullopt;
        case Op::pipe: {
            const Node& right = *node->kids[1];
            if (right.op == Op::in_generator) {
                if (auto condition = single_term(*node->kids[0], right.kids)) return condition;
                why = "IN(...) of something other than literals after a field path";
                return std::nullopt;
            }
            if (node->kids[0]->op == Op::select) return condition_of(node->kids[0]->kids[0], why);
            if (auto condition = not_null_before(*node->kids[0], right)) return condition;
            why = "a pipe that is neither 'PATH | IN(literals)' nor one that is false when PATH is null";
            return std::nullopt;
        }
        case Op::in_source:
            if (node->kids.size() == 1) {
                if (auto condition = single_term(*node->kids[0], node->more)) return condition;
            }
            why = "IN(source; literals) of something other than a field path";
            return std::nullopt;
        case Op::select:
            return condition_of(node->kids[0], why);
        case Op::if_:
            if (node->kids[2]->op == Op::empty) return condition_of(node->kids[0], why);
            why = "an if whose else is not empty";
            return std::nullopt;
        case Op::and_: {
            std::vector<NodePtr> conjuncts;
            flatten_and(node, conjuncts);
            std::optional<IndexCondition> best;
            std::string first_why;
            for (const auto& conjunct : conjuncts) {
                std::string conjunct_why;
                if (auto condition = condition_of(conjunct, conjunct_why)) {
                    // Values route more narrowly than "not null".
                    const auto rank = [](const IndexCondition& c) {
                        return std::make_tuple(has_not_null_term(c) ? 1 : 0, c.terms.size(),
                                               names_event_name(c) ? 0 : 1, value_count(c));
                    };
                    if (!best || rank(*condition) < rank(*best)) best = std::move(condition);
                } else if (first_why.empty()) {
                    first_why = conjunct_why;
                }
                // A later condition is only required if nothing before it can fail.
                if (may_error(*conjunct, true)) break;
            }
            if (best) return best;
            why = first_why.empty() ? "no 'and' term has an equality condition" : first_why;
            return std::nullopt;
        }
        case Op::or_: {
            auto left = condition_of(node->kids[0], why);
            if (!left) return std::nullopt;
            auto right = condition_of(node->kids[1], why);
            if (!right) return std::nullopt;
            for (auto& term : right->terms) {
                auto same = std::find_if(left->terms.begin(), left->terms.end(),
                                         [&](const IndexCondition::Term& t) { return t.path == term.path; });
                if (same == left->terms.end()) {
                    left->terms.push_back(std::move(term));
                } else if (same->not_null || term.not_null) {
                    same->not_null = true;  // takes in every value
                    same->values.clear();
                } else {
                    same->values.insert(same->values.end(), term.values.begin(), term.values.end());
                }
            }
            return left;
        }
        case Op::opaque:
            why = node->reason;
            return std::nullopt;
        default:
            why = "no equality or IN condition on a field path";
            return std::nullopt;
    }
}

// ---------------------------------------------------------------------------
// Values during evaluation: borrowed from the event or the program, or made.

const boost::json::value kTrueValue(true);
const boost::json::value kFalseValue(false);

struct Val {
    const boost::json::value* ref = nullptr;
    const boost::json::object* root = nullptr;  // the event itself
    // Only values made during evaluation: most refer to the event or to literals, and an
    // empty optional is passed around and destroyed without calls into Boost.JSON.
    std::optional<boost::json::value> owned;

    static Val of(const boost::json::value& value) {
        Val val;
        val.ref = &value;
        return val;
    }
    static Val make(boost::json::value value) {
        Val val;
        val.owned.emplace(std::move(value));
        return val;
    }
    const boost::json::value& value() const {
        if (ref != nullptr) return *ref;
        return owned ? *owned : kNullValue;
    }
    bool is_root() const { return root != nullptr; }
};

// The events and literals a view can look at: a value or the root object.
struct View {
    const boost::json::value* value = nullptr;
    const boost::json::object* object = nullptr;

    explicit View(const Val& val) {
        if (val.root != nullptr) {
            object = val.root;
        } else {
            value = &val.value();
            if (value->is_object()) object = &value->get_object();
        }
    }
    explicit View(const boost::json::value& v) : value(&v) {
        if (v.is_object()) object = &v.get_object();
    }
    // jq's kind order: null < false < true < numbers < strings < arrays < objects.
    int rank() const {
        if (object != nullptr) return 7;
        switch (value->kind()) {
            case boost::json::kind::null:
                return 1;
            case boost::json::kind::bool_:
                return value->get_bool() ? 3 : 2;
            case boost::json::kind::int64:
            case boost::json::kind::uint64:
            case boost::json::kind::double_:
                return 4;
            case boost::json::kind::string:
                return 5;
            case boost::json::kind::array:
                return 6;
            case boost::json::kind::object:
                return 7;
        }
        return 1;
    }
    double number() const { return value->to_number<double>(); }
    std::string_view string() const { return value->get_string(); }
};

bool truthy(const Val& val) {
    if (val.root != nullptr) return true;
    const auto& value = val.value();
    return !(value.is_null() || (value.is_bool() && !value.get_bool()));
}

std::optional<int> compare(const View& a, const View& b);

std::optional<bool> equal(const View& a, const View& b) {
    const int rank_a = a.rank();
    if (rank_a != b.rank()) return false;
    if (rank_a == 7) {
        if (a.object->size() != b.object->size()) return false;
        for (const auto& member : *a.object) {
            if (!valid_utf8(member.key())) return std::nullopt;
            const auto* other = b.object->if_contains(member.key());
            if (other == nullptr) return false;
            auto same = equal(View(member.value()), View(*other));
            if (!same || !*same) return same;
        }
        return true;
    }
    auto order = compare(a, b);
    if (!order) return std::nullopt;
    return *order == 0;
}

std::optional<int> compare(const View& a, const View& b) {
    const int rank_a = a.rank();
    const int rank_b = b.rank();
    if (rank_a != rank_b) return rank_a < rank_b ? -1 : 1;
    switch (rank_a) {
        case 4: {
            const double x = a.number();
            const double y = b.number();
            return x < y ? -1 : (x == y ? 0 : 1);
        }
        case 5: {
            const std::string_view x = a.string();
            const std::string_view y = b.string();
            if (!valid_utf8(x) || !valid_utf8(y)) return std::nullopt;
            const std::size_t common = std::min(x.size(), y.size());
            const int r = common == 0 ? 0 : std::memcmp(x.data(), y.data(), common);
            if (r != 0) return r < 0 ? -1 : 1;
            return x.size() < y.size() ? -1 : (x.size() == y.size() ? 0 : 1);
        }
        case 6: {
            const auto& x = a.value->get_array();
            const auto& y = b.value->get_array();
            for (std::size_t i = 0;; ++i) {
                const bool x_done = i >= x.size();
                const bool y_done = i >= y.size();
                if (x_done || y_done) return x_done == y_done ? 0 : (x_done ? -1 : 1);
                auto r = compare(View(x[i]), View(y[i]));
                if (!r || *r != 0) return r;
            }
        }
        case 7:
            return std::nullopt;  // jq orders objects by sorted keys; not modelled
        default:
            return 0;  // null, false, true
    }
}

// jq 1.6's jv_contains; nullopt where it is not modelled (strings with NUL,
// which jq cuts at the NUL, or not valid UTF-8).
std::optional<bool> contains(const View& a, const View& b) {
    const int rank_a = a.rank();
    if (rank_a != b.rank()) return false;
    if (rank_a == 7) {
        for (const auto& member : *b.object) {
            if (!valid_utf8(member.key())) return std::nullopt;
            const auto* mine = a.object->if_contains(member.key());
            if (mine == nullptr) return false;
            auto inner = contains(View(*mine), View(member.value()));
            if (!inner || !*inner) return inner;
        }
        return true;
    }
    if (rank_a == 6) {
        for (const auto& wanted : b.value->get_array()) {
            bool found = false;
            for (const auto& element : a.value->get_array()) {
                auto inner = contains(View(element), View(wanted));
                if (!inner) return std::nullopt;
                if (*inner) {
                    found = true;
                    break;
                }
            }
            if (!found) return false;
        }
        return true;
    }
    if (rank_a == 5) {
        const std::string_view x = a.string();
        const std::string_view y = b.string();
        if (!valid_utf8(x) || !valid_utf8(y)) return std::nullopt;
        if (x.find('\0') != std::string_view::npos || y.find('\0') != std::string_view::npos) {
            return std::nullopt;
        }
        return x.find(y) != std::string_view::npos;
    }
    return equal(a, b);
}

enum class Status : std::uint8_t { value, empty, error, unknown };

struct Result {
    Status status = Status::unknown;
    Val val;

    static Result of(Val v) { return Result{Status::value, std::move(v)}; }
    // Most results are booleans: they refer to constants rather than own a value.
    static Result boolean(bool b) { return of(Val::of(b ? kTrueValue : kFalseValue)); }
    static Result none() { return Result{Status::empty, {}}; }
    static Result error() { return Result{Status::error, {}}; }
    static Result unknown() { return Result{Status::unknown, {}}; }
    bool ok() const { return status == Status::value; }
};

Val copy_of(const Val& input) {
    Val copy;
    copy.ref = input.ref;
    copy.root = input.root;
    if (input.ref == nullptr && input.root == nullptr) copy.owned = input.owned;
    return copy;
}

Result evaluate(const Node& node, const Val& input);

// How a stream of outputs went, or what its consumer answered about one output:
// go on (the stream ended normally), stop (any/2's break: the consumer wants no
// more), an error (raised by the stream or, in jq 1.6's order, by a consumer
// downstream), not modelled, or first_taken: the rule's first output was taken
// and nothing after it runs (libjq runs a rule holding a try in a program of its
// own and asks it for one output: filter.cpp, needs_own_program).
enum class Flow : std::uint8_t { more, stop, error, unknown, first_taken };

// Where a stream's outputs go: a reference to a callable taking Val&& and
// returning Flow, without std::function's allocation.
class Sink {
public:
    template <class F>
        requires(!std::is_same_v<std::remove_cvref_t<F>, Sink>)
    explicit Sink(F& consumer)
        : consumer_(&consumer), call_([](void* c, Val&& v) { return (*static_cast<F*>(c))(std::move(v)); }) {}
    Flow operator()(Val&& value) const { return call_(consumer_, std::move(value)); }

private:
    void* consumer_;
    Flow (*call_)(void*, Val&&);
};

// Runs node on input and hands each output to sink, in jq's order; the Flow says
// how the stream ended (more: normally).
Flow generate(const Node& node, const Val& input, const Sink& sink);

// The values bound by `as` around what is being evaluated, innermost last. The
// evaluator runs in several threads at once, each with its own bindings.
thread_local std::vector<const Val*> t_bound;

class Binding {
public:
    explicit Binding(const Val& value) { t_bound.push_back(&value); }
    ~Binding() { t_bound.pop_back(); }
    Binding(const Binding&) = delete;
    Binding& operator=(const Binding&) = delete;
};

// Takes a binding off while what follows its body runs; puts it back after.
class OutOfScope {
public:
    explicit OutOfScope(const Val& value) : value_(&value) {}
    ~OutOfScope() { t_bound.push_back(value_); }
    OutOfScope(const OutOfScope&) = delete;
    OutOfScope& operator=(const OutOfScope&) = delete;

private:
    const Val* value_;
};

Flow flow_of(Status status) {
    switch (status) {
        case Status::empty:
        case Status::value:
            return Flow::more;
        case Status::error:
            return Flow::error;
        case Status::unknown:
            break;
    }
    return Flow::unknown;
}

Result result_of(Flow flow) {
    return flow == Flow::error ? Result::error() : Result::unknown();
}

Result index_field(const Val& base, const std::string& name) {
    if (base.root != nullptr) {
        const auto* found = member(*base.root, name);
        return Result::of(Val::of(found != nullptr ? *found : kNullValue));
    }
    const auto& value = base.value();
    if (value.is_null()) return Result::of(Val::of(kNullValue));
    if (!value.is_object()) return Result::error();
    const auto* found = member(value.get_object(), name);
    if (found == nullptr) return Result::of(Val::of(kNullValue));
    // A value made during evaluation dies with base: its part is copied out.
    return Result::of(base.ref == nullptr ? Val::make(*found) : Val::of(*found));
}

Result index_array(const Val& base, std::int64_t index) {
    if (base.root != nullptr) return Result::error();
    const auto& value = base.value();
    if (value.is_null()) return Result::of(Val::of(kNullValue));
    if (!value.is_array()) return Result::error();
    const auto& array = value.get_array();
    std::int64_t position = index;
    if (position < 0) position += static_cast<std::int64_t>(array.size());
    if (position < 0 || static_cast<std::size_t>(position) >= array.size()) {
        return Result::of(Val::of(kNullValue));
    }
    const auto& element = array[static_cast<std::size_t>(position)];
    return Result::of(base.ref == nullptr ? Val::make(element) : Val::of(element));
}

// The operands of a binary operator, each with one output. jq evaluates the right one
// first; both are evaluated unless one is empty. What the operator gives when either
// does not have a value; nullopt when both have.
std::optional<Result> operands(const Node& node, const Val& input, Result& left, Result& right) {
    right = evaluate(*node.kids[1], input);
    left = evaluate(*node.kids[0], input);
    if (right.status == Status::unknown || left.status == Status::unknown) return Result::unknown();
    if (right.status == Status::error || left.status == Status::error) return Result::error();
    if (right.status == Status::empty || left.status == Status::empty) return Result::none();
    return std::nullopt;
}

Result compare_op(const Node& node, const Val& input) {
    Result left;
    Result right;
    if (auto without_values = operands(node, input, left, right)) return std::move(*without_values);
    const View a(left.val);
    const View b(right.val);
    if (node.op == Op::eq || node.op == Op::ne) {
        auto same = equal(a, b);
        if (!same) return Result::unknown();
        return Result::boolean(node.op == Op::eq ? *same : !*same);
    }
    auto order = compare(a, b);
    if (!order) return Result::unknown();
    switch (node.op) {
        case Op::lt:
            return Result::boolean(*order < 0);
        case Op::le:
            return Result::boolean(*order <= 0);
        case Op::gt:
            return Result::boolean(*order > 0);
        default:
            return Result::boolean(*order >= 0);
    }
}

// IN: true at the first item equal to the value; any item that fails or is not
// modelled makes the answer libjq's (jq may stop before reaching it).
Result in_items(const std::vector<NodePtr>& items, const Val& input, const View& wanted) {
    for (const auto& item : items) {
        Result r = evaluate(*item, input);
        if (r.status == Status::empty) continue;
        if (!r.ok()) return Result::unknown();
        auto same = equal(View(r.val), wanted);
        if (!same) return Result::unknown();
        if (*same) return Result::boolean(true);
    }
    return Result::boolean(false);
}

bool string_input(const Val& input, std::string_view& text) {
    if (input.root != nullptr || !input.value().is_string()) return false;
    text = input.value().get_string();
    return true;
}

std::string integer_text(double number) {
    return std::to_string(static_cast<std::int64_t>(number));
}

// jq 1.6's tostring of a scalar, where its text is certain: strings as they are,
// integers below 1e15 in digits (-0 is "-0" in jq), null and booleans by name.
// false for the rest (other numbers, arrays, objects, invalid UTF-8).
bool tostring_text(const Val& val, std::string& out) {
    if (val.root != nullptr) return false;
    const auto& value = val.value();
    switch (value.kind()) {
        case boost::json::kind::null:
            out += "null";
            return true;
        case boost::json::kind::bool_:
            out += value.get_bool() ? "true" : "false";
            return true;
        case boost::json::kind::string: {
            const auto& text = value.get_string();
            if (!valid_utf8(text)) return false;
            out.append(text.data(), text.size());
            return true;
        }
        case boost::json::kind::int64:
        case boost::json::kind::uint64:
        case boost::json::kind::double_: {
            const double number = value.to_number<double>();
            if (std::trunc(number) != number || std::fabs(number) >= 1e15 || (number == 0 && std::signbit(number))) {
                return false;
            }
            out += integer_text(number);
            return true;
        }
        default:
            return false;
    }
}

// Deeper than this, libjq's conversion of an annotation fails (kMaxAnnotationDepth
// in filter.cpp): such values are left to libjq.
constexpr int kMaxNativeDepth = 200;

// A number as a jq 1.6 number comes back out of libjq: a double, written as an
// integer when it is one that fits.
std::optional<boost::json::value> jq_number(double number) {
    if (!std::isfinite(number)) return std::nullopt;
    constexpr double two_to_63 = 9223372036854775808.0;
    if (std::trunc(number) == number && number >= -two_to_63 && number < two_to_63) {
        return boost::json::value(static_cast<std::int64_t>(number));
    }
    return boost::json::value(number);
}

std::optional<boost::json::value> as_jq_returns(const boost::json::object& object, int depth);

// value as libjq gives it back after a round trip (numbers as doubles, key order
// kept), or nullopt where that is not certain (invalid UTF-8, very deep nesting).
std::optional<boost::json::value> as_jq_returns(const boost::json::value& value, int depth) {
    if (depth > kMaxNativeDepth) return std::nullopt;
    switch (value.kind()) {
        case boost::json::kind::null:
            return boost::json::value(nullptr);
        case boost::json::kind::bool_:
            return boost::json::value(value.get_bool());
        case boost::json::kind::int64:
        case boost::json::kind::uint64:
        case boost::json::kind::double_:
            return jq_number(value.to_number<double>());
        case boost::json::kind::string: {
            const auto& text = value.get_string();
            if (!valid_utf8(text)) return std::nullopt;
            return boost::json::value(boost::json::string_view(text));
        }
        case boost::json::kind::array: {
            boost::json::array result;
            result.reserve(value.get_array().size());
            for (const auto& element : value.get_array()) {
                auto converted = as_jq_returns(element, depth + 1);
                if (!converted) return std::nullopt;
                result.push_back(std::move(*converted));
            }
            return boost::json::value(std::move(result));
        }
        case boost::json::kind::object:
            return as_jq_returns(value.get_object(), depth);
    }
    return std::nullopt;
}

std::optional<boost::json::value> as_jq_returns(const boost::json::object& object, int depth) {
    if (depth > kMaxNativeDepth) return std::nullopt;
    boost::json::object result;
    result.reserve(object.size());
    for (const auto& member : object) {
        if (!valid_utf8(member.key())) return std::nullopt;
        auto converted = as_jq_returns(member.value(), depth + 1);
        if (!converted) return std::nullopt;
        result.emplace(member.key(), std::move(*converted));
    }
    return boost::json::value(std::move(result));
}

std::optional<boost::json::value> as_jq_returns(const Val& val) {
    if (val.root != nullptr) return as_jq_returns(*val.root, 0);
    return as_jq_returns(val.value(), 0);
}

// val without a copy, for consumers done with it before val goes.
Val borrowed(const Val& val) {
    Val view;
    if (val.root != nullptr) {
        view.root = val.root;
    } else {
        view.ref = &val.value();
    }
    return view;
}

// The value of val to keep beyond the evaluation that made it.
boost::json::value owned_value(const Val& val) {
    if (val.root != nullptr) return boost::json::value(*val.root);
    return val.value();
}

// Members and integer-only numbers of a parsed value; false at any other number
// (jq keeps doubles, which Boost.JSON may read differently).
bool count_members(const boost::json::value& value, std::size_t& members) {
    switch (value.kind()) {
        case boost::json::kind::double_:
            return false;
        case boost::json::kind::array:
            for (const auto& element : value.get_array()) {
                if (!count_members(element, members)) return false;
            }
            return true;
        case boost::json::kind::object:
            members += value.get_object().size();
            for (const auto& member : value.get_object()) {
                if (!count_members(member.value(), members)) return false;
            }
            return true;
        default:
            return true;
    }
}

// jq 1.6's fromjson where its answer is certain. A text Boost.JSON reads in full,
// with integer numbers only (and no -0), no surrogate \u escapes and no repeated
// keys, reads the same in jq 1.6; a text starting with '%' (URL-encoded) fails in
// both. Anything else (nan, huge or deep values, texts only one parser accepts)
// is left to libjq.
Result parse_json_text(std::string_view text) {
    if (!valid_utf8(text)) return Result::unknown();
    // jq 1.6 fails on a text with no value ("Expected JSON value") and on one whose
    // first token starts with '%' (not a number, literal or structure).
    const std::size_t start = text.find_first_not_of(" \t\n\r");
    if (start == std::string_view::npos || text[start] == '%') return Result::error();
    std::size_t colons = 0;  // outside strings: one per object member
    bool in_string = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (in_string) {
            if (c == '"') {
                in_string = false;
            } else if (c == '\\') {
                if (i + 3 < text.size() && text[i + 1] == 'u' && (text[i + 2] == 'd' || text[i + 2] == 'D')) {
                    const int digit = hex_value(text[i + 3]);
                    if (digit >= 8) return Result::unknown();
                }
                ++i;
            }
        } else if (c == '"') {
            in_string = true;
        } else if (c == ':') {
            ++colons;
        } else if (c == '-' && i + 1 < text.size() && text[i + 1] == '0') {
            return Result::unknown();
        }
    }
    boost::system::error_code error;
    boost::json::value parsed = boost::json::parse(boost::json::string_view(text.data(), text.size()), error);
    if (error) return Result::unknown();
    std::size_t members = 0;
    if (!count_members(parsed, members) || members != colons) return Result::unknown();
    return Result::of(Val::make(std::move(parsed)));
}

// jq 1.6's join($x) with a string separator:
//   reduce .[] as $i (null; (if .==null then "" else .+$x end) +
//     ($i | if type=="boolean" or type=="number" then tostring else .//"" end)) // ""
Result join_strings(const Val& input, std::string_view separator) {
    if (input.root != nullptr) return Result::unknown();
    const auto& value = input.value();
    if (value.is_object()) return Result::unknown();  // its order of values is libjq's
    if (!value.is_array()) return Result::error();      // .[] fails
    std::string text;
    bool first = true;
    for (const auto& element : value.get_array()) {
        if (!first) text.append(separator.data(), separator.size());
        first = false;
        if (element.is_array() || element.is_object()) return Result::error();  // "" + array
        if (element.is_null()) continue;
        if (!tostring_text(Val::of(element), text)) return Result::unknown();
    }
    return Result::of(Val::make(boost::json::string(text)));
}

// jq 1.6's unique (group_by(.) | map(.[0])): sorted in jq's order, the first of
// equal values kept (its sort is stable).
Result unique_values(const Val& input) {
    if (input.root != nullptr || !input.value().is_array()) return Result::unknown();
    const auto& array = input.value().get_array();
    std::vector<const boost::json::value*> order;
    order.reserve(array.size());
    for (const auto& element : array) order.push_back(&element);
    bool comparable = true;
    std::stable_sort(order.begin(), order.end(), [&](const boost::json::value* a, const boost::json::value* b) {
        auto r = compare(View(*a), View(*b));
        if (!r) comparable = false;
        return r && *r < 0;
    });
    if (!comparable) return Result::unknown();
    boost::json::array result;
    for (std::size_t i = 0; i < order.size(); ++i) {
        if (i > 0) {
            auto r = compare(View(*order[i - 1]), View(*order[i]));
            if (!r) return Result::unknown();
            if (*r == 0) continue;
        }
        result.push_back(*order[i]);
    }
    return Result::of(Val::make(std::move(result)));
}

Result add_values(const Node& node, const Val& input) {
    Result left;
    Result right;
    if (auto without_values = operands(node, input, left, right)) return std::move(*without_values);
    const View a(left.val);
    const View b(right.val);
    if (a.rank() == 1) return Result::of(Val::make(owned_value(right.val)));
    if (b.rank() == 1) return Result::of(Val::make(owned_value(left.val)));
    if (a.rank() == 4 && b.rank() == 4) return Result::of(Val::make(a.number() + b.number()));
    if (a.rank() == 5 && b.rank() == 5) {
        if (!valid_utf8(a.string()) || !valid_utf8(b.string())) return Result::unknown();
        std::string text(a.string());
        text += b.string();
        return Result::of(Val::make(boost::json::string(text)));
    }
    if (a.rank() == 6 && b.rank() == 6) {
        boost::json::array joined = a.value->get_array();
        for (const auto& element : b.value->get_array()) joined.push_back(element);
        return Result::of(Val::make(std::move(joined)));
    }
    if (a.rank() == 7 && b.rank() == 7) return Result::unknown();  // object merge: libjq's
    return Result::error();
}

// What a `.name` or `.[n]` step indexes: its input itself when the step is taken on `.`
// (most are: no copy of the input), else its base's one output, kept in base. nullptr
// when the base has no value: base then says why.
const Val* step_base(const Node& node, const Val& input, Result& base) {
    if (node.kids[0]->op == Op::identity) return &input;
    base = evaluate(*node.kids[0], input);
    return base.ok() ? &base.val : nullptr;
}

Result evaluate(const Node& node, const Val& input) {
    if (node.stream) return Result::unknown();  // never asked: generate runs these
    switch (node.op) {
        case Op::identity:
            return Result::of(copy_of(input));
        case Op::literal:
            return Result::of(Val::of(node.literal));
        case Op::empty:
            return Result::none();
        case Op::field: {
            Result base;
            const Val* indexed_value = step_base(node, input, base);
            if (indexed_value == nullptr) return base;
            Result indexed = index_field(*indexed_value, node.name);
            if (node.optional && indexed.status == Status::error) return Result::none();
            return indexed;
        }
        case Op::index: {
            Result base;
            const Val* indexed_value = step_base(node, input, base);
            if (indexed_value == nullptr) return base;
            Result indexed = index_array(*indexed_value, node.index);
            if (node.optional && indexed.status == Status::error) return Result::none();
            return indexed;
        }
        case Op::try_: {
            Result inner = evaluate(*node.kids[0], input);
            if (inner.status == Status::error) return Result::none();
            return inner;
        }
        case Op::eq:
        case Op::ne:
        case Op::lt:
        case Op::le:
        case Op::gt:
        case Op::ge:
            return compare_op(node, input);
        case Op::and_:
        case Op::or_: {
            Result left = evaluate(*node.kids[0], input);
            if (!left.ok()) return left;
            const bool left_true = truthy(left.val);
            if (node.op == Op::and_ && !left_true) return Result::boolean(false);
            if (node.op == Op::or_ && left_true) return Result::boolean(true);
            Result right = evaluate(*node.kids[1], input);
            if (!right.ok()) return right;
            return Result::boolean(truthy(right.val));
        }
        case Op::alt: {
            // jq 1.6's '//' lets an error on its left through.
            Result left = evaluate(*node.kids[0], input);
            if (left.status == Status::unknown || left.status == Status::error) return left;
            if (left.ok() && truthy(left.val)) return left;
            return evaluate(*node.kids[1], input);
        }
        case Op::pipe: {
            Result left = evaluate(*node.kids[0], input);
            if (!left.ok()) return left;
            return evaluate(*node.kids[1], left.val);
        }
        case Op::not_:
            return Result::boolean(!truthy(input));
        case Op::select: {
            Result condition = evaluate(*node.kids[0], input);
            if (!condition.ok()) return condition;
            return truthy(condition.val) ? Result::of(copy_of(input)) : Result::none();
        }
        case Op::if_: {
            Result condition = evaluate(*node.kids[0], input);
            if (!condition.ok()) return condition;
            return evaluate(*node.kids[truthy(condition.val) ? 1 : 2], input);
        }
        case Op::in_generator:
            return in_items(node.kids, input, View(input));
        case Op::in_source: {
            // any(src == s; .): s is the outer loop.
            for (const auto& wanted_node : node.more) {
                Result wanted = evaluate(*wanted_node, input);
                if (wanted.status == Status::empty) continue;
                if (!wanted.ok()) return Result::unknown();
                Result found = in_items(node.kids, input, View(wanted.val));
                if (!found.ok() || truthy(found.val)) return found;
            }
            return Result::boolean(false);
        }
        case Op::test: {
            std::string_view text;
            if (!string_input(input, text)) return Result::error();
            if (!valid_utf8(text)) return Result::unknown();
            auto found = node.regex->search(text);
            if (!found) return Result::unknown();
            return Result::boolean(*found);
        }
        case Op::startswith:
        case Op::endswith: {
            Result affix = evaluate(*node.kids[0], input);
            if (!affix.ok()) return affix;
            std::string_view text;
            if (!string_input(input, text) || affix.val.root != nullptr || !affix.val.value().is_string()) {
                return Result::error();
            }
            const std::string_view part = affix.val.value().get_string();
            if (!valid_utf8(text) || !valid_utf8(part)) return Result::unknown();
            if (node.op == Op::startswith) return Result::boolean(text.substr(0, part.size()) == part);
            return Result::boolean(text.size() >= part.size() &&
                                   text.substr(text.size() - part.size()) == part);
        }
        case Op::contains: {
            Result wanted = evaluate(*node.kids[0], input);
            if (!wanted.ok()) return wanted;
            const View a(input);
            const View b(wanted.val);
            if (a.rank() != b.rank()) return Result::error();
            auto found = contains(a, b);
            if (!found) return Result::unknown();
            return Result::boolean(*found);
        }
        case Op::tostring: {
            const View v(input);
            switch (v.rank()) {
                case 1:
                    return Result::of(Val::make("null"));
                case 2:
                    return Result::of(Val::make("false"));
                case 3:
                    return Result::of(Val::make("true"));
                case 4: {
                    std::string text;
                    if (!tostring_text(input, text)) return Result::unknown();
                    return Result::of(Val::make(boost::json::string(text)));
                }
                case 5:
                    return Result::of(copy_of(input));
                default:
                    return Result::unknown();
            }
        }
        case Op::ascii_downcase:
        case Op::ascii_upcase: {
            std::string_view text;
            if (!string_input(input, text)) return Result::error();
            if (!valid_utf8(text)) return Result::unknown();
            boost::json::string result(text);
            for (auto& c : result) {
                if (node.op == Op::ascii_downcase && c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
                if (node.op == Op::ascii_upcase && c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
            }
            return Result::of(Val::make(std::move(result)));
        }
        case Op::length: {
            const View v(input);
            switch (v.rank()) {
                case 1:
                    return Result::of(Val::make(0));
                case 2:
                case 3:
                    return Result::error();
                case 4:
                    return Result::of(Val::make(std::fabs(v.number())));
                case 5:
                    if (!valid_utf8(v.string())) return Result::unknown();
                    return Result::of(Val::make(static_cast<double>(codepoint_count(v.string()))));
                case 6:
                    return Result::of(Val::make(static_cast<double>(v.value->get_array().size())));
                default:
                    return Result::of(Val::make(static_cast<double>(v.object->size())));
            }
        }
        case Op::has: {
            Result key = evaluate(*node.kids[0], input);
            if (!key.ok()) return key;
            const View v(input);
            if (v.rank() != 7 || key.val.root != nullptr || !key.val.value().is_string()) {
                return Result::unknown();
            }
            const std::string_view name = key.val.value().get_string();
            // Keys that are not valid UTF-8 become U+FFFD in jq.
            if (!valid_utf8(name) || name.find("\xEF\xBF\xBD") != std::string_view::npos) {
                return Result::unknown();
            }
            return Result::boolean(v.object->if_contains(name) != nullptr);
        }
        case Op::type: {
            static constexpr const char* kNames[] = {"", "null", "boolean", "boolean", "number",
                                                     "string", "array", "object"};
            return Result::of(Val::make(kNames[View(input).rank()]));
        }
        case Op::split: {
            std::string_view text;
            if (!string_input(input, text)) return Result::error();
            if (!valid_utf8(text)) return Result::unknown();
            const std::string_view separator = node.kids[0]->literal.get_string();
            // jq 1.6's jv_string_split with a separator that is not empty.
            boost::json::array parts;
            std::size_t from = 0;
            while (from < text.size()) {
                std::size_t at = text.find(separator, from);
                if (at == std::string_view::npos) at = text.size();
                parts.emplace_back(boost::json::string_view(text.substr(from, at - from)));
                if (at + separator.size() == text.size()) parts.emplace_back(boost::json::string_view());
                from = at + separator.size();
            }
            return Result::of(Val::make(std::move(parts)));
        }
        case Op::interpolation: {
            // Any part that fails or is not modelled leaves the whole to libjq, whose
            // order of evaluation decides between an error and no output.
            std::string text = node.keys[0];
            bool no_output = false;
            for (std::size_t i = 0; i < node.kids.size(); ++i) {
                Result part = evaluate(*node.kids[i], input);
                if (part.status == Status::error || part.status == Status::unknown) return Result::unknown();
                if (part.status == Status::empty) {
                    no_output = true;
                    continue;
                }
                if (!tostring_text(part.val, text)) return Result::unknown();
                text += node.keys[i + 1];
            }
            if (no_output) return Result::none();
            return Result::of(Val::make(boost::json::string(text)));
        }
        case Op::object: {
            boost::json::object object;
            object.reserve(node.kids.size());
            bool no_output = false;
            for (std::size_t i = 0; i < node.kids.size(); ++i) {
                Result value = evaluate(*node.kids[i], input);
                if (value.status == Status::error || value.status == Status::unknown) return Result::unknown();
                if (value.status == Status::empty) {
                    no_output = true;
                    continue;
                }
                auto converted = as_jq_returns(value.val);
                if (!converted) return Result::unknown();
                object.emplace(node.keys[i], std::move(*converted));
            }
            if (no_output) return Result::none();
            return Result::of(Val::make(std::move(object)));
        }
        case Op::variable: {
            const auto distance = static_cast<std::size_t>(node.index);
            if (distance >= t_bound.size()) return Result::unknown();
            // Borrowed: the binding outlives everything evaluated in its body.
            return Result::of(borrowed(*t_bound[t_bound.size() - 1 - distance]));
        }
        case Op::collect: {
            boost::json::array items;
            auto append = [&items](Val&& value) {
                items.push_back(owned_value(value));
                return Flow::more;
            };
            const Flow flow = generate(*node.kids[0], input, Sink(append));
            if (flow != Flow::more) return result_of(flow);
            return Result::of(Val::make(std::move(items)));
        }
        case Op::any2: {
            // jq 1.6: [label $out | foreach GEN as $i (false; if . then break $out
            //   elif $i | COND then true else . end; if . then . else empty end)] | length == 1
            // After the first true condition the generator runs to its next output
            // (or its end, or an error) before the break.
            bool found = false;
            auto each = [&](Val&& item) {
                if (found) return Flow::stop;
                Result condition = evaluate(*node.kids[1], item);
                if (condition.status == Status::value) {
                    found = truthy(condition.val);
                    return Flow::more;
                }
                return flow_of(condition.status);
            };
            const Flow flow = generate(*node.kids[0], input, Sink(each));
            if (flow == Flow::error || flow == Flow::unknown) return result_of(flow);
            return Result::boolean(found);
        }
        case Op::unique:
            return unique_values(input);
        case Op::join:
            return join_strings(input, node.kids[0]->literal.get_string());
        case Op::fromjson: {
            std::string_view text;
            if (!string_input(input, text)) return Result::error();
            return parse_json_text(text);
        }
        case Op::add:
            return add_values(node, input);
        case Op::comma:
        case Op::opaque:
        case Op::iterate:
        case Op::bind:
            return Result::unknown();
    }
    return Result::unknown();
}

Flow generate(const Node& node, const Val& input, const Sink& sink) {
    if (!node.stream) {
        Result result = evaluate(node, input);
        if (result.status == Status::value) return sink(std::move(result.val));
        return flow_of(result.status);
    }
    switch (node.op) {
        case Op::pipe: {
            auto right = [&](Val&& value) { return generate(*node.kids[1], value, sink); };
            return generate(*node.kids[0], input, Sink(right));
        }
        case Op::comma: {
            const Flow flow = generate(*node.kids[0], input, sink);
            if (flow != Flow::more) return flow;
            return generate(*node.kids[1], input, sink);
        }
        case Op::bind: {
            auto body = [&](Val&& value) {
                Binding binding(value);
                // The body's outputs go on outside the variable's scope: what consumes
                // them sees the bindings around this node, not this one.
                auto leave_scope = [&](Val&& output) {
                    t_bound.pop_back();
                    const OutOfScope back_in_scope_after(value);
                    return sink(std::move(output));
                };
                return generate(*node.kids[1], input, Sink(leave_scope));
            };
            return generate(*node.kids[0], input, Sink(body));
        }
        case Op::try_: {
            // jq 1.6 (FORK_OPT): an error raised while the try's body is running, in
            // the body or downstream of one of its outputs, ends the try's stream.
            const Flow flow = generate(*node.kids[0], input, sink);
            return flow == Flow::error ? Flow::more : flow;
        }
        case Op::iterate: {
            auto each = [&](Val&& base) {
                if (base.root != nullptr) return Flow::unknown;  // the event's members: libjq's order
                const auto& value = base.value();
                if (value.is_array()) {
                    for (const auto& element : value.get_array()) {
                        // Borrowed: base lives until the loop ends, and consumers are done with
                        // each output before they return.
                        const Flow flow = sink(Val::of(element));
                        if (flow != Flow::more) return flow;
                    }
                    return Flow::more;
                }
                if (value.is_object()) return Flow::unknown;
                return node.optional ? Flow::more : Flow::error;
            };
            return generate(*node.kids[0], input, Sink(each));
        }
        case Op::field:
        case Op::index: {
            auto step = [&](Val&& base) {
                Result indexed = node.op == Op::field ? index_field(base, node.name) : index_array(base, node.index);
                if (indexed.status == Status::value) return sink(std::move(indexed.val));
                if (indexed.status == Status::error && node.optional) return Flow::more;
                return flow_of(indexed.status);
            };
            return generate(*node.kids[0], input, Sink(step));
        }
        case Op::alt: {
            // jq 1.6's '//': every truthy output of the left, else the right's outputs;
            // an error on the left goes through.
            bool found = false;
            auto left = [&](Val&& value) {
                if (!truthy(value)) return Flow::more;
                found = true;
                return sink(std::move(value));
            };
            const Flow flow = generate(*node.kids[0], input, Sink(left));
            if (flow != Flow::more || found) return flow;
            return generate(*node.kids[1], input, sink);
        }
        case Op::select: {
            auto condition = [&](Val&& value) {
                if (!truthy(value)) return Flow::more;
                return sink(borrowed(input));
            };
            return generate(*node.kids[0], input, Sink(condition));
        }
        case Op::if_: {
            auto condition = [&](Val&& value) {
                return generate(*node.kids[truthy(value) ? 1 : 2], input, sink);
            };
            return generate(*node.kids[0], input, Sink(condition));
        }
        case Op::and_:
        case Op::or_: {
            // jq 1.6: for each output of the left, the answer or each output of the right.
            auto right = [&](Val&& value) { return sink(Val::of(truthy(value) ? kTrueValue : kFalseValue)); };
            auto left = [&](Val&& value) {
                const bool left_true = truthy(value);
                if (node.op == Op::and_ && !left_true) return sink(Val::of(kFalseValue));
                if (node.op == Op::or_ && left_true) return sink(Val::of(kTrueValue));
                return generate(*node.kids[1], input, Sink(right));
            };
            return generate(*node.kids[0], input, Sink(left));
        }
        default:
            return Flow::unknown;
    }
}

bool field_name_is_safe(const Node& node) {
    if (node.op == Op::field &&
        (!valid_utf8(node.name) || node.name.find("\xEF\xBF\xBD") != std::string::npos)) {
        return false;
    }
    for (const auto& kid : node.kids) {
        if (!field_name_is_safe(*kid)) return false;
    }
    for (const auto& kid : node.more) {
        if (!field_name_is_safe(*kid)) return false;
    }
    return true;
}

bool rejects_without_error(const Node& filter, const boost::json::value& input) {
    bool truthy_output = false;
    auto consume = [&truthy_output](Val&& output) {
        if (!truthy(output)) return Flow::more;
        truthy_output = true;
        return Flow::stop;
    };
    return generate(filter, Val::of(input), Sink(consume)) == Flow::more && !truthy_output;
}

std::string value_text(const boost::json::value& value) {
    if (value.is_string()) return std::string(value.get_string());
    if (value.is_number()) {
        const double number = value.to_number<double>();
        if (std::trunc(number) == number && std::fabs(number) < 1e15) return integer_text(number);
    }
    return boost::json::serialize(value);
}

}  // namespace

// ---------------------------------------------------------------------------
// Public.

std::string FieldPath::text() const {
    std::string out;
    for (const auto& step : steps) {
        if (step.is_index) {
            out += "[" + std::to_string(step.index) + "]";
            continue;
        }
        bool plain = !step.field.empty() && is_ident_start(step.field[0]);
        for (char c : step.field) plain = plain && is_ident_char(c);
        if (plain) {
            if (!out.empty()) out += '.';
            out += step.field;
        } else {
            out += "[" + boost::json::serialize(boost::json::value(boost::json::string(step.field))) + "]";
        }
    }
    return out;
}

bool FieldPath::operator==(const FieldPath& other) const {
    if (steps.size() != other.steps.size()) return false;
    for (std::size_t i = 0; i < steps.size(); ++i) {
        if (steps[i].is_index != other.steps[i].is_index || steps[i].field != other.steps[i].field ||
            steps[i].index != other.steps[i].index) {
            return false;
        }
    }
    return true;
}

std::string IndexCondition::text() const {
    std::string out;
    for (const auto& term : terms) {
        if (!out.empty()) out += " or ";
        out += term.path.text();
        if (term.not_null) {
            out += " \xE2\x89\xA0 null";
            continue;
        }
        if (term.values.size() == 1) {
            out += " = " + value_text(term.values[0]);
            continue;
        }
        out += " \xE2\x88\x88 {";
        for (std::size_t i = 0; i < term.values.size(); ++i) {
            if (i > 0) out += ", ";
            out += value_text(term.values[i]);
        }
        out += "}";
    }
    return out;
}

ReadRule read_rule(std::string_view program) {
    ReadRule rule;
    if (program.find('\r') != std::string_view::npos || program.find('\0') != std::string_view::npos ||
        !valid_utf8(program)) {
        rule.not_native_reason = "the program has a carriage return, a NUL or bytes that are not UTF-8";
        rule.not_indexed_reason = rule.not_native_reason;
        return rule;
    }
    std::vector<Token> tokens;
    try {
        tokens = Lexer(program).run();
    } catch (const ReadFailure& failure) {
        Parser where_parser(program, {Token{}});
        rule.not_native_reason = "not read: " + failure.reason + " at " + where_parser.where(failure.offset);
        rule.not_indexed_reason = rule.not_native_reason;
        return rule;
    }
    Parser parser(program, std::move(tokens));
    bool definitions_read = true;
    try {
        parser.read_definitions();
    } catch (const ReadFailure& failure) {
        rule.not_native_reason = "not read: " + failure.reason + " at " + parser.where(failure.offset);
        rule.not_indexed_reason = rule.not_native_reason;
        return rule;
    }
    for (const auto& definition : parser.definitions()) {
        if (!definition.body) definitions_read = false;
    }
    const std::size_t program_start = parser.position();
    bool rest_unread = false;
    std::vector<NodePtr> selects;  // select(P) | select(Q) ...: each select
    std::string failure_text;

    // select(P) [| select(Q)]... [| REST]
    const bool select_is_builtin = std::none_of(
        parser.definitions().begin(), parser.definitions().end(),
        [](const Definition& d) { return d.name == "select" && d.arity == 1; });
    if (select_is_builtin && parser.at_word("select") && parser.at_punct("(", 1)) {
        try {
            NodePtr predicate;
            for (;;) {
                parser.expect_word("select");
                parser.expect_punct("(");
                NodePtr condition = parser.parse_pipe();
                parser.expect_punct(")");
                selects.push_back(make(Op::select, {condition}));
                predicate = predicate ? make(Op::and_, {predicate, condition}) : condition;
                if (parser.at_end()) {
                    rule.form = RuleForm::select_only;
                    break;
                }
                if (!parser.at_punct("|")) throw ReadFailure{"", 0};  // another form
                parser.expect_punct("|");
                if (!(parser.at_word("select") && parser.at_punct("(", 1))) {
                    rule.form = RuleForm::select_then_rest;
                    rest_unread = true;
                    const std::size_t rest_start = parser.position();
                    try {
                        NodePtr rest = parser.parse_pipe();
                        mark_streams(*rest);
                        if (parser.at_end() && !unsupported(*rest) && field_name_is_safe(*rest)) {
                            rule.annotation = rest;
                            rest_unread = false;
                        }
                    } catch (const ReadFailure&) {
                    }
                    parser.rewind(rest_start);
                    break;
                }
            }
            rule.predicate = predicate;
        } catch (const ReadFailure& failure) {
            if (!failure.reason.empty()) {
                failure_text = "not read: " + failure.reason + " at " + parser.where(failure.offset);
            }
            rule.form = RuleForm::unread;
            rule.predicate = nullptr;
            selects.clear();
        }
    }
    // if P then REST else empty end, with a REST that is not read.
    if (!rule.predicate && failure_text.empty() && parser.at_word("if")) {
        parser.rewind(program_start);
        try {
            parser.expect_word("if");
            NodePtr condition = parser.parse_pipe();
            parser.expect_word("then");
            int depth = 0;
            for (;;) {
                if (parser.at_end()) throw ReadFailure{"an unterminated if", 0};
                const Token& token = parser.peek();
                if (token.kind == Tok::punct) {
                    if (token.text == "(" || token.text == "[" || token.text == "{") ++depth;
                    if (token.text == ")" || token.text == "]" || token.text == "}") --depth;
                } else if (token.kind == Tok::ident) {
                    if (token.text == "if") ++depth;
                    if (token.text == "end") --depth;
                    if (depth == 0 && (token.text == "elif" || token.text == "else")) break;
                }
                parser.rewind(parser.position() + 1);
            }
            parser.expect_word("else");
            parser.expect_word("empty");
            parser.expect_word("end");
            if (!parser.at_end()) throw ReadFailure{"", 0};
            rule.form = RuleForm::select_then_rest;
            rule.predicate = condition;
            rest_unread = true;
        } catch (const ReadFailure&) {
            rule.form = RuleForm::unread;
            rule.predicate = nullptr;
        }
        // A then-branch the evaluator handles is better handled as a whole below.
        if (rule.predicate) {
            parser.rewind(program_start);
            try {
                NodePtr whole = parser.parse_pipe();
                mark_streams(*whole);
                if (parser.at_end() && !unsupported(*whole)) {
                    rule.form = RuleForm::bare;
                    rule.predicate = whole;
                    rest_unread = false;
                }
            } catch (const ReadFailure&) {
            }
        }
    }
    if (!rule.predicate && failure_text.empty()) {
        parser.rewind(program_start);
        try {
            NodePtr whole = parser.parse_pipe();
            if (!parser.at_end()) parser.fail("unexpected '" + parser.peek().text + "'");
            rule.form = RuleForm::bare;
            rule.predicate = whole;
        } catch (const ReadFailure& failure) {
            failure_text = "not read: " + failure.reason + " at " + parser.where(failure.offset);
        }
    }
    if (!rule.predicate) {
        rule.not_native_reason = failure_text.empty() ? "not read" : failure_text;
        rule.not_indexed_reason = rule.not_native_reason;
        return rule;
    }
    mark_streams(*rule.predicate);
    rule.streams = rule.predicate->stream || (rule.annotation && rule.annotation->stream);
    if (rule.streams) {
        // The program the stream evaluation runs: the selects, then the annotation.
        if (rule.form == RuleForm::bare) {
            rule.program = rule.predicate;
        } else if (rule.form == RuleForm::select_only || rule.annotation) {
            NodePtr whole_program = rule.form == RuleForm::select_only ? selects.back() : rule.annotation;
            const std::size_t own = rule.form == RuleForm::select_only ? 1 : 0;
            for (std::size_t i = selects.size() - own; i-- > 0;) whole_program = make(Op::pipe, {selects[i], whole_program});
            mark_streams(*whole_program);
            rule.program = whole_program;
        }
    }
    if (auto reason = unsupported(*rule.predicate)) {
        rule.not_native_reason = *reason;
    } else if (!field_name_is_safe(*rule.predicate)) {
        rule.not_native_reason = "a field name with U+FFFD or bytes that are not UTF-8";
    } else if (rule.streams && !rule.program) {
        rule.not_native_reason = "a condition with several outputs (or a try) before a rest left to libjq";
    } else {
        rule.native = true;
    }
    // A definition it did not read may not compile: libjq checks it at load.
    rule.fully_read = rule.native && !rest_unread && definitions_read;
    std::string why;
    rule.condition = condition_of(rule.predicate, why);
    if (!rule.condition) rule.not_indexed_reason = why;
    return rule;
}

namespace {

// tattletail's rule applied to a first output the evaluator computed, with the
// annotation as libjq's path gives it (as_jq_returns).
Verdict decide_output(const Result& result, const boost::json::object& event,
                      std::optional<boost::json::value>& annotation) {
    if (result.status == Status::empty) return Verdict::no_match;
    if (result.status != Status::value) return Verdict::ask_libjq;
    if (result.val.root == &event) return Verdict::match;  // the event itself
    if (!truthy(result.val)) return Verdict::no_match;
    const auto& value = result.val.value();
    if (value.is_bool()) return Verdict::match;
    if (value.is_object() || value.is_array()) {
        // An object equal to the event is no annotation; that comparison is libjq's.
        if (value.is_object() && value.get_object().size() == event.size()) return Verdict::ask_libjq;
        auto converted = as_jq_returns(value, 0);
        if (!converted) return Verdict::ask_libjq;
        annotation = std::move(*converted);
        return Verdict::match;
    }
    if (value.is_string()) {
        if (!valid_utf8(value.get_string())) return Verdict::ask_libjq;
        annotation = boost::json::value(value.get_string());
        return Verdict::match;
    }
    if (value.is_number()) {
        // As the libjq path converts a jq number: integral doubles as integers.
        const double number = value.to_number<double>();
        constexpr double two_to_63 = 9223372036854775808.0;
        if (std::trunc(number) == number && number >= -two_to_63 && number < two_to_63) {
            annotation = boost::json::value(static_cast<std::int64_t>(number));
        } else {
            annotation = boost::json::value(number);
        }
        return Verdict::match;
    }
    return Verdict::ask_libjq;
}

}  // namespace

Verdict decide(const ReadRule& rule, const boost::json::object& event,
               std::optional<boost::json::value>& annotation) {
    annotation.reset();
    Val root;
    root.root = &event;
    if (rule.streams) {
        if (!rule.program) return Verdict::ask_libjq;
        // The rule's first output, as one jq_next gives it: nothing after it runs.
        Verdict verdict = Verdict::no_match;
        bool decided = false;
        auto first = [&](Val&& value) {
            if (!decided) {
                verdict = decide_output(Result::of(std::move(value)), event, annotation);
                decided = true;
            }
            return Flow::first_taken;
        };
        const Flow flow = generate(*rule.program, root, Sink(first));
        if (!decided) return flow == Flow::more ? Verdict::no_match : Verdict::ask_libjq;
        if (flow == Flow::first_taken || flow == Flow::more) return verdict;
        annotation.reset();
        return Verdict::ask_libjq;
    }
    const Result result = evaluate(*rule.predicate, root);
    switch (rule.form) {
        case RuleForm::select_only:
            if (result.status == Status::empty) return Verdict::no_match;
            if (result.status != Status::value) return Verdict::ask_libjq;
            return truthy(result.val) ? Verdict::match : Verdict::no_match;
        case RuleForm::select_then_rest:
            if (result.status == Status::empty) return Verdict::no_match;
            if (result.status != Status::value) return Verdict::ask_libjq;
            if (!truthy(result.val)) return Verdict::no_match;
            if (!rule.annotation) return Verdict::ask_libjq;
            return decide_output(evaluate(*rule.annotation, root), event, annotation);
        case RuleForm::bare:
            return decide_output(result, event, annotation);
        case RuleForm::unread:
            break;
    }
    return Verdict::ask_libjq;
}

Verdict decide(const ReadRule& rule, const boost::json::object& event) {
    std::optional<boost::json::value> annotation;
    return decide(rule, event, annotation);
}

bool index_key(const boost::json::value& value, std::string& key) {
    key.clear();
    switch (value.kind()) {
        case boost::json::kind::null:
            key = "z";
            return true;
        case boost::json::kind::bool_:
            key = value.get_bool() ? "t" : "f";
            return true;
        case boost::json::kind::int64:
        case boost::json::kind::uint64:
        case boost::json::kind::double_: {
            double number = value.to_number<double>();
            if (number == 0) number = 0;  // -0 == 0 in jq
            key = "n";
            key.append(reinterpret_cast<const char*>(&number), sizeof number);
            return true;
        }
        case boost::json::kind::string:
            key = "s";
            key.append(value.get_string().data(), value.get_string().size());
            return true;
        default:
            return false;
    }
}

RuleIndex::RuleIndex(const std::vector<std::optional<IndexCondition>>& conditions) {
    always_.assign((conditions.size() + 63) / 64, 0);
    std::string key;
    for (std::size_t rule = 0; rule < conditions.size(); ++rule) {
        const auto id = static_cast<std::uint32_t>(rule);
        if (!conditions[rule]) {
            always_[rule / 64] |= std::uint64_t{1} << (rule % 64);
            continue;
        }
        ++indexed_;
        for (const auto& term : conditions[rule]->terms) {
            auto entry = std::find_if(paths_.begin(), paths_.end(),
                                      [&](const PathEntry& e) { return e.path == term.path; });
            if (entry == paths_.end()) {
                paths_.push_back(PathEntry{term.path, {}, {}, {}, {}});
                entry = paths_.end() - 1;
            }
            if (entry->all_rules.empty() || entry->all_rules.back() != id) entry->all_rules.push_back(id);
            if (term.not_null) entry->not_null_rules.push_back(id);
            for (const auto& value : term.values) {
                std::vector<std::uint32_t>* ids = nullptr;
                if (value.is_string()) {
                    ids = &entry->rules_by_string[std::string(value.get_string())];
                } else if (index_key(value, key)) {
                    ids = &entry->rules_by_value[key];
                } else {
                    continue;
                }
                if (ids->empty() || ids->back() != id) ids->push_back(id);
            }
        }
    }
}

std::size_t RuleIndex::TextHash::operator()(std::string_view text) const noexcept {
    // Multiply and fold each eight-byte word (the last one overlapping the one before
    // it): every byte reaches the low bits the buckets are chosen by.
    constexpr std::uint64_t kMultiplier = 0x9E3779B97F4A7C15ULL;
    const char* data = text.data();
    const std::size_t size = text.size();
    std::uint64_t hash = size * kMultiplier;
    const auto mix = [&hash](std::uint64_t word) {
        hash = (hash ^ word) * kMultiplier;
        hash ^= hash >> 32;
    };
    if (size >= 8) {
        std::uint64_t word = 0;
        for (std::size_t i = 0; i + 8 < size; i += 8) {
            std::memcpy(&word, data + i, 8);
            mix(word);
        }
        std::memcpy(&word, data + size - 8, 8);
        mix(word);
    } else if (size >= 4) {
        std::uint32_t first = 0;
        std::uint32_t last = 0;
        std::memcpy(&first, data, 4);
        std::memcpy(&last, data + size - 4, 4);
        mix((std::uint64_t{first} << 32) | last);
    } else if (size > 0) {
        const auto byte = [data](std::size_t i) { return std::uint64_t{static_cast<unsigned char>(data[i])}; };
        mix(byte(0) | (byte(size / 2) << 8) | (byte(size - 1) << 16));
    }
    return static_cast<std::size_t>(hash);
}

void RuleIndex::candidates(const boost::json::object& event, std::vector<std::uint64_t>& bits) {
    bits = always_;
    const auto set = [&bits](const std::vector<std::uint32_t>& ids) {
        for (std::uint32_t id : ids) bits[id / 64] |= std::uint64_t{1} << (id % 64);
    };
    for (const auto& entry : paths_) {
        const boost::json::value* value = &kNullValue;  // paths have a step: set below
        const boost::json::object* object = &event;
        bool abnormal = false;
        for (const auto& step : entry.path.steps) {
            if (object != nullptr) {
                if (step.is_index) {
                    abnormal = true;
                    break;
                }
                value = member(*object, step.field);
                if (value == nullptr) value = &kNullValue;
            } else if (value->is_null()) {
                // null.x and null[0] are null
            } else if (step.is_index && value->is_array()) {
                const auto& array = value->get_array();
                std::int64_t position = step.index;
                if (position < 0) position += static_cast<std::int64_t>(array.size());
                value = position >= 0 && static_cast<std::size_t>(position) < array.size()
                            ? &array[static_cast<std::size_t>(position)]
                            : &kNullValue;
            } else {
                abnormal = true;
                break;
            }
            object = value->is_object() ? &value->get_object() : nullptr;
        }
        if (abnormal) {
            set(entry.all_rules);
            continue;
        }
        if (!value->is_null()) set(entry.not_null_rules);
        // A path with only "not null" terms (errorCode ≠ null) needs no value lookup.
        if (value->is_string()) {
            if (entry.rules_by_string.empty()) continue;
            const auto& text = value->get_string();
            if (!valid_utf8(text)) {
                set(entry.all_rules);
                continue;
            }
            if (auto found = entry.rules_by_string.find(std::string_view(text.data(), text.size()));
                found != entry.rules_by_string.end()) {
                set(found->second);
            }
            continue;
        }
        if (entry.rules_by_value.empty() || !index_key(*value, key_buffer_)) continue;
        if (auto found = entry.rules_by_value.find(key_buffer_); found != entry.rules_by_value.end()) {
            set(found->second);
        }
    }
}

}  // namespace tattle::jq_native
