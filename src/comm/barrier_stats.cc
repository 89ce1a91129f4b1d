#include "comm/barrier_stats.h"

#include <atomic>
#include <climits>

#include "common/env.h"

namespace distbarrier::comm {
namespace {
std::atomic<bool>& StatsFlag() {
  static std::atomic<bool> enabled{EnvInt("DISTBARRIER_STATS", 1) != 0};
  return enabled;
}
}  // namespace

bool StatsEnabled() { return StatsFlag().load(std::memory_order_relaxed); }
void SetStatsEnabled(bool enabled) { StatsFlag().store(enabled, std::memory_order_relaxed); }

BarrierStats::BarrierStats(int rank_count)
    : lateness_(static_cast<size_t>(rank_count)), scratch_(static_cast<size_t>(rank_count)) {
  for (BarrierRecord& record : recent_) record.relative_ns.assign(static_cast<size_t>(rank_count), -1);
}

bool BarrierStats::ClaimRecord(uint64_t seq) {
  uint64_t claimed = claimed_.load(std::memory_order_relaxed);
  do {
    if (claimed >= seq) return false;
  } while (!claimed_.compare_exchange_weak(claimed, seq, std::memory_order_relaxed));
  return true;
}

BarrierSummary BarrierStats::Record(uint64_t seq, std::span<const int> required, const BarrierWindow& window) {
  BarrierSummary summary;
  {
    std::lock_guard lock(mutex_);
    int64_t first = INT64_MAX;
    int64_t last = INT64_MIN;
    int last_rank = -1;
    for (int rank : required) {
      const int64_t arrival = window.ArrivalNs(rank, seq);
      scratch_[rank] = arrival;
      if (arrival < first) first = arrival;
      if (arrival > last) last = arrival, last_rank = rank;
    }
    BarrierRecord& record = recent_[seq % kRecent];
    record.seq = seq;
    record.last_rank = last_rank;
    record.first_arrival_ns = first;
    record.spread_ns = last - first;
    std::fill(record.relative_ns.begin(), record.relative_ns.end(), -1);
    for (int rank : required) {
      const int64_t lateness = scratch_[rank] - first;
      record.relative_ns[rank] = lateness;
      RankLateness& stats = lateness_[rank];
      stats.barriers++;
      stats.total_ns += lateness;
      if (lateness > stats.max_ns) stats.max_ns = lateness;
    }
    if (last_rank >= 0) lateness_[last_rank].times_last++;
    if (seq > recorded_) recorded_ = seq;
    summary = {first, last, last_rank};
    if (readers_waiting_ == 0) return summary;
  }
  recorded_cv_.notify_all();
  return summary;
}

std::optional<BarrierRecord> BarrierStats::WaitFor(uint64_t seq) const {
  if (seq == 0) return std::nullopt;
  std::unique_lock lock(mutex_);
  // The recorder runs right after the release the caller saw; the bound only covers a
  // recorder that was aborted, or statistics switched off meanwhile.
  ++readers_waiting_;
  recorded_cv_.wait_for(lock, std::chrono::seconds(1), [&] { return recorded_ >= seq || !StatsEnabled(); });
  --readers_waiting_;
  const BarrierRecord& record = recent_[seq % kRecent];
  if (record.seq != seq) return std::nullopt;
  return record;
}

std::vector<RankLateness> BarrierStats::Lateness() const {
  std::lock_guard lock(mutex_);
  return lateness_;
}

void BarrierStats::Reset() {
  std::lock_guard lock(mutex_);
  std::fill(lateness_.begin(), lateness_.end(), RankLateness{});
}

}  // namespace distbarrier::comm
