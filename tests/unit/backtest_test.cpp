#include "tattle/backtest.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace tattle {
namespace {

using namespace std::chrono_literals;

TEST(BacktestProgressLine, ABarThousandsSeparatorsAndTheTimeLeft) {
    BacktestProgress progress;
    progress.events = 1234567;
    progress.bytes_read = 250;
    progress.bytes_total = 1000;
    progress.elapsed = 10s;
    EXPECT_EQ(backtest_progress_line(progress, 8),
              "\r[##......] 25%  1,234,567 events  123,456 events/s  ETA 0:00:30\x1b[K");
}

TEST(BacktestProgressLine, WithoutATotalItCountsBatches) {
    BacktestProgress progress;
    progress.batches = 1000;
    progress.events = 999;
    progress.elapsed = 1s;
    EXPECT_EQ(backtest_progress_line(progress, 8),
              "\r1,000 batches  999 events  999 events/s\x1b[K");
}

TEST(BacktestProgressLine, AFinishedBarIsFullAndHasNoTimeLeft) {
    BacktestProgress progress;
    progress.events = 100;
    progress.bytes_read = 1000;
    progress.bytes_total = 1000;
    progress.elapsed = 2s;
    EXPECT_EQ(backtest_progress_line(progress, 4), "\r[####] 100%  100 events  50 events/s\x1b[K");
}

}  // namespace
}  // namespace tattle
