#include "file_source.hpp"

#include <glob.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>

namespace tattle::sources {
namespace fs = std::filesystem;

FileSourceConfig parse_file_source_config(const std::string& config_json) {
    // The host validated the config against the schema; only read it here.
    const auto config = boost::json::parse(config_json).as_object();
    FileSourceConfig parsed;
    for (const auto& path : config.at("paths").as_array()) parsed.paths.emplace_back(path.as_string());
    for (const auto& ext : config.at("extensions").as_array()) parsed.extensions.emplace_back(ext.as_string());
    return parsed;
}

namespace {

bool has_glob_characters(const std::string& path) {
    return path.find_first_of("*?[") != std::string::npos;
}

bool ends_with(const std::string& text, const std::string& suffix) {
    return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::vector<std::uint8_t> read_stream(std::istream& in) {
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

FileSource::FileSource(FileSourceConfig config) : config_(std::move(config)) {
    for (const auto& path : config_.paths) expand(path);
}

void FileSource::expand(const std::string& path) {
    if (path == "-") {
        pending_.push_back(path);
        return;
    }
    if (has_glob_characters(path)) {
        glob_t matches{};
        const int rc = ::glob(path.c_str(), GLOB_NOSORT, nullptr, &matches);
        std::vector<std::string> found;
        if (rc == 0) {
            for (std::size_t i = 0; i < matches.gl_pathc; ++i) found.emplace_back(matches.gl_pathv[i]);
        }
        globfree(&matches);
        if (found.empty()) {
            // Keep the pattern so that next() reports it: a typo must not pass silently.
            pending_.push_back(path);
            return;
        }
        std::sort(found.begin(), found.end());
        for (const auto& match : found) expand(match);
        return;
    }
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
        std::vector<std::string> files;
        for (auto it = fs::recursive_directory_iterator(path, fs::directory_options::skip_permission_denied, ec);
             it != fs::recursive_directory_iterator(); it.increment(ec)) {
            if (ec) break;
            if (!it->is_regular_file(ec)) continue;
            const std::string name = it->path().string();
            const bool wanted = std::any_of(config_.extensions.begin(), config_.extensions.end(),
                                            [&](const std::string& ext) { return ends_with(name, ext); });
            if (wanted) files.push_back(name);
        }
        std::sort(files.begin(), files.end());
        pending_.insert(pending_.end(), files.begin(), files.end());
        return;
    }
    pending_.push_back(path);
}

std::optional<sdk::Batch> FileSource::next() {
    if (pending_.empty()) return std::nullopt;
    const std::string path = pending_.front();
    pending_.pop_front();

    sdk::Batch batch;
    batch.id = next_id_++;
    batch.origin = path == "-" ? "<stdin>" : path;
    if (path == "-") {
        batch.data = read_stream(std::cin);
        return batch;
    }
    if (has_glob_characters(path)) throw sdk::BatchError(path, "no file matches this pattern");
    std::error_code ec;
    if (fs::is_directory(path, ec)) throw sdk::BatchError(path, "is a directory");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw sdk::BatchError(path, std::string("cannot open: ") + std::strerror(errno));
    batch.data = read_stream(in);
    if (in.bad()) throw sdk::BatchError(path, std::string("read failed: ") + std::strerror(errno));
    return batch;
}

}  // namespace tattle::sources
