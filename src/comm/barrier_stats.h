// Arrival statistics of a group's barriers: who arrived last and by how much, per barrier and
// per rank over time, from the arrival times in the barrier window (when each rank's stream
// reached its barrier task).
//
// One record per barrier per group: the arrival that releases a barrier records it (in
// whichever process it runs), after the release, so the other ranks go on at once. For a group
// spread over processes the state lives in the group's shared memory, next to the window, so
// every process reads the same figures without recording them itself; a rank that asks about
// the barrier it just left waits for that record.
//
// Records are serialized like the barriers: the releaser of barrier k records it before it
// arrives at k + 1, so no other record of this group runs meanwhile (an elastic barrier that
// leaves its releaser out of the next one is the exception; the counters are atomic
// read-modify-writes, so even then no count is lost). A reader copies a record under its
// version (a seqlock) and retries if a writer overtook it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "comm/barrier_window.h"

namespace distbarrier::comm {

struct BarrierRecord {
  uint64_t seq = 0;
  int last_rank = -1;
  int64_t first_arrival_ns = 0;      // steady clock
  int64_t spread_ns = 0;             // last arrival - first arrival
  std::vector<int64_t> relative_ns;  // per rank: arrival - first arrival; -1 if not waited for
};

// The figures of one released barrier that the flight recorder keeps (comm/diagnosis).
struct BarrierSummary {
  int64_t first_arrival_ns = 0;  // steady clock
  int64_t last_arrival_ns = 0;   // the arrival that released it
  int last_rank = -1;
};

struct RankLateness {
  uint64_t barriers = 0;  // barriers this rank was waited for in
  uint64_t times_last = 0;
  int64_t total_ns = 0;  // sum of arrival - first arrival
  int64_t max_ns = 0;
};

class BarrierStats {
 public:
  // The bytes of state for `rank_count` ranks, for a caller that places it in shared memory.
  static size_t StateBytes(int rank_count);

  // State on the heap, for ranks that are threads of this process.
  explicit BarrierStats(int rank_count);
  // A view of state at `memory` (StateBytes(rank_count) bytes, 64-byte aligned); the one process
  // that sets it up passes initialize = true.
  BarrierStats(int rank_count, void* memory, bool initialize);
  ~BarrierStats();
  BarrierStats(const BarrierStats&) = delete;
  BarrierStats& operator=(const BarrierStats&) = delete;

  // Records released barrier `seq`: called once per barrier, by the arrival that released it,
  // before that rank arrives at seq + 1. Returns what the flight recorder keeps of it.
  BarrierSummary RecordReleased(uint64_t seq, std::span<const int> required, const BarrierWindow& window);
  // The same from the arrival times of `required` (in that order), as Arrive read them.
  BarrierSummary RecordReleased(uint64_t seq, std::span<const int> required, std::span<const int64_t> arrival_ns);

  // The record of barrier `seq` (which the caller has passed), waiting briefly for it if its
  // recorder is still at work; none if it was not recorded or has left the recent ones.
  std::optional<BarrierRecord> WaitFor(uint64_t seq) const;
  std::vector<RankLateness> Lateness() const;
  void Reset();

 private:
  struct Header;
  struct RecordSlot;
  struct RankCounters;
  static constexpr size_t kRecent = 4;  // a rank is never more than one barrier behind another

  std::optional<BarrierRecord> Copy(uint64_t seq, Clock::time_point give_up) const;
  bool Recorded(uint64_t seq) const;  // the record of seq (or a later one in its slot) is whole
  static size_t RowBytes(int rank_count);
  RecordSlot& Slot(uint64_t seq) const;
  std::atomic<int64_t>* Relative(uint64_t seq) const;  // rank_count_ entries right after that slot

  const int rank_count_;
  const size_t row_bytes_;
  void* heap_ = nullptr;  // owned state, when not in shared memory
  Header* header_;
  char* rows_;              // [kRecent] rows: a RecordSlot, then rank_count_ relative times
  RankCounters* counters_;  // [rank_count_]
};

// Whether barriers record statistics: DISTBARRIER_STATS (default 1), or distbarrierSetStatsEnabled.
bool StatsEnabled();
void SetStatsEnabled(bool enabled);

}  // namespace distbarrier::comm
