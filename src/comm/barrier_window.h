// The arrival state of one group's barriers and the wait on it.
//
// Each rank owns one cache line holding the sequence number of the last barrier it reached
// and the times of its last two arrivals. Sequence numbers only grow, so barrier k of one
// rank pairs with barrier k of every other with no reset step: k is complete when every
// required rank's line is >= k.
//
// The arrival that finds barrier k complete claims it (exactly one does, by raising
// claimed_seq_ to k) and publishes released_seq_ = k, or hands that to the completion hook,
// which must publish exactly once: the statistics recorder takes its lock, publishes, and
// records while ranks already run on (readers of the record wait for the lock). Waiters watch that one word: they spin a little, yield a little, then
// sleep on a futex word bumped by each release; a sleeper count lets releases skip the wake
// syscall when nobody sleeps. Every access that decides "released" or "asleep" is seq_cst:
// a sleeper either is seen by the releaser (which then wakes it) or itself sees the release
// before it sleeps (the Dekker pairing), so no wake-up is lost.
//
// Barriers are serialized: the claimant of k must arrive at k+1 before anyone passes k+1,
// so its hook finishes before barrier k+1 can complete, and a rank's arrival time for k is
// overwritten (at k+2) only after barrier k's hook has read it, even when the hook reads
// after publishing the release.
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
  // Runs in the claiming arrival; must call `release` exactly once.
  using CompletionHook = std::function<void(uint64_t seq, const std::function<void()>& release)>;

  explicit BarrierWindow(int rank_count);

  int RankCount() const { return rank_count_; }

  // Publishes that `rank` reached barrier `seq` at `arrival_ns` (steady clock). If that
  // completes barrier `seq` for `required`, this arrival claims it and releases everyone
  // waiting for `seq`, through `on_complete` when that is not empty.
  void Arrive(int rank, uint64_t seq, int64_t arrival_ns, std::span<const int> required,
              const CompletionHook& on_complete);

  bool Released(uint64_t seq) const;
  bool Complete(uint64_t seq, std::span<const int> required) const;
  std::vector<int> Missing(uint64_t seq, std::span<const int> required) const;
  uint64_t ArrivedSequence(int rank) const;
  // When `rank` arrived at `seq`; valid while its sequence is seq or seq + 1.
  int64_t ArrivalNs(int rank, uint64_t seq) const;

  WaitResult Wait(uint64_t seq, const WaitOptions& options, const std::stop_token& stop);

  // Wakes every sleeper so it re-checks its condition (used on stop/abort).
  void WakeAll();

  // True for exactly one caller per barrier sequence: who prints the hang warning.
  bool ClaimWarning(uint64_t seq);

 private:
  struct alignas(64) Slot {
    std::atomic<uint64_t> arrived_seq{0};
    std::atomic<int64_t> arrival_ns[2] = {0, 0};  // by seq & 1
  };
  static void RaiseTo(std::atomic<uint64_t>& word, uint64_t value);
  void Release(uint64_t seq);

  const int rank_count_;
  std::unique_ptr<Slot[]> slots_;
  alignas(64) std::atomic<uint64_t> claimed_seq_{0};
  alignas(64) std::atomic<uint64_t> released_seq_{0};
  alignas(64) std::atomic<uint32_t> release_word_{0};
  alignas(64) std::atomic<uint32_t> sleepers_{0};
  alignas(64) std::atomic<uint64_t> warned_seq_{0};
};

}  // namespace distbarrier::comm
