#include "tattle/cpu_time.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <latch>
#include <thread>

namespace tattle {
namespace {

using namespace std::chrono_literals;

// Keeps the calling thread busy until it has used `amount` more CPU time.
void burn(std::chrono::nanoseconds amount) {
    const auto until = thread_cpu_time() + amount;
    volatile std::uint64_t work = 0;
    while (thread_cpu_time() < until) {
        for (int i = 0; i < 1000; ++i) work = work + 1;
    }
}

TEST(CpuByRole, AThreadCountsForItsRoleWhileItRunsAndOnceItEnded) {
    const CpuByRole before = cpu_time_by_role();
    std::latch burnt(1);
    std::latch may_end(1);
    std::thread delivery([&] {
        const CountedThread counted(ThreadRole::delivery);
        burn(50ms);
        burnt.count_down();
        may_end.wait();
    });
    burnt.wait();
    const CpuByRole during = cpu_time_by_role();
    may_end.count_down();
    delivery.join();
    const CpuByRole after = cpu_time_by_role();

    EXPECT_GE(during.delivery - before.delivery, 50ms) << "a running thread's time is read live";
    EXPECT_GE(after.delivery, during.delivery);
    EXPECT_LT(after.delivery - before.delivery, 80ms) << "an ended thread is counted once";
    EXPECT_EQ(after.batch_workers, before.batch_workers) << "only its own role";
    EXPECT_EQ(after.pipeline, before.pipeline);
}

TEST(CpuByRole, TimeCountsFromTheConstructionToTheEnd) {
    const CpuByRole before = cpu_time_by_role();
    burn(20ms);
    {
        const CountedThread counted(ThreadRole::pipeline);
        burn(30ms);
        const CpuByRole during = cpu_time_by_role();
        EXPECT_GE(during.pipeline - before.pipeline, 30ms);
        EXPECT_LT(during.pipeline - before.pipeline, 45ms) << "the 20 ms before it do not count";
    }
    const CpuByRole after = cpu_time_by_role();
    EXPECT_GE(after.pipeline - before.pipeline, 30ms);
    burn(20ms);
    EXPECT_EQ(cpu_time_by_role().pipeline, after.pipeline) << "nor what comes after it";
}

TEST(CpuByRole, ThreadsOfOneRoleAddUp) {
    const CpuByRole before = cpu_time_by_role();
    std::latch burnt(2);
    std::latch may_end(1);
    auto worker = [&] {
        const CountedThread counted(ThreadRole::batch_worker);
        burn(30ms);
        burnt.count_down();
        may_end.wait();
    };
    std::thread first(worker);
    std::thread second(worker);
    burnt.wait();
    EXPECT_GE(cpu_time_by_role().batch_workers - before.batch_workers, 60ms);
    may_end.count_down();
    first.join();
    second.join();
    EXPECT_GE(cpu_time_by_role().batch_workers - before.batch_workers, 60ms);
    EXPECT_EQ(cpu_time_by_role().delivery, before.delivery);
}

}  // namespace
}  // namespace tattle
