#include "comm/barrier_window.h"

#include <sched.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <new>

#include "common/cpus.h"
#include "common/futex.h"

namespace distbarrier::comm {
namespace {
// Before sleeping: a few spins catch a peer that is a few hundred nanoseconds behind on
// another core; then yields hand the core to a peer that shares it (ranks often outnumber
// cores). Measured on 2 cores (4..16 ranks): 256 spins and no yields cost 5-8x std::barrier,
// since the spinner burns the core the late rank needs; 16 spins + 50 yields match it.
constexpr int kSpinChecks = 16;
constexpr int kYieldChecks = 50;
// Unless every rank of the group has a CPU of its own (one host, ranks <= CPUs): then the
// others are likely running, and a yield -- a system call, hundreds of nanoseconds in a VM --
// would miss an arrival a few hundred nanoseconds late. Spin for up to this long first, while
// this thread's recent waits were shorter than that: on a machine loaded by other programs the
// peer comes a time slice later, and spinning only takes CPU from it (2 processes next to two
// CPU hogs: 6.3-8.5 us per barrier without the spin, 12-364 us with it always on).
constexpr std::chrono::nanoseconds kSpinWhileRanksFitCpus = std::chrono::microseconds(5);
constexpr int kChecksPerClockRead = 32;
// Across hosts, a waiter that helps the agent does so for at most this long when its caller
// sets no limit (the stream's worker, before it sleeps): a late peer (one preempted on a busy
// machine) costs the worker's poll rather than a sleep and the agent thread's wake-up.
constexpr std::chrono::microseconds kHelpAtMost{1000};
constexpr size_t kLine = 64;

// This thread's recent waits in SpinForRelease (ns, each capped at 4x the spin, averaged with
// weight 1/8), for groups that fit the CPUs.
thread_local int64_t t_recent_wait_ns = 0;

void NoteWait(Clock::duration waited) {
  const int64_t ns = std::min<int64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(waited).count(),
                                       4 * kSpinWhileRanksFitCpus.count());
  t_recent_wait_ns += (ns - t_recent_wait_ns) / 8;
}

// Sequence words only grow: a barrier abandoned after a timeout is never released, and a
// later one's release covers it.
void RaiseTo(std::atomic<uint64_t>& word, uint64_t value) {
  uint64_t current = word.load(std::memory_order_seq_cst);
  while (current < value && !word.compare_exchange_weak(current, value, std::memory_order_seq_cst)) {
  }
}
}  // namespace

struct BarrierWindow::Header {
  alignas(kLine) std::atomic<uint64_t> released_seq{0};
  alignas(kLine) std::atomic<uint32_t> release_word{0};
  alignas(kLine) std::atomic<uint32_t> sleepers{0};
  alignas(kLine) std::atomic<uint64_t> warned_seq{0};
  std::atomic<uint32_t> dead_ranks{0};
  std::atomic<uint32_t> host_count{1};
  std::atomic<uint32_t> local_host{0};
  alignas(kLine) std::atomic<uint64_t> agent_seq{0};
  alignas(kLine) std::atomic<uint32_t> arrival_word{0};
  std::atomic<int64_t> agent_polling_until_ns{0};
  alignas(kLine) std::atomic<int64_t> clock_offset_ns{0};
  std::atomic<int64_t> clock_error_ns{-1};
};

struct alignas(kLine) BarrierWindow::Slot {
  std::atomic<uint64_t> arrived_seq{0};
  std::atomic<int64_t> arrival_ns[2] = {0, 0};  // by seq & 1
  std::atomic<int32_t> pid{0};
  std::atomic<uint32_t> dead{0};
  std::atomic<uint32_t> destroyed{0};
  std::atomic<uint32_t> unreachable{0};
  std::atomic<int32_t> host{0};
  std::atomic<uint64_t> reported_seq{0};
};

static_assert(std::atomic<uint64_t>::is_always_lock_free && std::atomic<int64_t>::is_always_lock_free,
              "the window must be usable in memory shared between processes");

namespace {
size_t RequiredWordCount(int rank_count) {
  return (static_cast<size_t>(rank_count) + 63) / 64;
}
}  // namespace

// Header | one slot per rank | two required bitmaps (by seq & 1), for windows across hosts.
size_t BarrierWindow::StateBytes(int rank_count) {
  const size_t bytes = sizeof(Header) + sizeof(Slot) * static_cast<size_t>(rank_count) +
                       2 * RequiredWordCount(rank_count) * sizeof(std::atomic<uint64_t>);
  return (bytes + kLine - 1) / kLine * kLine;  // aligned_alloc wants a multiple of the alignment
}

BarrierWindow::BarrierWindow(int rank_count)
    : BarrierWindow(rank_count, std::aligned_alloc(kLine, StateBytes(rank_count)), true) {
  heap_ = header_;
}

BarrierWindow::BarrierWindow(int rank_count, void* memory, bool initialize) : rank_count_(rank_count) {
  if (memory == nullptr) throw std::bad_alloc();
  if (initialize) {
    header_ = new (memory) Header;
    slots_ = reinterpret_cast<Slot*>(static_cast<char*>(memory) + sizeof(Header));
    for (int rank = 0; rank < rank_count; ++rank) new (&slots_[rank]) Slot;
    auto* words = reinterpret_cast<std::atomic<uint64_t>*>(slots_ + rank_count);
    for (size_t i = 0; i < 2 * RequiredWordCount(rank_count); ++i) new (&words[i]) std::atomic<uint64_t>(0);
  } else {
    // Objects the initializing process constructed in this shared memory.
    header_ = std::launder(static_cast<Header*>(memory));
    slots_ = std::launder(reinterpret_cast<Slot*>(static_cast<char*>(memory) + sizeof(Header)));
  }
}

BarrierWindow::~BarrierWindow() {
  std::free(heap_);
}

bool BarrierWindow::Arrive(int rank, uint64_t seq, int64_t arrival_ns, std::span<const int> required,
                           std::span<int64_t> arrivals) {
  Slot& slot = slots_[rank];
  const bool cross_host = CrossHost();
  if (cross_host) {
    // Whole words, each the same in every arrival at seq: a reader never sees a torn set.
    std::atomic<uint64_t>* words = RequiredWords(seq);
    std::vector<uint64_t> bits(RequiredWordCount(rank_count_), 0);
    for (int member : required) bits[static_cast<size_t>(member) / 64] |= uint64_t{1} << (member % 64);
    for (size_t i = 0; i < bits.size(); ++i) words[i].store(bits[i], std::memory_order_relaxed);
  }
  slot.arrival_ns[seq & 1].store(arrival_ns, std::memory_order_relaxed);
  slot.arrived_seq.store(seq, std::memory_order_seq_cst);  // also publishes arrival_ns and the set
  // With a helper, this thread does the agent's work next (SpinForRelease): no wake-up.
  if (cross_host && helper_ != nullptr) header_->arrival_word.fetch_add(1, std::memory_order_seq_cst);
  if (cross_host && helper_ == nullptr) WakeArrival();
  return TryRelease(seq, required, arrivals);
}

bool BarrierWindow::CrossHost() const {
  return header_->host_count.load(std::memory_order_relaxed) > 1;
}

std::atomic<uint64_t>* BarrierWindow::RequiredWords(uint64_t seq) const {
  auto* words = reinterpret_cast<std::atomic<uint64_t>*>(slots_ + rank_count_);
  return words + (seq & 1) * RequiredWordCount(rank_count_);
}

void BarrierWindow::ArriveForAgent(int rank, uint64_t seq, int64_t arrival_ns) {
  Slot& slot = slots_[rank];
  slot.arrival_ns[seq & 1].store(arrival_ns, std::memory_order_relaxed);
  slot.arrived_seq.store(seq, std::memory_order_seq_cst);
}

bool BarrierWindow::AgentReached(uint64_t seq, std::span<const int> required) {
  RaiseTo(header_->agent_seq, seq);
  return TryRelease(seq, required);
}

std::vector<int> BarrierWindow::RequiredAt(uint64_t seq) const {
  std::vector<int> required;
  const std::atomic<uint64_t>* words = RequiredWords(seq);
  for (int rank = 0; rank < rank_count_; ++rank) {
    if ((words[rank / 64].load(std::memory_order_relaxed) >> (rank % 64)) & 1) required.push_back(rank);
  }
  return required;
}

uint32_t BarrierWindow::ArrivalWord() const {
  return header_->arrival_word.load(std::memory_order_seq_cst);
}

void BarrierWindow::WaitArrival(uint32_t seen, std::chrono::nanoseconds timeout) {
  FutexWait(header_->arrival_word, seen, timeout);
}

// Like Release's sleepers: the agent stores 0 to agent_polling_until_ns, then reads the word; an
// arrival bumps the word, then reads agent_polling_until_ns (all seq_cst). Either the arrival
// reads 0 and wakes the waiter, or its bump precedes the agent's read in the single total order
// and the agent sees the word moved: an arrival is never missed, only its wake-up saved.
bool BarrierWindow::WakeArrival() {
  header_->arrival_word.fetch_add(1, std::memory_order_seq_cst);
  const int64_t until = header_->agent_polling_until_ns.load(std::memory_order_seq_cst);
  if (until != 0 &&
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count() < until) {
    return false;
  }
  FutexWakeAll(header_->arrival_word);
  return true;
}

void BarrierWindow::WakeArrivalWaiters() {
  header_->arrival_word.fetch_add(1, std::memory_order_seq_cst);
  FutexWakeAll(header_->arrival_word);
}

void BarrierWindow::AgentPollsUntil(int64_t until_ns) {
  header_->agent_polling_until_ns.store(until_ns, std::memory_order_seq_cst);
}

void BarrierWindow::AgentStopsPolling() {
  header_->agent_polling_until_ns.store(0, std::memory_order_seq_cst);
}

void BarrierWindow::SetHosts(int host_count, int local_host) {
  header_->host_count.store(static_cast<uint32_t>(host_count), std::memory_order_relaxed);
  header_->local_host.store(static_cast<uint32_t>(local_host), std::memory_order_relaxed);
}

void BarrierWindow::SetHost(int rank, int host) {
  slots_[rank].host.store(host, std::memory_order_relaxed);
}
int BarrierWindow::HostCount() const {
  return static_cast<int>(header_->host_count.load(std::memory_order_relaxed));
}
int BarrierWindow::LocalHost() const {
  return static_cast<int>(header_->local_host.load(std::memory_order_relaxed));
}
int BarrierWindow::Host(int rank) const {
  return slots_[rank].host.load(std::memory_order_relaxed);
}

void BarrierWindow::SetClockOffset(int64_t offset_ns, int64_t error_ns) {
  header_->clock_offset_ns.store(offset_ns, std::memory_order_relaxed);
  header_->clock_error_ns.store(error_ns, std::memory_order_release);
}
int64_t BarrierWindow::ClockOffsetNs() const {
  return header_->clock_offset_ns.load(std::memory_order_relaxed);
}
int64_t BarrierWindow::ClockErrorNs() const {
  return header_->clock_error_ns.load(std::memory_order_acquire);
}

void BarrierWindow::SetReportedSequence(int rank, uint64_t seq) {
  RaiseTo(slots_[rank].reported_seq, seq);
}
uint64_t BarrierWindow::ReportedSequence(int rank) const {
  return slots_[rank].reported_seq.load(std::memory_order_relaxed);
}

// Across hosts the agent is one more participant (agent_seq); see the header.
bool BarrierWindow::TryRelease(uint64_t seq, std::span<const int> required, std::span<int64_t> arrivals) {
  // The arrival times are read with the lines that show the barrier complete, while they are in
  // this CPU's cache: a rank that passes (on one host, as soon as it sees every line) rewrites
  // its line at once, but it cannot reach seq + 2, which overwrites slot seq & 1, before this
  // arrival reaches seq + 1.
  if (arrivals.size() != required.size()) arrivals = {};
  if (ArrivedFrom(0, seq, required, arrivals) < required.size()) return false;
  if (CrossHost() && header_->agent_seq.load(std::memory_order_seq_cst) < seq) return false;
  // Several arrivals may find the barrier complete; the one that raises released_seq releases.
  // Claiming and publishing are one write to one line: with a separate claim word, each barrier
  // whose releaser is not the previous one's moved two lines between cores instead of one.
  uint64_t released = header_->released_seq.load(std::memory_order_seq_cst);
  do {
    if (released >= seq) return false;
  } while (!header_->released_seq.compare_exchange_weak(released, seq, std::memory_order_seq_cst));
  WakeSleepers();
  return true;
}

namespace {
std::atomic<void (*)(void*)> release_hook{nullptr};
std::atomic<void*> release_hook_arg{nullptr};
}  // namespace

void BarrierWindow::SetReleaseHookForTesting(void (*hook)(void*), void* arg) {
  release_hook_arg.store(arg, std::memory_order_relaxed);
  release_hook.store(hook, std::memory_order_seq_cst);
}

// The order matters: released_seq first (TryRelease), then the word. A waiter reads the word,
// then checks released_seq, then sleeps on the word; bumping the word first would let it read
// the new word, miss the release and sleep with no wake-up coming (BarrierWindowTest covers it).
// The word is bumped only when someone counts itself asleep: a waiter that counts itself
// after this release read sleepers == 0 re-checks released_seq afterwards and sees the release
// (both seq_cst: the count's increment follows our read of it in the single total order, and
// our raise of released_seq precedes that read), so it never sleeps on a word that will not
// move. Most releases find nobody asleep (ranks of one process park instead) and skip the
// shared write.
void BarrierWindow::WakeSleepers() {
  if (auto* hook = release_hook.load(std::memory_order_relaxed)) hook(release_hook_arg.load(std::memory_order_relaxed));
  if (header_->sleepers.load(std::memory_order_seq_cst) == 0) return;
  header_->release_word.fetch_add(1, std::memory_order_seq_cst);
  FutexWakeAll(header_->release_word);
}

bool BarrierWindow::Released(uint64_t seq) const {
  return header_->released_seq.load(std::memory_order_seq_cst) >= seq;
}

uint64_t BarrierWindow::ReleasedSequence() const {
  return header_->released_seq.load(std::memory_order_seq_cst);
}

bool BarrierWindow::Complete(uint64_t seq, std::span<const int> required) const {
  return ArrivedFrom(0, seq, required) == required.size();
}

size_t BarrierWindow::ArrivedFrom(size_t first, uint64_t seq, std::span<const int> required,
                                  std::span<int64_t> arrivals) const {
  size_t next = first;
  for (; next < required.size(); ++next) {
    const Slot& slot = slots_[required[next]];
    if (slot.arrived_seq.load(std::memory_order_seq_cst) < seq) break;
    if (!arrivals.empty()) arrivals[next] = slot.arrival_ns[seq & 1].load(std::memory_order_relaxed);
  }
  return next;
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

bool BarrierWindow::SpinForRelease(uint64_t seq, std::span<const int> required, std::optional<Clock::duration> limit,
                                   std::optional<Clock::time_point> began) const {
  // Ranks of one host watch the required arrival lines rather than the released word: once
  // every line shows seq the barrier is theirs to pass, and the release that follows is the
  // last arrival's own business (its records, its waking of sleepers). That takes two
  // cache-line hand-offs off the waiter's path (the last arrival's write of the released word
  // and the waiter's read of it): on a machine whose cores are far apart (a hand-off of 200+
  // ns), a large part of a barrier. Lines only grow, so a line seen at seq is not read again.
  // Across hosts the agent is one more participant with no line: there the released word
  // decides. The released word is still read while yielding, for a required set that differs
  // from the releaser's (elastic ranks that disagree), where only the release says go.
  const bool watch_lines = !CrossHost();
  if (!watch_lines && helper_ != nullptr) return HelpUntilReleased(seq, limit);
  size_t seen = 0;
  const auto passed = [&](bool yielding) {
    if (watch_lines && (seen = ArrivedFrom(seen, seq, required)) == required.size()) return true;
    return (yielding || !watch_lines) && Released(seq);
  };
  const bool ranks_fit_cpus = watch_lines && required.size() <= CpusForThisProcess();
  for (int i = 0; i < kSpinChecks; ++i) {
    if (passed(false)) {
      if (ranks_fit_cpus) NoteWait(Clock::duration::zero());
      return true;
    }
    CpuRelax();
  }
  // A yield gives the core to whatever else wants it, for a whole time slice when a core is
  // oversubscribed: the limit bounds the spin in time, not only in yields.
  const Clock::time_point start = began ? *began : Clock::now();
  const Clock::time_point give_up = limit ? start + *limit : Clock::time_point::max();
  const auto noted = [&](bool came) {
    if (ranks_fit_cpus) NoteWait(Clock::now() - start);
    return came;
  };
  if (ranks_fit_cpus && t_recent_wait_ns < kSpinWhileRanksFitCpus.count()) {
    const Clock::time_point stop_spinning = std::min(give_up, start + kSpinWhileRanksFitCpus);
    do {
      for (int i = 0; i < kChecksPerClockRead; ++i) {
        if (passed(false)) return noted(true);
        CpuRelax();
      }
    } while (Clock::now() < stop_spinning);
  }
  for (int i = 0; i < kYieldChecks; ++i) {
    if (passed(true)) return noted(true);
    if (limit && Clock::now() >= give_up) return noted(false);
    sched_yield();
  }
  return noted(passed(true));
}

// Like the bare dissemination barrier that bounds us (distbarrier-perf --hosts, UCX.dissem):
// one thread per host polls the network and yields only when nothing came.
bool BarrierWindow::HelpUntilReleased(uint64_t seq, std::optional<Clock::duration> limit) const {
  if (Released(seq)) return true;
  const Clock::time_point give_up = Clock::now() + std::min<Clock::duration>(limit.value_or(kHelpAtMost), kHelpAtMost);
  helper_->BeginHelping();
  for (;;) {
    const bool moved = helper_->Help();
    if (Released(seq) || Clock::now() >= give_up) break;
    if (!moved) sched_yield();
  }
  helper_->EndHelping();
  return Released(seq);
}

WaitResult BarrierWindow::Wait(uint64_t seq, std::span<const int> required, const WaitOptions& options,
                               const std::stop_token& stop) {
  // Not past the deadline: a timeout is reported when it falls due, also while helping.
  std::optional<Clock::duration> spin_limit;
  if (options.deadline) spin_limit = std::max<Clock::duration>(*options.deadline - Clock::now(), {});
  if (SpinForRelease(seq, required, spin_limit)) return WaitResult::kReleased;
  // A helper (across hosts) that stops helping before the release, to sleep or to leave, hands
  // the agent's work back to the agent's thread at once rather than after its grace.
  if (helper_ != nullptr && CrossHost()) helper_->StopHelping();
  bool warned = false;
  for (;;) {
    const uint32_t word = header_->release_word.load(std::memory_order_seq_cst);
    if (Released(seq)) return WaitResult::kReleased;
    if (stop.stop_requested()) return WaitResult::kStopped;
    if (header_->dead_ranks.load(std::memory_order_seq_cst) != 0 && !DeadMissing(seq, required).empty()) {
      return WaitResult::kPeerDied;
    }
    const Clock::time_point now = Clock::now();
    if (options.deadline && now >= *options.deadline) return WaitResult::kTimedOut;
    if (!warned && options.warn_at && now >= *options.warn_at) {
      warned = true;
      if (options.on_warn) options.on_warn();
    }
    Clock::time_point wake_at = now + options.max_sleep;
    if (options.deadline) wake_at = std::min(wake_at, *options.deadline);
    if (!warned && options.warn_at) wake_at = std::min(wake_at, *options.warn_at);

    header_->sleepers.fetch_add(1, std::memory_order_seq_cst);
    if (!Released(seq)) FutexWait(header_->release_word, word, wake_at - now);
    header_->sleepers.fetch_sub(1, std::memory_order_seq_cst);
  }
}

void BarrierWindow::SetPid(int rank, int32_t pid) {
  slots_[rank].pid.store(pid, std::memory_order_release);
}

int32_t BarrierWindow::Pid(int rank) const {
  return slots_[rank].pid.load(std::memory_order_acquire);
}

void BarrierWindow::MarkDead(int rank) {
  if (slots_[rank].dead.exchange(1, std::memory_order_seq_cst) != 0) return;
  header_->dead_ranks.fetch_add(1, std::memory_order_seq_cst);
  WakeAll();
}

void BarrierWindow::MarkDead(std::span<const int> ranks) {
  uint32_t marked = 0;
  for (int rank : ranks) {
    if (slots_[rank].dead.exchange(1, std::memory_order_seq_cst) == 0) ++marked;
  }
  if (marked == 0) return;
  header_->dead_ranks.fetch_add(marked, std::memory_order_seq_cst);
  WakeAll();
}

bool BarrierWindow::Dead(int rank) const {
  return slots_[rank].dead.load(std::memory_order_seq_cst) != 0;
}

void BarrierWindow::MarkUnreachable(std::span<const int> ranks) {
  for (int rank : ranks) slots_[rank].unreachable.store(1, std::memory_order_release);
}

bool BarrierWindow::Unreachable(int rank) const {
  return slots_[rank].unreachable.load(std::memory_order_acquire) != 0;
}

void BarrierWindow::MarkDestroyed(int rank) {
  slots_[rank].destroyed.store(1, std::memory_order_release);
}

bool BarrierWindow::Destroyed(int rank) const {
  return slots_[rank].destroyed.load(std::memory_order_acquire) != 0;
}

std::vector<int> BarrierWindow::DeadMissing(uint64_t seq, std::span<const int> required) const {
  std::vector<int> dead;
  for (int rank : required) {
    if (Dead(rank) && slots_[rank].arrived_seq.load(std::memory_order_seq_cst) < seq) dead.push_back(rank);
  }
  return dead;
}

void BarrierWindow::WakeAll() {
  header_->release_word.fetch_add(1, std::memory_order_seq_cst);
  FutexWakeAll(header_->release_word);
}

uint32_t BarrierWindow::Sleepers() const {
  return header_->sleepers.load(std::memory_order_seq_cst);
}

bool BarrierWindow::ClaimWarning(uint64_t seq) {
  uint64_t previous = header_->warned_seq.load(std::memory_order_relaxed);
  while (previous < seq) {
    if (header_->warned_seq.compare_exchange_weak(previous, seq, std::memory_order_relaxed)) return true;
  }
  return false;
}

}  // namespace distbarrier::comm
