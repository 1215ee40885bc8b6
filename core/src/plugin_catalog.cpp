#include "tattle/plugin_catalog.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>
#include <cstdlib>
#include <sstream>

#include "tattle/json_schema.hpp"

namespace tattle {
namespace fs = std::filesystem;

const char* kind_name(tattle_plugin_kind kind) noexcept {
    switch (kind) {
        case TATTLE_PLUGIN_KIND_SOURCE: return "source";
        case TATTLE_PLUGIN_KIND_SINK: return "sink";
    }
    return "unknown";
}

namespace {

void host_log(void* host_ctx, int32_t level, const char* message) {
    const auto* context = static_cast<const PluginHostContext*>(host_ctx);
    const std::string_view prefix = context != nullptr ? context->log_prefix : std::string_view("plugin");
    const char* text = message != nullptr ? message : "";
    switch (level) {
        case TATTLE_LOG_TRACE: spdlog::trace("{}: {}", prefix, text); break;
        case TATTLE_LOG_DEBUG: spdlog::debug("{}: {}", prefix, text); break;
        case TATTLE_LOG_INFO: spdlog::info("{}: {}", prefix, text); break;
        case TATTLE_LOG_WARN: spdlog::warn("{}: {}", prefix, text); break;
        default: spdlog::error("{}: {}", prefix, text); break;
    }
}

std::unique_ptr<PluginHostContext> make_context(const Plugin& plugin, const std::string& id) {
    auto context = std::make_unique<PluginHostContext>();
    context->log_prefix = std::string(kind_name(plugin.kind)) + " " + plugin.type_name + " \"" + id + "\"";
    return context;
}

tattle_host_api make_host_api(PluginHostContext* context) {
    tattle_host_api api{};
    api.struct_size = sizeof(tattle_host_api);
    api.host_ctx = context;
    api.log = &host_log;
    return api;
}

std::string last_error(const Plugin& plugin, void* handle) {
    const char* message = plugin.functions.last_error(handle);
    return message != nullptr && *message != '\0' ? message : "no error message given";
}

template <class CreateFn>
void* create_instance(const Plugin& plugin, CreateFn create, const tattle_host_api& host,
                      const std::string& id, const boost::json::object& config) {
    const std::string config_json = boost::json::serialize(config);
    tattle_create_args args{};
    args.struct_size = sizeof(tattle_create_args);
    args.host_flags = TATTLE_HOST_ACCEPTS_AGAIN;
    args.host = &host;
    args.instance_id = id.c_str();
    args.config_json = config_json.c_str();
    tattle_rc rc = TATTLE_RC_ERROR;
    void* handle = create(&args, &rc);
    if (rc != TATTLE_RC_OK || handle == nullptr) {
        throw std::runtime_error(std::string(kind_name(plugin.kind)) + " \"" + id + "\" (" +
                                 plugin.type_name + "): " + last_error(plugin, nullptr));
    }
    return handle;
}

}  // namespace

// ---- instances ---------------------------------------------------------------

SinkInstance::SinkInstance(std::shared_ptr<const Plugin> plugin, std::string id,
                           const boost::json::object& config)
    : plugin_(std::move(plugin)), id_(std::move(id)) {
    context_ = make_context(*plugin_, id_);
    host_ = make_host_api(context_.get());
    handle_ = create_instance(*plugin_, plugin_->functions.sink_create, host_, id_, config);
}

SinkInstance::~SinkInstance() {
    if (handle_ != nullptr) plugin_->functions.sink_destroy(handle_);
}

SendOutcome SinkInstance::send(std::string_view alert_json) {
    tattle_send_result result{};
    result.struct_size = sizeof(tattle_send_result);
    result.retry_after_ms = -1;
    const tattle_rc rc = plugin_->functions.sink_send(handle_, alert_json.data(), alert_json.size(), &result);
    SendOutcome outcome;
    switch (rc) {
        case TATTLE_RC_OK: outcome.code = SendOutcome::Code::Ok; return outcome;
        case TATTLE_RC_RETRY:
            outcome.code = SendOutcome::Code::Retry;
            if (result.retry_after_ms >= 0) outcome.retry_after = std::chrono::milliseconds(result.retry_after_ms);
            break;
        case TATTLE_RC_FAIL: outcome.code = SendOutcome::Code::Fail; break;
        default: outcome.code = SendOutcome::Code::Retry; break;
    }
    outcome.message = last_error(*plugin_, handle_);
    return outcome;
}

std::string SinkInstance::flush() {
    if (plugin_->functions.sink_flush == nullptr) return {};
    if (plugin_->functions.sink_flush(handle_) == TATTLE_RC_OK) return {};
    return last_error(*plugin_, handle_);
}

SourceInstance::SourceInstance(std::shared_ptr<const Plugin> plugin, std::string id,
                               const boost::json::object& config)
    : plugin_(std::move(plugin)), id_(std::move(id)) {
    context_ = make_context(*plugin_, id_);
    host_ = make_host_api(context_.get());
    handle_ = create_instance(*plugin_, plugin_->functions.source_create, host_, id_, config);
}

SourceInstance::~SourceInstance() {
    if (handle_ != nullptr) plugin_->functions.source_destroy(handle_);
}

SourceInstance::Next SourceInstance::next() {
    tattle_batch batch{};
    batch.struct_size = sizeof(tattle_batch);
    const tattle_rc rc = plugin_->functions.source_next(handle_, &batch);
    Next result;
    if (rc == TATTLE_RC_EOF) {
        result.status = NextStatus::Exhausted;
        return result;
    }
    if (rc == TATTLE_RC_AGAIN) {
        result.status = NextStatus::NothingNow;
        return result;
    }
    result.batch.origin = batch.origin != nullptr ? batch.origin : "";
    if (rc == TATTLE_RC_OK) {
        result.status = NextStatus::Batch;
        result.batch.id = batch.batch_id;
        result.batch.data = std::span<const std::uint8_t>(batch.data, batch.size);
        return result;
    }
    result.status = NextStatus::BatchUnreadable;
    result.error = last_error(*plugin_, handle_);
    return result;
}

std::string SourceInstance::ack(std::uint64_t batch_id, bool settled) {
    const tattle_rc rc = plugin_->functions.source_ack(
        handle_, batch_id, settled ? TATTLE_BATCH_SETTLED : TATTLE_BATCH_RELEASE);
    return rc == TATTLE_RC_OK ? std::string() : last_error(*plugin_, handle_);
}

// ---- catalog -----------------------------------------------------------------

void check_plugin(const sdk::PluginFunctions& functions, const std::string& location) {
    if (functions.get_info == nullptr) {
        throw PluginLoadError(location + ": not a tattle plugin (no tattle_plugin_get_info symbol)");
    }
    const tattle_plugin_info* info = functions.get_info();
    if (info == nullptr) throw PluginLoadError(location + ": tattle_plugin_get_info returned NULL");
    if (info->struct_size < sizeof(tattle_plugin_info)) {
        throw PluginLoadError(location + ": info record is " + std::to_string(info->struct_size) +
                              " bytes, smaller than ABI v1's " + std::to_string(sizeof(tattle_plugin_info)));
    }
    if (info->abi_major != TATTLE_PLUGIN_ABI_MAJOR) {
        throw PluginLoadError(location + ": built for plugin ABI " + std::to_string(info->abi_major) + "." +
                              std::to_string(info->abi_minor) + ", this tattle speaks ABI " +
                              std::to_string(TATTLE_PLUGIN_ABI_MAJOR) + "." +
                              std::to_string(TATTLE_PLUGIN_ABI_MINOR) + " (major versions must match)");
    }
    if (info->abi_minor > TATTLE_PLUGIN_ABI_MINOR) {
        throw PluginLoadError(location + ": built for plugin ABI " + std::to_string(info->abi_major) + "." +
                              std::to_string(info->abi_minor) + ", newer than this tattle's " +
                              std::to_string(TATTLE_PLUGIN_ABI_MAJOR) + "." +
                              std::to_string(TATTLE_PLUGIN_ABI_MINOR) + "; upgrade tattle");
    }
    if (info->type_name == nullptr || *info->type_name == '\0') {
        throw PluginLoadError(location + ": info record has no type name");
    }
    auto require = [&](bool present, const char* symbol) {
        if (!present) throw PluginLoadError(location + ": missing symbol " + symbol);
    };
    require(functions.last_error != nullptr, "tattle_plugin_last_error");
    if (info->kind == TATTLE_PLUGIN_KIND_SINK) {
        require(functions.sink_create != nullptr, "tattle_sink_create");
        require(functions.sink_send != nullptr, "tattle_sink_send");
        require(functions.sink_destroy != nullptr, "tattle_sink_destroy");
    } else if (info->kind == TATTLE_PLUGIN_KIND_SOURCE) {
        require(functions.source_create != nullptr, "tattle_source_create");
        require(functions.source_next != nullptr, "tattle_source_next");
        require(functions.source_ack != nullptr, "tattle_source_ack");
        require(functions.source_destroy != nullptr, "tattle_source_destroy");
    } else {
        throw PluginLoadError(location + ": unknown plugin kind " + std::to_string(info->kind));
    }
}

namespace {

std::shared_ptr<Plugin> describe(const sdk::PluginFunctions& functions, std::string location,
                                 std::shared_ptr<void> library) {
    check_plugin(functions, location);
    const tattle_plugin_info* info = functions.get_info();
    auto plugin = std::make_shared<Plugin>();
    plugin->functions = functions;
    plugin->kind = static_cast<tattle_plugin_kind>(info->kind);
    plugin->type_name = info->type_name;
    plugin->version = info->version != nullptr ? info->version : "";
    plugin->description = info->description != nullptr ? info->description : "";
    const char* schema_text = info->config_schema != nullptr ? info->config_schema : R"({"type":"object"})";
    boost::system::error_code ec;
    plugin->config_schema = boost::json::parse(schema_text, ec);
    if (ec) {
        throw PluginLoadError(location + ": config schema of \"" + plugin->type_name +
                              "\" is not valid JSON: " + ec.message());
    }
    try {
        check_schema(plugin->config_schema);
    } catch (const std::exception& e) {
        throw PluginLoadError(location + ": config schema of \"" + plugin->type_name + "\": " + e.what());
    }
    plugin->location = std::move(location);
    plugin->library = std::move(library);
    return plugin;
}

template <class Fn>
Fn* optional_symbol(boost::dll::shared_library& library, const char* name) {
    return library.has(name) ? &library.get<Fn>(name) : nullptr;
}

}  // namespace

void PluginCatalog::add(std::shared_ptr<const Plugin> plugin) {
    if (auto existing = find(plugin->kind, plugin->type_name)) {
        throw PluginLoadError(plugin->location + ": " + kind_name(plugin->kind) + " type \"" +
                              plugin->type_name + "\" is already provided by " + existing->location);
    }
    plugins_.push_back(std::move(plugin));
}

void PluginCatalog::add_builtin_plugins() {
    for (const auto& functions : sdk::static_registry()) {
        add(describe(functions, "built-in", nullptr));
    }
}

std::shared_ptr<const Plugin> PluginCatalog::load_file(const fs::path& file) {
    tried_files_.push_back(file);
    auto library = std::make_shared<boost::dll::shared_library>();
    boost::dll::fs::error_code ec;
    library->load(file, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local, ec);
    if (ec) {
        // dlerror() tells more than the error code (missing dependency, wrong ELF class).
        const char* reason = dlerror();
        throw PluginLoadError(file.string() + ": cannot load: " + (reason != nullptr ? reason : ec.message()));
    }
    sdk::PluginFunctions functions;
    using sdk::PluginFunctions;
    functions.get_info = optional_symbol<const tattle_plugin_info*()>(*library, "tattle_plugin_get_info");
    functions.last_error = optional_symbol<const char*(void*)>(*library, "tattle_plugin_last_error");
    functions.sink_create = optional_symbol<void*(const tattle_create_args*, tattle_rc*)>(*library, "tattle_sink_create");
    functions.sink_send = optional_symbol<tattle_rc(void*, const char*, size_t, tattle_send_result*)>(*library, "tattle_sink_send");
    functions.sink_flush = optional_symbol<tattle_rc(void*)>(*library, "tattle_sink_flush");
    functions.sink_destroy = optional_symbol<void(void*)>(*library, "tattle_sink_destroy");
    functions.source_create = optional_symbol<void*(const tattle_create_args*, tattle_rc*)>(*library, "tattle_source_create");
    functions.source_next = optional_symbol<tattle_rc(void*, tattle_batch*)>(*library, "tattle_source_next");
    functions.source_ack = optional_symbol<tattle_rc(void*, std::uint64_t, int32_t)>(*library, "tattle_source_ack");
    functions.source_destroy = optional_symbol<void(void*)>(*library, "tattle_source_destroy");
    auto plugin = describe(functions, file.string(), library);
    add(plugin);
    return plugin;
}

std::vector<std::string> PluginCatalog::load_directory(const fs::path& directory) {
    std::vector<std::string> refusals;
    std::error_code ec;
    if (!fs::is_directory(directory, ec)) return refusals;
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(directory, ec)) {
        const auto name = entry.path().filename().string();
        if (entry.is_regular_file(ec) && name.rfind("tattle_", 0) == 0 && entry.path().extension() == ".so" &&
            std::find(tried_files_.begin(), tried_files_.end(), entry.path()) == tried_files_.end()) {
            files.push_back(entry.path());
        }
    }
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
        try {
            load_file(file);
        } catch (const PluginLoadError& e) {
            refusals.emplace_back(e.what());
        }
    }
    return refusals;
}

namespace {

// A type name that can be part of a file name as it is: no path separators, no "..".
bool plain_file_name_part(std::string_view type_name) {
    return !type_name.empty() && std::all_of(type_name.begin(), type_name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    });
}

}  // namespace

std::vector<std::string> PluginCatalog::load_wanted(const std::vector<fs::path>& directories,
                                                    const std::vector<Wanted>& wanted) {
    std::vector<std::string> refusals;
    auto missing = [&] {
        return std::any_of(wanted.begin(), wanted.end(),
                           [&](const Wanted& one) { return find(one.kind, one.type_name) == nullptr; });
    };
    for (const auto& directory : directories) {
        for (const auto& one : wanted) {
            if (find(one.kind, one.type_name) != nullptr || !plain_file_name_part(one.type_name)) continue;
            const fs::path file = directory / ("tattle_" + std::string(kind_name(one.kind)) + "_" + one.type_name + ".so");
            std::error_code ec;
            if (!fs::is_regular_file(file, ec) ||
                std::find(tried_files_.begin(), tried_files_.end(), file) != tried_files_.end()) {
                continue;
            }
            try {
                load_file(file);
            } catch (const PluginLoadError& e) {
                refusals.emplace_back(e.what());
            }
        }
    }
    // A plugin whose file is named otherwise, or a type no plugin has (whose error lists
    // every type there is).
    if (missing()) {
        auto more = load_directories(directories);
        refusals.insert(refusals.end(), more.begin(), more.end());
    }
    return refusals;
}

std::vector<std::string> PluginCatalog::load_directories(const std::vector<fs::path>& directories) {
    std::vector<std::string> refusals;
    for (const auto& directory : directories) {
        auto more = load_directory(directory);
        refusals.insert(refusals.end(), more.begin(), more.end());
    }
    return refusals;
}

std::vector<fs::path> PluginCatalog::default_search_path() {
    std::vector<fs::path> dirs;
    std::error_code ec;
    const fs::path exe_dir = fs::path(boost::dll::program_location(ec).parent_path());
    if (!ec) {
        dirs.push_back(exe_dir / "plugins");
        dirs.push_back((exe_dir / TATTLE_PLUGIN_DIR_FROM_BIN).lexically_normal());
    }
    if (const char* extra = std::getenv("TATTLE_PLUGIN_PATH"); extra != nullptr) {
        std::stringstream list(extra);
        std::string dir;
        while (std::getline(list, dir, ':')) {
            if (!dir.empty()) dirs.emplace_back(dir);
        }
    }
    return dirs;
}

std::shared_ptr<const Plugin> PluginCatalog::find(tattle_plugin_kind kind, std::string_view type_name) const {
    for (const auto& plugin : plugins_) {
        if (plugin->kind == kind && plugin->type_name == type_name) return plugin;
    }
    return nullptr;
}

std::vector<std::string> PluginCatalog::type_names(tattle_plugin_kind kind) const {
    std::vector<std::string> names;
    for (const auto& plugin : plugins_) {
        if (plugin->kind == kind) names.push_back(plugin->type_name);
    }
    std::sort(names.begin(), names.end());
    return names;
}

}  // namespace tattle
