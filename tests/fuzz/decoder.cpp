// decode_batch over any bytes: gzip or not, {"Records": [...]}, JSON lines, single events.
// Whatever the bytes, it returns a report or throws DecodeError; each event it hands out is
// an object, indexes count up, and the report's count matches the calls.

#include <boost/json.hpp>

#include "fuzz_support.hpp"
#include "tattle/decoder.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace tattle;
    std::size_t events = 0;
    try {
        const DecodeReport report =
            decode_batch({data, size}, "fuzz", [&](boost::json::object&& event, std::size_t index) {
                (void)event;
                fuzz::require(index >= events, "event indexes go backwards");
                ++events;
            });
        fuzz::require(report.events == events, "report.events differs from the events handed out");
        fuzz::require(report.skip_reasons.size() <= report.skipped_documents + report.record_errors.size() + 1,
                      "more skip reasons than skipped documents");
    } catch (const DecodeError& error) {
        fuzz::require(error.what()[0] != '\0', "DecodeError without a message");
    }
    return 0;
}
