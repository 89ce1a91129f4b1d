#include "comm/barrier_window.h"

#include <algorithm>
#include <sched.h>

#include <climits>

#include "common/futex.h"

namespace distbarrier::comm {
namespace {
// Before sleeping: a few spins catch a peer that is a few hundred nanoseconds behind on
// another core; then yields hand the core to a peer that shares it (ranks often outnumber
// cores). Measured on 2 cores (4..16 ranks): 256 spins and no yields cost 5-8x std::barrier,
// since the spinner burns the core the late rank needs; 16 spins + 50 yields match it.
constexpr int kSpinChecks = 16;
constexpr int kYieldChecks = 50;
// Longest single sleep. Wake-ups come from the release, a stop request or the deadline;
// this is only a safety net.
constexpr auto kMaxSleep = std::chrono::milliseconds(200);
}  // namespace

BarrierWindow::BarrierWindow(int rank_count)
    : rank_count_(rank_count), slots_(std::make_unique<Slot[]>(static_cast<size_t>(rank_count))) {}

void BarrierWindow::Arrive(int rank, uint64_t seq, int64_t arrival_ns, std::span<const int> required,
                           const CompletionHook& on_complete) {
  Slot& slot = slots_[rank];
  slot.arrival_ns[seq & 1].store(arrival_ns, std::memory_order_relaxed);
  slot.arrived_seq.store(seq, std::memory_order_seq_cst);  // also publishes arrival_ns
  if (!Complete(seq, required)) return;
  // Several arrivals may find the barrier complete; the one that raises the claim releases.
  uint64_t claimed = claimed_seq_.load(std::memory_order_seq_cst);
  do {
    if (claimed >= seq) return;
  } while (!claimed_seq_.compare_exchange_weak(claimed, seq, std::memory_order_seq_cst));
  if (on_complete) {
    on_complete(seq, [this, seq] { Release(seq); });
  } else {
    Release(seq);
  }
}

void BarrierWindow::Release(uint64_t seq) {
  RaiseTo(released_seq_, seq);
  release_word_.fetch_add(1, std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) != 0) FutexWakeAll(release_word_);
}

// Sequence words only grow: a barrier abandoned after a timeout is never released, and a
// later one's release covers it.
void BarrierWindow::RaiseTo(std::atomic<uint64_t>& word, uint64_t value) {
  uint64_t current = word.load(std::memory_order_seq_cst);
  while (current < value && !word.compare_exchange_weak(current, value, std::memory_order_seq_cst)) {
  }
}

bool BarrierWindow::Released(uint64_t seq) const { return released_seq_.load(std::memory_order_seq_cst) >= seq; }

bool BarrierWindow::Complete(uint64_t seq, std::span<const int> required) const {
  return std::all_of(required.begin(), required.end(), [&](int rank) {
    return slots_[rank].arrived_seq.load(std::memory_order_seq_cst) >= seq;
  });
}

std::vector<int> BarrierWindow::Missing(uint64_t seq, std::span<const int> required) const {
  std::vector<int> missing;
  for (int rank : required) {
    if (slots_[rank].arrived_seq.load(std::memory_order_seq_cst) < seq) missing.push_back(rank);
  }
  return missing;
}

uint64_t BarrierWindow::ArrivedSequence(int rank) const {
  return slots_[rank].arrived_seq.load(std::memory_order_acquire);
}

int64_t BarrierWindow::ArrivalNs(int rank, uint64_t seq) const {
  return slots_[rank].arrival_ns[seq & 1].load(std::memory_order_relaxed);
}

WaitResult BarrierWindow::Wait(uint64_t seq, const WaitOptions& options, const std::stop_token& stop) {
  for (int i = 0; i < kSpinChecks; ++i) {
    if (Released(seq)) return WaitResult::kReleased;
    CpuRelax();
  }
  for (int i = 0; i < kYieldChecks; ++i) {
    if (Released(seq)) return WaitResult::kReleased;
    sched_yield();
  }
  bool warned = false;
  for (;;) {
    const uint32_t word = release_word_.load(std::memory_order_seq_cst);
    if (Released(seq)) return WaitResult::kReleased;
    if (stop.stop_requested()) return WaitResult::kStopped;
    const Clock::time_point now = Clock::now();
    if (options.deadline && now >= *options.deadline) return WaitResult::kTimedOut;
    if (!warned && options.warn_at && now >= *options.warn_at) {
      warned = true;
      if (options.on_warn) options.on_warn();
    }
    Clock::time_point wake_at = now + kMaxSleep;
    if (options.deadline) wake_at = std::min(wake_at, *options.deadline);
    if (!warned && options.warn_at) wake_at = std::min(wake_at, *options.warn_at);

    sleepers_.fetch_add(1, std::memory_order_seq_cst);
    if (!Released(seq)) FutexWait(release_word_, word, wake_at - now);
    sleepers_.fetch_sub(1, std::memory_order_seq_cst);
  }
}

void BarrierWindow::WakeAll() {
  release_word_.fetch_add(1, std::memory_order_seq_cst);
  FutexWakeAll(release_word_);
}

bool BarrierWindow::ClaimWarning(uint64_t seq) {
  uint64_t previous = warned_seq_.load(std::memory_order_relaxed);
  while (previous < seq) {
    if (warned_seq_.compare_exchange_weak(previous, seq, std::memory_order_relaxed)) return true;
  }
  return false;
}

}  // namespace distbarrier::comm
