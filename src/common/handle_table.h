// Opaque C handles for C++ objects.
//
// A handle is an id, never a pointer: the library does not dereference what the user hands
// back, ids are never reused, and a destroyed, stale or foreign handle is simply not found,
// so misuse gets an error code instead of undefined behaviour. The top bits carry the kind,
// so a stream passed where an event is expected is not found either.
#pragma once

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

template <typename T>
class HandleTable {
 public:
  explicit HandleTable(HandleKind kind) : kind_(kind) {}

  void* Add(std::shared_ptr<T> object) {
    std::lock_guard lock(mutex_);
    uint64_t id = ++last_id_;
    objects_.emplace(id, std::move(object));
    return Encode(id);
  }

  std::shared_ptr<T> Find(const void* handle) const {
    std::shared_lock lock(mutex_);
    auto it = objects_.find(Decode(handle));
    return it == objects_.end() ? nullptr : it->second;
  }

  // Removes the handle; returns the object, or null when the handle was not live.
  std::shared_ptr<T> Take(const void* handle) {
    std::lock_guard lock(mutex_);
    auto it = objects_.find(Decode(handle));
    if (it == objects_.end()) return nullptr;
    std::shared_ptr<T> object = std::move(it->second);
    objects_.erase(it);
    return object;
  }

  // True when the handle is of this kind and was issued once (it may be gone now).
  bool WasIssued(const void* handle) const {
    std::shared_lock lock(mutex_);
    uint64_t id = Decode(handle);
    return id != 0 && id <= last_id_;
  }

  std::vector<std::shared_ptr<T>> TakeAll() {
    std::lock_guard lock(mutex_);
    std::vector<std::shared_ptr<T>> all;
    all.reserve(objects_.size());
    for (auto& [id, object] : objects_) all.push_back(std::move(object));
    objects_.clear();
    return all;
  }

  std::vector<std::shared_ptr<T>> Snapshot() const {
    std::shared_lock lock(mutex_);
    std::vector<std::shared_ptr<T>> all;
    all.reserve(objects_.size());
    for (const auto& [id, object] : objects_) all.push_back(object);
    return all;
  }

  size_t Size() const {
    std::shared_lock lock(mutex_);
    return objects_.size();
  }

 private:
  static constexpr int kKindShift = 48;
  static constexpr uint64_t kIdMask = (uint64_t{1} << kKindShift) - 1;

  void* Encode(uint64_t id) const {
    return reinterpret_cast<void*>((static_cast<uint64_t>(kind_) << kKindShift) | id);
  }
  // 0 (never a valid id) for handles of another kind.
  uint64_t Decode(const void* handle) const {
    auto bits = reinterpret_cast<uint64_t>(handle);
    if ((bits >> kKindShift) != static_cast<uint64_t>(kind_)) return 0;
    return bits & kIdMask;
  }

  const HandleKind kind_;
  // Every launch looks handles up; only creation and destruction write.
  mutable std::shared_mutex mutex_;
  uint64_t last_id_ = 0;
  std::unordered_map<uint64_t, std::shared_ptr<T>> objects_;
};

}  // namespace distbarrier
