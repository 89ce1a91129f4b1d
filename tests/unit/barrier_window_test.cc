// The barrier algorithm alone, without streams: sequence pairing, missing ranks, waking,
// deadlines and stop requests.
#include "comm/barrier_window.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
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
  window.Arrive(0, 1, /*arrival_ns=*/0, all);
  window.Arrive(2, 1, /*arrival_ns=*/0, all);
  EXPECT_FALSE(window.Complete(1, all));
  EXPECT_EQ(window.Missing(1, all), std::vector<int>{1});
  window.Arrive(1, 1, /*arrival_ns=*/0, all);
  EXPECT_TRUE(window.Complete(1, all));
  EXPECT_TRUE(window.Missing(1, all).empty());
  EXPECT_FALSE(window.Complete(2, all));  // barrier 2 is a new barrier: nothing to reset
  EXPECT_EQ(window.Missing(2, all), (std::vector<int>{0, 1, 2}));
}

TEST(BarrierWindowTest, ARankAheadCountsAsArrivedForEarlierBarriers) {
  BarrierWindow window(2);
  const auto all = Ranks(2);
  window.Arrive(0, 5, /*arrival_ns=*/0, all);
  window.Arrive(1, 4, /*arrival_ns=*/0, all);
  EXPECT_TRUE(window.Complete(4, all));
  EXPECT_FALSE(window.Complete(5, all));
  EXPECT_EQ(window.ArrivedSequence(0), 5u);
}

TEST(BarrierWindowTest, RequiredSubsetIgnoresOthers) {
  BarrierWindow window(4);
  const std::vector<int> survivors = {0, 1, 3};
  for (int rank : survivors) window.Arrive(rank, 1, /*arrival_ns=*/0, survivors);
  EXPECT_TRUE(window.Complete(1, survivors));
  EXPECT_FALSE(window.Complete(1, Ranks(4)));
}

TEST(BarrierWindowTest, WaitTimesOutAtTheDeadline) {
  BarrierWindow window(2);
  const auto all = Ranks(2);
  window.Arrive(0, 1, /*arrival_ns=*/0, all);
  WaitOptions options;
  options.deadline = Clock::now() + std::chrono::milliseconds(5);
  EXPECT_EQ(window.Wait(1, all, options, std::stop_token()), WaitResult::kTimedOut);
}

TEST(BarrierWindowTest, WaitStopsWhenAskedAndWakeAllIsCalled) {
  BarrierWindow window(2);
  const auto all = Ranks(2);
  window.Arrive(0, 1, /*arrival_ns=*/0, all);
  std::stop_source stop;
  std::atomic<int> result{-1};
  std::thread waiter([&] {
    std::stop_callback wake(stop.get_token(), [&] { window.WakeAll(); });
    result = static_cast<int>(window.Wait(1, all, WaitOptions{}, stop.get_token()));
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
  for (int rank = 0; rank < kRanks; ++rank) {
    threads.emplace_back([&, rank] {
      for (uint64_t seq = 1; seq <= kBarriers; ++seq) {
        window.Arrive(rank, seq, /*arrival_ns=*/0, all);
        if (window.Wait(seq, all, WaitOptions{}, std::stop_token()) == WaitResult::kReleased) released++;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(released.load(), kRanks * kBarriers);
}

TEST(BarrierWindowTest, TheLastArrivalReleasesAndArrivalTimesStayReadable) {
  BarrierWindow window(2);
  const auto all = Ranks(2);
  window.Arrive(0, 1, 100, all);
  EXPECT_FALSE(window.Released(1));
  window.Arrive(1, 1, 250, all);
  EXPECT_TRUE(window.Released(1));
  EXPECT_EQ(window.Wait(1, all, WaitOptions{}, std::stop_token()), WaitResult::kReleased);
  window.Arrive(0, 2, 400, all);  // the next barrier uses the other time slot
  EXPECT_EQ(window.ArrivalNs(0, 1), 100);
  EXPECT_EQ(window.ArrivalNs(1, 1), 250);
  EXPECT_EQ(window.ArrivalNs(0, 2), 400);
}

TEST(BarrierWindowTest, ALateArrivalAtAnAbandonedBarrierChangesNothing) {
  // Ranks 0 and 1 gave up on barrier 1 (timeout) and passed barrier 2 without rank 2.
  BarrierWindow window(3);
  const std::vector<int> survivors = {0, 1};
  window.Arrive(0, 1, 0, Ranks(3));
  window.Arrive(1, 1, 0, Ranks(3));
  window.Arrive(0, 2, 0, survivors);
  window.Arrive(1, 2, 0, survivors);
  EXPECT_TRUE(window.Released(2));
  EXPECT_TRUE(window.Released(1));  // covered by the later release
  window.Arrive(2, 1, 0, Ranks(3));
  EXPECT_TRUE(window.Released(2));
  EXPECT_FALSE(window.Released(3));
}

TEST(BarrierWindowTest, ADeadMissingRankEndsTheWait) {
  BarrierWindow window(3);
  const auto all = Ranks(3);
  window.SetPid(2, 4242);
  window.Arrive(0, 1, 0, all);
  std::atomic<int> result{-1};
  std::thread waiter([&] { result = static_cast<int>(window.Wait(1, all, WaitOptions{}, std::stop_token())); });
  window.MarkDead(2);
  waiter.join();
  EXPECT_EQ(result.load(), static_cast<int>(WaitResult::kPeerDied));
  EXPECT_EQ(window.DeadMissing(1, all), std::vector<int>{2});
  EXPECT_EQ(window.Pid(2), 4242);
  // Leaving the dead rank out, the others go on.
  const std::vector<int> survivors = {0, 1};
  window.Arrive(0, 2, 0, survivors);
  window.Arrive(1, 2, 0, survivors);
  EXPECT_EQ(window.Wait(2, survivors, WaitOptions{}, std::stop_token()), WaitResult::kReleased);
}

TEST(BarrierWindowTest, StateCanLiveInCallerMemory) {
  const size_t bytes = BarrierWindow::StateBytes(4);
  void* memory = std::aligned_alloc(64, bytes);
  std::memset(memory, 0, bytes);
  {
    BarrierWindow creator(4, memory, /*initialize=*/true);
    BarrierWindow viewer(4, memory, /*initialize=*/false);  // as another process would map it
    for (int rank = 0; rank < 4; ++rank) creator.Arrive(rank, 1, rank, Ranks(4));
    EXPECT_TRUE(viewer.Released(1));
    EXPECT_EQ(viewer.ArrivalNs(3, 1), 3);
  }
  std::free(memory);
}

TEST(BarrierWindowTest, OneWarningClaimPerSequence) {
  BarrierWindow window(2);
  EXPECT_TRUE(window.ClaimWarning(1));
  EXPECT_FALSE(window.ClaimWarning(1));
  EXPECT_TRUE(window.ClaimWarning(2));
  EXPECT_FALSE(window.ClaimWarning(1));
}

// A waiter that reads the release word just as a release happens must not sleep through it:
// Release publishes released_seq before it bumps and wakes the word. The hook starts a waiter
// exactly between Release's steps, so the waiter must already see the release and return
// without going to sleep. With the steps swapped it finds the bumped word but no release yet
// and goes to sleep with no wake-up coming (the lost wake-up the order prevents).
TEST(BarrierWindowTest, AWaiterStartingDuringTheReleaseSeesItWithoutSleeping) {
  constexpr uint64_t kRounds = 300;
  struct Round {
    BarrierWindow window{2};
    std::vector<int> all = Ranks(2);
    uint64_t seq = 0;
    std::thread waiter;
    std::atomic<int> result{-1};
    bool waiter_slept = false;
  } round;
  BarrierWindow::SetReleaseHookForTesting(
      [](void* arg) {
        auto* r = static_cast<Round*>(arg);
        r->waiter = std::thread([r] {
          WaitOptions options;
          options.deadline = Clock::now() + std::chrono::seconds(1);  // ends a lost wake-up's sleep
          options.max_sleep = std::chrono::hours(1);
          r->result.store(static_cast<int>(r->window.Wait(r->seq, r->all, options, std::stop_token())));
        });
        while (r->result.load() == -1 && r->window.Sleepers() == 0) std::this_thread::yield();
        r->waiter_slept = r->result.load() == -1;
      },
      &round);
  for (uint64_t seq = 1; seq <= kRounds; ++seq) {
    round.seq = seq;
    round.result.store(-1);
    round.window.Arrive(0, seq, 0, round.all);
    const bool released = round.window.Arrive(1, seq, 0, round.all);  // the hook runs inside
    round.waiter.join();
    ASSERT_TRUE(released);
    ASSERT_FALSE(round.waiter_slept) << "round " << seq << ": the waiter went to sleep during the release";
    ASSERT_EQ(round.result.load(), static_cast<int>(WaitResult::kReleased)) << "round " << seq;
  }
  BarrierWindow::SetReleaseHookForTesting(nullptr, nullptr);
}

// The releasing arrival hands out every required rank's arrival time, read before the release
// is published (the statistics record uses them; ranks that pass rewrite their lines).
TEST(BarrierWindowTest, TheReleasingArrivalReadsTheArrivalTimesBeforePublishingTheRelease) {
  struct Seen {
    std::vector<int64_t> arrivals = std::vector<int64_t>(3, -1);
    std::vector<int64_t> at_release;
  } seen;
  BarrierWindow window(4);
  const std::vector<int> required = {0, 1, 3};
  BarrierWindow::SetReleaseHookForTesting(
      [](void* arg) {  // runs right after released_seq is raised
        auto* s = static_cast<Seen*>(arg);
        s->at_release = s->arrivals;
      },
      &seen);
  EXPECT_FALSE(window.Arrive(3, 1, 300, required, seen.arrivals));
  EXPECT_FALSE(window.Arrive(0, 1, 100, required, seen.arrivals));
  EXPECT_TRUE(window.Arrive(1, 1, 200, required, seen.arrivals));
  BarrierWindow::SetReleaseHookForTesting(nullptr, nullptr);
  EXPECT_EQ(seen.arrivals, (std::vector<int64_t>{100, 200, 300}));  // in the order of `required`
  EXPECT_EQ(seen.at_release, seen.arrivals);
}

// Across hosts: while the agent polls the arrival word, arrivals move the word without a futex
// wake-up; once it stops (or its polling time is past: an agent that died polling), they wake
// the waiter again.
TEST(BarrierWindowTest, ArrivalsSkipTheWakeUpOnlyWhileTheAgentPolls) {
  BarrierWindow window(2);
  const auto now_ns = [] {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
  };
  const uint32_t before = window.ArrivalWord();
  window.AgentPollsUntil(now_ns() + int64_t{3600} * 1000 * 1000 * 1000);
  EXPECT_FALSE(window.WakeArrival());
  window.AgentStopsPolling();
  EXPECT_NE(window.ArrivalWord(), before) << "the agent must see the arrival whose wake-up was skipped";
  EXPECT_TRUE(window.WakeArrival());
  window.AgentPollsUntil(now_ns() - 1);  // an agent that died while polling
  EXPECT_TRUE(window.WakeArrival());
  window.AgentPollsUntil(now_ns() + int64_t{3600} * 1000 * 1000 * 1000);
  window.WakeArrivalWaiters();  // stopping the bridge thread wakes regardless
  EXPECT_EQ(window.ArrivalWord(), before + 4);
}

// On one host a waiter passes barrier k once every required line shows k: the claim and the
// release are the last arrival's to do after that. ArriveForAgent writes a line with no
// release check, standing for a last arrival caught between its arrival and its claim.
TEST(BarrierWindowTest, OnOneHostAWaiterPassesOnceEveryLineShowsTheBarrierBeforeTheRelease) {
  BarrierWindow window(3);
  const auto all = Ranks(3);
  const auto no_time = std::chrono::nanoseconds(0);
  window.Arrive(0, 1, 0, all);
  window.Arrive(1, 1, 0, all);
  EXPECT_FALSE(window.SpinForRelease(1, all, no_time)) << "rank 2 has not arrived";
  window.ArriveForAgent(2, 1, 0);
  EXPECT_FALSE(window.Released(1));
  EXPECT_TRUE(window.SpinForRelease(1, all, no_time));
  EXPECT_FALSE(window.SpinForRelease(2, all, no_time)) << "barrier 2 is a new barrier";
}

// Across hosts the agent is one more participant with no line: the lines alone never let a
// waiter pass there, only the release does.
TEST(BarrierWindowTest, AcrossHostsAWaiterPassesOnlyOnTheRelease) {
  BarrierWindow window(2);
  window.SetHosts(2, 0);
  window.SetHost(1, 1);
  const auto all = Ranks(2);
  const auto no_time = std::chrono::nanoseconds(0);
  window.Arrive(0, 1, 0, all);
  window.ArriveForAgent(1, 1, 0);
  EXPECT_FALSE(window.SpinForRelease(1, all, no_time)) << "the agent has not reached barrier 1";
  EXPECT_TRUE(window.AgentReached(1, all));
  EXPECT_TRUE(window.SpinForRelease(1, all, no_time));
}

// Stands for the host agent of this process, on host 0 of two (rank 1 on host 1): its work,
// done on a waiter's turn, is to reach barrier 1 on the `release_on`-th turn (0: never).
class FakeAgent final : public WaitHelper {
 public:
  FakeAgent(BarrierWindow& window, std::vector<int> required, int release_on)
      : window_(window), required_(std::move(required)), release_on_(release_on) {
    window_.SetHosts(2, 0);
    window_.SetHost(1, 1);
    window_.SetWaitHelper(this);
  }
  ~FakeAgent() override { window_.SetWaitHelper(nullptr); }
  void BeginHelping() override { ++begun; }
  void EndHelping() override { ++ended; }
  bool Help() override {
    ++turns;
    helper_thread = std::this_thread::get_id();
    if (turns == release_on_) window_.AgentReached(1, required_);
    return false;
  }
  void StopHelping() override { ++stopped; }

  int begun = 0, ended = 0, turns = 0, stopped = 0;
  std::thread::id helper_thread;

 private:
  BarrierWindow& window_;
  const std::vector<int> required_;
  const int release_on_;
};

// Across hosts, in the agent's process, the waiter does the agent's work on its own thread,
// stops once the release came of it, and says when it starts and stops. (The first turn always
// runs, whatever the clock says: releasing on it keeps the test free of timing.)
TEST(BarrierWindowTest, AcrossHostsAWaiterDoesTheAgentsWorkUntilTheRelease) {
  BarrierWindow window(2);
  const auto all = Ranks(2);
  FakeAgent agent(window, all, /*release_on=*/1);
  window.Arrive(0, 1, 0, all);
  window.ArriveForAgent(1, 1, 0);
  EXPECT_TRUE(window.SpinForRelease(1, all, std::chrono::seconds(60)));
  EXPECT_EQ(agent.turns, 1) << "it stops helping once released";
  EXPECT_EQ(agent.helper_thread, std::this_thread::get_id());
  EXPECT_EQ(agent.begun, 1);
  EXPECT_EQ(agent.ended, 1);
  EXPECT_EQ(agent.stopped, 0) << "a waiter that was released hands nothing back";
}

// A waiter that stops helping before the release (here: it times out) hands the agent's work
// back to the agent's thread, once.
TEST(BarrierWindowTest, AcrossHostsAHelperThatWillSleepHandsTheWorkBack) {
  BarrierWindow window(2);
  const auto all = Ranks(2);
  FakeAgent agent(window, all, /*release_on=*/0);
  window.Arrive(0, 1, 0, all);
  WaitOptions options;
  options.deadline = Clock::now() + std::chrono::milliseconds(5);
  EXPECT_EQ(window.Wait(1, all, options, std::stop_token{}), WaitResult::kTimedOut);
  EXPECT_GE(agent.turns, 1);
  EXPECT_EQ(agent.begun, agent.ended);
  EXPECT_EQ(agent.stopped, 1) << "it left the work without handing it back, or handed it back more than once";
}

// A waiter whose required set is larger than the releaser's (elastic ranks that disagree)
// still passes on the release, as before the lines were watched.
TEST(BarrierWindowTest, AReleaseByASmallerRequiredSetStillLetsTheWaiterPass) {
  BarrierWindow window(3);
  const std::vector<int> two = {0, 1};
  window.Arrive(0, 1, 0, Ranks(3));
  EXPECT_TRUE(window.Arrive(1, 1, 0, two));
  EXPECT_TRUE(window.SpinForRelease(1, Ranks(3), std::chrono::nanoseconds(0)));
}

}  // namespace
}  // namespace distbarrier::comm
