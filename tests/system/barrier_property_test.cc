// The barrier property, checked from recorded order over many barriers with random jitter:
// no rank leaves barrier k before every rank has arrived at barrier k.
//
// On each rank's stream, around every barrier, host functions take tickets from one shared
// atomic counter: "arrive" just before the barrier task, "leave" just after it. The counter
// orders all tickets consistently with happens-before, so the property is
//   max over ranks of arrive[k]  <  min over ranks of leave[k]   for every k.
// Jitter (busy spins, yields, short sleeps) is random per rank and seeded, so ranks reach
// barriers in ever-changing orders; it never stands in for synchronization.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>

#include "system/barrier_checker.h"
#include "test_support.h"

namespace distbarrier::testing {
namespace {

class BarrierPropertyTest : public RuntimeTest, public ::testing::WithParamInterface<int> {};

TEST_P(BarrierPropertyTest, NoRankLeavesBarrierKBeforeAllArrivedAtK) {
  const int ranks = GetParam();
  constexpr int kBarriers = 700;  // x 15 rank counts = 10,500 barriers per run
  EXPECT_EQ(RunRecordedBarriers(ranks, kBarriers, /*jitter=*/true), "");
}

INSTANTIATE_TEST_SUITE_P(Ranks2To16, BarrierPropertyTest, ::testing::Range(2, 17),
                         [](const ::testing::TestParamInfo<int>& info) { return std::to_string(info.param) + "ranks"; });

// The checker itself catches a barrier that lets a rank through early: tickets as a barrier
// that does nothing would produce them, rank 1 leaving before rank 0 arrives.
TEST_F(RuntimeTest, TheCheckerDetectsAnEarlyLeaver) {
  std::atomic<uint64_t> clock{0};
  std::vector<std::vector<uint64_t>> arrive(2, std::vector<uint64_t>(1, 0)), leave = arrive;
  Ticket tickets[4] = {{&clock, &arrive[0][0]}, {&clock, &leave[0][0]}, {&clock, &arrive[1][0]}, {&clock, &leave[1][0]}};
  // Rank 1 arrives and leaves first; only then does rank 0 arrive.
  TakeTicket(&tickets[2]);
  TakeTicket(&tickets[3]);
  TakeTicket(&tickets[0]);
  TakeTicket(&tickets[1]);
  EXPECT_EQ(FirstViolation(arrive, leave), "barrier 0: rank 1 left (ticket 2) before rank 0 arrived (ticket 3)");
}

}  // namespace
}  // namespace distbarrier::testing
