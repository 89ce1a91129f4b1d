// Arrival statistics of a group's barriers: who arrived last and by how much, per barrier and
// per rank over time. Recorded once per barrier by the arrival that completes it, from the
// arrival times in the barrier window (when each rank's stream reached its barrier task).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "comm/barrier_window.h"

namespace distbarrier::comm {

struct BarrierRecord {
  uint64_t seq = 0;
  int last_rank = -1;
  int64_t first_arrival_ns = 0;  // steady clock
  int64_t spread_ns = 0;         // last arrival - first arrival
  std::vector<int64_t> relative_ns;  // per rank: arrival - first arrival; -1 if not waited for
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

  // Called by the claiming arrival of barrier `seq`: calls `release` under the lock, then
  // records, so the waiting ranks go on at once and readers still see the record.
  void Record(uint64_t seq, std::span<const int> required, const BarrierWindow& window,
              const std::function<void()>& release);

  // The record of barrier `seq`, if it is among the last few recorded.
  std::optional<BarrierRecord> Find(uint64_t seq) const;
  std::vector<RankLateness> Lateness() const;
  void Reset();

 private:
  static constexpr size_t kRecent = 4;  // a rank is never more than one barrier behind another

  mutable std::mutex mutex_;  // one writer per barrier; readers are API calls
  std::array<BarrierRecord, kRecent> recent_;
  std::vector<RankLateness> lateness_;
  std::vector<int64_t> scratch_;  // arrival times, reused so recording does not allocate
};

// Whether barriers record statistics: DISTBARRIER_STATS (default 1), or distbarrierSetStatsEnabled.
bool StatsEnabled();
void SetStatsEnabled(bool enabled);

}  // namespace distbarrier::comm
