// Recording and checking the barrier property: "arrive" and "leave" tickets taken on each
// rank's stream just before and just after its barrier tasks, from one shared counter, and
// the check that no rank left barrier k before every rank had arrived at k. The counter
// orders all tickets consistently with happens-before, so the property is
//   max over ranks of arrive[k]  <  min over ranks of leave[k]   for every k.
#pragma once

#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <cstdint>
#include <string>
#include <vector>

#include "test_support.h"

namespace distbarrier::testing {

struct Ticket {
  std::atomic<uint64_t>* clock;
  uint64_t* slot;
};

inline void TakeTicket(void* arg) {
  auto* ticket = static_cast<Ticket*>(arg);
  *ticket->slot = ticket->clock->fetch_add(1, std::memory_order_seq_cst) + 1;
}

// arrive[rank][k], leave[rank][k]: tickets; returns a description of the first violation.
inline std::string FirstViolation(const std::vector<std::vector<uint64_t>>& arrive,
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

struct Jitter {
  enum Kind { kNone, kSpin, kYield, kSleep } kind;
  int micros;
};

inline void ApplyJitter(void* arg) {
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

inline Jitter RandomJitter(std::mt19937& rng) {
  int roll = static_cast<int>(rng() % 100);
  if (roll < 55) return {Jitter::kNone, 0};
  if (roll < 80) return {Jitter::kSpin, static_cast<int>(rng() % 20)};
  if (roll < 92) return {Jitter::kYield, 0};
  return {Jitter::kSleep, static_cast<int>(rng() % 200)};
}

// Runs `barriers` V1 barriers on `ranks` ranks (one thread and stream each, devices
// 0..ranks-1), recording tickets around each, optionally with random per-rank jitter before
// each barrier and random host-side syncs. Returns FirstViolation of the recording.
inline std::string RunRecordedBarriers(int ranks, int barriers, bool jitter) {
  std::vector<HcclComm> comms = MakeGroup(FirstDevices(ranks));
  const std::string group = CommName(comms[0]);
  std::atomic<uint64_t> clock{0};
  std::vector<std::vector<uint64_t>> arrive(ranks, std::vector<uint64_t>(barriers, 0));
  std::vector<std::vector<uint64_t>> leave(ranks, std::vector<uint64_t>(barriers, 0));

  RunRanks(ranks, [&](int rank) {
    std::mt19937 rng(static_cast<uint32_t>(1000 * ranks + rank));
    aclrtStream stream = nullptr;
    ASSERT_ACL_OK(aclrtCreateStream(&stream));
    DeviceTensor x_ref = MakeTensor(ACL_FLOAT, {1});
    // Arguments of the host functions must outlive their tasks: one record per barrier.
    std::vector<Jitter> jitters(barriers);
    std::vector<Ticket> arrive_tickets(barriers), leave_tickets(barriers);
    for (int k = 0; k < barriers; ++k) {
      jitters[k] = jitter ? RandomJitter(rng) : Jitter{Jitter::kNone, 0};
      arrive_tickets[k] = {&clock, &arrive[rank][k]};
      leave_tickets[k] = {&clock, &leave[rank][k]};
      ASSERT_ACL_OK(aclrtLaunchHostFunc(stream, ApplyJitter, &jitters[k]));
      ASSERT_ACL_OK(aclrtLaunchHostFunc(stream, TakeTicket, &arrive_tickets[k]));
      ASSERT_EQ(EnqueueBarrier(x_ref.tensor, group, ranks, stream), ACLNN_SUCCESS) << aclGetRecentErrMsg();
      ASSERT_ACL_OK(aclrtLaunchHostFunc(stream, TakeTicket, &leave_tickets[k]));
      // Mix host behaviours: sometimes a round trip, sometimes run ahead of the stream.
      if (jitter && rng() % 8 == 0) {
        ASSERT_ACL_OK(aclrtSynchronizeStream(stream));
      }
    }
    ASSERT_ACL_OK(aclrtSynchronizeStream(stream));
  });
  return FirstViolation(arrive, leave);
}

}  // namespace distbarrier::testing
