// Memory of simulated devices: host memory, tracked so that frees, copies and memsets can be
// checked against what was really allocated, and aclFinalize can release what was forgotten.
//
// The rule for memory that queued work uses: each allocation is a reference-counted block.
// The registry holds it from aclrtMalloc/aclrtMallocHost to aclrtFree/aclrtFreeHost, and every
// queued task that reads or writes it (an aclrtMemcpyAsync, a barrier reading its timeOut or
// elasticInfo tensor) holds it until that task has finished. A free therefore unregisters the
// pointer at once (later calls with it fail as freed), but the bytes are released only when
// the last task using them is done: freeing right after an enqueue is safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

namespace distbarrier::runtime {

enum class MemoryKind { kDevice, kHost };

// One allocation; its bytes are freed with the last reference.
class MemoryBlock {
 public:
  // `owned`: freed with the last reference. A mapping of virtual memory is not: aclrtUnmapMem
  // unmaps it (runtime/virtual_memory.h).
  MemoryBlock(void* base, size_t size, MemoryKind kind, bool owned = true)
      : base_(base), size_(size), kind_(kind), owned_(owned) {}
  ~MemoryBlock();
  MemoryBlock(const MemoryBlock&) = delete;
  MemoryBlock& operator=(const MemoryBlock&) = delete;

  uintptr_t Begin() const { return reinterpret_cast<uintptr_t>(base_); }
  size_t Size() const { return size_; }
  MemoryKind Kind() const { return kind_; }
  bool Owned() const { return owned_; }

 private:
  void* const base_;
  const size_t size_;
  const MemoryKind kind_;
  const bool owned_;
};

// What a queued task holds to keep the memory it uses alive.
using MemoryRef = std::shared_ptr<const MemoryBlock>;

class MemoryRegistry {
 public:
  // Null when out of memory or `size` is beyond any simulated device.
  void* Allocate(size_t size, MemoryKind kind);
  // False when `pointer` is not the start of a live allocation of `kind` (or is a mapping of
  // virtual memory, which aclrtFree must not take). The bytes stay until queued tasks that use
  // them have finished.
  bool Free(void* pointer, MemoryKind kind);
  // Memory the registry does not own but copies and memsets may use as device memory: a
  // mapping of virtual memory, from aclrtMapMem until aclrtUnmapMem unregisters it.
  void Register(void* pointer, size_t size, MemoryKind kind);
  void Unregister(void* pointer);
  // The live allocation of `kind` holding all of [pointer, pointer + size); null when none.
  MemoryRef Find(const void* pointer, size_t size, MemoryKind kind) const;
  // True when [pointer, pointer + size) lies inside one live allocation of `kind`.
  bool Contains(const void* pointer, size_t size, MemoryKind kind) const {
    return Find(pointer, size, kind) != nullptr;
  }
  // True when `pointer` is anywhere inside a live allocation of `kind`.
  bool Overlaps(const void* pointer, MemoryKind kind) const;
  // Unregisters every allocation (aclFinalize, after the streams are joined).
  void FreeAll();

 private:
  // The block holding `address`; null when none does.
  const std::shared_ptr<MemoryBlock>* FindLocked(uintptr_t address) const;

  mutable std::mutex mutex_;
  std::map<uintptr_t, std::shared_ptr<MemoryBlock>> blocks_;
};

}  // namespace distbarrier::runtime
