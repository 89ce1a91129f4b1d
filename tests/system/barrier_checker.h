// Recording and checking the barrier property: "arrive" and "leave" tickets taken on each
// rank's stream just before and just after its barrier tasks, from one shared counter, and
// the check that no rank left barrier k before every rank had arrived at k. The counter
// orders all tickets consistently with happens-before, so the property is
//   max over ranks of arrive[k]  <  min over ranks of leave[k]   for every k.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <random>
#include <string>
#include <thread>
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

// Ends a rank's wait for its stream when another rank gave up the run.
struct RunAbandon {
  std::mutex mutex;
  std::condition_variable changed;
  bool abandoned = false;

  void Abandon() {
    std::lock_guard lock(mutex);
    abandoned = true;
    changed.notify_all();
  }
  bool Abandoned() {
    std::lock_guard lock(mutex);
    return abandoned;
  }
};

// A point in a rank's stream: a host function marks it reached.
struct StreamMark {
  RunAbandon* run;
  bool reached = false;
};

inline void MarkReached(void* arg) {
  auto* mark = static_cast<StreamMark*>(arg);
  std::lock_guard lock(mark->run->mutex);
  mark->reached = true;
  mark->run->changed.notify_all();
}

// Runs `barriers` V1 barriers on `ranks` ranks (one thread and stream each, devices
// 0..ranks-1), recording tickets around each, optionally with random per-rank jitter before
// each barrier and random host-side syncs. Returns FirstViolation of the recording.
//
// A rank whose assertion fires must fail the test, not crash it or hang the others: every
// host-function argument lives here, outside the rank threads; a failing rank abandons the
// run, which ends the others' waits (they wait for a mark their stream reaches, or for the
// abandonment) and they stop quietly; then aclFinalize aborts and joins every stream before
// anything they point to goes. `fail_rank` injects such a failure (tests of this harness).
inline std::string RunRecordedBarriers(int ranks, int barriers, bool jitter, int fail_rank = -1) {
  std::vector<HcclComm> comms = MakeGroup(FirstDevices(ranks));
  const std::string group = CommName(comms[0]);
  std::atomic<uint64_t> clock{0};
  std::vector<std::vector<uint64_t>> arrive(ranks, std::vector<uint64_t>(barriers, 0));
  std::vector<std::vector<uint64_t>> leave(ranks, std::vector<uint64_t>(barriers, 0));
  struct RankArgs {
    std::vector<Jitter> jitters;
    std::vector<Ticket> arrive_tickets, leave_tickets;
    std::deque<StreamMark> marks;  // stable addresses
  };
  std::vector<RankArgs> args(static_cast<size_t>(ranks));
  RunAbandon run;

  RunRanks(ranks, [&](int rank) {
    bool finished = false;
    struct AbandonUnlessFinished {  // runs when an assertion returns early
      const bool& finished;
      RunAbandon& run;
      ~AbandonUnlessFinished() {
        if (!finished) run.Abandon();
      }
    } abandon_unless_finished{finished, run};
    // A call that fails because another rank abandoned the run is not a failure of its own.
    auto ok = [&](int status, const char* what) {
      if (status == 0) return true;
      if (!run.Abandoned()) ADD_FAILURE() << "rank " << rank << ": " << what << ": " << aclGetRecentErrMsg();
      return false;
    };
    RankArgs& mine = args[static_cast<size_t>(rank)];
    // Waits for the stream to reach this point, unless the run is abandoned meanwhile.
    auto synchronize = [&](aclrtStream stream) {
      StreamMark& mark = mine.marks.emplace_back(StreamMark{&run});
      if (!ok(aclrtLaunchHostFunc(stream, MarkReached, &mark), "launch mark")) return false;
      {
        std::unique_lock lock(run.mutex);
        run.changed.wait(lock, [&] { return mark.reached || run.abandoned; });
        if (!mark.reached) return false;
      }
      return ok(aclrtSynchronizeStream(stream), "aclrtSynchronizeStream");
    };
    std::mt19937 rng(static_cast<uint32_t>(1000 * ranks + rank));
    aclrtStream stream = nullptr;
    if (!ok(aclrtCreateStream(&stream), "aclrtCreateStream")) return;
    DeviceTensor x_ref = MakeTensor(ACL_FLOAT, {1});
    mine.jitters.resize(static_cast<size_t>(barriers));
    mine.arrive_tickets.resize(static_cast<size_t>(barriers));
    mine.leave_tickets.resize(static_cast<size_t>(barriers));
    for (int k = 0; k < barriers; ++k) {
      ASSERT_FALSE(rank == fail_rank && k == barriers / 2) << "rank " << rank << ": injected failure";
      mine.jitters[k] = jitter ? RandomJitter(rng) : Jitter{Jitter::kNone, 0};
      mine.arrive_tickets[k] = {&clock, &arrive[rank][k]};
      mine.leave_tickets[k] = {&clock, &leave[rank][k]};
      if (!ok(aclrtLaunchHostFunc(stream, ApplyJitter, &mine.jitters[k]), "launch jitter")) return;
      if (!ok(aclrtLaunchHostFunc(stream, TakeTicket, &mine.arrive_tickets[k]), "launch ticket")) return;
      if (!ok(EnqueueBarrier(x_ref.tensor, group, ranks, stream), "barrier")) return;
      if (!ok(aclrtLaunchHostFunc(stream, TakeTicket, &mine.leave_tickets[k]), "launch ticket")) return;
      // Mix host behaviours: sometimes a round trip, sometimes run ahead of the stream.
      if (jitter && rng() % 8 == 0 && !synchronize(stream)) return;
    }
    if (!synchronize(stream)) return;
    finished = true;
  });
  // An abandoned run's streams still hold tasks that point into `args` and the tickets.
  if (run.Abandoned()) aclFinalize();
  return FirstViolation(arrive, leave);
}

}  // namespace distbarrier::testing
