#include "runtime/virtual_memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "acl/acl.h"
#include "common/error.h"
#include "runtime/memory.h"

namespace distbarrier::runtime {
namespace {

constexpr size_t kMaxSize = size_t{1} << 40;  // no simulated device holds more (as MemoryRegistry)

bool Aligned(uintptr_t value) {
  return value % VirtualMemory::kGranularity == 0;
}

size_t RoundUp(size_t value, size_t to) {
  return (value + to - 1) / to * to;
}

}  // namespace

VirtualMemory::Physical::~Physical() {
  close(fd);
}

aclError VirtualMemory::Reserve(void** address, size_t size, size_t alignment) {
  if (size > kMaxSize) {
    return Fail(ACL_ERROR_RT_MEMORY_ALLOCATION, "aclrtReserveMemAddress: size {} is beyond any device", size);
  }
  if (alignment != 0 && (alignment & (alignment - 1)) != 0) {
    return Fail(ACL_ERROR_INVALID_PARAM, "aclrtReserveMemAddress: alignment {} is not 0 or a power of two", alignment);
  }
  const size_t rounded = RoundUp(size, kGranularity);
  const size_t align = alignment > kGranularity ? alignment : kGranularity;
  // Over-reserve, then trim to an aligned range: mmap only promises page alignment.
  const size_t span = rounded + align;
  void* raw = mmap(nullptr, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) {
    return Fail(ACL_ERROR_RT_MEMORY_ALLOCATION, "aclrtReserveMemAddress: cannot reserve {} bytes: {}", rounded,
                std::strerror(errno));
  }
  const auto begin = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t start = RoundUp(begin, align);
  if (start > begin) munmap(raw, start - begin);
  if (begin + span > start + rounded) munmap(reinterpret_cast<void*>(start + rounded), begin + span - start - rounded);
  {
    std::lock_guard lock(mutex_);
    reservations_.emplace(start, Reservation{.size = rounded, .mappings = {}});
  }
  *address = reinterpret_cast<void*>(start);
  return ACL_SUCCESS;
}

aclError VirtualMemory::Release(void* address) {
  std::lock_guard lock(mutex_);
  auto found = reservations_.find(reinterpret_cast<uintptr_t>(address));
  if (found == reservations_.end()) {
    return Fail(ACL_ERROR_RT_PARAM_INVALID,
                "aclrtReleaseMemAddress: {} is not the start of a range from aclrtReserveMemAddress", address);
  }
  if (!found->second.mappings.empty()) {
    return Fail(ACL_ERROR_RT_PARAM_INVALID,
                "aclrtReleaseMemAddress: {} still has {} mapping(s); aclrtUnmapMem them first", address,
                found->second.mappings.size());
  }
  munmap(address, found->second.size);
  reservations_.erase(found);
  return ACL_SUCCESS;
}

aclError VirtualMemory::AllocatePhysical(void** handle, size_t size, int device) {
  if (!Aligned(size)) {
    return Fail(ACL_ERROR_INVALID_PARAM,
                "aclrtMallocPhysical: size {} is not a multiple of the granularity {} "
                "(aclrtMemGetAllocationGranularity)",
                size, kGranularity);
  }
  if (size > kMaxSize) {
    return Fail(ACL_ERROR_RT_MEMORY_ALLOCATION, "aclrtMallocPhysical: size {} is beyond any device", size);
  }
  const std::string name = "distbarrier-physical-dev" + std::to_string(device);
  const int fd = memfd_create(name.c_str(), MFD_CLOEXEC);
  if (fd < 0) {
    return Fail(ACL_ERROR_RT_MEMORY_ALLOCATION, "aclrtMallocPhysical: memfd_create failed: {}", std::strerror(errno));
  }
  auto physical = std::make_shared<Physical>(fd, size);
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
    return Fail(ACL_ERROR_RT_MEMORY_ALLOCATION, "aclrtMallocPhysical: cannot size {} bytes: {}", size,
                std::strerror(errno));
  }
  void* key = physical.get();
  std::lock_guard lock(mutex_);
  physicals_.emplace(key, std::move(physical));
  *handle = key;
  return ACL_SUCCESS;
}

aclError VirtualMemory::FreePhysical(void* handle) {
  std::shared_ptr<Physical> physical;  // closed after the lock, unless a mapping still holds it
  std::lock_guard lock(mutex_);
  auto found = physicals_.find(handle);
  if (found == physicals_.end()) {
    return Fail(ACL_ERROR_RT_INVALID_HANDLE, "aclrtFreePhysical: {} is not a live handle from aclrtMallocPhysical",
                handle);
  }
  physical = std::move(found->second);
  physicals_.erase(found);
  return ACL_SUCCESS;
}

VirtualMemory::Reservation* VirtualMemory::ReservationOf(uintptr_t address, size_t size) {
  auto it = reservations_.upper_bound(address);
  if (it == reservations_.begin()) return nullptr;
  --it;
  const size_t into = address - it->first;
  if (into >= it->second.size || size > it->second.size - into) return nullptr;
  return &it->second;
}

aclError VirtualMemory::Map(void* address, size_t size, size_t offset, void* handle) {
  const auto start = reinterpret_cast<uintptr_t>(address);
  if (!Aligned(start) || !Aligned(offset)) {
    return Fail(ACL_ERROR_RT_ADDR_UNALIGNED, "aclrtMapMem: address {} or offset {} is not a multiple of {}", address,
                offset, kGranularity);
  }
  if (!Aligned(size)) {
    return Fail(ACL_ERROR_INVALID_PARAM, "aclrtMapMem: size {} is not a multiple of the granularity {}", size,
                kGranularity);
  }
  std::lock_guard lock(mutex_);
  auto physical = physicals_.find(handle);
  if (physical == physicals_.end()) {
    return Fail(ACL_ERROR_RT_INVALID_HANDLE, "aclrtMapMem: {} is not a live handle from aclrtMallocPhysical", handle);
  }
  if (offset > physical->second->size || size > physical->second->size - offset) {
    return Fail(ACL_ERROR_INVALID_PARAM, "aclrtMapMem: offset {} + size {} exceeds the {} bytes of the physical memory",
                offset, size, physical->second->size);
  }
  Reservation* reservation = ReservationOf(start, size);
  if (reservation == nullptr) {
    return Fail(ACL_ERROR_RT_PARAM_INVALID,
                "aclrtMapMem: [{}, +{} bytes) is not inside one range from aclrtReserveMemAddress", address, size);
  }
  // A mapping that overlaps [start, start + size): the first one ending after start.
  auto next = reservation->mappings.lower_bound(start);
  if (next != reservation->mappings.begin()) {
    auto before = std::prev(next);
    if (before->first + before->second.size > start) next = before;
  }
  if (next != reservation->mappings.end() && next->first < start + size) {
    return Fail(ACL_ERROR_RT_PARAM_INVALID,
                "aclrtMapMem: [{}, +{} bytes) overlaps the mapping at {:#x}; unmap it first", address, size,
                next->first);
  }
  void* mapped = mmap(address, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, physical->second->fd,
                      static_cast<off_t>(offset));
  if (mapped == MAP_FAILED) {
    return Fail(ACL_ERROR_RT_MEMORY_ALLOCATION, "aclrtMapMem: mmap failed: {}", std::strerror(errno));
  }
  reservation->mappings.emplace(start, Mapping{.size = size, .physical = physical->second});
  registry_.Register(address, size, MemoryKind::kDevice);
  return ACL_SUCCESS;
}

void VirtualMemory::UnmapLocked(uintptr_t address, const Mapping& mapping) {
  registry_.Unregister(reinterpret_cast<void*>(address));
  // Back to an inaccessible part of the reservation; the physical pages go with the last mapping
  // once the handle is freed.
  mmap(reinterpret_cast<void*>(address), mapping.size, PROT_NONE,
       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
}

aclError VirtualMemory::Unmap(void* address) {
  const auto start = reinterpret_cast<uintptr_t>(address);
  std::lock_guard lock(mutex_);
  if (Reservation* reservation = ReservationOf(start, 1)) {
    auto found = reservation->mappings.find(start);
    if (found != reservation->mappings.end()) {
      UnmapLocked(start, found->second);
      reservation->mappings.erase(found);
      return ACL_SUCCESS;
    }
  }
  return Fail(ACL_ERROR_RT_PARAM_INVALID, "aclrtUnmapMem: {} is not the start of a mapping from aclrtMapMem", address);
}

void VirtualMemory::ReleaseAll() {
  std::lock_guard lock(mutex_);
  for (auto& [start, reservation] : reservations_) {
    for (auto& [address, mapping] : reservation.mappings) registry_.Unregister(reinterpret_cast<void*>(address));
    munmap(reinterpret_cast<void*>(start), reservation.size);
  }
  reservations_.clear();
  physicals_.clear();
}

}  // namespace distbarrier::runtime
