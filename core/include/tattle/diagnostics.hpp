#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace tattle {

// Where something was: a file with 1-based line and column (0 = unknown).
struct SourceLocation {
    std::string file;
    int line = 0;
    int column = 0;

    // "file:line:col", "file:line" or "file", whichever is known.
    std::string to_string() const;
};

// One problem found while loading or checking something, with its place.
struct Diagnostic {
    SourceLocation where;
    std::string message;

    std::string to_string() const;  // "where: message"
};

// Thrown when loading a config (or bundle) found problems; carries all of them.
class ConfigError : public std::runtime_error {
public:
    explicit ConfigError(std::vector<Diagnostic> problems);
    const std::vector<Diagnostic>& problems() const noexcept { return problems_; }

private:
    std::vector<Diagnostic> problems_;
};

// "did you mean ...?" for a misspelt name; empty when nothing is close enough.
std::string did_you_mean(const std::string& given, const std::vector<std::string>& known);

}  // namespace tattle
