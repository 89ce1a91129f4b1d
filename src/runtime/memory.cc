#include "runtime/memory.h"

#include <cstdlib>
#include <new>

namespace distbarrier::runtime {
namespace {
constexpr size_t kAlignment = 64;  // a cache line, like device allocations' generous alignment
// No simulated device holds more than this (1 TiB). Larger requests fail up front: rounding a
// size near SIZE_MAX up to the alignment would wrap to a tiny block recorded as huge, and the
// sanitizers' allocators abort on such requests instead of returning null.
constexpr size_t kMaxAllocation = size_t{1} << 40;
}  // namespace

void* MemoryRegistry::Allocate(size_t size, MemoryKind kind) {
  if (size > kMaxAllocation) return nullptr;
  const size_t rounded = (size + kAlignment - 1) / kAlignment * kAlignment;
  void* pointer = std::aligned_alloc(kAlignment, rounded);
  if (pointer == nullptr) return nullptr;
  std::lock_guard lock(mutex_);
  allocations_.emplace(reinterpret_cast<uintptr_t>(pointer), Allocation{size, kind});
  return pointer;
}

bool MemoryRegistry::Free(void* pointer, MemoryKind kind) {
  {
    std::lock_guard lock(mutex_);
    auto it = allocations_.find(reinterpret_cast<uintptr_t>(pointer));
    if (it == allocations_.end() || it->second.kind != kind) return false;
    allocations_.erase(it);
  }
  std::free(pointer);
  return true;
}

std::pair<uintptr_t, const MemoryRegistry::Allocation*> MemoryRegistry::Find(uintptr_t address) const {
  auto it = allocations_.upper_bound(address);
  if (it == allocations_.begin()) return {0, nullptr};
  --it;
  if (address - it->first >= it->second.size) return {0, nullptr};
  return {it->first, &it->second};
}

bool MemoryRegistry::Contains(const void* pointer, size_t size, MemoryKind kind) const {
  auto address = reinterpret_cast<uintptr_t>(pointer);
  std::lock_guard lock(mutex_);
  auto [start, allocation] = Find(address);
  return allocation != nullptr && allocation->kind == kind && size <= allocation->size - (address - start);
}

bool MemoryRegistry::Overlaps(const void* pointer, MemoryKind kind) const {
  std::lock_guard lock(mutex_);
  auto [start, allocation] = Find(reinterpret_cast<uintptr_t>(pointer));
  return allocation != nullptr && allocation->kind == kind;
}

void MemoryRegistry::FreeAll() {
  std::map<uintptr_t, Allocation> all;
  {
    std::lock_guard lock(mutex_);
    all.swap(allocations_);
  }
  for (auto& [address, allocation] : all) std::free(reinterpret_cast<void*>(address));
}

}  // namespace distbarrier::runtime
