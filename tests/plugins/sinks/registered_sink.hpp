// A sink from the static registry, created and driven through the C ABI the way
// the host drives it; the HTTPS tests of every sink use it.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "tattle/sdk.hpp"

namespace tattle::sink_tests {

struct Outcome {
    tattle_rc rc = TATTLE_RC_ERROR;
    std::string message;
    std::int64_t retry_after_ms = -1;
};

class PluginSink {
public:
    PluginSink(std::string_view type, const std::string& config) {
        for (const auto& functions : tattle::sdk::static_registry()) {
            if (std::string_view(functions.get_info()->type_name) == type) plugin_ = &functions;
        }
        if (plugin_ == nullptr) throw std::runtime_error("no plugin " + std::string(type));
        const std::string instance_id(type);
        tattle_create_args args{sizeof(tattle_create_args), &host_, instance_id.c_str(), config.c_str()};
        tattle_rc rc = TATTLE_RC_ERROR;
        handle_ = plugin_->sink_create(&args, &rc);
        if (handle_ == nullptr) throw std::runtime_error(plugin_->last_error(nullptr));
    }
    ~PluginSink() { plugin_->sink_destroy(handle_); }
    PluginSink(const PluginSink&) = delete;
    PluginSink& operator=(const PluginSink&) = delete;

    Outcome send(std::string_view alert) {
        tattle_send_result result{sizeof(tattle_send_result), -1};
        Outcome outcome;
        outcome.rc = plugin_->sink_send(handle_, alert.data(), alert.size(), &result);
        outcome.message = plugin_->last_error(handle_);
        outcome.retry_after_ms = result.retry_after_ms;
        return outcome;
    }

private:
    tattle_host_api host_{sizeof(tattle_host_api), nullptr, nullptr};
    const tattle::sdk::PluginFunctions* plugin_ = nullptr;
    void* handle_ = nullptr;
};

}  // namespace tattle::sink_tests
