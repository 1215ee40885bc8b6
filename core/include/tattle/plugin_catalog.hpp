#pragma once

#include <boost/json.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "tattle/sdk.hpp"
#include "tattle_plugin.h"

namespace tattle {

// A plugin file that could not be loaded: names the file and the reason.
class PluginLoadError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// A plugin the host knows: its functions, its info, and (for a loaded .so) the
// library, which every object created from the plugin keeps alive.
struct Plugin {
    sdk::PluginFunctions functions;
    tattle_plugin_kind kind = TATTLE_PLUGIN_KIND_SINK;
    std::string type_name;
    std::string version;
    std::string description;
    boost::json::value config_schema;
    std::string location;  // the .so path, or "built-in"
    std::shared_ptr<void> library;
};

const char* kind_name(tattle_plugin_kind kind) noexcept;

// What the host's callbacks know about the instance that calls them.
struct PluginHostContext {
    std::string log_prefix;  // sink slack_webhook "Slack Warnings"
};

// The result of a sink's send, as the core sees it.
struct SendOutcome {
    enum class Code { Ok, Retry, Fail };
    Code code = Code::Ok;
    std::string message;
    std::optional<std::chrono::milliseconds> retry_after;
};

// A live sink instance; destroys the plugin object when it goes.
class SinkInstance {
public:
    SinkInstance(std::shared_ptr<const Plugin> plugin, std::string id, const boost::json::object& config);
    ~SinkInstance();
    SinkInstance(const SinkInstance&) = delete;
    SinkInstance& operator=(const SinkInstance&) = delete;

    SendOutcome send(std::string_view alert_json);
    // Returns an error message, or empty on success.
    std::string flush();
    const std::string& id() const noexcept { return id_; }
    const Plugin& plugin() const noexcept { return *plugin_; }

private:
    std::shared_ptr<const Plugin> plugin_;
    std::string id_;
    std::unique_ptr<PluginHostContext> context_;
    tattle_host_api host_{};
    void* handle_ = nullptr;
};

struct SourceBatch {
    std::uint64_t id = 0;
    std::string origin;
    std::span<const std::uint8_t> data;  // valid until ack
};

// What the pipeline reads batches from: a source plugin, or a host's own input (the
// objects and messages of a Lambda invocation). Called from one thread.
class BatchSource {
public:
    virtual ~BatchSource() = default;

    // NothingNow: no batch at the moment, ask again later (a queue that is empty now).
    enum class NextStatus { Batch, Exhausted, BatchUnreadable, NothingNow };
    struct Next {
        NextStatus status = NextStatus::Exhausted;
        SourceBatch batch;   // with Batch
        std::string error;   // with BatchUnreadable (batch.origin names it when known)
    };
    virtual Next next() = 0;
    // settled: every alert of the batch is delivered or parked; else release it.
    // Returns an error message, or empty on success.
    virtual std::string ack(std::uint64_t batch_id, bool settled) = 0;
    virtual const std::string& id() const noexcept = 0;
};

class SourceInstance final : public BatchSource {
public:
    SourceInstance(std::shared_ptr<const Plugin> plugin, std::string id, const boost::json::object& config);
    ~SourceInstance() override;
    SourceInstance(const SourceInstance&) = delete;
    SourceInstance& operator=(const SourceInstance&) = delete;

    Next next() override;
    std::string ack(std::uint64_t batch_id, bool settled) override;
    const std::string& id() const noexcept override { return id_; }

private:
    std::shared_ptr<const Plugin> plugin_;
    std::string id_;
    std::unique_ptr<PluginHostContext> context_;
    tattle_host_api host_{};
    void* handle_ = nullptr;
};

// Every plugin the host can use: the built-in ones linked into the binary and
// the ones loaded from plugin directories.
class PluginCatalog {
public:
    // The plugins linked in statically (the SDK's static registry).
    void add_builtin_plugins();
    // Loads one plugin file. Throws PluginLoadError naming the file and why.
    std::shared_ptr<const Plugin> load_file(const std::filesystem::path& file);
    // Loads every tattle_*.so in a directory not tried before (load_file, load_wanted);
    // refusals are returned, not thrown.
    std::vector<std::string> load_directory(const std::filesystem::path& directory);
    // load_directory for each, in order.
    std::vector<std::string> load_directories(const std::vector<std::filesystem::path>& directories);
    // Makes sure the plugin of each kind and type is here, looking in the directories in
    // order: at the file named for it (tattle_<kind>_<type>.so) first, and only while one
    // is still missing, at every plugin file (load_directory). A start then loads the two
    // plugins a config names rather than all of them: each costs the dynamic linker
    // milliseconds, which a Lambda cold start pays. Refusals are returned, not thrown.
    struct Wanted {
        tattle_plugin_kind kind;
        std::string type_name;
    };
    std::vector<std::string> load_wanted(const std::vector<std::filesystem::path>& directories,
                                         const std::vector<Wanted>& wanted);

    // The default search path: <exe dir>/plugins, <exe dir>/../<libdir>/tattle/plugins,
    // then the directories in TATTLE_PLUGIN_PATH (colon-separated).
    static std::vector<std::filesystem::path> default_search_path();

    std::shared_ptr<const Plugin> find(tattle_plugin_kind kind, std::string_view type_name) const;
    std::vector<std::string> type_names(tattle_plugin_kind kind) const;
    const std::vector<std::shared_ptr<const Plugin>>& plugins() const noexcept { return plugins_; }

private:
    void add(std::shared_ptr<const Plugin> plugin);
    std::vector<std::shared_ptr<const Plugin>> plugins_;
    std::vector<std::filesystem::path> tried_files_;  // by load_file, loaded or refused
};

// Checks a plugin's info record and functions; throws PluginLoadError naming location.
void check_plugin(const sdk::PluginFunctions& functions, const std::string& location);

}  // namespace tattle
