// Memory of simulated devices: host memory, tracked so that frees, copies and memsets can be
// checked against what was really allocated, and aclFinalize can release what was forgotten.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <utility>

namespace distbarrier::runtime {

enum class MemoryKind { kDevice, kHost };

class MemoryRegistry {
 public:
  void* Allocate(size_t size, MemoryKind kind);
  // False when `pointer` is not the start of a live allocation of `kind`.
  bool Free(void* pointer, MemoryKind kind);
  // True when [pointer, pointer + size) lies inside one live allocation of `kind`.
  bool Contains(const void* pointer, size_t size, MemoryKind kind) const;
  // True when `pointer` is anywhere inside a live allocation of `kind`.
  bool Overlaps(const void* pointer, MemoryKind kind) const;
  void FreeAll();

 private:
  struct Allocation {
    size_t size;
    MemoryKind kind;
  };
  // The start and record of the allocation holding `address`; null when none does.
  std::pair<uintptr_t, const Allocation*> Find(uintptr_t address) const;

  mutable std::mutex mutex_;
  std::map<uintptr_t, Allocation> allocations_;
};

}  // namespace distbarrier::runtime
