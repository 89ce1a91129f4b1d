// Communication groups (what an HCCL communicator names) and the process-wide registry that
// resolves a group name plus a device to a rank, the way HCCL does for aclnn operators.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "comm/barrier_stats.h"
#include "comm/barrier_window.h"
#include "comm/hosts/host_agent.h"
#include "comm/hosts/host_layout.h"
#include "comm/parked_ranks.h"
#include "comm/peer_watch.h"
#include "comm/shared_memory.h"
#include "common/handle_table.h"
#include "hccl/hccl_types.h"

namespace distbarrier::comm {

namespace collectives {
class GroupCollectives;
}
namespace diagnosis {
class FlightRecorder;
}

inline constexpr size_t kGroupNameCapacity = 128;  // names are shorter than this, NUL included

// The shared memory of a group spread over processes: the barrier window state, its
// statistics, then the data region of its transport (one HCCL_BUFFSIZE slot per rank).
size_t GroupMemoryBytes(int rank_count);
// Where the transport's data region starts in a group's shared memory.
size_t GroupDataRegionOffset(int rank_count);
// Constructs the window and statistics state in a group's fresh shared memory (the one process
// that sets it up, before any rank maps it).
void InitializeGroupMemory(void* memory, int rank_count);

class Group {
 public:
  // devices[r] is the device that holds rank r; all ranks are threads of this process.
  Group(std::string name, std::vector<int> devices);
  // A group spread over processes: its state lives in `memory` (set up by rank 0's process).
  // It starts with one rank of this process, `local_rank` on `device`; more may join it
  // (AttachLocalRank). Ranks of other processes have device -1 and are watched for dying.
  // Null and *error set when that watch cannot start.
  // A group across hosts also has its layout, and in its host leader's process the agent.
  static std::shared_ptr<Group> ForProcesses(std::string name, int rank_count, std::unique_ptr<SharedMemory> memory,
                                             int local_rank, int device, std::shared_ptr<const HostLayout> layout,
                                             std::unique_ptr<HostAgent> agent, std::string* error);
  Group(std::string name, int rank_count, std::unique_ptr<SharedMemory> memory, int local_rank, int device);
  ~Group();

  const std::string& Name() const { return name_; }
  int Size() const { return size_; }
  // -1 for a rank of another process.
  int DeviceOfRank(int rank) const { return ranks_[rank].device.load(std::memory_order_acquire); }
  std::optional<int> RankOfDevice(int device) const;
  const std::vector<int>& AllRanks() const { return all_ranks_; }
  // A small number unique in this process, for trace tracks.
  int Ordinal() const { return ordinal_; }

  BarrierWindow& Window() { return window_; }
  const BarrierWindow& Window() const { return window_; }
  BarrierStats& Stats() { return stats_; }
  // The last barriers, for distbarrier-status and post-mortem dumps (comm/diagnosis).
  diagnosis::FlightRecorder& Flight() { return *flight_; }
  // Every rank is a thread of this process, so a barrier's release can finish every
  // waiter's barrier itself (Parked()); a group spread over processes waits on the window.
  bool AllLocal() const { return memory_ == nullptr; }
  ParkedRanks& Parked() { return parked_; }
  // The sequence number of this rank's next barrier: 1, 2, 3, ...
  uint64_t NextSequence(int rank);
  // The last barrier this rank passed (0: none yet); what its statistics calls describe.
  void MarkPassed(int rank, uint64_t seq);
  uint64_t LastPassed(int rank) const;

  // Across hosts: where the ranks run (null: all on this host, or a rank of rank 0's host that
  // joined over the Unix socket: the window's lines still say each rank's host).
  const HostLayout* Layout() const { return layout_.get(); }
  bool AcrossHosts() const { return window_.HostCount() > 1; }
  int HostCount() const { return window_.HostCount(); }
  // "host 1 (name)" for a rank of another host, "" otherwise: for messages.
  std::string HostOfRank(int rank) const;
  // True once per rank of this process: who writes the clock alignment into the trace.
  bool ClaimClockReport(int rank) const {
    return !ranks_[rank].clock_reported.exchange(true, std::memory_order_relaxed);
  }
  // The host leader's rank joined a group another rank of this process made: its agent (over
  // its own mapping of the host's memory, kept with it) comes along.
  void AdoptAgent(std::unique_ptr<SharedMemory> memory, std::unique_ptr<HostAgent> agent);
  // Barrier `seq` was released by an arrival of this process (a rank's, or the host agent's):
  // its one statistics record for the group, kept by this process's flight recorder too.
  void RecordReleased(uint64_t seq, std::span<const int> required);
  // The same from the arrival times the releasing Arrive read (BarrierWindow::Arrive).
  void RecordReleased(uint64_t seq, std::span<const int> required, std::span<const int64_t> arrival_ns);

  // Another rank of this process joins a group spread over processes (one thread per device,
  // as in CANN's HCCL examples); an error message when it cannot.
  std::optional<std::string> AttachLocalRank(int rank, int device);

  // The collectives layer's state (comm/collectives), made on first use: over peers' memory
  // for a group of threads, over the shared data region for a group of processes (null when
  // that region is missing: its processes disagree on HCCL_BUFFSIZE).
  collectives::GroupCollectives* Collectives();

  // A rank's communicator handle was destroyed; returns true when it was the last one.
  bool ReleaseRank(int rank);
  bool RankLive(int rank) const;
  int LiveRanks() const { return live_ranks_.load(std::memory_order_acquire); }

 private:
  struct alignas(64) RankState {
    std::atomic<uint64_t> next_seq{1};
    std::atomic<uint64_t> passed_seq{0};
    std::atomic<bool> live{true};
    std::atomic<int> device{-1};
    mutable std::atomic<bool> clock_reported{false};
  };

  const std::string name_;
  const int size_;
  const int ordinal_;
  std::vector<int> all_ranks_;
  std::unique_ptr<RankState[]> ranks_;
  std::atomic<int> live_ranks_;
  std::unique_ptr<SharedMemory> memory_;  // before window_: outlives it
  BarrierWindow window_;
  BarrierStats stats_;
  ParkedRanks parked_;
  std::shared_ptr<diagnosis::FlightRecorder> flight_;  // outlives the group when a dump still needs it
  std::once_flag collectives_made_;
  std::unique_ptr<collectives::GroupCollectives> collectives_;
  std::unique_ptr<PeerWatch> peer_watch_;  // stops before the window goes
  std::shared_ptr<const HostLayout> layout_;
  std::unique_ptr<SharedMemory> agent_memory_;  // an adopted agent's mapping
  std::unique_ptr<HostAgent> agent_;            // last: stops before the memory goes
};

// One rank's view of a group: what an HcclComm handle refers to.
struct Member {
  std::shared_ptr<Group> group;
  int rank = 0;
};

// The live HcclComm handles of this process.
HandleTable<Member>& Communicators();

class GroupRegistry {
 public:
  static GroupRegistry& Instance();

  // A name unique within this process for a group made by HcclCommInitAll.
  std::string NewGroupName();
  // False when a group of that name exists already.
  bool Add(const std::shared_ptr<Group>& group);
  // One rank of a group spread over processes: joins this process's group of that name, or
  // makes it (from `memory`) if this process holds no live rank of it yet.
  std::variant<Member, std::pair<HcclResult, std::string>> AttachProcessRank(
      const std::string& name, int rank_count, std::unique_ptr<SharedMemory> memory, int rank, int device,
      std::shared_ptr<const HostLayout> layout = nullptr, std::unique_ptr<HostAgent> agent = nullptr);
  // The member's communicator is gone; the group leaves the registry with its last local rank.
  void Release(const Member& member);
  void Clear();

  enum class LookupError { kUnknownGroup, kDeviceNotInGroup, kRankDestroyed };
  std::variant<Member, LookupError> Find(const std::string& name, int device) const;

  // Moves whenever a group or a rank is added or released: a caller that read it before a
  // Find may reuse that Find's answer while it has not moved (per-thread caches of stage 1).
  uint64_t Generation() const { return generation_.load(std::memory_order_acquire); }

 private:
  void Changed() { generation_.fetch_add(1, std::memory_order_release); }  // with mutex_ held

  mutable std::mutex mutex_;
  std::atomic<uint64_t> generation_{0};
  uint64_t groups_made_ = 0;
  std::unordered_map<std::string, std::shared_ptr<Group>> groups_;
};

}  // namespace distbarrier::comm
