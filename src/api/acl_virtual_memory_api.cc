// Virtual memory calls (aclrtReserveMemAddress ... aclrtUnmapMem, aclrtMemGetAllocationGranularity):
// the argument checks CANN's ACL layer makes, with its codes, then runtime/virtual_memory.h.
#include "acl/acl.h"
#include "api/guard.h"
#include "common/error.h"
#include "runtime/runtime.h"

using distbarrier::Fail;
using distbarrier::runtime::Runtime;
using distbarrier::runtime::VirtualMemory;

namespace {

// What CANN accepts in aclrtPhysicalMemProp: no shareable handle type, pinned memory, a device or
// host location, and a memory attribute its location can have (DDR is host memory).
aclError CheckProp(const char* api, const aclrtPhysicalMemProp& prop) {
  if (prop.handleType != ACL_MEM_HANDLE_TYPE_NONE) {
    return Fail(ACL_ERROR_INVALID_PARAM, "{}: prop->handleType {} is not ACL_MEM_HANDLE_TYPE_NONE (0)", api,
                static_cast<int>(prop.handleType));
  }
  if (prop.allocationType != ACL_MEM_ALLOCATION_TYPE_PINNED) {
    return Fail(ACL_ERROR_INVALID_PARAM, "{}: prop->allocationType {} is not ACL_MEM_ALLOCATION_TYPE_PINNED (0)", api,
                static_cast<int>(prop.allocationType));
  }
  const aclrtMemLocationType type = prop.location.type;
  if (type != ACL_MEM_LOCATION_TYPE_DEVICE && type != ACL_MEM_LOCATION_TYPE_HOST &&
      type != ACL_MEM_LOCATION_TYPE_HOST_NUMA) {
    return Fail(ACL_ERROR_INVALID_PARAM, "{}: prop->location.type {} is not DEVICE (1), HOST (0) or HOST_NUMA (4)", api,
                static_cast<int>(type));
  }
  const aclrtMemAttr attr = prop.memAttr;
  if (attr < ACL_DDR_MEM || attr > ACL_HBM_MEM_P2P_NORMAL) {
    return Fail(ACL_ERROR_INVALID_PARAM, "{}: prop->memAttr {} is not an aclrtMemAttr", api, static_cast<int>(attr));
  }
  const bool ddr = attr == ACL_DDR_MEM_HUGE || attr == ACL_DDR_MEM_NORMAL || attr == ACL_DDR_MEM_P2P_HUGE ||
                   attr == ACL_DDR_MEM_P2P_NORMAL;
  if (type == ACL_MEM_LOCATION_TYPE_DEVICE && ddr) {
    return Fail(ACL_ERROR_INVALID_PARAM, "{}: prop->memAttr {} (DDR) needs a host location", api,
                static_cast<int>(attr));
  }
  if (type == ACL_MEM_LOCATION_TYPE_DEVICE && !Runtime::Instance().ValidDevice(static_cast<int>(prop.location.id))) {
    return Fail(ACL_ERROR_RT_INVALID_DEVICEID, "{}: prop->location.id {} is not a device (there are {})", api,
                prop.location.id, Runtime::Instance().DeviceCount());
  }
  return ACL_SUCCESS;
}

aclError NeedContext() {
  aclError error = ACL_SUCCESS;
  Runtime::Instance().CurrentContext(&error);
  return error;
}

}  // namespace

// One granularity, 2 MiB, for every property, minimum and recommended alike (as CANN documents).
aclError aclrtMemGetAllocationGranularity(aclrtPhysicalMemProp* prop, aclrtMemGranularityOptions option,
                                          size_t* granularity) try {
  if (prop == nullptr || granularity == nullptr) {
    return Fail(ACL_ERROR_INVALID_PARAM, "aclrtMemGetAllocationGranularity: prop or granularity is null");
  }
  if (option != ACL_RT_MEM_ALLOC_GRANULARITY_MINIMUM && option != ACL_RT_MEM_ALLOC_GRANULARITY_RECOMMENDED) {
    return Fail(ACL_ERROR_INVALID_PARAM,
                "aclrtMemGetAllocationGranularity: option {} is not MINIMUM (0) or RECOMMENDED (1)",
                static_cast<int>(option));
  }
  if (aclError error = CheckProp("aclrtMemGetAllocationGranularity", *prop); error != ACL_SUCCESS) return error;
  *granularity = VirtualMemory::kGranularity;
  return ACL_SUCCESS;
}
DISTBARRIER_ACL_GUARD

aclError aclrtReserveMemAddress(void** virPtr, size_t size, size_t alignment, void* expectPtr, uint64_t flags) try {
  if (virPtr == nullptr) return Fail(ACL_ERROR_INVALID_PARAM, "aclrtReserveMemAddress: virPtr is null");
  if (size == 0) return Fail(ACL_ERROR_INVALID_PARAM, "aclrtReserveMemAddress: size is 0");
  if (flags != 0 && flags != 1) {  // 1 is kept by CANN for older programs (the page type)
    return Fail(ACL_ERROR_INVALID_PARAM, "aclrtReserveMemAddress: flags {} is not 0", flags);
  }
  if (expectPtr != nullptr) {
    return Fail(ACL_ERROR_INVALID_PARAM, "aclrtReserveMemAddress: expectPtr must be null (reserved), not {}",
                expectPtr);
  }
  if (aclError error = NeedContext(); error != ACL_SUCCESS) return error;
  return Runtime::Instance().Virtual().Reserve(virPtr, size, alignment);
}
DISTBARRIER_ACL_GUARD

aclError aclrtReleaseMemAddress(void* virPtr) try {
  if (virPtr == nullptr) return Fail(ACL_ERROR_INVALID_PARAM, "aclrtReleaseMemAddress: virPtr is null");
  return Runtime::Instance().Virtual().Release(virPtr);
}
DISTBARRIER_ACL_GUARD

aclError aclrtMallocPhysical(aclrtDrvMemHandle* handle, size_t size, const aclrtPhysicalMemProp* prop,
                             uint64_t flags) try {
  if (handle == nullptr || prop == nullptr) {
    return Fail(ACL_ERROR_INVALID_PARAM, "aclrtMallocPhysical: handle or prop is null");
  }
  if (size == 0) return Fail(ACL_ERROR_INVALID_PARAM, "aclrtMallocPhysical: size is 0");
  if (flags != 0) return Fail(ACL_ERROR_INVALID_PARAM, "aclrtMallocPhysical: flags {} is not 0 (reserved)", flags);
  if (aclError error = CheckProp("aclrtMallocPhysical", *prop); error != ACL_SUCCESS) return error;
  if (aclError error = NeedContext(); error != ACL_SUCCESS) return error;
  const int device = prop->location.type == ACL_MEM_LOCATION_TYPE_DEVICE ? static_cast<int>(prop->location.id) : -1;
  return Runtime::Instance().Virtual().AllocatePhysical(handle, size, device);
}
DISTBARRIER_ACL_GUARD

aclError aclrtFreePhysical(aclrtDrvMemHandle handle) try {
  if (handle == nullptr) return Fail(ACL_ERROR_INVALID_PARAM, "aclrtFreePhysical: handle is null");
  return Runtime::Instance().Virtual().FreePhysical(handle);
}
DISTBARRIER_ACL_GUARD

aclError aclrtMapMem(void* virPtr, size_t size, size_t offset, aclrtDrvMemHandle handle, uint64_t flags) try {
  if (virPtr == nullptr || handle == nullptr) {
    return Fail(ACL_ERROR_INVALID_PARAM, "aclrtMapMem: virPtr or handle is null");
  }
  if (size == 0) return Fail(ACL_ERROR_INVALID_PARAM, "aclrtMapMem: size is 0");
  if (flags != 0) return Fail(ACL_ERROR_INVALID_PARAM, "aclrtMapMem: flags {} is not 0 (reserved)", flags);
  return Runtime::Instance().Virtual().Map(virPtr, size, offset, handle);
}
DISTBARRIER_ACL_GUARD

// As in CANN, the caller synchronizes the streams that use the range before unmapping it.
aclError aclrtUnmapMem(void* virPtr) try {
  if (virPtr == nullptr) return Fail(ACL_ERROR_INVALID_PARAM, "aclrtUnmapMem: virPtr is null");
  return Runtime::Instance().Virtual().Unmap(virPtr);
}
DISTBARRIER_ACL_GUARD
