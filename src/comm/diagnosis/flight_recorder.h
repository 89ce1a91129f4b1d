// The flight recorder: what each group's recent barriers did, kept so that a hung or dead job
// can be explained afterwards (distbarrier-status --analyze), and the state document the
// status server answers with (comm/diagnosis/status_server.h).
//
// Per group and process, a ring of the last N released barriers (DISTBARRIER_FLIGHT_RECORDER_SIZE,
// default 1024, 0 = off): sequence, first arrival, release (the last arrival), last rank. The
// arrival that released a barrier records its statistics once for the group and fills its
// process's entry from that record (BarrierSummary), so the barrier path pays a few stores into
// a preallocated ring. In a group of processes each barrier is thus in the ring of the process
// that released it; --analyze merges the dumps of a job's processes. A barrier
// of a local rank that ends otherwise (timed out, peer died, hang warning) is kept per rank
// with the ranks it waited for. Entries are seqlocked atomics: readers never block writers.
//
// Every recorder of the process is in one registry; a dump writes them all as one JSON
// document (format below) to DISTBARRIER_FLIGHT_RECORDER ("%p" -> pid), through a temporary
// file renamed into place, so the file is always a complete document. Where that variable is
// set, dumps happen when a barrier times out, a peer dies, the hang warning fires, at exit, and
// on a fatal signal (SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE; the writer then uses only
// async-signal-safe calls). distbarrier-status --dump writes one in any case (where it is
// unset, to $TMPDIR/distbarrier-flight.%p.json). Unasked, nothing is written: a job's
// failures leave no files behind.
//
// Document: {"format":"distbarrier-flight-recorder","version":1,"reason":..,"pid":..,
//   "host":..,"uid":..,"program":..,"steady_ns":..,"realtime_ns":..,"groups":[{"name":..,
//   "size":..,"threads":bool,"retired":bool,"released_seq":..,"ranks":[{"rank":..,"pid":..,
//   "local":bool,"device":..,"arrived_seq":..,"arrival_ns":..,"passed_seq":..,"dead":bool,
//   "destroyed":bool[,"other_host":..][,"unfinished":{"seq":..,"outcome":..,"arrival_ns":..,"end_ns":..,
//   "missing":[..]}]}],"barriers":[{"seq":..,"first_arrival_ns":..,"release_ns":..,
//   "last_rank":..}]}]}. Times are steady-clock (CLOCK_MONOTONIC) nanoseconds, comparable
// between processes of one host. In a group across hosts, a rank of another host has
// "other_host" (its host's index) and the barrier its host last reported for it (heartbeats);
// its arrival_ns is 0 when only reported, as times are not comparable across hosts.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>

#include "comm/barrier_stats.h"

namespace distbarrier {
class JsonSink;
}

namespace distbarrier::comm {
class Group;
}

namespace distbarrier::comm::diagnosis {

enum class Unfinished : int32_t { kTimedOut = 1, kPeerDied = 2, kHangWarning = 3, kAborted = 4 };

class FlightRecorder {
 public:
  // A recorder for `group`, registered with the process's recorders (which starts the status
  // server on first use in this process).
  static std::shared_ptr<FlightRecorder> Make(const Group& group);
  FlightRecorder(const Group& group, size_t capacity);
  ~FlightRecorder();
  FlightRecorder(const FlightRecorder&) = delete;
  FlightRecorder& operator=(const FlightRecorder&) = delete;

  // The barrier path: barrier `seq` was released by an arrival of this process.
  void RecordReleased(uint64_t seq, const BarrierSummary& summary) {
    if (capacity_ == 0) return;
    // Seqlock without fences (TSan has none): a reader that sees any field of this write also
    // sees the zeroed sequence after it (release/acquire per field, plain moves on x86).
    Entry& entry = entries_[seq % capacity_];
    entry.seq.store(0, std::memory_order_relaxed);
    entry.first_arrival_ns.store(summary.first_arrival_ns, std::memory_order_release);
    entry.release_ns.store(summary.last_arrival_ns, std::memory_order_release);
    entry.last_rank.store(summary.last_rank, std::memory_order_release);
    entry.seq.store(seq, std::memory_order_release);
  }

  // Local `rank`'s barrier `seq` did not complete normally; `missing` are the ranks it waited for.
  void NoteUnfinished(int rank, uint64_t seq, Unfinished outcome, int64_t arrival_ns, int64_t end_ns,
                      std::span<const int> missing);

  // The group is being destroyed: keeps what a later dump shows of it (its ranks' last state).
  void Retire();

  // This group's JSON object. With `barriers`, the ring too. Async-signal-safe when
  // `lock` is false (a signal handler: a group destroyed meanwhile is the risk it takes).
  void Write(JsonSink& out, bool barriers, bool lock) const;

  int32_t OwnerPid() const { return owner_pid_; }
  // True for the first caller per barrier sequence: one failure dump per stuck barrier and process.
  bool ClaimFailureDump(uint64_t seq) {
    uint64_t previous = dumped_seq_.load(std::memory_order_relaxed);
    while (previous < seq) {
      if (dumped_seq_.compare_exchange_weak(previous, seq, std::memory_order_relaxed)) return true;
    }
    return false;
  }

 private:
  struct Entry {
    std::atomic<uint64_t> seq{0};
    std::atomic<int64_t> first_arrival_ns{0};
    std::atomic<int64_t> release_ns{0};
    std::atomic<int32_t> last_rank{-1};
  };
  static constexpr int kMissingListed = 32;
  struct Note {
    std::atomic<uint64_t> version{0};  // seqlock: odd while being written
    std::atomic<uint64_t> seq{0};
    std::atomic<int32_t> outcome{0};
    std::atomic<int64_t> arrival_ns{0};
    std::atomic<int64_t> end_ns{0};
    std::atomic<int32_t> missing_count{0};
    std::atomic<int32_t> missing[kMissingListed] = {};
  };
  // One rank as a dump shows it: read from the group while it lives, kept by Retire after.
  struct RankView {
    int32_t pid = 0;
    int32_t device = -1;
    uint64_t arrived_seq = 0;
    int64_t arrival_ns = 0;
    uint64_t passed_seq = 0;
    bool dead = false;
    bool destroyed = false;
    int32_t other_host = -1;  // across hosts: the host index of a rank of another host
  };
  RankView ReadRank(int rank) const;  // from the live group
  void WriteRanks(JsonSink& out, const RankView* retired) const;
  void WriteBarriers(JsonSink& out) const;

  const Group* group_;  // null once retired; guarded by view_mutex_ for locked readers
  mutable std::mutex view_mutex_;
  const std::string name_;
  const int size_;
  const bool threads_;
  const int32_t owner_pid_;
  const size_t capacity_;
  std::unique_ptr<Entry[]> entries_;
  std::unique_ptr<Note[]> notes_;              // per rank
  std::unique_ptr<RankView[]> retired_ranks_;  // per rank, set by Retire
  std::atomic<uint64_t> retired_released_seq_{0};
  std::atomic<bool> retired_{false};
  std::atomic<uint64_t> dumped_seq_{0};
};

// Writes every recorder of this process to its flight recorder file; returns the path, or an
// empty string when it could not (logged). `reason` says why ("request", "timeout", ...).
std::string DumpFlightRecorders(const char* reason);
// The same for a failure (timeout, peer death, hang warning), where DISTBARRIER_FLIGHT_RECORDER asks.
void DumpFlightRecordersOnFailure(const char* reason);

// The state document (no barrier rings) the status server answers with.
std::string StateDocument();

}  // namespace distbarrier::comm::diagnosis
