// tattle C++ plugin SDK (header-only).
//
// Write a class deriving from tattle::sdk::Sink or tattle::sdk::Source, give it
// the static metadata below, and export it with one line:
//
//     class MySink : public tattle::sdk::Sink {
//      public:
//       static constexpr const char* kTypeName = "my_sink";
//       static constexpr const char* kVersion = "0.1.0";
//       static constexpr const char* kDescription = "Sends alerts somewhere";
//       static constexpr const char* kConfigSchema = R"({"type":"object"})";
//       explicit MySink(const tattle::sdk::CreateContext& ctx);
//       tattle::sdk::SendResult send(std::string_view alert_json) override;
//     };
//     TATTLE_EXPORT_SINK(MySink)
//
// The macro implements the C ABI of tattle_plugin.h: it catches every exception
// at the boundary and turns it into an error code plus last-error string.
// Compiled with TATTLE_PLUGIN_STATIC defined, the same macro registers the
// plugin in an in-process registry instead of exporting C symbols, so tests
// and single-file deployments can link plugins in without dlopen.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tattle_plugin.h"

namespace tattle::sdk {

// The host's services, as a plugin instance sees them.
class Host {
public:
    explicit Host(const tattle_host_api* api) : api_(api) {}
    void log(tattle_log_level level, std::string_view message) const {
        if (api_ == nullptr || api_->log == nullptr) return;
        std::string text(message);
        api_->log(api_->host_ctx, level, text.c_str());
    }
    void debug(std::string_view m) const { log(TATTLE_LOG_DEBUG, m); }
    void info(std::string_view m) const { log(TATTLE_LOG_INFO, m); }
    void warn(std::string_view m) const { log(TATTLE_LOG_WARN, m); }
    void error(std::string_view m) const { log(TATTLE_LOG_ERROR, m); }

private:
    const tattle_host_api* api_;
};

struct CreateContext {
    Host host;
    std::string instance_id;
    // The instance's config as JSON, already validated against kConfigSchema by the
    // host, with the schema's defaults filled in.
    std::string config_json;
    // The host understands "nothing now, call again" (a source may throw NothingNow);
    // false with a host older than ABI 1.1.
    bool host_accepts_again = false;
};

// What a sink says about one alert. The core owns retries and timing.
struct SendResult {
    enum class Code { Ok, Retry, Fail };
    Code code = Code::Ok;
    std::string message;
    std::optional<std::chrono::milliseconds> retry_after;

    static SendResult ok() { return {}; }
    static SendResult retry(std::string why,
                            std::optional<std::chrono::milliseconds> after = std::nullopt) {
        return {Code::Retry, std::move(why), after};
    }
    static SendResult fail(std::string why) { return {Code::Fail, std::move(why), std::nullopt}; }
};

class Sink {
public:
    virtual ~Sink() = default;
    virtual SendResult send(std::string_view alert_json) = 0;
    // Make everything sent so far durable.
    virtual void flush() {}
};

struct Batch {
    std::uint64_t id = 0;
    std::string origin;
    std::vector<std::uint8_t> data;
};

// Thrown by Source::next for a batch that exists but cannot be read; the host
// records it as a failed batch and keeps asking for the next one.
class BatchError : public std::exception {
public:
    BatchError(std::string origin, std::string message)
        : origin_(std::move(origin)), message_(std::move(message)) {}
    const char* what() const noexcept override { return message_.c_str(); }
    const std::string& origin() const noexcept { return origin_; }

private:
    std::string origin_;
    std::string message_;
};

// Thrown by Source::next when there is no batch now but there may be later (a queue
// that is empty at the moment). Only when CreateContext::host_accepts_again: the host
// then acknowledges what is settled and calls next again after a while.
class NothingNow : public std::exception {
public:
    const char* what() const noexcept override { return "no batch now"; }
};

class Source {
public:
    virtual ~Source() = default;
    // The next batch, or nullopt when a finite source is exhausted (or throws
    // NothingNow, see there).
    virtual std::optional<Batch> next() = 0;
    // settled: every alert of the batch is delivered or parked; otherwise release it.
    virtual void ack(std::uint64_t batch_id, bool settled) = 0;
};

// The ABI's functions as one table. The host fills it from a shared library's
// symbols or from the static registry.
struct PluginFunctions {
    const tattle_plugin_info* (*get_info)() = nullptr;
    const char* (*last_error)(void*) = nullptr;
    void* (*sink_create)(const tattle_create_args*, tattle_rc*) = nullptr;
    tattle_rc (*sink_send)(void*, const char*, size_t, tattle_send_result*) = nullptr;
    tattle_rc (*sink_flush)(void*) = nullptr;
    void (*sink_destroy)(void*) = nullptr;
    void* (*source_create)(const tattle_create_args*, tattle_rc*) = nullptr;
    tattle_rc (*source_next)(void*, tattle_batch*) = nullptr;
    tattle_rc (*source_ack)(void*, std::uint64_t, int32_t) = nullptr;
    void (*source_destroy)(void*) = nullptr;
};

inline std::vector<PluginFunctions>& static_registry() {
    static std::vector<PluginFunctions> registry;
    return registry;
}

namespace detail {

inline std::string& create_error() {
    thread_local std::string message;
    return message;
}

inline std::string describe_current_exception() {
    try {
        throw;
    } catch (const std::exception& e) {
        return e.what();
    } catch (...) {
        return "unknown exception";
    }
}

template <class Impl>
struct Instance {
    std::unique_ptr<Impl> impl;
    std::string last_error;
    std::string current_origin;  // keeps batch->origin alive until the next call
    // a list, so that handing out a new batch never moves the ones still outstanding
    std::list<Batch> outstanding;
};

template <class Impl, tattle_plugin_kind Kind>
const tattle_plugin_info* info() {
    static const tattle_plugin_info record = {
        sizeof(tattle_plugin_info), TATTLE_PLUGIN_ABI_MAJOR, TATTLE_PLUGIN_ABI_MINOR, Kind,
        Impl::kTypeName, Impl::kVersion, Impl::kDescription, Impl::kConfigSchema};
    return &record;
}

template <class Impl>
const char* last_error(void* handle) {
    if (handle == nullptr) return create_error().c_str();
    return static_cast<Instance<Impl>*>(handle)->last_error.c_str();
}

template <class Impl>
void* create(const tattle_create_args* args, tattle_rc* rc) {
    try {
        const bool has_host_flags =
            args->struct_size >= offsetof(tattle_create_args, host_flags) + sizeof(args->host_flags);
        CreateContext ctx{Host(args->host), args->instance_id ? args->instance_id : "",
                          args->config_json ? args->config_json : "{}",
                          has_host_flags && (args->host_flags & TATTLE_HOST_ACCEPTS_AGAIN) != 0};
        auto instance = std::make_unique<Instance<Impl>>();
        instance->impl = std::make_unique<Impl>(ctx);
        *rc = TATTLE_RC_OK;
        return instance.release();
    } catch (...) {
        create_error() = describe_current_exception();
        *rc = TATTLE_RC_ERROR;
        return nullptr;
    }
}

template <class Impl>
void destroy(void* handle) {
    delete static_cast<Instance<Impl>*>(handle);  // destructors must not throw
}

template <class Impl>
tattle_rc sink_send(void* handle, const char* json, size_t len, tattle_send_result* result) {
    auto* self = static_cast<Instance<Impl>*>(handle);
    try {
        SendResult r = self->impl->send(std::string_view(json, len));
        if (result != nullptr) {
            result->retry_after_ms = r.retry_after ? r.retry_after->count() : -1;
        }
        self->last_error = r.message;
        switch (r.code) {
            case SendResult::Code::Ok: return TATTLE_RC_OK;
            case SendResult::Code::Retry: return TATTLE_RC_RETRY;
            case SendResult::Code::Fail: return TATTLE_RC_FAIL;
        }
        return TATTLE_RC_ERROR;
    } catch (...) {
        // An unexpected exception is treated as temporary: the core retries
        // within its budget and then parks the alert, so nothing is lost.
        self->last_error = describe_current_exception();
        if (result != nullptr) result->retry_after_ms = -1;
        return TATTLE_RC_RETRY;
    }
}

template <class Impl>
tattle_rc sink_flush(void* handle) {
    auto* self = static_cast<Instance<Impl>*>(handle);
    try {
        self->impl->flush();
        return TATTLE_RC_OK;
    } catch (...) {
        self->last_error = describe_current_exception();
        return TATTLE_RC_ERROR;
    }
}

template <class Impl>
tattle_rc source_next(void* handle, tattle_batch* out) {
    auto* self = static_cast<Instance<Impl>*>(handle);
    try {
        std::optional<Batch> batch = self->impl->next();
        if (!batch) return TATTLE_RC_EOF;
        self->outstanding.push_back(std::move(*batch));
        const Batch& kept = self->outstanding.back();
        out->batch_id = kept.id;
        out->origin = kept.origin.c_str();
        out->data = kept.data.data();
        out->size = kept.data.size();
        return TATTLE_RC_OK;
    } catch (const NothingNow&) {
        return TATTLE_RC_AGAIN;
    } catch (const BatchError& e) {
        self->last_error = e.what();
        self->current_origin = e.origin();
        out->batch_id = 0;
        out->origin = self->current_origin.c_str();
        out->data = nullptr;
        out->size = 0;
        return TATTLE_RC_ERROR;
    } catch (...) {
        self->last_error = describe_current_exception();
        out->origin = nullptr;
        out->data = nullptr;
        out->size = 0;
        return TATTLE_RC_ERROR;
    }
}

template <class Impl>
tattle_rc source_ack(void* handle, std::uint64_t batch_id, int32_t outcome) {
    auto* self = static_cast<Instance<Impl>*>(handle);
    try {
        auto& kept = self->outstanding;
        kept.remove_if([batch_id](const Batch& b) { return b.id == batch_id; });
        self->impl->ack(batch_id, outcome == TATTLE_BATCH_SETTLED);
        return TATTLE_RC_OK;
    } catch (...) {
        self->last_error = describe_current_exception();
        return TATTLE_RC_ERROR;
    }
}

template <class Impl>
PluginFunctions sink_functions() {
    PluginFunctions f;
    f.get_info = &info<Impl, TATTLE_PLUGIN_KIND_SINK>;
    f.last_error = &last_error<Impl>;
    f.sink_create = &create<Impl>;
    f.sink_send = &sink_send<Impl>;
    f.sink_flush = &sink_flush<Impl>;
    f.sink_destroy = &destroy<Impl>;
    return f;
}

template <class Impl>
PluginFunctions source_functions() {
    PluginFunctions f;
    f.get_info = &info<Impl, TATTLE_PLUGIN_KIND_SOURCE>;
    f.last_error = &last_error<Impl>;
    f.source_create = &create<Impl>;
    f.source_next = &source_next<Impl>;
    f.source_ack = &source_ack<Impl>;
    f.source_destroy = &destroy<Impl>;
    return f;
}

inline bool register_static(const PluginFunctions& functions) {
    static_registry().push_back(functions);
    return true;
}

}  // namespace detail
}  // namespace tattle::sdk

#define TATTLE_SDK_CONCAT_INNER(a, b) a##b
#define TATTLE_SDK_CONCAT(a, b) TATTLE_SDK_CONCAT_INNER(a, b)

#if defined(TATTLE_PLUGIN_STATIC)

#define TATTLE_EXPORT_SINK(Impl)                                                 \
    [[maybe_unused]] static const bool TATTLE_SDK_CONCAT(tattle_registered_, __LINE__) = \
        ::tattle::sdk::detail::register_static(::tattle::sdk::detail::sink_functions<Impl>());
#define TATTLE_EXPORT_SOURCE(Impl)                                               \
    [[maybe_unused]] static const bool TATTLE_SDK_CONCAT(tattle_registered_, __LINE__) = \
        ::tattle::sdk::detail::register_static(::tattle::sdk::detail::source_functions<Impl>());

#else

#define TATTLE_SDK_EXPORT_COMMON(Impl, Kind)                                                    \
    extern "C" TATTLE_PLUGIN_EXPORT const tattle_plugin_info* tattle_plugin_get_info(void) {   \
        return ::tattle::sdk::detail::info<Impl, Kind>();                                      \
    }                                                                                          \
    extern "C" TATTLE_PLUGIN_EXPORT const char* tattle_plugin_last_error(void* handle) {       \
        return ::tattle::sdk::detail::last_error<Impl>(handle);                                \
    }

#define TATTLE_EXPORT_SINK(Impl)                                                                \
    TATTLE_SDK_EXPORT_COMMON(Impl, TATTLE_PLUGIN_KIND_SINK)                                     \
    extern "C" TATTLE_PLUGIN_EXPORT void* tattle_sink_create(const tattle_create_args* args,    \
                                                             tattle_rc* rc) {                   \
        return ::tattle::sdk::detail::create<Impl>(args, rc);                                   \
    }                                                                                           \
    extern "C" TATTLE_PLUGIN_EXPORT tattle_rc tattle_sink_send(void* h, const char* json,       \
                                                               size_t len,                      \
                                                               tattle_send_result* result) {    \
        return ::tattle::sdk::detail::sink_send<Impl>(h, json, len, result);                    \
    }                                                                                           \
    extern "C" TATTLE_PLUGIN_EXPORT tattle_rc tattle_sink_flush(void* h) {                      \
        return ::tattle::sdk::detail::sink_flush<Impl>(h);                                      \
    }                                                                                           \
    extern "C" TATTLE_PLUGIN_EXPORT void tattle_sink_destroy(void* h) {                         \
        ::tattle::sdk::detail::destroy<Impl>(h);                                                \
    }

#define TATTLE_EXPORT_SOURCE(Impl)                                                              \
    TATTLE_SDK_EXPORT_COMMON(Impl, TATTLE_PLUGIN_KIND_SOURCE)                                   \
    extern "C" TATTLE_PLUGIN_EXPORT void* tattle_source_create(const tattle_create_args* args,  \
                                                               tattle_rc* rc) {                 \
        return ::tattle::sdk::detail::create<Impl>(args, rc);                                   \
    }                                                                                           \
    extern "C" TATTLE_PLUGIN_EXPORT tattle_rc tattle_source_next(void* h, tattle_batch* b) {    \
        return ::tattle::sdk::detail::source_next<Impl>(h, b);                                  \
    }                                                                                           \
    extern "C" TATTLE_PLUGIN_EXPORT tattle_rc tattle_source_ack(void* h, uint64_t id,           \
                                                                int32_t outcome) {              \
        return ::tattle::sdk::detail::source_ack<Impl>(h, id, outcome);                         \
    }                                                                                           \
    extern "C" TATTLE_PLUGIN_EXPORT void tattle_source_destroy(void* h) {                       \
        ::tattle::sdk::detail::destroy<Impl>(h);                                                \
    }

#endif
