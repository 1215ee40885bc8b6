#pragma once

#include <chrono>

namespace tattle {

// CPU time (user + system) used so far by the calling thread, and by every thread of
// the process, ended ones included. What a run reports per kind of thread, so that an
// operator sees whether more `workers` can help.
std::chrono::nanoseconds thread_cpu_time() noexcept;
std::chrono::nanoseconds process_cpu_time() noexcept;

}  // namespace tattle
