#include "tattle/backtest.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace tattle {
namespace {

using namespace std::chrono_literals;

BacktestProgress progress_of(std::size_t batches, std::size_t events, std::uint64_t bytes_read,
                             std::uint64_t bytes_total, std::chrono::seconds elapsed) {
    BacktestProgress progress;
    progress.batches = batches;
    progress.events = events;
    progress.bytes_read = bytes_read;
    progress.bytes_total = bytes_total;
    progress.elapsed = elapsed;
    return progress;
}

TEST(BacktestProgressLine, ABarThousandsSeparatorsAndTheTimeLeft) {
    EXPECT_EQ(backtest_progress_line(progress_of(3, 1234567, 250, 1000, 10s), 8),
              "\r[##......] 25%  1,234,567 events  123,456 events/s  ETA 0:00:30\x1b[K");
}

TEST(BacktestProgressLine, WithoutATotalItCountsBatches) {
    EXPECT_EQ(backtest_progress_line(progress_of(1000, 999, 5000, 0, 1s), 8),
              "\r1,000 batches  999 events  999 events/s\x1b[K");
}

TEST(BacktestProgressLine, AFinishedBarIsFullAndHasNoTimeLeft) {
    EXPECT_EQ(backtest_progress_line(progress_of(1, 100, 1000, 1000, 2s), 4),
              "\r[####] 100%  100 events  50 events/s\x1b[K");
}

}  // namespace
}  // namespace tattle
