#include "tattle/alert_shaping.hpp"

#include "jq_compile.hpp"

#include "tattle/rule_sandbox.hpp"
#include "tattle/text_safety.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cctype>
#include <cstdio>
#include <deque>
#include <list>
#include <map>
#include <regex>
#include <set>
#include <unordered_map>
#include <utility>

#include "owned_jv.hpp"

namespace tattle {
namespace {

bool is_identifier_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'; }

// The identifiers a jq text mentions. A superset of the names it calls (it also
// finds words in strings and comments): a definition too many costs nothing.
std::set<std::string, std::less<>> mentioned_words(std::string_view text) {
    std::set<std::string, std::less<>> words;
    std::size_t position = 0;
    while (position < text.size()) {
        if (!is_identifier_char(text[position])) {
            ++position;
            continue;
        }
        const std::size_t start = position;
        while (position < text.size() && is_identifier_char(text[position])) ++position;
        words.emplace(text.substr(start, position - start));
    }
    return words;
}

// `def name: body;` on the line it starts on, unless a comment or a line break
// in the body needs lines of its own (a '#' comment runs to the end of its line).
std::string definition_text(const JqDefinition& definition) {
    if (definition.is_list || definition.body.find_first_of("#\n\r") == std::string::npos) {
        return "def " + definition.name + ": (" + definition.body + "); ";
    }
    return "def " + definition.name + ": (\n" + definition.body + "\n);\n";
}

// ---------------------------------------------------------------------------
// libjq.


std::string string_of(const OwnedJv& value) {
    const int length = jv_string_length_bytes(value.copy());
    return std::string(jv_string_value(value.borrow()), static_cast<std::size_t>(length));
}

// A string as it is, anything else as compact JSON (how keys and jq error values are shown).
std::string text_of(OwnedJv value) {
    if (value.kind() == JV_KIND_STRING) return string_of(value);
    OwnedJv dumped(jv_dump_string(value.release(), 0));
    return string_of(dumped);
}

std::string kind_name(jv_kind kind) {
    switch (kind) {
        case JV_KIND_NULL: return "null";
        case JV_KIND_FALSE:
        case JV_KIND_TRUE: return "a boolean";
        case JV_KIND_NUMBER: return "a number";
        case JV_KIND_STRING: return "a string";
        case JV_KIND_ARRAY: return "an array";
        case JV_KIND_OBJECT: return "an object";
        case JV_KIND_INVALID: break;
    }
    return "nothing";
}

// The names of jq's builtins that take no argument ("name/0" in `builtins`).
std::set<std::string, std::less<>> builtin_names_without_arguments() {
    std::set<std::string, std::less<>> names;
    CompileResult listing = compile_jq_program("builtins");  // jq 1.6: one array of "name/arity"
    if (!listing.program) return names;
    jq_start(listing.program.get(), jv_null(), 0);
    OwnedJv list(jq_next(listing.program.get()));
    if (list.kind() != JV_KIND_ARRAY) return names;
    const int length = jv_array_length(list.copy());
    for (int index = 0; index < length; ++index) {
        OwnedJv entry(jv_array_get(list.copy(), index));
        if (entry.kind() != JV_KIND_STRING) continue;
        const std::string name = string_of(entry);
        if (name.size() > 2 && name.compare(name.size() - 2, 2, "/0") == 0) names.insert(name.substr(0, name.size() - 2));
    }
    return names;
}

// ---------------------------------------------------------------------------
// Keys with a bound: the least recently seen key goes first.

template <typename State>
class BoundedKeys {
public:
    explicit BoundedKeys(std::size_t limit) : limit_(std::max<std::size_t>(limit, 1)) {}

    // The key's state, created when new (forgetting the least recently seen key
    // when full); marks it most recently seen.
    State& touch(const std::string& key, bool& created) {
        if (auto found = entries_.find(key); found != entries_.end()) {
            order_.splice(order_.end(), order_, found->second.position);
            created = false;
            return found->second.state;
        }
        if (entries_.size() >= limit_) {
            entries_.erase(order_.front());
            order_.pop_front();
            ++evicted_;
        }
        order_.push_back(key);
        auto& entry = entries_[key];
        entry.position = std::prev(order_.end());
        created = true;
        return entry.state;
    }
    void clear() {
        entries_.clear();
        order_.clear();
    }
    std::size_t evicted() const noexcept { return evicted_; }

private:
    struct Entry {
        typename std::list<std::string>::iterator position;
        State state;
    };
    std::size_t limit_;
    std::unordered_map<std::string, Entry> entries_;
    std::list<std::string> order_;
    std::size_t evicted_ = 0;
};

struct DedupState {
    std::int64_t alerted_at = 0;  // event time of the last alert for the key
    std::uint64_t suppressed = 0;
};

struct ThresholdState {
    std::deque<std::int64_t> times;  // event times of matches not yet alerted on, sorted
};

enum class ExpressionKind { title, dedup_key, threshold_key, definitions };

std::string kind_label(ExpressionKind kind) {
    switch (kind) {
        case ExpressionKind::title: return "title";
        case ExpressionKind::dedup_key: return "dedup.key";
        case ExpressionKind::threshold_key: return "threshold.key";
        case ExpressionKind::definitions: return "lists and macros";
    }
    return "";
}

}  // namespace

JqProgramText with_definitions(std::string_view expression, const JqDefinitions& definitions) {
    JqProgramText program;
    if (definitions && !definitions->empty()) {
        // Which definitions the expression needs, following macros that use others.
        std::set<std::string, std::less<>> needed;
        std::vector<std::string_view> pending{expression};
        while (!pending.empty()) {
            const auto words = mentioned_words(pending.back());
            pending.pop_back();
            for (const auto& definition : *definitions) {
                if (words.count(definition.name) != 0 && needed.insert(definition.name).second) {
                    pending.emplace_back(definition.body);
                }
            }
        }
        // In file order: a macro may use the lists and macros written before it.
        for (const auto& definition : *definitions) {
            if (needed.count(definition.name) != 0) program.text += definition_text(definition);
        }
    }
    program.prefix_lines = static_cast<int>(std::count(program.text.begin(), program.text.end(), '\n'));
    program.text += expression;
    return program;
}

std::vector<FilterRule> filter_rules_for(const std::vector<RuleSpec>& rules) {
    std::vector<FilterRule> filter_rules;
    filter_rules.reserve(rules.size());
    for (const auto& rule : rules) {
        filter_rules.push_back({rule.key(), with_definitions(rule.jq_match, rule.definitions).text,
                                rule.jq_match_where});
    }
    return filter_rules;
}

namespace {

// "line N" in a jq message, N counted in a text whose first offset lines were
// definitions: the line of the user's own text, or where the definitions are.
std::string shift_line_numbers(const std::string& message, int offset) {
    if (offset == 0) return message;
    static const std::regex line_number(R"(line (\d+))");
    std::string out;
    auto last = message.cbegin();
    for (std::sregex_iterator it(message.begin(), message.end(), line_number), end; it != end; ++it) {
        out.append(last, (*it)[0].first);
        const int line = std::stoi((*it)[1].str());
        out += line > offset ? "line " + std::to_string(line - offset) : "the file's lists or macros";
        last = (*it)[0].second;
    }
    out.append(last, message.cend());
    return out;
}

}  // namespace

void correct_filter_line_numbers(std::vector<Diagnostic>& problems, std::size_t first,
                                 const std::vector<RuleSpec>& rules) {
    for (std::size_t index = first; index < problems.size(); ++index) {
        Diagnostic& problem = problems[index];
        for (const auto& rule : rules) {
            if (!rule.definitions || rule.jq_match_where.file != problem.where.file ||
                rule.jq_match_where.line != problem.where.line || rule.jq_match_where.column != problem.where.column) {
                continue;
            }
            problem.message =
                shift_line_numbers(problem.message, with_definitions(rule.jq_match, rule.definitions).prefix_lines);
            break;
        }
    }
}

std::optional<std::int64_t> event_time_seconds(const boost::json::object& event) {
    const auto* value = event.if_contains("eventTime");
    if (value == nullptr || !value->is_string()) return std::nullopt;
    const std::string text(value->get_string());
    int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, consumed = 0;
    if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &year, &month, &day, &hour, &minute, &second,
                    &consumed) != 6) {
        return std::nullopt;
    }
    std::string_view rest = std::string_view(text).substr(static_cast<std::size_t>(consumed));
    if (!rest.empty() && rest.front() == '.') {
        rest.remove_prefix(1);
        while (!rest.empty() && std::isdigit(static_cast<unsigned char>(rest.front())) != 0) rest.remove_prefix(1);
    }
    std::int64_t offset = 0;
    if (rest == "Z" || rest == "z") {
        offset = 0;
    } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':') {
        int hours = 0, minutes = 0;
        if (std::sscanf(std::string(rest.substr(1)).c_str(), "%2d:%2d", &hours, &minutes) != 2) return std::nullopt;
        offset = (rest[0] == '+' ? 1 : -1) * (hours * 3600 + minutes * 60);
    } else {
        return std::nullopt;
    }
    const std::chrono::year_month_day date{std::chrono::year{year}, std::chrono::month{static_cast<unsigned>(month)},
                                           std::chrono::day{static_cast<unsigned>(day)}};
    if (!date.ok() || hour > 23 || minute > 59 || second > 60) return std::nullopt;
    const auto days = std::chrono::sys_days(date).time_since_epoch().count();
    return static_cast<std::int64_t>(days) * 86400 + hour * 3600 + minute * 60 + second - offset;
}

struct AlertShaper::Impl {
    struct Expression {
        std::size_t rule = 0;  // for definitions: the set's index
        ExpressionKind kind = ExpressionKind::title;
        JqProgramText program;
        SourceLocation where;
        std::string label;  // `rule "x": title`
        // Where it is evaluated: programs[program], as slot `slot`.
        std::size_t program_index = 0;
        std::size_t slot = 0;
        bool compiled = false;
    };
    struct RuleShaping {
        std::string name;
        std::optional<std::size_t> title, dedup, threshold;  // expression indices
        std::optional<ShapingSpec> dedup_spec, threshold_spec;
        BoundedKeys<DedupState> dedup_keys;
        BoundedKeys<ThresholdState> threshold_keys;
        std::size_t errors = 0;
        bool error_logged_in_batch = false;

        explicit RuleShaping(std::size_t limit) : dedup_keys(limit), threshold_keys(limit) {}
    };

    // libjq 1.6 compile time grows with the square of a program's definitions (see filter.cpp).
    static constexpr std::size_t kExpressionsPerProgram = 48;

    std::vector<Expression> expressions;
    std::vector<JqStatePtr> programs;
    std::vector<RuleShaping> rules;
    std::string batch_origin = "<no batch>";

    // With isolation, expressions run in a rule evaluator (started at the first need),
    // one evaluator "rule" per expression, so a title that never ends is stopped alone.
    std::optional<RuleBudget> isolation;
    std::unique_ptr<RuleSandbox> sandbox;
    bool sandbox_unavailable = false;
    std::vector<std::optional<std::string>> stopped;  // per expression: why it was stopped
    std::vector<StoppedExpression> newly_stopped;     // not yet taken by take_newly_stopped

    // An expression as the evaluator runs it: input {"e": event}; output [] (no output),
    // [first output] or {"error": message}. (__tattle* names are refused in expressions.)
    static std::string isolated_text(const Expression& expression) {
        return "def __tattleshaping: (\n" + expression.program.text +
               "\n);\n.e | (try [first(__tattleshaping)] catch {\"error\": .})";
    }

    RuleSandbox* running_sandbox() {
        if (!isolation || sandbox_unavailable) return nullptr;
        if (sandbox) return sandbox.get();
        std::vector<FilterRule> sent;
        for (const auto& expression : expressions) {
            const bool runs = expression.compiled && expression.kind != ExpressionKind::definitions;
            sent.push_back(FilterRule{expression.label, runs ? isolated_text(expression) : std::string(), expression.where});
        }
        sandbox = start_rule_sandbox(std::move(sent), RuleCompilation::indexed, *isolation, "titles and keys");
        sandbox_unavailable = sandbox == nullptr;
        return sandbox.get();
    }

    // The wrapper's output from the evaluator, or why there is none.
    std::optional<OwnedJv> evaluate_isolated(RuleSandbox& evaluator, std::size_t expression_index,
                                             const boost::json::object& event, std::string& error) {
        if (stopped.size() != expressions.size()) stopped.resize(expressions.size());
        if (stopped[expression_index]) {
            error = "its jq expression was stopped earlier: it " + *stopped[expression_index];
            return std::nullopt;
        }
        boost::json::object input;
        input["e"] = event;
        const std::string text = valid_json_text(boost::json::serialize(input));
        const std::vector<std::size_t> which{expression_index};
        const RuleSandbox::Job job{&text, &which};
        auto results = evaluator.run(std::span(&job, 1));
        if (results.empty() || results.front().empty()) {
            error = "jq gave no result";
            return std::nullopt;
        }
        LibjqOutcome& outcome = results.front().front();
        switch (outcome.kind) {
            case LibjqOutcome::Kind::match: {
                if (!outcome.annotation) break;
                const std::string output = boost::json::serialize(*outcome.annotation);
                return OwnedJv(jv_parse_sized(output.data(), static_cast<int>(output.size())));
            }
            case LibjqOutcome::Kind::error:
                error = "jq error: " + outcome.message;
                return std::nullopt;
            case LibjqOutcome::Kind::stopped:
                stopped[expression_index] = outcome.message;
                newly_stopped.push_back({expressions[expression_index].rule,
                                         kind_label(expressions[expression_index].kind), outcome.message,
                                         batch_origin, outcome.cause});
                spdlog::error("{} disabled: it {} (an event from {}); alerts of the rule go out without it. Fix it "
                              "and reload",
                              expressions[expression_index].label, outcome.message, batch_origin);
                error = "its jq expression was stopped: it " + outcome.message;
                return std::nullopt;
            case LibjqOutcome::Kind::no_match:
                break;
        }
        error = "jq gave no result";
        return std::nullopt;
    }

    static std::string program_text(const std::vector<const Expression*>& members) {
        std::string text = "\n";
        for (std::size_t slot = 0; slot < members.size(); ++slot) {
            text += "def __tattle_expr_" + std::to_string(slot) + ": (\n" + members[slot]->program.text + "\n);\n";
        }
        // The input is [slot, event]; the output [] (no output), [first output] or {"error": message}.
        text += ". as [$__tattle_slot, $__tattle_event] | $__tattle_event | ";
        for (std::size_t slot = 0; slot < members.size(); ++slot) {
            text += (slot == 0 ? "if" : " elif") + std::string(" $__tattle_slot == ") + std::to_string(slot) +
                    " then (try [first(__tattle_expr_" + std::to_string(slot) + ")] catch {\"error\": .})";
        }
        text += members.empty() ? "[]" : " else [] end";
        return sandboxed_jq_program(text);
    }

    void adopt(JqStatePtr program, const std::vector<Expression*>& members) {
        programs.push_back(std::move(program));
        for (std::size_t slot = 0; slot < members.size(); ++slot) {
            members[slot]->program_index = programs.size() - 1;
            members[slot]->slot = slot;
            members[slot]->compiled = true;
        }
    }

    // Compiles members as one program; when that fails, each alone to find the
    // broken ones, then the others together again (or one by one).
    void compile_group(const std::vector<Expression*>& members, std::vector<Diagnostic>& problems) {
        std::vector<const Expression*> as_const(members.begin(), members.end());
        if (CompileResult whole = compile_jq_program(program_text(as_const)); whole.program) {
            adopt(std::move(whole.program), members);
            return;
        }
        std::vector<Expression*> good;
        for (Expression* expression : members) {
            CompileResult alone = compile_jq_program(sandboxed_jq_program(expression->program.text));
            if (alone.program) {
                good.push_back(expression);
            } else {
                report_compile_error(*expression, alone.error, problems);
            }
        }
        if (good.empty()) return;
        std::vector<const Expression*> good_const(good.begin(), good.end());
        if (CompileResult together = compile_jq_program(program_text(good_const)); together.program) {
            adopt(std::move(together.program), good);
            return;
        }
        for (Expression* expression : good) {
            if (CompileResult own = compile_jq_program(program_text({expression})); own.program) {
                adopt(std::move(own.program), {expression});
            } else {
                report_compile_error(*expression, own.error, problems);
            }
        }
    }

    void report_compile_error(const Expression& expression, const std::string& error,
                              std::vector<Diagnostic>& problems) const {
        // A set of definitions is reported by the definition that breaks it, once all are compiled.
        if (expression.kind == ExpressionKind::definitions) return;
        problems.push_back({expression.where, expression.label + ": jq: " +
                                                  shift_line_numbers(error, expression.program.prefix_lines)});
    }

    void record_error(std::size_t rule_index, const std::string& what, const std::string& message) {
        RuleShaping& rule = rules[rule_index];
        ++rule.errors;
        const auto level = rule.error_logged_in_batch ? spdlog::level::debug : spdlog::level::warn;
        rule.error_logged_in_batch = true;
        std::string shown = message.size() > 512 ? message.substr(0, 512) + "..." : message;
        spdlog::log(level, "rule \"{}\": {} on an event from {}: {}", rule.name, what, batch_origin, shown);
    }

    // The expression's first output, or why there is none.
    std::optional<OwnedJv> evaluate(std::size_t expression_index, const boost::json::object& event,
                                    std::string& error) {
        const Expression& expression = expressions[expression_index];
        if (!expression.compiled) {
            error = "its jq expression did not compile";
            return std::nullopt;
        }
        OwnedJv result(jv_invalid());
        if (RuleSandbox* evaluator = running_sandbox()) {
            auto output = evaluate_isolated(*evaluator, expression_index, event, error);
            if (!output) return std::nullopt;
            result = std::move(*output);
        } else {
            const std::string event_text = boost::json::serialize(event);
            OwnedJv parsed(jv_parse_sized(event_text.data(), static_cast<int>(event_text.size())));
            if (parsed.kind() != JV_KIND_OBJECT) {
                error = "the event could not be handed to jq";
                return std::nullopt;
            }
            OwnedJv input(jv_array_append(jv_array_append(jv_array(), jv_number(static_cast<double>(expression.slot))),
                                          parsed.release()));
            jq_state* state = programs[expression.program_index].get();
            jq_start(state, input.release(), 0);
            result = OwnedJv(jq_next(state));
        }
        if (result.kind() == JV_KIND_OBJECT) {
            OwnedJv message(jv_object_get(result.release(), jv_string("error")));
            error = "jq error: " + (message.kind() == JV_KIND_NULL ? std::string("null (no message)")
                                                                   : text_of(std::move(message)));
            return std::nullopt;
        }
        if (result.kind() != JV_KIND_ARRAY) {
            error = "jq gave no result";
            return std::nullopt;
        }
        if (jv_array_length(result.copy()) == 0) {
            error = "the expression gave no output";
            return std::nullopt;
        }
        return OwnedJv(jv_array_get(result.release(), 0));
    }

    std::optional<std::string> key(std::size_t expression_index, const boost::json::object& event,
                                   std::string& error) {
        auto value = evaluate(expression_index, event, error);
        if (!value) return std::nullopt;
        return text_of(std::move(*value));
    }

    std::optional<std::string> title(std::size_t rule_index, const boost::json::object& event, std::string& error) {
        const auto& index = rules[rule_index].title;
        if (!index) {
            error = "the rule has no title";
            return std::nullopt;
        }
        auto value = evaluate(*index, event, error);
        if (!value) return std::nullopt;
        if (value->kind() != JV_KIND_STRING) {
            error = "the title is " + kind_name(value->kind()) + ", not a string";
            return std::nullopt;
        }
        return string_of(*value);
    }

    // threshold: counts the match; true when the key now has count matches in the window.
    bool threshold_reached(RuleShaping& rule, const std::string& key, std::int64_t time, ShapingDecision& decision) {
        const ShapingSpec& spec = *rule.threshold_spec;
        bool created = false;
        ThresholdState& state = rule.threshold_keys.touch(key, created);
        state.times.insert(std::upper_bound(state.times.begin(), state.times.end(), time), time);
        // Matches older than the window before the newest can count no more.
        const std::int64_t newest = state.times.back();
        while (!state.times.empty() && state.times.front() < newest - spec.window_seconds) state.times.pop_front();
        const auto from = std::lower_bound(state.times.begin(), state.times.end(), time - spec.window_seconds);
        const auto to = std::upper_bound(state.times.begin(), state.times.end(), time);
        decision.threshold_count = static_cast<std::uint64_t>(std::distance(from, to));
        if (decision.threshold_count >= static_cast<std::uint64_t>(spec.count)) {
            state.times.clear();  // the next alert needs count new matches
            return true;
        }
        // Never more than count - 1 waiting: older ones could not make a difference.
        while (state.times.size() >= static_cast<std::size_t>(spec.count)) state.times.pop_front();
        return false;
    }

    // dedup: true when the match may go out (and the key's window starts again).
    bool dedup_lets_through(RuleShaping& rule, const std::string& key, std::int64_t time, ShapingDecision& decision) {
        const ShapingSpec& spec = *rule.dedup_spec;
        bool created = false;
        DedupState& state = rule.dedup_keys.touch(key, created);
        if (created) {
            state.alerted_at = time;
            return true;
        }
        const std::int64_t since = time - state.alerted_at;
        if (since < spec.window_seconds && since > -spec.window_seconds) {
            ++state.suppressed;
            decision.suppressed = state.suppressed;
            return false;
        }
        if (since > 0) {
            decision.suppressed = std::exchange(state.suppressed, 0);
            state.alerted_at = time;
        }
        return true;  // older than the window before the last alert: its own alert
    }
};

AlertShaper::AlertShaper(const Config& config, std::vector<Diagnostic>& problems, ShapingOptions options)
    : impl_(std::make_unique<Impl>()) {
    Impl& impl = *impl_;
    impl.isolation = options.isolation;
    auto add = [&](std::size_t owner, ExpressionKind kind, const std::string& text, const JqDefinitions& definitions,
                   const SourceLocation& where, const std::string& label) -> std::optional<std::size_t> {
        if (text.find('\0') != std::string::npos) {
            problems.push_back({where, label + ": the jq expression contains a NUL character"});
            return std::nullopt;
        }
        if (auto violation = sandbox_violation(text)) {
            problems.push_back({where, label + ": " + *violation});
            return std::nullopt;
        }
        if (text.find("__tattle") != std::string::npos) {
            problems.push_back({where, label + ": names starting with __tattle are reserved"});
            return std::nullopt;
        }
        Impl::Expression expression;
        expression.rule = owner;
        expression.kind = kind;
        expression.program = kind == ExpressionKind::definitions ? JqProgramText{text, 0}
                                                                 : with_definitions(text, definitions);
        expression.where = where;
        expression.label = label;
        impl.expressions.push_back(std::move(expression));
        return impl.expressions.size() - 1;
    };

    for (std::size_t index = 0; index < config.rules.size(); ++index) {
        const RuleSpec& rule = config.rules[index];
        Impl::RuleShaping shaping(options.max_keys_per_rule);
        shaping.name = rule.key();
        const std::string label = "rule \"" + rule.key() + "\": ";
        if (!rule.title.empty()) {
            shaping.title = add(index, ExpressionKind::title, rule.title, rule.definitions, rule.title_where,
                                label + kind_label(ExpressionKind::title));
        }
        if (rule.dedup) {
            shaping.dedup_spec = rule.dedup;
            if (!rule.dedup->key.empty()) {
                shaping.dedup = add(index, ExpressionKind::dedup_key, rule.dedup->key, rule.definitions,
                                    rule.dedup->key_where, label + kind_label(ExpressionKind::dedup_key));
            }
        }
        if (rule.threshold) {
            shaping.threshold_spec = rule.threshold;
            if (!rule.threshold->key.empty()) {
                shaping.threshold = add(index, ExpressionKind::threshold_key, rule.threshold->key, rule.definitions,
                                        rule.threshold->key_where, label + kind_label(ExpressionKind::threshold_key));
            }
        }
        impl.rules.push_back(std::move(shaping));
    }

    // Every file's lists and macros, used or not: names, sandbox, and that they compile.
    std::set<std::string, std::less<>> builtins;
    if (!config.definition_sets.empty()) builtins = builtin_names_without_arguments();
    std::vector<std::size_t> definition_checks;
    for (std::size_t set = 0; set < config.definition_sets.size(); ++set) {
        const auto& definitions = *config.definition_sets[set];
        bool usable = true;
        std::string all;
        for (const auto& definition : definitions) {
            const std::string label = std::string(definition.is_list ? "lists." : "macros.") + definition.name;
            if (builtins.count(definition.name) != 0) {
                problems.push_back({definition.where, label + ": " + definition.name +
                                                          " is a jq builtin; a definition of that name would change "
                                                          "what it means in every rule of the file, choose another"});
                usable = false;
            }
            if (!definition.is_list) {
                if (auto violation = sandbox_violation(definition.body)) {
                    problems.push_back({definition.where, label + ": " + *violation});
                    usable = false;
                } else if (definition.body.find("__tattle") != std::string::npos) {
                    problems.push_back({definition.where, label + ": names starting with __tattle are reserved"});
                    usable = false;
                }
            }
            all += definition_text(definition);
        }
        if (!usable || definitions.empty()) continue;
        if (auto added = add(set, ExpressionKind::definitions, all + " empty", nullptr, definitions.front().where,
                             "lists and macros")) {
            definition_checks.push_back(*added);
        }
    }

    std::vector<Impl::Expression*> group;
    for (auto& expression : impl.expressions) {
        group.push_back(&expression);
        if (group.size() == Impl::kExpressionsPerProgram) {
            impl.compile_group(group, problems);
            group.clear();
        }
    }
    if (!group.empty()) impl.compile_group(group, problems);

    // A broken definition: name the one, by compiling the set up to each in turn.
    for (const std::size_t check : definition_checks) {
        auto& checked = impl.expressions[check];
        if (checked.compiled) continue;
        const auto& definitions = *config.definition_sets[checked.rule];
        std::string prefix;
        for (const auto& definition : definitions) {
            prefix += definition_text(definition);
            CompileResult upto = compile_jq_program(sandboxed_jq_program(prefix + " empty"));
            if (!upto.program) {
                problems.push_back({definition.where, std::string(definition.is_list ? "lists." : "macros.") +
                                                          definition.name + ": jq: " + upto.error});
                break;
            }
        }
    }
}

AlertShaper::~AlertShaper() = default;
AlertShaper::AlertShaper(AlertShaper&&) noexcept = default;

std::vector<Diagnostic> AlertShaper::stopped_expressions() const {
    std::vector<Diagnostic> found;
    for (std::size_t i = 0; i < impl_->stopped.size(); ++i) {
        if (impl_->stopped[i]) {
            found.push_back({impl_->expressions[i].where,
                             impl_->expressions[i].label + " was stopped on a test event: it " + *impl_->stopped[i]});
        }
    }
    return found;
}
AlertShaper& AlertShaper::operator=(AlertShaper&&) noexcept = default;

std::vector<StoppedExpression> AlertShaper::take_newly_stopped() { return std::exchange(impl_->newly_stopped, {}); }

void AlertShaper::begin_batch(std::string_view origin) {
    impl_->batch_origin = origin.empty() ? std::string("<unknown origin>") : std::string(origin);
    for (auto& rule : impl_->rules) rule.error_logged_in_batch = false;
}

ShapingDecision AlertShaper::decide(std::size_t rule_index, const boost::json::object& event) {
    ShapingDecision decision;
    Impl::RuleShaping& rule = impl_->rules.at(rule_index);
    if (!rule.dedup_spec && !rule.threshold_spec) return decision;
    const auto time = event_time_seconds(event);
    auto give_up = [&](const std::string& what, const std::string& why) {
        decision = ShapingDecision{};
        decision.problem = what + ": " + why;
        impl_->record_error(rule_index, what, why + "; the alert is sent unshaped");
        return decision;
    };
    if (!time) return give_up("dedup/threshold", "the event has no eventTime that can be read");
    if (rule.threshold_spec) {
        std::string error;
        std::optional<std::string> key = std::string();
        if (rule.threshold) key = impl_->key(*rule.threshold, event, error);
        if (!key) return give_up("threshold.key", error);
        decision.threshold_key = std::move(*key);
        if (!impl_->threshold_reached(rule, *decision.threshold_key, *time, decision)) {
            decision.outcome = ShapingOutcome::below_threshold;
            return decision;
        }
    }
    if (rule.dedup_spec) {
        std::string error;
        std::optional<std::string> key = std::string();
        if (rule.dedup) key = impl_->key(*rule.dedup, event, error);
        if (!key) {
            const std::uint64_t count = decision.threshold_count;
            auto threshold_key = decision.threshold_key;
            give_up("dedup.key", error);
            decision.threshold_key = std::move(threshold_key);
            decision.threshold_count = count;
            return decision;
        }
        decision.dedup_key = std::move(*key);
        if (!impl_->dedup_lets_through(rule, *decision.dedup_key, *time, decision)) {
            decision.outcome = ShapingOutcome::deduplicated;
        }
    }
    return decision;
}

std::optional<std::string> AlertShaper::title(std::size_t rule_index, const boost::json::object& event) {
    if (!impl_->rules.at(rule_index).title) return std::nullopt;
    std::string error;
    auto text = impl_->title(rule_index, event, error);
    if (!text) impl_->record_error(rule_index, "title", error + "; the alert is sent without a title");
    return text;
}

std::optional<std::string> AlertShaper::title_or_error(std::size_t rule_index, const boost::json::object& event,
                                                       std::string& error) {
    return impl_->title(rule_index, event, error);
}

std::optional<std::string> AlertShaper::dedup_key(std::size_t rule_index, const boost::json::object& event,
                                                  std::string& error) {
    const auto& rule = impl_->rules.at(rule_index);
    if (!rule.dedup_spec) {
        error = "the rule has no dedup";
        return std::nullopt;
    }
    if (!rule.dedup) return std::string();
    return impl_->key(*rule.dedup, event, error);
}

void AlertShaper::annotate_alert(boost::json::object& alert, std::size_t rule_index, const ShapingDecision& decision,
                                 const std::optional<std::string>& title) const {
    const auto& rule = impl_->rules.at(rule_index);
    if (title) alert["title"] = *title;
    if (rule.dedup_spec && decision.dedup_key) {
        alert["dedup"] = boost::json::object{{"key", *decision.dedup_key},
                                             {"window_seconds", rule.dedup_spec->window_seconds},
                                             {"suppressed", decision.suppressed}};
    }
    if (rule.threshold_spec && decision.threshold_key) {
        alert["threshold"] = boost::json::object{{"key", *decision.threshold_key},
                                                 {"count", decision.threshold_count},
                                                 {"min_count", rule.threshold_spec->count},
                                                 {"window_seconds", rule.threshold_spec->window_seconds}};
    }
}

void AlertShaper::clear_state() {
    for (auto& rule : impl_->rules) {
        rule.dedup_keys.clear();
        rule.threshold_keys.clear();
    }
}

bool AlertShaper::has_title(std::size_t rule_index) const noexcept {
    return rule_index < impl_->rules.size() && impl_->rules[rule_index].title.has_value();
}

bool AlertShaper::shapes(std::size_t rule_index) const noexcept {
    return rule_index < impl_->rules.size() &&
           (impl_->rules[rule_index].dedup_spec || impl_->rules[rule_index].threshold_spec);
}

std::size_t AlertShaper::errors(std::size_t rule_index) const noexcept {
    return rule_index < impl_->rules.size() ? impl_->rules[rule_index].errors : 0;
}

std::size_t AlertShaper::evicted_keys(std::size_t rule_index) const noexcept {
    if (rule_index >= impl_->rules.size()) return 0;
    const auto& rule = impl_->rules[rule_index];
    return rule.dedup_keys.evicted() + rule.threshold_keys.evicted();
}

}  // namespace tattle
