#include "jq_compile.hpp"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"
#include "owned_jv.hpp"
#pragma GCC diagnostic pop

#include <spdlog/spdlog.h>

#include <string_view>
#include <vector>

namespace tattle {

namespace {

void collect_compile_message(void* data, jv message) {
    OwnedJv owned(message);
    auto* messages = static_cast<std::vector<std::string>*>(data);
    if (owned.kind() == JV_KIND_STRING) {
        messages->emplace_back(jv_string_value(owned.borrow()));
    } else {
        OwnedJv formatted(jq_format_error(owned.release()));
        if (formatted.kind() == JV_KIND_STRING) {
            messages->emplace_back(jv_string_value(formatted.borrow()));
        }
    }
}

// libjq reports through this callback after compiling only if a future
// version starts doing so; it must never reach stderr.
void log_late_message(void* /*data*/, jv message) {
    OwnedJv formatted(jq_format_error(message));
    if (formatted.kind() == JV_KIND_STRING) {
        spdlog::warn("jq: {}", jv_string_value(formatted.borrow()));
    }
}

bool starts_with(std::string_view text, std::string_view prefix) {
    return text.substr(0, prefix.size()) == prefix;
}

// jq 1.6 writes "jq: error: <what> at <top-level>, line N:\n<the source line>"
// and then "jq: N compile error(s)". The source line would show the sandbox
// prelude and the shell hint is noise for a config file, so keep <what> and N.
std::string compile_error_text(const std::vector<std::string>& messages) {
    std::string joined;
    std::string summary;
    for (const auto& message : messages) {
        std::string line = message.substr(0, message.find('\n'));
        if (starts_with(line, "jq: error: ")) {
            line.erase(0, std::string_view("jq: error: ").size());
        } else if (starts_with(line, "jq: ")) {
            line.erase(0, std::string_view("jq: ").size());
            if (line.find("compile error") != std::string::npos) {
                summary = line;
                continue;
            }
        }
        constexpr std::string_view shell_hint = " (Unix shell quoting issues?)";
        if (const auto hint = line.find(shell_hint); hint != std::string::npos) {
            line.erase(hint, shell_hint.size());
        }
        while (!line.empty() && (line.back() == ':' || line.back() == ' ')) line.pop_back();
        if (line.empty()) continue;
        if (!joined.empty()) joined += "; ";
        joined += line;
    }
    if (!joined.empty()) return joined;
    return summary.empty() ? std::string("compile error") : summary;
}

}  // namespace

CompileResult compile_jq_program(const std::string& text) {
    JqStatePtr state(jq_init());
    if (!state) return {nullptr, "out of memory"};
    // jq_init in 1.6 leaves these three uninitialised; jq_compile and jq_start
    // install the nomem handler, and input/debug would call through garbage.
    jq_set_nomem_handler(state.get(), nullptr, nullptr);
    jq_set_input_cb(state.get(), nullptr, nullptr);
    jq_set_debug_cb(state.get(), nullptr, nullptr);

    std::vector<std::string> messages;
    jq_set_error_cb(state.get(), collect_compile_message, &messages);
    const bool compiled = jq_compile(state.get(), text.c_str()) != 0;
    jq_set_error_cb(state.get(), log_late_message, nullptr);
    if (!compiled) return {nullptr, compile_error_text(messages)};
    return {std::move(state), {}};
}

}  // namespace tattle
