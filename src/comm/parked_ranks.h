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
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

namespace distbarrier::comm {

class ParkedRanks {
 public:
  explicit ParkedRanks(int rank_count) : slots_(std::make_unique<Slot[]>(static_cast<size_t>(rank_count))) {}

  // Parks `rank` in barrier `seq` with `waiter` for whoever takes it. False when the rank is
  // parked already (a second stream of one rank waits in another barrier).
  bool Park(int rank, uint64_t seq, void* waiter) {
    Slot& slot = slots_[rank];
    uint64_t empty = 0;
    if (!slot.seq.compare_exchange_strong(empty, kFilling, std::memory_order_seq_cst)) return false;
    slot.waiter.store(waiter, std::memory_order_relaxed);
    slot.seq.store(seq, std::memory_order_seq_cst);  // publishes waiter
    return true;
  }

  // Takes back `rank`'s parking in `seq`; false when someone else took it.
  bool Take(int rank, uint64_t seq) {
    uint64_t expected = seq;
    return slots_[rank].seq.compare_exchange_strong(expected, 0, std::memory_order_seq_cst);
  }

  // Takes `rank`'s parking if it is in a barrier <= released_seq; returns its waiter, or null.
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

 private:
  static constexpr uint64_t kFilling = UINT64_MAX;  // a Park in progress: not takeable yet

  struct alignas(64) Slot {
    std::atomic<uint64_t> seq{0};
    std::atomic<void*> waiter{nullptr};
  };
  std::unique_ptr<Slot[]> slots_;
};

}  // namespace distbarrier::comm
