#include "tattle/diagnostics.hpp"

#include <algorithm>
#include <cstddef>
#include <sstream>

namespace tattle {

std::string SourceLocation::to_string() const {
    std::string out = file.empty() ? "<unknown>" : file;
    if (line > 0) {
        out += ':' + std::to_string(line);
        if (column > 0) out += ':' + std::to_string(column);
    }
    return out;
}

std::string Diagnostic::to_string() const { return where.to_string() + ": " + message; }

namespace {

std::string join_problems(const std::vector<Diagnostic>& problems) {
    std::ostringstream out;
    for (std::size_t i = 0; i < problems.size(); ++i) {
        if (i > 0) out << '\n';
        out << problems[i].to_string();
    }
    return out.str();
}

std::size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<std::size_t> previous(b.size() + 1);
    std::vector<std::size_t> current(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) previous[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        current[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
            current[j] = std::min({previous[j] + 1, current[j - 1] + 1, substitution});
        }
        std::swap(previous, current);
    }
    return previous[b.size()];
}

}  // namespace

ConfigError::ConfigError(std::vector<Diagnostic> problems)
    : std::runtime_error(join_problems(problems)), problems_(std::move(problems)) {}

std::string did_you_mean(const std::string& given, const std::vector<std::string>& known) {
    std::string best;
    std::size_t best_distance = std::max<std::size_t>(2, given.size() / 3) + 1;
    for (const auto& candidate : known) {
        const std::size_t distance = edit_distance(given, candidate);
        if (distance < best_distance) {
            best_distance = distance;
            best = candidate;
        }
    }
    return best.empty() ? std::string() : "did you mean \"" + best + "\"?";
}

}  // namespace tattle
