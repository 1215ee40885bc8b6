#include "tattle/cpu_time.hpp"

#include <ctime>

namespace tattle {

namespace {

std::chrono::nanoseconds cpu_clock(clockid_t clock) noexcept {
    timespec now{};
    if (clock_gettime(clock, &now) != 0) return std::chrono::nanoseconds(0);
    return std::chrono::seconds(now.tv_sec) + std::chrono::nanoseconds(now.tv_nsec);
}

}  // namespace

std::chrono::nanoseconds thread_cpu_time() noexcept { return cpu_clock(CLOCK_THREAD_CPUTIME_ID); }

std::chrono::nanoseconds process_cpu_time() noexcept { return cpu_clock(CLOCK_PROCESS_CPUTIME_ID); }

}  // namespace tattle
