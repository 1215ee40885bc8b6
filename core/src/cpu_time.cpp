#include "tattle/cpu_time.hpp"

#include <pthread.h>

#include <array>
#include <ctime>
#include <list>
#include <mutex>

namespace tattle {

namespace {

std::chrono::nanoseconds cpu_clock(clockid_t clock) noexcept {
    timespec now{};
    if (clock_gettime(clock, &now) != 0) return std::chrono::nanoseconds(0);
    return std::chrono::seconds(now.tv_sec) + std::chrono::nanoseconds(now.tv_nsec);
}

struct RunningThread {
    std::uint64_t id;
    ThreadRole role;
    clockid_t clock;  // the thread's CPU clock, readable from any thread while it runs
    std::chrono::nanoseconds at_start;
};

// A running thread leaves the list (under the mutex) before it ends, so a clock in the
// list always belongs to a live thread.
struct RoleTotals {
    std::mutex mutex;
    std::array<std::chrono::nanoseconds, 3> ended{};
    std::list<RunningThread> running;
    std::uint64_t next_id = 0;
};

RoleTotals& role_totals() {
    // Never destroyed: a thread may still end while the process exits.
    static auto* totals = new RoleTotals;
    return *totals;
}

std::chrono::nanoseconds& of(std::array<std::chrono::nanoseconds, 3>& totals, ThreadRole role) {
    return totals.at(static_cast<std::size_t>(role));
}

}  // namespace

std::chrono::nanoseconds thread_cpu_time() noexcept { return cpu_clock(CLOCK_THREAD_CPUTIME_ID); }

std::chrono::nanoseconds process_cpu_time() noexcept { return cpu_clock(CLOCK_PROCESS_CPUTIME_ID); }

CountedThread::CountedThread(ThreadRole role) {
    clockid_t clock = CLOCK_THREAD_CPUTIME_ID;
    // Without its own clock id (never on Linux) the thread's time is read only as it ends.
    const bool has_clock = pthread_getcpuclockid(pthread_self(), &clock) == 0;
    RoleTotals& totals = role_totals();
    std::lock_guard lock(totals.mutex);
    id_ = totals.next_id++;
    totals.running.push_front(
        {id_, role, has_clock ? clock : CLOCK_THREAD_CPUTIME_ID, thread_cpu_time()});
}

CountedThread::~CountedThread() {
    RoleTotals& totals = role_totals();
    const std::chrono::nanoseconds now = thread_cpu_time();
    std::lock_guard lock(totals.mutex);
    for (auto it = totals.running.begin(); it != totals.running.end(); ++it) {
        if (it->id != id_) continue;
        of(totals.ended, it->role) += now - it->at_start;
        totals.running.erase(it);
        return;
    }
}

CpuByRole cpu_time_by_role() {
    RoleTotals& totals = role_totals();
    std::lock_guard lock(totals.mutex);
    std::array<std::chrono::nanoseconds, 3> sum = totals.ended;
    for (const RunningThread& thread : totals.running) {
        // CLOCK_THREAD_CPUTIME_ID here would be the reader's own: such a thread counts when it
        // ends.
        if (thread.clock == CLOCK_THREAD_CPUTIME_ID) continue;
        of(sum, thread.role) += cpu_clock(thread.clock) - thread.at_start;
    }
    return {of(sum, ThreadRole::batch_worker), of(sum, ThreadRole::delivery),
            of(sum, ThreadRole::pipeline)};
}

}  // namespace tattle
