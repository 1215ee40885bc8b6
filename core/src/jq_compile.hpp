#pragma once

// Compiling one libjq program, shared by the filter stage and alert shaping.

#include <memory>
#include <string>

#include "libjq.hpp"

namespace tattle {

struct JqStateDeleter {
    void operator()(jq_state* state) const noexcept { jq_teardown(&state); }
};
using JqStatePtr = std::unique_ptr<jq_state, JqStateDeleter>;

struct CompileResult {
    JqStatePtr program;  // null when it did not compile
    std::string error;   // jq's message without its prefix, source line and shell hint
};

// jq_init + jq_compile with libjq's callbacks set (its messages never reach stderr).
CompileResult compile_jq_program(const std::string& text);

}  // namespace tattle
