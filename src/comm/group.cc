#include "comm/group.h"

#include <unistd.h>

#include <fmt/format.h>

#include "comm/collectives/collectives.h"
#include "comm/transport/in_process_transport.h"
#include "comm/transport/shm_transport.h"

namespace distbarrier::comm {

namespace {
std::atomic<int> groups_created{0};

// The data region starts on its own page after the window state.
size_t DataRegionOffset(int rank_count) {
  constexpr size_t kPage = 4096;
  return (BarrierWindow::StateBytes(rank_count) + kPage - 1) / kPage * kPage;
}
}  // namespace

size_t GroupMemoryBytes(int rank_count) {
  return DataRegionOffset(rank_count) +
         transport::ShmTransport::RegionBytes(rank_count, transport::ShmTransport::SlotBytesFromEnvironment());
}

Group::Group(std::string name, std::vector<int> devices)
    : name_(std::move(name)),
      devices_(std::move(devices)),
      ordinal_(groups_created.fetch_add(1, std::memory_order_relaxed) + 1),
      ranks_(std::make_unique<RankState[]>(devices_.size())),
      live_ranks_(static_cast<int>(devices_.size())),
      window_(static_cast<int>(devices_.size())),
      stats_(static_cast<int>(devices_.size())),
      parked_(static_cast<int>(devices_.size())) {
  for (int rank = 0; rank < Size(); ++rank) all_ranks_.push_back(rank);
}

Group::Group(std::string name, std::vector<int> devices, std::unique_ptr<SharedMemory> memory, int local_rank)
    : name_(std::move(name)),
      devices_(std::move(devices)),
      ordinal_(groups_created.fetch_add(1, std::memory_order_relaxed) + 1),
      ranks_(std::make_unique<RankState[]>(devices_.size())),
      live_ranks_(1),  // the local rank; the others live in other processes
      memory_(std::move(memory)),
      window_(static_cast<int>(devices_.size()), memory_->Data(), /*initialize=*/false),
      stats_(static_cast<int>(devices_.size())),
      parked_(static_cast<int>(devices_.size())) {
  for (int rank = 0; rank < Size(); ++rank) {
    all_ranks_.push_back(rank);
    if (rank != local_rank) ranks_[rank].live.store(false, std::memory_order_relaxed);
  }
  peer_watch_ = std::make_unique<PeerWatch>(window_, local_rank);
}

Group::~Group() = default;

std::optional<int> Group::RankOfDevice(int device) const {
  for (int rank = 0; rank < Size(); ++rank) {
    if (devices_[rank] == device) return rank;
  }
  return std::nullopt;
}

uint64_t Group::NextSequence(int rank) {
  return ranks_[rank].next_seq.fetch_add(1, std::memory_order_relaxed);
}

void Group::MarkPassed(int rank, uint64_t seq) {
  ranks_[rank].passed_seq.store(seq, std::memory_order_release);
}

uint64_t Group::LastPassed(int rank) const { return ranks_[rank].passed_seq.load(std::memory_order_acquire); }

collectives::GroupCollectives* Group::Collectives() {
  std::call_once(collectives_made_, [this] {
    std::unique_ptr<transport::Transport> transport;
    if (AllLocal()) {
      transport = std::make_unique<transport::InProcessTransport>(Size());
    } else if (memory_->Bytes() == GroupMemoryBytes(Size())) {
      transport = std::make_unique<transport::ShmTransport>(
          Size(), static_cast<std::byte*>(memory_->Data()) + DataRegionOffset(Size()),
          transport::ShmTransport::SlotBytesFromEnvironment(), [this](int rank) { return window_.Dead(rank); });
    }
    if (transport) collectives_ = std::make_unique<collectives::GroupCollectives>(name_, std::move(transport));
  });
  return collectives_.get();
}

bool Group::ReleaseRank(int rank) {
  if (!ranks_[rank].live.exchange(false, std::memory_order_acq_rel)) return false;
  return live_ranks_.fetch_sub(1, std::memory_order_acq_rel) == 1;
}

bool Group::RankLive(int rank) const { return ranks_[rank].live.load(std::memory_order_acquire); }

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
  return groups_.emplace(group->Name(), group).second;
}

void GroupRegistry::Remove(const std::string& name) {
  std::lock_guard lock(mutex_);
  groups_.erase(name);
}

void GroupRegistry::Clear() {
  std::lock_guard lock(mutex_);
  groups_.clear();
}

std::variant<Member, GroupRegistry::LookupError> GroupRegistry::Find(const std::string& name,
                                                                      int device) const {
  std::lock_guard lock(mutex_);
  auto it = groups_.find(name);
  if (it == groups_.end()) return LookupError::kUnknownGroup;
  std::optional<int> rank = it->second->RankOfDevice(device);
  if (!rank) return LookupError::kDeviceNotInGroup;
  if (!it->second->RankLive(*rank)) return LookupError::kRankDestroyed;
  return Member{it->second, *rank};
}

}  // namespace distbarrier::comm
