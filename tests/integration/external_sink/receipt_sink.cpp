// Writes one receipt line per alert to a file: the smallest useful destination.
#include <fstream>
#include <stdexcept>
#include <string>

#include <tattle/sdk.hpp>

namespace {

// The config is {"receipts": "<path>"}; the host validated it against the schema.
std::string receipts_path(const std::string& config_json) {
    const std::string key = "\"receipts\":\"";
    const auto start = config_json.find(key);
    if (start == std::string::npos) throw std::runtime_error("no receipts path in config");
    const auto end = config_json.find('"', start + key.size());
    return config_json.substr(start + key.size(), end - start - key.size());
}

class ReceiptSink final : public tattle::sdk::Sink {
public:
    static constexpr const char* kTypeName = "receipt";
    static constexpr const char* kVersion = "1.0.0";
    static constexpr const char* kDescription = "Writes a receipt line per alert (external plugin test)";
    static constexpr const char* kConfigSchema =
        R"json({"type":"object","properties":{"receipts":{"type":"string"}},
               "required":["receipts"],"additionalProperties":false})json";

    explicit ReceiptSink(const tattle::sdk::CreateContext& ctx)
        : out_(receipts_path(ctx.config_json), std::ios::app), id_(ctx.instance_id) {
        if (!out_) throw std::runtime_error("cannot open receipts file");
        ctx.host.info("receipt sink ready");
    }

    tattle::sdk::SendResult send(std::string_view alert_json) override {
        out_ << id_ << ' ' << alert_json.size() << ' ' << alert_json.substr(0, 13) << '\n';
        if (!out_) return tattle::sdk::SendResult::retry("write failed");
        return tattle::sdk::SendResult::ok();
    }
    void flush() override { out_.flush(); }

private:
    std::ofstream out_;
    std::string id_;
};

}  // namespace

TATTLE_EXPORT_SINK(ReceiptSink)
