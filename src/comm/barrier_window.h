// The arrival state of one group's barriers and the wait on it.
//
// Each rank owns one cache line holding the sequence number of the last barrier it reached,
// the times of its last two arrivals, its pid and whether it is known dead. Sequence numbers
// only grow, so barrier k of one rank pairs with barrier k of every other with no reset
// step: k is complete when every required rank's line is >= k.
//
// The arrival that finds barrier k complete releases it: exactly one does, the one whose
// compare-and-swap raises released_seq to k. Waiters spin a little and yield a little,
// watching that word or, on one host, the required arrival lines themselves (so the release
// is not on their path), then sleep on a futex word bumped by each release; a sleeper count
// lets releases skip the wake syscall when nobody sleeps. Every access that decides
// "released" or "asleep" is seq_cst: a sleeper either is seen by the releaser (which then
// wakes it) or itself sees the release before it sleeps (the Dekker pairing), so no wake-up
// is lost.
//
// Barriers are serialized: nobody passes k+1 before every required rank arrived at k+1, so a
// rank's arrival time for k (slot k & 1) is overwritten, at k+2, only after every rank that
// passed k has arrived at k+1 -- what it does for k after the release is safe until then.
//
// The state is plain atomics in one block of memory (WindowState): on the heap for ranks in
// one process, or in memory shared between processes; the futexes are process-shared.
//
// A group across hosts has one window per host, with lines for every rank of the group. The
// host's agent (comm/hosts) learns of local arrivals through the arrival word, exchanges them
// with the other hosts and writes the remote ranks' arrivals in (ArriveForAgent). The agent is
// one more participant of every barrier (AgentReached): local ranks alone never release a
// barrier, so they are never more than one barrier ahead of it, and the required set each
// arrival writes (by seq & 1) is still there when the agent reads it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <stop_token>
#include <vector>

namespace distbarrier::comm {

using Clock = std::chrono::steady_clock;

enum class WaitResult { kReleased, kTimedOut, kStopped, kPeerDied };

struct WaitOptions {
  std::optional<Clock::time_point> deadline;  // none: wait until released or stopped
  std::optional<Clock::time_point> warn_at;   // when to call on_warn once
  std::function<void()> on_warn;
  // Longest single sleep: a safety net only, since wake-ups come from the release, a stop
  // request, a death or the deadline. Tests make it long so a lost wake-up shows.
  Clock::duration max_sleep = std::chrono::milliseconds(200);
};

// Across hosts, in the process of the host's agent: a waiter that spins for a release does the
// agent's work itself (progress on the network, the exchange with the other hosts), so the
// barrier's path has no hand-off to the agent's thread and back (comm/hosts/host_agent.h).
class WaitHelper {
 public:
  virtual ~WaitHelper() = default;
  // Around a waiter's turns: between them, local arrivals need not wake the agent's thread.
  virtual void BeginHelping() = 0;
  virtual void EndHelping() = 0;
  // One turn of the agent's work on the calling thread, unless another thread takes it now.
  // True when anything moved (a message came or went, a barrier advanced).
  virtual bool Help() = 0;
  // The waiter stops helping before the release (to sleep, or on a timeout): the agent's thread
  // takes the work back at once.
  virtual void StopHelping() = 0;
};

class BarrierWindow {
 public:
  // The bytes of state for `rank_count` ranks, for a caller that places it in shared memory.
  static size_t StateBytes(int rank_count);

  // State on the heap, for ranks that are threads of this process.
  explicit BarrierWindow(int rank_count);
  // A view of state at `memory` (StateBytes(rank_count) bytes, 64-byte aligned). The one
  // process that sets it up passes initialize = true, which constructs the state there.
  BarrierWindow(int rank_count, void* memory, bool initialize);
  ~BarrierWindow();
  BarrierWindow(const BarrierWindow&) = delete;
  BarrierWindow& operator=(const BarrierWindow&) = delete;

  int RankCount() const { return rank_count_; }

  // Publishes that `rank` reached barrier `seq` at `arrival_ns` (steady clock); if that
  // completes barrier `seq` for `required`, releases everyone waiting for it and returns true.
  // Then, when `arrivals` has required.size() entries, it holds each required rank's arrival
  // time at `seq`, read with the lines that showed the barrier complete (so from this CPU's
  // cache; a rank that passes rewrites its line at once). Its entries mean nothing when false.
  bool Arrive(int rank, uint64_t seq, int64_t arrival_ns, std::span<const int> required,
              std::span<int64_t> arrivals = {});

  // Across hosts: the agent writes the arrival of a rank of another host (no release check).
  void ArriveForAgent(int rank, uint64_t seq, int64_t arrival_ns);
  // Across hosts: the agent has every required rank's arrival at `seq`; releases it if complete
  // (true when this call released it).
  bool AgentReached(uint64_t seq, std::span<const int> required);
  // Across hosts: the ranks required at `seq` (as written by a local rank that arrived at it).
  std::vector<int> RequiredAt(uint64_t seq) const;
  // Across hosts: bumped by every local arrival; the agent sleeps on it.
  uint32_t ArrivalWord() const;
  void WaitArrival(uint32_t seen, std::chrono::nanoseconds timeout);
  // Bumps the word; wakes WaitArrival unless the agent polls the word itself (below). True when
  // it woke (the tests' view).
  bool WakeArrival();
  // Across hosts: the agent polls ArrivalWord until `until_ns` (steady clock, shared by the
  // host's processes), so arrivals skip the futex wake-up meanwhile. Past until_ns (an agent
  // that died polling) arrivals wake again. After AgentStopsPolling every arrival wakes; the
  // agent reads ArrivalWord once more after it to see the arrivals that skipped the wake-up.
  void AgentPollsUntil(int64_t until_ns);
  void AgentStopsPolling();
  // WakeArrival regardless of the agent's polling (to stop the thread that waits).
  void WakeArrivalWaiters();

  // Hosts: set by whoever initializes the state. One host: every rank on host 0 of 1.
  void SetHosts(int host_count, int local_host);
  void SetHost(int rank, int host);
  int HostCount() const;
  int LocalHost() const;
  int Host(int rank) const;
  // This host's steady clock minus host 0's, and the error bound, as the agent measured it
  // (error < 0: not measured).
  void SetClockOffset(int64_t offset_ns, int64_t error_ns);
  int64_t ClockOffsetNs() const;
  int64_t ClockErrorNs() const;
  // The last barrier a rank of another host had reached, as its host last said (heartbeats).
  void SetReportedSequence(int rank, uint64_t seq);
  uint64_t ReportedSequence(int rank) const;

  bool Released(uint64_t seq) const;
  // The highest released sequence (diagnosis: distbarrier-status, flight recorder dumps).
  uint64_t ReleasedSequence() const;
  bool Complete(uint64_t seq, std::span<const int> required) const;
  std::vector<int> Missing(uint64_t seq, std::span<const int> required) const;
  uint64_t ArrivedSequence(int rank) const;
  // When `rank` arrived at `seq`; valid while its sequence is seq or seq + 1.
  int64_t ArrivalNs(int rank, uint64_t seq) const;

  // The first, short part of Wait: spins a little, then yields a little (for at most `limit`),
  // watching for the release of `seq` (on one host: for every rank of `required` to arrive at
  // it, which the release only follows). True when it came: the caller may pass barrier seq.
  // Across hosts, with a helper set: it does the agent's work while it waits (WaitHelper), for
  // at most `limit` (none: kHelpAtMost). `began`: when the caller arrived, if it read the clock
  // then (the limit counts from there; saves a clock read, tens of ns in a VM).
  bool SpinForRelease(uint64_t seq, std::span<const int> required, std::optional<Clock::duration> limit,
                      std::optional<Clock::time_point> began = std::nullopt) const;
  // The agent of this host lives in this process: waiters help it (null: they don't). Set
  // before any waiter runs and cleared after the last one, as the group does with its agent.
  void SetWaitHelper(WaitHelper* helper) { helper_ = helper; }
  // Waits for the release of `seq`. Returns kPeerDied when a rank in `required` that has not
  // arrived is marked dead.
  WaitResult Wait(uint64_t seq, std::span<const int> required, const WaitOptions& options, const std::stop_token& stop);

  // Peer processes: each rank records its pid; a monitor marks a rank dead when its process
  // exits, which wakes every waiter.
  void SetPid(int rank, int32_t pid);
  int32_t Pid(int rank) const;
  void MarkDead(int rank);
  // Several at once (a whole host): every flag is set before anyone is woken, so a waiter
  // names them all.
  void MarkDead(std::span<const int> ranks);
  bool Dead(int rank) const;
  // Across hosts: the rank's host is unreachable. Collectives fail on it at once; barriers only
  // once the agent marks it dead (comm/hosts: the live hosts first agree on the barrier in
  // flight). Wakes nobody: transport waits poll it.
  void MarkUnreachable(std::span<const int> ranks);
  bool Unreachable(int rank) const;
  // A rank's communicator was destroyed (HcclCommDestroy): hang and timeout reports say so.
  void MarkDestroyed(int rank);
  bool Destroyed(int rank) const;
  // Required ranks that have not arrived at `seq` and are dead.
  std::vector<int> DeadMissing(uint64_t seq, std::span<const int> required) const;

  // Wakes every sleeper so it re-checks its condition (used on stop/abort).
  void WakeAll();

  // True for exactly one caller per barrier sequence: who prints the hang warning.
  bool ClaimWarning(uint64_t seq);

  // Waiters asleep (or about to sleep) in Wait now.
  uint32_t Sleepers() const;

  // Tests only: Release calls hook(arg) between publishing the release and waking sleepers,
  // so a test can start a waiter exactly there (null: no hook). Costs a relaxed load.
  static void SetReleaseHookForTesting(void (*hook)(void*), void* arg);

 private:
  struct Header;
  struct Slot;

  void WakeSleepers();
  bool TryRelease(uint64_t seq, std::span<const int> required, std::span<int64_t> arrivals = {});
  bool CrossHost() const;
  // How many of `required`, counting on from index `first`, have arrived at `seq` in a row (the
  // index of the first that has not). Fills arrivals[i] for those, when `arrivals` is not empty.
  size_t ArrivedFrom(size_t first, uint64_t seq, std::span<const int> required, std::span<int64_t> arrivals = {}) const;
  std::atomic<uint64_t>* RequiredWords(uint64_t seq) const;
  bool HelpUntilReleased(uint64_t seq, std::optional<Clock::duration> limit) const;

  const int rank_count_;
  void* heap_ = nullptr;  // owned state, when not in shared memory
  Header* header_;
  Slot* slots_;
  WaitHelper* helper_ = nullptr;
};

}  // namespace distbarrier::comm
