#include "comm/group.h"

#include <fmt/format.h>
#include <unistd.h>

#include "comm/collectives/collectives.h"
#include "comm/diagnosis/flight_recorder.h"
#include "comm/transport/in_process_transport.h"
#include "comm/transport/shm_transport.h"

namespace distbarrier::comm {

namespace {
std::atomic<int> groups_created{0};

// The statistics follow the window state on their own cache line.
size_t StatsOffset(int rank_count) {
  constexpr size_t kLine = 64;
  return (BarrierWindow::StateBytes(rank_count) + kLine - 1) / kLine * kLine;
}

// The data region starts on its own page after the statistics.
size_t DataRegionOffset(int rank_count) {
  constexpr size_t kPage = 4096;
  return (StatsOffset(rank_count) + BarrierStats::StateBytes(rank_count) + kPage - 1) / kPage * kPage;
}
}  // namespace

void InitializeGroupMemory(void* memory, int rank_count) {
  BarrierWindow window(rank_count, memory, /*initialize=*/true);
  BarrierStats stats(rank_count, static_cast<char*>(memory) + StatsOffset(rank_count), /*initialize=*/true);
}

size_t GroupDataRegionOffset(int rank_count) {
  return DataRegionOffset(rank_count);
}

size_t GroupMemoryBytes(int rank_count) {
  return DataRegionOffset(rank_count) +
         transport::ShmTransport::RegionBytes(rank_count, transport::ShmTransport::SlotBytesFromEnvironment());
}

Group::Group(std::string name, std::vector<int> devices)
    : name_(std::move(name)),
      size_(static_cast<int>(devices.size())),
      ordinal_(groups_created.fetch_add(1, std::memory_order_relaxed) + 1),
      ranks_(std::make_unique<RankState[]>(devices.size())),
      live_ranks_(size_),
      window_(size_),
      stats_(size_),
      parked_(size_) {
  for (int rank = 0; rank < Size(); ++rank) {
    all_ranks_.push_back(rank);
    ranks_[rank].device.store(devices[rank], std::memory_order_relaxed);
  }
  flight_ = diagnosis::FlightRecorder::Make(*this);
}

Group::Group(std::string name, int rank_count, std::unique_ptr<SharedMemory> memory, int local_rank, int device)
    : name_(std::move(name)),
      size_(rank_count),
      ordinal_(groups_created.fetch_add(1, std::memory_order_relaxed) + 1),
      ranks_(std::make_unique<RankState[]>(static_cast<size_t>(rank_count))),
      live_ranks_(1),  // the local rank; others of this process may attach later
      memory_(std::move(memory)),
      window_(rank_count, memory_->Data(), /*initialize=*/false),
      stats_(rank_count, static_cast<char*>(memory_->Data()) + StatsOffset(rank_count), /*initialize=*/false),
      parked_(rank_count) {
  for (int rank = 0; rank < Size(); ++rank) {
    all_ranks_.push_back(rank);
    if (rank != local_rank) ranks_[rank].live.store(false, std::memory_order_relaxed);
  }
  ranks_[local_rank].device.store(device, std::memory_order_relaxed);
  flight_ = diagnosis::FlightRecorder::Make(*this);
}

std::shared_ptr<Group> Group::ForProcesses(std::string name, int rank_count, std::unique_ptr<SharedMemory> memory,
                                           int local_rank, int device, std::shared_ptr<const HostLayout> layout,
                                           std::unique_ptr<HostAgent> agent, std::string* error) {
  auto group = std::make_shared<Group>(std::move(name), rank_count, std::move(memory), local_rank, device);
  group->layout_ = std::move(layout);
  if (agent) group->AdoptAgent(nullptr, std::move(agent));  // the agent works on the group's own memory
  group->peer_watch_ = PeerWatch::Start(group->window_, error);
  if (!group->peer_watch_) return nullptr;
  return group;
}

std::string Group::HostOfRank(int rank) const {
  if (!AcrossHosts() || window_.Host(rank) == window_.LocalHost()) return "";
  const int host = window_.Host(rank);
  if (!layout_) return fmt::format("host {}", host);
  return fmt::format("host {} ({})", host, layout_->host_names[host]);
}

void Group::AdoptAgent(std::unique_ptr<SharedMemory> memory, std::unique_ptr<HostAgent> agent) {
  agent_memory_ = std::move(memory);
  agent_ = std::move(agent);
  // Across hosts the agent's arrival releases most barriers, so it records them.
  agent_->OnRelease([this](uint64_t seq, std::span<const int> required) { RecordReleased(seq, required); });
  window_.SetWaitHelper(agent_.get());  // this process's waiters do the agent's work as they spin
}

void Group::RecordReleased(uint64_t seq, std::span<const int> required) {
  if (!StatsEnabled()) return;
  flight_->RecordReleased(seq, stats_.RecordReleased(seq, required, window_));
}

void Group::RecordReleased(uint64_t seq, std::span<const int> required, std::span<const int64_t> arrival_ns) {
  if (!StatsEnabled()) return;
  flight_->RecordReleased(seq, stats_.RecordReleased(seq, required, arrival_ns));
}

Group::~Group() {
  window_.SetWaitHelper(nullptr);
  agent_.reset();  // its thread records released barriers: it stops first
  flight_->Retire();
}

std::optional<int> Group::RankOfDevice(int device) const {
  for (int rank = 0; rank < Size(); ++rank) {
    if (DeviceOfRank(rank) == device) return rank;
  }
  return std::nullopt;
}

std::optional<std::string> Group::AttachLocalRank(int rank, int device) {
  if (RankLive(rank)) return fmt::format("rank {} of group {} is already held by this process", rank, name_);
  if (std::optional<int> other = RankOfDevice(device); other && RankLive(*other)) {
    return fmt::format(
        "device {} already holds rank {} of group {} in this process; each rank needs its own device "
        "(aclrtSetDevice)",
        device, *other, name_);
  }
  ranks_[rank].device.store(device, std::memory_order_release);
  ranks_[rank].live.store(true, std::memory_order_release);
  live_ranks_.fetch_add(1, std::memory_order_acq_rel);
  return std::nullopt;
}

uint64_t Group::NextSequence(int rank) {
  return ranks_[rank].next_seq.fetch_add(1, std::memory_order_relaxed);
}

void Group::MarkPassed(int rank, uint64_t seq) {
  ranks_[rank].passed_seq.store(seq, std::memory_order_release);
}

uint64_t Group::LastPassed(int rank) const {
  return ranks_[rank].passed_seq.load(std::memory_order_acquire);
}

collectives::GroupCollectives* Group::Collectives() {
  std::call_once(collectives_made_, [this] {
    std::unique_ptr<transport::Transport> transport;
    if (AllLocal()) {
      transport = std::make_unique<transport::InProcessTransport>(Size());
    } else if (memory_->Bytes() == GroupMemoryBytes(Size())) {
      // Across hosts the host agent copies what this host's ranks post and take to the other
      // hosts: a change wakes it through the window's arrival word, as an arrival does.
      std::function<void()> on_local_change;
      if (AcrossHosts()) on_local_change = [this] { window_.WakeArrival(); };
      transport = std::make_unique<transport::ShmTransport>(
          Size(), static_cast<std::byte*>(memory_->Data()) + DataRegionOffset(Size()),
          transport::ShmTransport::SlotBytesFromEnvironment(),
          [this](int rank) { return window_.Dead(rank) || window_.Unreachable(rank); }, std::move(on_local_change));
    }
    if (transport) collectives_ = std::make_unique<collectives::GroupCollectives>(name_, std::move(transport));
  });
  return collectives_.get();
}

bool Group::ReleaseRank(int rank) {
  if (!ranks_[rank].live.exchange(false, std::memory_order_acq_rel)) return false;
  window_.MarkDestroyed(rank);  // seen by the other ranks' reports, in every process
  return live_ranks_.fetch_sub(1, std::memory_order_acq_rel) == 1;
}

bool Group::RankLive(int rank) const {
  return ranks_[rank].live.load(std::memory_order_acquire);
}

HandleTable<Member>& Communicators() {
  static auto* communicators = new HandleTable<Member>(HandleKind::kComm);
  return *communicators;
}

GroupRegistry& GroupRegistry::Instance() {
  static GroupRegistry* registry = new GroupRegistry;  // never destroyed: see Runtime
  return *registry;
}

std::string GroupRegistry::NewGroupName() {
  std::lock_guard lock(mutex_);
  return fmt::format("hccl_group_{}_{}", getpid(), ++groups_made_);
}

bool GroupRegistry::Add(const std::shared_ptr<Group>& group) {
  std::lock_guard lock(mutex_);
  Changed();
  return groups_.emplace(group->Name(), group).second;
}

std::variant<Member, std::pair<HcclResult, std::string>> GroupRegistry::AttachProcessRank(
    const std::string& name, int rank_count, std::unique_ptr<SharedMemory> memory, int rank, int device,
    std::shared_ptr<const HostLayout> layout, std::unique_ptr<HostAgent> agent) {
  std::lock_guard lock(mutex_);
  Changed();
  auto it = groups_.find(name);
  if (it != groups_.end() && it->second->LiveRanks() > 0) {
    Group& group = *it->second;
    if (group.AllLocal() || group.Size() != rank_count) {
      return std::pair{HCCL_E_PARA, fmt::format("this process holds another group named {}", name)};
    }
    if (auto error = group.AttachLocalRank(rank, device)) return std::pair{HCCL_E_PARA, *error};
    if (agent) group.AdoptAgent(std::move(memory), std::move(agent));
    return Member{it->second, rank};  // this rank's own mapping of the memory is not needed otherwise
  }
  std::string error;
  auto group = Group::ForProcesses(name, rank_count, std::move(memory), rank, device, std::move(layout),
                                   std::move(agent), &error);
  if (!group) return std::pair{HCCL_E_SYSCALL, error};
  groups_[name] = group;  // replaces a group of that name whose local ranks are all gone
  return Member{group, rank};
}

void GroupRegistry::Release(const Member& member) {
  std::lock_guard lock(mutex_);  // against a rank of the same group attaching meanwhile
  Changed();
  if (!member.group->ReleaseRank(member.rank)) return;
  auto it = groups_.find(member.group->Name());
  if (it != groups_.end() && it->second == member.group) groups_.erase(it);
}

void GroupRegistry::Clear() {
  std::lock_guard lock(mutex_);
  Changed();
  groups_.clear();
}

std::variant<Member, GroupRegistry::LookupError> GroupRegistry::Find(const std::string& name, int device) const {
  std::lock_guard lock(mutex_);
  auto it = groups_.find(name);
  if (it == groups_.end()) return LookupError::kUnknownGroup;
  std::optional<int> rank = it->second->RankOfDevice(device);
  if (!rank) return LookupError::kDeviceNotInGroup;
  if (!it->second->RankLive(*rank)) return LookupError::kRankDestroyed;
  return Member{it->second, *rank};
}

}  // namespace distbarrier::comm
