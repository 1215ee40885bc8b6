#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace tattle {

// Bounds on what one batch may cost (the root config's [limits] table). Input is
// shaped by whoever can write to the bucket or the queue, and by attacker-chosen
// fields in CloudTrail records: every limit keeps one hostile batch or record from
// stalling the pipeline or exhausting memory. README "Limits" explains each.
struct InputLimits {
    // A batch (S3 object, file, message body) as handed over, compressed.
    std::size_t max_batch_bytes = std::size_t{256} << 20;
    // Its decompressed size: a few KiB of gzip can inflate to gigabytes.
    std::size_t max_decompressed_bytes = std::size_t{4} << 30;
    // One record's JSON text (CloudTrail itself caps an event at 256 KB).
    std::size_t max_record_bytes = std::size_t{1} << 20;
    // Nesting within one record (objects and arrays).
    std::size_t max_depth = 128;
    std::size_t max_records_per_batch = 1'000'000;
    std::size_t max_alerts_per_batch = 10'000;
    // What libjq may spend on one rule for one event before the rule is stopped and
    // disabled (rule_sandbox.hpp): CPU time, and memory above the evaluator's own.
    std::size_t max_rule_cpu_ms = 1'000;
    std::size_t max_rule_memory_bytes = std::size_t{256} << 20;
};

// The keys of [limits] on input, as messages and metrics name them ("max_record_bytes").
const std::vector<std::string>& input_limit_keys();
// Every key of [limits]: the input limits and the rule budget.
const std::vector<std::string>& limit_keys();

}  // namespace tattle
