// Arrival statistics of a group's barriers as seen by this process: who arrived last and by
// how much, per barrier and per rank over time, from the arrival times in the barrier window
// (when each rank's stream reached its barrier task).
//
// After a barrier's release, the first rank of this process to leave it records it (the
// others go on at once); a rank that asks about the barrier it just left waits for that
// record. Every process records every barrier, so the figures are the same everywhere.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
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
  explicit BarrierStats(int rank_count);

  // True for the one local caller that should record released barrier `seq`.
  bool ClaimRecord(uint64_t seq);
  // Records released barrier `seq`; its caller has not yet arrived at seq + 1.
  BarrierSummary Record(uint64_t seq, std::span<const int> required, const BarrierWindow& window);

  // The record of barrier `seq` (which the caller has passed), waiting briefly for it if its
  // recorder is still at work; none if it was not recorded or has left the recent ones.
  std::optional<BarrierRecord> WaitFor(uint64_t seq) const;
  std::vector<RankLateness> Lateness() const;
  void Reset();

 private:
  static constexpr size_t kRecent = 4;  // a rank is never more than one barrier behind another

  std::atomic<uint64_t> claimed_{0};
  mutable std::mutex mutex_;
  mutable std::condition_variable recorded_cv_;
  uint64_t recorded_ = 0;  // the last recorded sequence
  mutable int readers_waiting_ = 0;  // so recording skips the notify when nobody waits
  std::array<BarrierRecord, kRecent> recent_;
  std::vector<RankLateness> lateness_;
  std::vector<int64_t> scratch_;  // arrival times, reused so recording does not allocate
};

// Whether barriers record statistics: DISTBARRIER_STATS (default 1), or distbarrierSetStatsEnabled.
bool StatsEnabled();
void SetStatsEnabled(bool enabled);

}  // namespace distbarrier::comm
