#include "comm/barrier_stats.h"

#include <sched.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <new>

#include "common/env.h"
#include "common/futex.h"

namespace distbarrier::comm {
namespace {
constexpr size_t kLine = 64;

std::atomic<bool>& StatsFlag() {
  static std::atomic<bool> enabled{EnvInt("DISTBARRIER_STATS", 1) != 0};
  return enabled;
}

size_t RoundUp(size_t bytes) {
  return (bytes + kLine - 1) / kLine * kLine;
}

void RaiseMax(std::atomic<int64_t>& word, int64_t value) {
  int64_t current = word.load(std::memory_order_relaxed);
  while (current < value && !word.compare_exchange_weak(current, value, std::memory_order_relaxed)) {
  }
}
}  // namespace

bool StatsEnabled() {
  return StatsFlag().load(std::memory_order_relaxed);
}
void SetStatsEnabled(bool enabled) {
  StatsFlag().store(enabled, std::memory_order_relaxed);
}

// A record is whole once its slot shows its seq and an even version. Readers sleep on a word
// that follows the window's release protocol: the recorder ends the record, then bumps the word
// and wakes only if a reader counts itself asleep; a reader counts itself, then re-checks the
// slot before sleeping (all seq_cst: the Dekker pairing), so no wake-up is lost, and a record
// with no reader waiting writes nothing here. Nothing in the header is written per record: a
// line that every releasing rank writes is a cache miss on the releaser's way to its next
// arrival whenever the releaser changes.
struct BarrierStats::Header {
  alignas(kLine) std::atomic<uint32_t> recorded_word{0};
  std::atomic<uint32_t> readers_waiting{0};
};

// A row: this, then the relative arrival times of every rank, padded to whole lines, so one
// record writes only its own lines (with up to 3 ranks, one line).
struct BarrierStats::RecordSlot {
  std::atomic<uint64_t> version{0};  // odd while being written
  std::atomic<uint64_t> seq{0};
  std::atomic<int64_t> first_arrival_ns{0};
  std::atomic<int64_t> spread_ns{0};
  std::atomic<int32_t> last_rank{-1};
};

// A line per rank, so two ranks' counters never share one: a record writes those of the ranks
// that were late (the releaser always) and, for a barrier of a subset, of every rank in it.
struct alignas(kLine) BarrierStats::RankCounters {
  std::atomic<uint64_t> barriers{0};            // barriers of a subset of the ranks, this one among them
  std::atomic<uint64_t> all_ranks_released{0};  // barriers of all ranks that this rank released
  std::atomic<uint64_t> times_last{0};
  std::atomic<int64_t> total_ns{0};
  std::atomic<int64_t> max_ns{0};
};

static_assert(std::atomic<uint64_t>::is_always_lock_free && std::atomic<int64_t>::is_always_lock_free &&
                  std::atomic<uint32_t>::is_always_lock_free,
              "the statistics must be usable in memory shared between processes");

size_t BarrierStats::RowBytes(int rank_count) {
  static_assert(sizeof(RecordSlot) % alignof(std::atomic<int64_t>) == 0, "the relative times follow the slot");
  return RoundUp(sizeof(RecordSlot) + sizeof(std::atomic<int64_t>) * static_cast<size_t>(rank_count));
}

size_t BarrierStats::StateBytes(int rank_count) {
  return RoundUp(sizeof(Header)) + RowBytes(rank_count) * kRecent +
         sizeof(RankCounters) * static_cast<size_t>(rank_count);
}

BarrierStats::BarrierStats(int rank_count)
    : BarrierStats(rank_count, std::aligned_alloc(kLine, StateBytes(rank_count)), true) {
  heap_ = header_;
}

BarrierStats::BarrierStats(int rank_count, void* memory, bool initialize)
    : rank_count_(rank_count), row_bytes_(RowBytes(rank_count)) {
  if (memory == nullptr) throw std::bad_alloc();
  auto* bytes = static_cast<char*>(memory);
  const auto ranks = static_cast<size_t>(rank_count);
  rows_ = bytes + RoundUp(sizeof(Header));
  char* counters = rows_ + row_bytes_ * kRecent;
  if (initialize) {
    header_ = new (bytes) Header;
    for (size_t row = 0; row < kRecent; ++row) {
      char* at = rows_ + row * row_bytes_;
      new (at) RecordSlot;
      auto* relative = reinterpret_cast<std::atomic<int64_t>*>(at + sizeof(RecordSlot));
      for (size_t rank = 0; rank < ranks; ++rank) new (&relative[rank]) std::atomic<int64_t>(-1);
    }
    counters_ = reinterpret_cast<RankCounters*>(counters);
    for (size_t rank = 0; rank < ranks; ++rank) new (&counters_[rank]) RankCounters;
  } else {
    // Objects the initializing process constructed in this shared memory.
    header_ = std::launder(reinterpret_cast<Header*>(bytes));
    counters_ = std::launder(reinterpret_cast<RankCounters*>(counters));
  }
}

BarrierStats::~BarrierStats() {
  std::free(heap_);
}

BarrierStats::RecordSlot& BarrierStats::Slot(uint64_t seq) const {
  return *std::launder(reinterpret_cast<RecordSlot*>(rows_ + (seq % kRecent) * row_bytes_));
}

std::atomic<int64_t>* BarrierStats::Relative(uint64_t seq) const {
  return std::launder(
      reinterpret_cast<std::atomic<int64_t>*>(rows_ + (seq % kRecent) * row_bytes_ + sizeof(RecordSlot)));
}

BarrierSummary BarrierStats::RecordReleased(uint64_t seq, std::span<const int> required, const BarrierWindow& window) {
  std::vector<int64_t> arrival_ns(required.size());
  for (size_t i = 0; i < required.size(); ++i) arrival_ns[i] = window.ArrivalNs(required[i], seq);
  return RecordReleased(seq, required, arrival_ns);
}

BarrierSummary BarrierStats::RecordReleased(uint64_t seq, std::span<const int> required,
                                            std::span<const int64_t> arrival_ns) {
  int64_t first = INT64_MAX;
  int64_t last = INT64_MIN;
  int last_rank = -1;
  for (size_t i = 0; i < required.size(); ++i) {
    first = std::min(first, arrival_ns[i]);
    if (arrival_ns[i] > last) last = arrival_ns[i], last_rank = required[i];
  }

  RecordSlot& slot = Slot(seq);
  std::atomic<int64_t>* relative = Relative(seq);
  const bool all_ranks = required.size() == static_cast<size_t>(rank_count_);  // ranks are distinct
  // A seqlock without fences (TSan does not model them): every field is stored with release
  // after the odd version, so a reader that reads any new field (with acquire) also sees the
  // odd version, or a later one, when it checks the version again. On x86 both are plain moves.
  const uint64_t version = slot.version.load(std::memory_order_relaxed);
  slot.version.store(version + 1, std::memory_order_relaxed);
  slot.seq.store(seq, std::memory_order_seq_cst);  // seq_cst: a reader's Recorded pairs with it (see Header)
  slot.last_rank.store(last_rank, std::memory_order_release);
  slot.first_arrival_ns.store(first, std::memory_order_release);
  slot.spread_ns.store(last - first, std::memory_order_release);
  if (!all_ranks) {  // else every entry is written below
    for (int rank = 0; rank < rank_count_; ++rank) relative[rank].store(-1, std::memory_order_release);
  }
  // The counters take read-modify-writes (a record may overlap another, see the header), but
  // only where they change something: the first arrival adds no lateness, and every rank's
  // barrier count moves at once for a barrier of all ranks.
  for (size_t i = 0; i < required.size(); ++i) {
    const int rank = required[i];
    const int64_t lateness = arrival_ns[i] - first;
    relative[rank].store(lateness, std::memory_order_release);
    RankCounters& counters = counters_[rank];
    if (!all_ranks) counters.barriers.fetch_add(1, std::memory_order_relaxed);
    if (lateness != 0) {
      counters.total_ns.fetch_add(lateness, std::memory_order_relaxed);
      RaiseMax(counters.max_ns, lateness);
    }
  }
  if (last_rank >= 0) {
    RankCounters& releaser = counters_[last_rank];
    if (all_ranks) releaser.all_ranks_released.fetch_add(1, std::memory_order_relaxed);
    releaser.times_last.fetch_add(1, std::memory_order_relaxed);
  }
  slot.version.store(version + 2, std::memory_order_seq_cst);  // the record is whole (see Recorded)

  if (header_->readers_waiting.load(std::memory_order_seq_cst) != 0) {
    header_->recorded_word.fetch_add(1, std::memory_order_seq_cst);
    FutexWakeAll(header_->recorded_word);
  }
  return {first, last, last_rank};
}

std::optional<BarrierRecord> BarrierStats::Copy(uint64_t seq, Clock::time_point give_up) const {
  const RecordSlot& slot = Slot(seq);
  const std::atomic<int64_t>* relative = Relative(seq);
  for (;;) {
    const uint64_t before = slot.version.load(std::memory_order_acquire);
    if (before & 1) {  // its writer is at work (or died at it: a process killed meanwhile)
      if (Clock::now() >= give_up) return std::nullopt;
      sched_yield();
      continue;
    }
    // Acquire loads, so the version check below cannot move before them (see RecordReleased).
    if (slot.seq.load(std::memory_order_acquire) != seq) return std::nullopt;
    BarrierRecord record;
    record.seq = seq;
    record.last_rank = slot.last_rank.load(std::memory_order_acquire);
    record.first_arrival_ns = slot.first_arrival_ns.load(std::memory_order_acquire);
    record.spread_ns = slot.spread_ns.load(std::memory_order_acquire);
    record.relative_ns.resize(static_cast<size_t>(rank_count_));
    for (int rank = 0; rank < rank_count_; ++rank) {
      record.relative_ns[rank] = relative[rank].load(std::memory_order_acquire);
    }
    if (slot.version.load(std::memory_order_relaxed) == before) return record;
  }
}

bool BarrierStats::Recorded(uint64_t seq) const {
  const RecordSlot& slot = Slot(seq);
  // The seq first: a slot that shows it also shows the odd version its writer stored before it,
  // or a later version; an even one then is the end of that record (or of a later one).
  if (slot.seq.load(std::memory_order_seq_cst) < seq) return false;
  return (slot.version.load(std::memory_order_seq_cst) & 1) == 0;
}

std::optional<BarrierRecord> BarrierStats::WaitFor(uint64_t seq) const {
  if (seq == 0) return std::nullopt;
  // The recorder runs right after the release the caller saw; the bound only covers a
  // recorder that was aborted or died, or statistics switched off meanwhile.
  const Clock::time_point give_up = Clock::now() + std::chrono::seconds(1);
  for (;;) {
    const uint32_t word = header_->recorded_word.load(std::memory_order_seq_cst);
    if (Recorded(seq) || !StatsEnabled()) break;
    const Clock::time_point now = Clock::now();
    if (now >= give_up) break;
    header_->readers_waiting.fetch_add(1, std::memory_order_seq_cst);
    if (!Recorded(seq)) {
      FutexWait(header_->recorded_word, word, std::min<Clock::duration>(give_up - now, std::chrono::milliseconds(10)));
    }
    header_->readers_waiting.fetch_sub(1, std::memory_order_seq_cst);
  }
  return Copy(seq, give_up);
}

std::vector<RankLateness> BarrierStats::Lateness() const {
  std::vector<RankLateness> lateness(static_cast<size_t>(rank_count_));
  uint64_t all_ranks_barriers = 0;
  for (int rank = 0; rank < rank_count_; ++rank) {
    all_ranks_barriers += counters_[rank].all_ranks_released.load(std::memory_order_relaxed);
  }
  for (int rank = 0; rank < rank_count_; ++rank) {
    const RankCounters& counters = counters_[rank];
    lateness[rank] = {all_ranks_barriers + counters.barriers.load(std::memory_order_relaxed),
                      counters.times_last.load(std::memory_order_relaxed),
                      counters.total_ns.load(std::memory_order_relaxed),
                      counters.max_ns.load(std::memory_order_relaxed)};
  }
  return lateness;
}

void BarrierStats::Reset() {
  for (int rank = 0; rank < rank_count_; ++rank) {
    RankCounters& counters = counters_[rank];
    counters.barriers.store(0, std::memory_order_relaxed);
    counters.all_ranks_released.store(0, std::memory_order_relaxed);
    counters.times_last.store(0, std::memory_order_relaxed);
    counters.total_ns.store(0, std::memory_order_relaxed);
    counters.max_ns.store(0, std::memory_order_relaxed);
  }
}

}  // namespace distbarrier::comm
