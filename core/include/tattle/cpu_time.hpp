#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace tattle {

// CPU time (user + system) used so far by the calling thread, and by every thread of
// the process, ended ones included.
std::chrono::nanoseconds thread_cpu_time() noexcept;
std::chrono::nanoseconds process_cpu_time() noexcept;

// What a thread of the pipeline does, for telling an operator where the CPU goes: when
// the pipeline thread or delivery keeps a CPU busy, more `workers` cannot help.
enum class ThreadRole : std::size_t {
    batch_worker,  // decoding, filtering, rendering alerts
    delivery,      // an outbox's worker and its sink
    pipeline,      // reading the sources, routing alerts, acknowledging batches
};

// CPU time of the process's threads by role: of those that ended and, up to now, of
// those still running, so that a daemon's run, which may last for weeks, shows it live.
struct CpuByRole {
    std::chrono::nanoseconds batch_workers{0};
    std::chrono::nanoseconds delivery{0};
    std::chrono::nanoseconds pipeline{0};
};
CpuByRole cpu_time_by_role();

// While it lives, the CPU time the calling thread uses counts for the role (from its
// construction on). A thread has at most one at a time.
class CountedThread {
public:
    explicit CountedThread(ThreadRole role);
    ~CountedThread();
    CountedThread(const CountedThread&) = delete;
    CountedThread& operator=(const CountedThread&) = delete;
    CountedThread(CountedThread&&) = delete;
    CountedThread& operator=(CountedThread&&) = delete;

private:
    std::uint64_t id_ = 0;  // among the running threads (cpu_time.cpp)
};

}  // namespace tattle
