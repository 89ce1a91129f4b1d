#include "runtime/memory.h"

#include <cstdlib>

namespace distbarrier::runtime {
namespace {
constexpr size_t kAlignment = 64;  // a cache line, like device allocations' generous alignment
// No simulated device holds more than this (1 TiB). Larger requests fail up front: rounding a
// size near SIZE_MAX up to the alignment would wrap to a tiny block recorded as huge, and the
// sanitizers' allocators abort on such requests instead of returning null.
constexpr size_t kMaxAllocation = size_t{1} << 40;
}  // namespace

MemoryBlock::~MemoryBlock() {
  if (owned_) std::free(base_);
}

void* MemoryRegistry::Allocate(size_t size, MemoryKind kind) {
  if (size > kMaxAllocation) return nullptr;
  const size_t rounded = (size + kAlignment - 1) / kAlignment * kAlignment;
  void* pointer = std::aligned_alloc(kAlignment, rounded);
  if (pointer == nullptr) return nullptr;
  std::shared_ptr<MemoryBlock> block;
  try {
    block = std::make_shared<MemoryBlock>(pointer, size, kind);
  } catch (...) {
    std::free(pointer);
    throw;
  }
  std::lock_guard lock(mutex_);
  blocks_.emplace(reinterpret_cast<uintptr_t>(pointer), std::move(block));
  return pointer;
}

bool MemoryRegistry::Free(void* pointer, MemoryKind kind) {
  std::shared_ptr<MemoryBlock> block;  // released after the lock: it may be the last reference
  std::lock_guard lock(mutex_);
  auto it = blocks_.find(reinterpret_cast<uintptr_t>(pointer));
  if (it == blocks_.end() || it->second->Kind() != kind || !it->second->Owned()) return false;
  block = std::move(it->second);
  blocks_.erase(it);
  return true;
}

void MemoryRegistry::Register(void* pointer, size_t size, MemoryKind kind) {
  auto block = std::make_shared<MemoryBlock>(pointer, size, kind, /*owned=*/false);
  std::lock_guard lock(mutex_);
  blocks_.insert_or_assign(reinterpret_cast<uintptr_t>(pointer), std::move(block));
}

void MemoryRegistry::Unregister(void* pointer) {
  std::shared_ptr<MemoryBlock> block;  // released after the lock
  std::lock_guard lock(mutex_);
  auto it = blocks_.find(reinterpret_cast<uintptr_t>(pointer));
  if (it == blocks_.end() || it->second->Owned()) return;
  block = std::move(it->second);
  blocks_.erase(it);
}

const std::shared_ptr<MemoryBlock>* MemoryRegistry::FindLocked(uintptr_t address) const {
  auto it = blocks_.upper_bound(address);
  if (it == blocks_.begin()) return nullptr;
  --it;
  if (address - it->first >= it->second->Size()) return nullptr;
  return &it->second;
}

MemoryRef MemoryRegistry::Find(const void* pointer, size_t size, MemoryKind kind) const {
  const auto address = reinterpret_cast<uintptr_t>(pointer);
  std::lock_guard lock(mutex_);
  const std::shared_ptr<MemoryBlock>* block = FindLocked(address);
  if (block == nullptr || (*block)->Kind() != kind) return nullptr;
  if (size > (*block)->Size() - (address - (*block)->Begin())) return nullptr;
  return *block;
}

bool MemoryRegistry::Overlaps(const void* pointer, MemoryKind kind) const {
  std::lock_guard lock(mutex_);
  const std::shared_ptr<MemoryBlock>* block = FindLocked(reinterpret_cast<uintptr_t>(pointer));
  return block != nullptr && (*block)->Kind() == kind;
}

void MemoryRegistry::FreeAll() {
  std::map<uintptr_t, std::shared_ptr<MemoryBlock>> all;
  {
    std::lock_guard lock(mutex_);
    all.swap(blocks_);
  }
}

}  // namespace distbarrier::runtime
