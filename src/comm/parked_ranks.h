// Ranks of this process whose barrier waits without a thread: the barrier task has arrived,
// registered here and given up its stream's thread. The arrival that releases a barrier
// takes every rank parked in it and finishes those ranks' barriers itself, so nobody has to
// be woken (see runtime/stream.h for how their streams then go on).
//
// Each rank has one slot holding the sequence number it is parked in (0: none). Exactly one
// party takes a parking, with a compare-and-swap back to 0: the releaser, or the rank itself
// (when it finds the release on its own, times out or is aborted). All decisions are seq_cst
// against the window's released sequence: a parker stores its slot, then checks for the
// release; a releaser publishes the release, then scans the slots; one of them sees the other.
//
// A rank whose slot is taken (a second stream of the same rank waits in another barrier)
// parks in the overflow list instead, under a mutex. Its count is the Dekker word: a parker
// raises it before checking for the release, a releaser reads it after publishing one, so a
// releaser only takes the mutex when someone is there. Without the list such barriers were
// polled every millisecond (32 waiting streams cost 14 % of a core while idle).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace distbarrier::comm {

class ParkedRanks {
 public:
  explicit ParkedRanks(int rank_count)
      : rank_count_(rank_count), slots_(std::make_unique<Slot[]>(static_cast<size_t>(rank_count))) {}

  // Parks `rank` in barrier `seq` with `waiter` for whoever takes it. Never fails: a rank
  // already parked in its slot parks in the overflow list.
  void Park(int rank, uint64_t seq, void* waiter) {
    Slot& slot = slots_[rank];
    uint64_t empty = 0;
    if (slot.seq.compare_exchange_strong(empty, kFilling, std::memory_order_seq_cst)) {
      slot.waiter.store(waiter, std::memory_order_relaxed);
      slot.seq.store(seq, std::memory_order_seq_cst);  // publishes waiter
      return;
    }
    std::lock_guard lock(overflow_mutex_);
    overflow_.push_back({rank, seq, waiter});
    overflow_count_.fetch_add(1, std::memory_order_seq_cst);
  }

  // Takes back `rank`'s parking in `seq`; false when someone else took it.
  bool Take(int rank, uint64_t seq) {
    uint64_t expected = seq;
    if (slots_[rank].seq.compare_exchange_strong(expected, 0, std::memory_order_seq_cst)) return true;
    if (overflow_count_.load(std::memory_order_seq_cst) == 0) return false;
    std::lock_guard lock(overflow_mutex_);
    auto it = std::find_if(overflow_.begin(), overflow_.end(),
                           [&](const Overflow& entry) { return entry.rank == rank && entry.seq == seq; });
    if (it == overflow_.end()) return false;
    overflow_.erase(it);
    overflow_count_.fetch_sub(1, std::memory_order_seq_cst);
    return true;
  }

  // Takes every parking in a barrier <= released_seq; appends their waiters to `out`.
  void TakeReleased(uint64_t released_seq, std::vector<void*>& out) {
    for (int rank = 0; rank < rank_count_; ++rank) {
      if (void* waiter = TakeIfReleased(rank, released_seq)) out.push_back(waiter);
    }
    if (overflow_count_.load(std::memory_order_seq_cst) == 0) return;
    std::lock_guard lock(overflow_mutex_);
    auto taken = std::stable_partition(overflow_.begin(), overflow_.end(),
                                       [&](const Overflow& entry) { return entry.seq > released_seq; });
    for (auto it = taken; it != overflow_.end(); ++it) out.push_back(it->waiter);
    overflow_count_.fetch_sub(static_cast<uint32_t>(overflow_.end() - taken), std::memory_order_seq_cst);
    overflow_.erase(taken, overflow_.end());
  }

  // How many barriers are parked now (tests: a waiting barrier must park, not poll).
  int ParkedCount() const {
    int count = 0;
    for (int rank = 0; rank < rank_count_; ++rank) {
      const uint64_t seq = slots_[rank].seq.load(std::memory_order_seq_cst);
      if (seq != 0 && seq != kFilling) ++count;
    }
    return count + static_cast<int>(overflow_count_.load(std::memory_order_seq_cst));
  }

 private:
  static constexpr uint64_t kFilling = UINT64_MAX;  // a Park in progress: not takeable yet

  // Takes `rank`'s slot parking if it is in a barrier <= released_seq; returns its waiter, or null.
  void* TakeIfReleased(int rank, uint64_t released_seq) {
    Slot& slot = slots_[rank];
    uint64_t seq = slot.seq.load(std::memory_order_seq_cst);
    if (seq == 0 || seq == kFilling || seq > released_seq) return nullptr;
    // Read before the swap: once the slot is 0 the rank may park again and overwrite it.
    // Sequence numbers of a rank never repeat, so a successful swap means `waiter` is seq's.
    void* waiter = slot.waiter.load(std::memory_order_relaxed);
    if (!slot.seq.compare_exchange_strong(seq, 0, std::memory_order_seq_cst)) return nullptr;
    return waiter;
  }

  struct alignas(64) Slot {
    std::atomic<uint64_t> seq{0};
    std::atomic<void*> waiter{nullptr};
  };
  struct Overflow {
    int rank;
    uint64_t seq;
    void* waiter;
  };
  const int rank_count_;
  std::unique_ptr<Slot[]> slots_;
  std::mutex overflow_mutex_;
  std::vector<Overflow> overflow_;
  std::atomic<uint32_t> overflow_count_{0};
};

}  // namespace distbarrier::comm
