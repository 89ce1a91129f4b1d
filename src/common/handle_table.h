// Opaque C handles for C++ objects.
//
// A handle is an id, never a pointer: the library does not dereference what the user hands
// back, ids are never reused, and a destroyed, stale or foreign handle is simply not found,
// so misuse gets an error code instead of undefined behaviour. The top bits carry the kind,
// so a stream passed where an event is expected is not found either.
//
// The table is split into shards, each with its own lock; a thread adds to its own shard
// (ThisThreadShard) and the shard is part of the id. So ranks that each make, launch and
// destroy their own handles (an executor per barrier, their stream) never take a lock another
// thread takes: N threads calling aclnnDistributeBarrierGetWorkspaceSize at once scale.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <vector>

namespace distbarrier {

enum class HandleKind : uint64_t {
  kContext = 1,
  kStream = 2,
  kEvent = 3,
  kTensor = 4,
  kExecutor = 5,
  kComm = 6,
  kMoeExecutor = 7,  // MoE dispatch and combine (op/moe_common)
  kArgument = 8,     // aclScalar, aclIntArray, ... (op/tensor.h)
};

inline constexpr unsigned kHandleShardBits = 6;
inline constexpr unsigned kHandleShards = 1u << kHandleShardBits;

// The shard the calling thread adds handles to: threads take shards in turn, so up to
// kHandleShards threads each have one of their own.
inline unsigned ThisThreadShard() {
  static std::atomic<unsigned> threads_seen{0};
  thread_local const unsigned shard = threads_seen.fetch_add(1, std::memory_order_relaxed) % kHandleShards;
  return shard;
}

template <typename T>
class HandleTable {
 public:
  explicit HandleTable(HandleKind kind) : kind_(kind), instance_(NextInstance()) {}

  void* Add(std::shared_ptr<T> object) {
    const unsigned index = ThisThreadShard();
    Shard& shard = shards_[index];
    std::lock_guard lock(shard.mutex);
    const uint64_t id = (++shard.last_serial << kHandleShardBits) | index;
    shard.objects.emplace(id, std::move(object));
    return Encode(id);
  }

  std::shared_ptr<T> Find(const void* handle) const {
    const uint64_t id = Decode(handle);
    const Shard& shard = ShardOf(id);
    std::shared_lock lock(shard.mutex);
    auto it = shard.objects.find(id);
    return it == shard.objects.end() ? nullptr : it->second;
  }

  // Find, answered from the calling thread's last hit in this table while no handle of the
  // table was removed since (Removals), with no lock and no map lookup: a launch loop finds the
  // same executor and stream every time. The cache holds a weak reference, so it keeps nothing
  // alive that the table let go.
  std::shared_ptr<T> FindCached(const void* handle) const {
    struct LastHit {
      uint64_t table = 0;  // instance_: a table made where another was is not mistaken for it
      const void* handle = nullptr;
      uint64_t removals = 0;
      std::weak_ptr<T> object;
    };
    thread_local LastHit last;
    // The handle first: a single-use executor never hits, and its launch should not read the
    // removal count, a line that every other thread's destroy writes.
    if (last.handle == handle && last.table == instance_ && last.removals == Removals()) {
      if (std::shared_ptr<T> object = last.object.lock()) return object;
    }
    const uint64_t removals = Removals();
    std::shared_ptr<T> object = Find(handle);
    if (object) last = {instance_, handle, removals, object};
    return object;
  }

  // Removes the handle; returns the object, or null when the handle was not live.
  std::shared_ptr<T> Take(const void* handle) {
    const uint64_t id = Decode(handle);
    Shard& shard = ShardOf(id);
    std::lock_guard lock(shard.mutex);
    auto it = shard.objects.find(id);
    if (it == shard.objects.end()) return nullptr;
    removals_.fetch_add(1, std::memory_order_release);
    std::shared_ptr<T> object = std::move(it->second);
    shard.objects.erase(it);
    return object;
  }

  // True when the handle is of this kind and was issued once (it may be gone now).
  bool WasIssued(const void* handle) const {
    const uint64_t id = Decode(handle);
    const Shard& shard = ShardOf(id);
    std::shared_lock lock(shard.mutex);
    const uint64_t serial = id >> kHandleShardBits;
    return serial != 0 && serial <= shard.last_serial;
  }

  // Counts removals (Take, TakeAll). A caller that found a handle live, having read this
  // before the lookup, knows it is still live while the count has not moved: a per-thread
  // cache can skip the lookup (and its lock) that way.
  uint64_t Removals() const { return removals_.load(std::memory_order_acquire); }

  std::vector<std::shared_ptr<T>> TakeAll() {
    std::vector<std::shared_ptr<T>> all;
    removals_.fetch_add(1, std::memory_order_release);
    for (Shard& shard : shards_) {
      std::lock_guard lock(shard.mutex);
      for (auto& [id, object] : shard.objects) all.push_back(std::move(object));
      shard.objects.clear();
    }
    return all;
  }

  std::vector<std::shared_ptr<T>> Snapshot() const {
    std::vector<std::shared_ptr<T>> all;
    for (const Shard& shard : shards_) {
      std::shared_lock lock(shard.mutex);
      for (const auto& [id, object] : shard.objects) all.push_back(object);
    }
    return all;
  }

  size_t Size() const {
    size_t size = 0;
    for (const Shard& shard : shards_) {
      std::shared_lock lock(shard.mutex);
      size += shard.objects.size();
    }
    return size;
  }

 private:
  static constexpr int kKindShift = 48;
  static constexpr uint64_t kIdMask = (uint64_t{1} << kKindShift) - 1;

  // Every launch looks handles up; only creation and destruction write.
  struct alignas(64) Shard {
    mutable std::shared_mutex mutex;
    uint64_t last_serial = 0;
    std::unordered_map<uint64_t, std::shared_ptr<T>> objects;
  };

  static uint64_t NextInstance() {
    static std::atomic<uint64_t> made{0};
    return made.fetch_add(1, std::memory_order_relaxed) + 1;
  }

  void* Encode(uint64_t id) const { return reinterpret_cast<void*>((static_cast<uint64_t>(kind_) << kKindShift) | id); }
  // 0 (never a valid id: serials start at 1) for handles of another kind.
  uint64_t Decode(const void* handle) const {
    auto bits = reinterpret_cast<uint64_t>(handle);
    if ((bits >> kKindShift) != static_cast<uint64_t>(kind_)) return 0;
    return bits & kIdMask;
  }
  const Shard& ShardOf(uint64_t id) const { return shards_[id & (kHandleShards - 1)]; }
  Shard& ShardOf(uint64_t id) { return shards_[id & (kHandleShards - 1)]; }

  const HandleKind kind_;
  const uint64_t instance_;
  alignas(64) std::atomic<uint64_t> removals_{0};
  Shard shards_[kHandleShards];
};

}  // namespace distbarrier
