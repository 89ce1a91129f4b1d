// Virtual memory of the simulated devices (aclrtReserveMemAddress ... aclrtUnmapMem), with the
// host's own virtual memory underneath:
//   reservation = an anonymous PROT_NONE mapping (touching it faults, as on a device);
//   physical memory = a memfd of the size (its pages appear when first written);
//   mapping = the memfd mapped MAP_SHARED|MAP_FIXED into the reservation, registered with the
//   MemoryRegistry as device memory so that copies, memsets and operators accept it;
//   unmapping = PROT_NONE again.
// Two mappings of one physical allocation share its bytes, as on a device. Freeing physical
// memory that is still mapped only drops the handle: the bytes live until the last unmap (CANN 9).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

#include "acl/acl_base.h"

namespace distbarrier::runtime {

class MemoryRegistry;

class VirtualMemory {
 public:
  // CANN's devices map in 2 MiB pages; so do the simulated ones (every address, size and offset).
  static constexpr size_t kGranularity = size_t{2} << 20;

  explicit VirtualMemory(MemoryRegistry& registry) : registry_(registry) {}
  ~VirtualMemory() { ReleaseAll(); }
  VirtualMemory(const VirtualMemory&) = delete;
  VirtualMemory& operator=(const VirtualMemory&) = delete;

  // The arguments were checked by the API layer (null pointers, flags, zero sizes); these check
  // what needs the state: ranges, handles, overlaps. Each failure is recorded with Fail.
  aclError Reserve(void** address, size_t size, size_t alignment);
  aclError Release(void* address);
  aclError AllocatePhysical(void** handle, size_t size, int device);
  aclError FreePhysical(void* handle);
  aclError Map(void* address, size_t size, size_t offset, void* handle);
  aclError Unmap(void* address);
  // aclFinalize: unmaps, frees and releases everything the program left.
  void ReleaseAll();

 private:
  struct Physical {
    Physical(int descriptor, size_t bytes) : fd(descriptor), size(bytes) {}
    Physical(const Physical&) = delete;
    Physical& operator=(const Physical&) = delete;
    ~Physical();  // closes fd
    const int fd;
    const size_t size;
  };
  struct Mapping {
    size_t size;
    std::shared_ptr<Physical> physical;  // keeps the memfd open while mapped
  };
  struct Reservation {
    size_t size;
    std::map<uintptr_t, Mapping> mappings;  // by start address
  };

  // The reservation holding [address, address + size); null when none does.
  Reservation* ReservationOf(uintptr_t address, size_t size);
  void UnmapLocked(uintptr_t address, const Mapping& mapping);

  MemoryRegistry& registry_;
  std::mutex mutex_;
  std::map<uintptr_t, Reservation> reservations_;         // by start address
  std::map<void*, std::shared_ptr<Physical>> physicals_;  // by handle
};

}  // namespace distbarrier::runtime
