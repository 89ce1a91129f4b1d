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

#include "test_support.h"

namespace distbarrier::testing {
namespace {

struct Ticket {
  std::atomic<uint64_t>* clock;
  uint64_t* slot;
};

void TakeTicket(void* arg) {
  auto* ticket = static_cast<Ticket*>(arg);
  *ticket->slot = ticket->clock->fetch_add(1, std::memory_order_seq_cst) + 1;
}

struct Jitter {
  enum Kind { kNone, kSpin, kYield, kSleep } kind;
  int micros;
};

void ApplyJitter(void* arg) {
  const auto* jitter = static_cast<const Jitter*>(arg);
  switch (jitter->kind) {
    case Jitter::kNone: break;
    case Jitter::kSpin: {
      auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(jitter->micros);
      while (std::chrono::steady_clock::now() < until) {
      }
      break;
    }
    case Jitter::kYield: std::this_thread::yield(); break;
    case Jitter::kSleep: std::this_thread::sleep_for(std::chrono::microseconds(jitter->micros)); break;
  }
}

Jitter RandomJitter(std::mt19937& rng) {
  int roll = static_cast<int>(rng() % 100);
  if (roll < 55) return {Jitter::kNone, 0};
  if (roll < 80) return {Jitter::kSpin, static_cast<int>(rng() % 20)};
  if (roll < 92) return {Jitter::kYield, 0};
  return {Jitter::kSleep, static_cast<int>(rng() % 200)};
}

// arrive[rank][k], leave[rank][k]: tickets; returns a description of the first violation.
std::string FirstViolation(const std::vector<std::vector<uint64_t>>& arrive,
                           const std::vector<std::vector<uint64_t>>& leave) {
  const size_t ranks = arrive.size();
  const size_t barriers = arrive[0].size();
  for (size_t k = 0; k < barriers; ++k) {
    uint64_t last_arrival = 0, first_leave = UINT64_MAX;
    size_t last_rank = 0, leaver = 0;
    for (size_t r = 0; r < ranks; ++r) {
      if (arrive[r][k] == 0 || leave[r][k] == 0) return "barrier " + std::to_string(k) + " missing a ticket";
      if (arrive[r][k] > last_arrival) last_arrival = arrive[r][k], last_rank = r;
      if (leave[r][k] < first_leave) first_leave = leave[r][k], leaver = r;
    }
    if (first_leave < last_arrival) {
      return "barrier " + std::to_string(k) + ": rank " + std::to_string(leaver) + " left (ticket " +
             std::to_string(first_leave) + ") before rank " + std::to_string(last_rank) + " arrived (ticket " +
             std::to_string(last_arrival) + ")";
    }
  }
  return "";
}

class BarrierPropertyTest : public RuntimeTest, public ::testing::WithParamInterface<int> {};

TEST_P(BarrierPropertyTest, NoRankLeavesBarrierKBeforeAllArrivedAtK) {
  const int ranks = GetParam();
  constexpr int kBarriers = 700;  // x 15 rank counts = 10,500 barriers per run
  std::vector<HcclComm> comms = MakeGroup(FirstDevices(ranks));
  const std::string group = CommName(comms[0]);
  std::atomic<uint64_t> clock{0};
  std::vector<std::vector<uint64_t>> arrive(ranks, std::vector<uint64_t>(kBarriers, 0));
  std::vector<std::vector<uint64_t>> leave(ranks, std::vector<uint64_t>(kBarriers, 0));

  RunRanks(ranks, [&](int rank) {
    std::mt19937 rng(static_cast<uint32_t>(1000 * ranks + rank));
    aclrtStream stream = nullptr;
    ASSERT_ACL_OK(aclrtCreateStream(&stream));
    DeviceTensor x_ref = MakeTensor(ACL_FLOAT, {1});
    // Arguments of the host functions must outlive their tasks: one record per barrier.
    std::vector<Jitter> jitters(kBarriers);
    std::vector<Ticket> arrive_tickets(kBarriers), leave_tickets(kBarriers);
    for (int k = 0; k < kBarriers; ++k) {
      jitters[k] = RandomJitter(rng);
      arrive_tickets[k] = {&clock, &arrive[rank][k]};
      leave_tickets[k] = {&clock, &leave[rank][k]};
      ASSERT_ACL_OK(aclrtLaunchHostFunc(stream, ApplyJitter, &jitters[k]));
      ASSERT_ACL_OK(aclrtLaunchHostFunc(stream, TakeTicket, &arrive_tickets[k]));
      ASSERT_EQ(EnqueueBarrier(x_ref.tensor, group, ranks, stream), ACLNN_SUCCESS) << aclGetRecentErrMsg();
      ASSERT_ACL_OK(aclrtLaunchHostFunc(stream, TakeTicket, &leave_tickets[k]));
      // Mix host behaviours: sometimes a round trip, sometimes run ahead of the stream.
      if (rng() % 8 == 0) {
        ASSERT_ACL_OK(aclrtSynchronizeStream(stream));
      }
    }
    ASSERT_ACL_OK(aclrtSynchronizeStream(stream));
  });
  EXPECT_EQ(FirstViolation(arrive, leave), "");
}

INSTANTIATE_TEST_SUITE_P(Ranks2To16, BarrierPropertyTest, ::testing::Range(2, 17),
                         [](const ::testing::TestParamInfo<int>& info) { return std::to_string(info.param) + "ranks"; });

// The checker itself catches a barrier that lets a rank through early: here a "barrier"
// that does nothing, with rank 0 held back by a gate until rank 1 has left.
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
