// The arrival state of one group's barriers and the wait on it.
//
// Each rank owns one cache line holding the sequence number of the last barrier it reached.
// Sequence numbers only grow, so barrier k of one rank pairs with barrier k of every other
// with no reset step: k is complete when every required rank's slot is >= k. A rank cannot
// reach k+1 before k completed, so a slot is never more than one barrier ahead of a waiter.
//
// Waiting spins briefly, then sleeps on a futex word that arrivals bump when they complete
// a barrier; sleepers are counted so arrivals skip the wake syscall when nobody sleeps.
// All accesses that decide "arrived"/"complete"/"asleep" are seq_cst: the last arrival's
// scan is ordered after every other arrival, and a sleeper either is seen by the completer
// or sees the completed barrier itself (the classic Dekker pairing), so no wakeup is lost.
//
// The layout is plain atomics, so the same class can later sit in shared memory.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stop_token>
#include <vector>

namespace distbarrier::comm {

using Clock = std::chrono::steady_clock;

enum class WaitResult { kReleased, kTimedOut, kStopped };

struct WaitOptions {
  std::optional<Clock::time_point> deadline;  // none: wait until released or stopped
  std::optional<Clock::time_point> warn_at;   // when to call on_warn once
  std::function<void()> on_warn;
};

class BarrierWindow {
 public:
  explicit BarrierWindow(int rank_count);

  int RankCount() const { return rank_count_; }

  // Publishes that `rank` reached barrier `seq`, and wakes sleepers if that completes
  // barrier `seq` for the ranks in `required`.
  void Arrive(int rank, uint64_t seq, std::span<const int> required);

  bool Complete(uint64_t seq, std::span<const int> required) const;
  std::vector<int> Missing(uint64_t seq, std::span<const int> required) const;
  uint64_t ArrivedSequence(int rank) const;

  WaitResult Wait(uint64_t seq, std::span<const int> required, const WaitOptions& options,
                  const std::stop_token& stop);

  // Wakes every sleeper so it re-checks its condition (used on stop/abort).
  void WakeAll();

  // True for exactly one caller per barrier sequence: who prints the hang warning.
  bool ClaimWarning(uint64_t seq);

 private:
  struct alignas(64) Slot {
    std::atomic<uint64_t> arrived_seq{0};
  };

  const int rank_count_;
  std::unique_ptr<Slot[]> slots_;
  alignas(64) std::atomic<uint32_t> release_word_{0};
  alignas(64) std::atomic<uint32_t> sleepers_{0};
  alignas(64) std::atomic<uint64_t> warned_seq_{0};
};

}  // namespace distbarrier::comm
