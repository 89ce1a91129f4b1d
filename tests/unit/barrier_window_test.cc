// The barrier algorithm alone, without streams: sequence pairing, missing ranks, waking,
// deadlines and stop requests.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "comm/barrier_window.h"

namespace distbarrier::comm {
namespace {

std::vector<int> Ranks(int n) {
  std::vector<int> ranks(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) ranks[i] = i;
  return ranks;
}

TEST(BarrierWindowTest, CompleteOnlyWhenEveryRequiredRankReachedTheSequence) {
  BarrierWindow window(3);
  const auto all = Ranks(3);
  window.Arrive(0, 1, /*arrival_ns=*/0, all, nullptr);
  window.Arrive(2, 1, /*arrival_ns=*/0, all, nullptr);
  EXPECT_FALSE(window.Complete(1, all));
  EXPECT_EQ(window.Missing(1, all), std::vector<int>{1});
  window.Arrive(1, 1, /*arrival_ns=*/0, all, nullptr);
  EXPECT_TRUE(window.Complete(1, all));
  EXPECT_TRUE(window.Missing(1, all).empty());
  EXPECT_FALSE(window.Complete(2, all));  // barrier 2 is a new barrier: nothing to reset
  EXPECT_EQ(window.Missing(2, all), (std::vector<int>{0, 1, 2}));
}

TEST(BarrierWindowTest, ARankAheadCountsAsArrivedForEarlierBarriers) {
  BarrierWindow window(2);
  const auto all = Ranks(2);
  window.Arrive(0, 5, /*arrival_ns=*/0, all, nullptr);
  window.Arrive(1, 4, /*arrival_ns=*/0, all, nullptr);
  EXPECT_TRUE(window.Complete(4, all));
  EXPECT_FALSE(window.Complete(5, all));
  EXPECT_EQ(window.ArrivedSequence(0), 5u);
}

TEST(BarrierWindowTest, RequiredSubsetIgnoresOthers) {
  BarrierWindow window(4);
  const std::vector<int> survivors = {0, 1, 3};
  for (int rank : survivors) window.Arrive(rank, 1, /*arrival_ns=*/0, survivors, nullptr);
  EXPECT_TRUE(window.Complete(1, survivors));
  EXPECT_FALSE(window.Complete(1, Ranks(4)));
}

TEST(BarrierWindowTest, WaitTimesOutAtTheDeadline) {
  BarrierWindow window(2);
  const auto all = Ranks(2);
  window.Arrive(0, 1, /*arrival_ns=*/0, all, nullptr);
  WaitOptions options;
  options.deadline = Clock::now() + std::chrono::milliseconds(5);
  EXPECT_EQ(window.Wait(1, options, std::stop_token()), WaitResult::kTimedOut);
}

TEST(BarrierWindowTest, WaitStopsWhenAskedAndWakeAllIsCalled) {
  BarrierWindow window(2);
  const auto all = Ranks(2);
  window.Arrive(0, 1, /*arrival_ns=*/0, all, nullptr);
  std::stop_source stop;
  std::atomic<int> result{-1};
  std::thread waiter([&] {
    std::stop_callback wake(stop.get_token(), [&] { window.WakeAll(); });
    result = static_cast<int>(window.Wait(1, WaitOptions{}, stop.get_token()));
  });
  stop.request_stop();
  waiter.join();
  EXPECT_EQ(result.load(), static_cast<int>(WaitResult::kStopped));
}

TEST(BarrierWindowTest, SleepersAreWokenByTheCompletingArrival) {
  constexpr int kRanks = 8;
  constexpr int kBarriers = 2000;
  BarrierWindow window(kRanks);
  const auto all = Ranks(kRanks);
  std::vector<std::thread> threads;
  std::atomic<int> released{0};
  std::atomic<int> claims{0};
  for (int rank = 0; rank < kRanks; ++rank) {
    threads.emplace_back([&, rank] {
      for (uint64_t seq = 1; seq <= kBarriers; ++seq) {
        window.Arrive(rank, seq, /*arrival_ns=*/0, all, [&](uint64_t completed, const std::function<void()>& release) {
          // Exactly one arrival per barrier claims it, in barrier order.
          EXPECT_EQ(completed, static_cast<uint64_t>(claims.fetch_add(1) + 1));
          release();
        });
        if (window.Wait(seq, WaitOptions{}, std::stop_token()) == WaitResult::kReleased) released++;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(released.load(), kRanks * kBarriers);
  EXPECT_EQ(claims.load(), kBarriers);
}

TEST(BarrierWindowTest, TheCompletingArrivalsHookPublishesTheRelease) {
  BarrierWindow window(2);
  const auto all = Ranks(2);
  int hook_calls = 0;
  auto hook = [&](uint64_t seq, const std::function<void()>& release) {
    ++hook_calls;
    EXPECT_EQ(seq, 1u);
    EXPECT_FALSE(window.Released(1));  // the hook decides when
    release();
    EXPECT_TRUE(window.Released(1));
    EXPECT_EQ(window.ArrivalNs(0, 1), 100);  // still readable after the release
    EXPECT_EQ(window.ArrivalNs(1, 1), 250);
  };
  window.Arrive(0, 1, 100, all, hook);
  EXPECT_EQ(hook_calls, 0);
  EXPECT_FALSE(window.Released(1));
  window.Arrive(1, 1, 250, all, hook);
  EXPECT_EQ(hook_calls, 1);
  EXPECT_TRUE(window.Released(1));
  EXPECT_EQ(window.Wait(1, WaitOptions{}, std::stop_token()), WaitResult::kReleased);
}

TEST(BarrierWindowTest, ALateArrivalAtAnAbandonedBarrierReleasesNothingAgain) {
  // Ranks 0 and 1 gave up on barrier 1 (timeout) and passed barrier 2 without rank 2.
  BarrierWindow window(3);
  const std::vector<int> survivors = {0, 1};
  int hook_calls = 0;
  auto hook = [&](uint64_t, const std::function<void()>& release) {
    ++hook_calls;
    release();
  };
  window.Arrive(0, 1, 0, Ranks(3), hook);
  window.Arrive(1, 1, 0, Ranks(3), hook);
  window.Arrive(0, 2, 0, survivors, hook);
  window.Arrive(1, 2, 0, survivors, hook);
  EXPECT_EQ(hook_calls, 1);
  EXPECT_TRUE(window.Released(2));
  window.Arrive(2, 1, 0, Ranks(3), hook);  // completes barrier 1, which is already covered
  EXPECT_EQ(hook_calls, 1);
}

TEST(BarrierWindowTest, OneWarningClaimPerSequence) {
  BarrierWindow window(2);
  EXPECT_TRUE(window.ClaimWarning(1));
  EXPECT_FALSE(window.ClaimWarning(1));
  EXPECT_TRUE(window.ClaimWarning(2));
  EXPECT_FALSE(window.ClaimWarning(1));
}

}  // namespace
}  // namespace distbarrier::comm
