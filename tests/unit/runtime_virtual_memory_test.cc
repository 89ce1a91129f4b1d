// Virtual memory (aclrtReserveMemAddress ... aclrtUnmapMem) through the public C API: a range is
// reserved, physical memory mapped into it and used by copies like aclrtMalloc's memory, two
// mappings of one allocation share bytes, and every misuse fails with CANN's code.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "acl/acl.h"
#include "unit/runtime_fixture.h"

namespace distbarrier::testing {
namespace {

constexpr size_t kTwoMiB = size_t{2} << 20;

aclrtPhysicalMemProp DeviceProp(uint32_t device) {
  aclrtPhysicalMemProp prop{};
  prop.handleType = ACL_MEM_HANDLE_TYPE_NONE;
  prop.allocationType = ACL_MEM_ALLOCATION_TYPE_PINNED;
  prop.memAttr = ACL_HBM_MEM_HUGE;
  prop.location.type = ACL_MEM_LOCATION_TYPE_DEVICE;
  prop.location.id = device;
  return prop;
}

class VirtualMemoryTest : public StreamTest {
 protected:
  void SetUp() override { ASSERT_ACL_OK(aclrtSetDevice(0)); }
};

TEST_F(VirtualMemoryTest, GranularityIsTwoMiB) {
  aclrtPhysicalMemProp prop = DeviceProp(0);
  size_t granularity = 0;
  ASSERT_ACL_OK(aclrtMemGetAllocationGranularity(&prop, ACL_RT_MEM_ALLOC_GRANULARITY_MINIMUM, &granularity));
  EXPECT_EQ(granularity, kTwoMiB);
  ASSERT_ACL_OK(aclrtMemGetAllocationGranularity(&prop, ACL_RT_MEM_ALLOC_GRANULARITY_RECOMMENDED, &granularity));
  EXPECT_EQ(granularity, kTwoMiB);
  EXPECT_EQ(aclrtMemGetAllocationGranularity(nullptr, ACL_RT_MEM_ALLOC_GRANULARITY_MINIMUM, &granularity),
            ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtMemGetAllocationGranularity(&prop, ACL_RT_MEM_ALLOC_GRANULARITY_UNDEF, &granularity),
            ACL_ERROR_INVALID_PARAM);
}

TEST_F(VirtualMemoryTest, MappedMemoryIsDeviceMemoryForCopies) {
  void* base = nullptr;
  ASSERT_ACL_OK(aclrtReserveMemAddress(&base, 2 * kTwoMiB, 0, nullptr, 0));
  ASSERT_NE(base, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(base) % kTwoMiB, 0u);
  aclrtPhysicalMemProp prop = DeviceProp(0);
  aclrtDrvMemHandle handle = nullptr;
  ASSERT_ACL_OK(aclrtMallocPhysical(&handle, 2 * kTwoMiB, &prop, 0));
  ASSERT_ACL_OK(aclrtMapMem(base, 2 * kTwoMiB, 0, handle, 0));

  std::vector<uint8_t> host(2 * kTwoMiB);
  for (size_t i = 0; i < host.size(); ++i) host[i] = static_cast<uint8_t>(i * 7 + 3);
  ASSERT_ACL_OK(aclrtMemcpy(base, host.size(), host.data(), host.size(), ACL_MEMCPY_HOST_TO_DEVICE));
  aclrtStream stream = NewStream();
  std::vector<uint8_t> back(host.size());
  ASSERT_ACL_OK(aclrtMemcpyAsync(back.data(), back.size(), base, back.size(), ACL_MEMCPY_DEVICE_TO_HOST, stream));
  ASSERT_ACL_OK(aclrtSynchronizeStream(stream));
  EXPECT_EQ(back, host);
  // aclrtFree does not take a mapping; aclrtUnmapMem does, and then copies refuse the range.
  EXPECT_NE(aclrtFree(base), ACL_SUCCESS);
  ASSERT_ACL_OK(aclrtUnmapMem(base));
  EXPECT_NE(aclrtMemcpy(base, 16, host.data(), 16, ACL_MEMCPY_HOST_TO_DEVICE), ACL_SUCCESS);
  ASSERT_ACL_OK(aclrtFreePhysical(handle));
  ASSERT_ACL_OK(aclrtReleaseMemAddress(base));
}

TEST_F(VirtualMemoryTest, TwoMappingsOfOneAllocationShareBytesAndOutliveItsFree) {
  void* first = nullptr;
  void* second = nullptr;
  ASSERT_ACL_OK(aclrtReserveMemAddress(&first, kTwoMiB, 0, nullptr, 0));
  ASSERT_ACL_OK(aclrtReserveMemAddress(&second, 2 * kTwoMiB, 0, nullptr, 0));
  aclrtPhysicalMemProp prop = DeviceProp(0);
  aclrtDrvMemHandle handle = nullptr;
  ASSERT_ACL_OK(aclrtMallocPhysical(&handle, 2 * kTwoMiB, &prop, 0));
  ASSERT_ACL_OK(aclrtMapMem(first, kTwoMiB, kTwoMiB, handle, 0));  // the allocation's second half
  ASSERT_ACL_OK(aclrtMapMem(second, 2 * kTwoMiB, 0, handle, 0));   // all of it
  // Freeing mapped physical memory drops the handle; the bytes stay until the last unmap (CANN 9).
  ASSERT_ACL_OK(aclrtFreePhysical(handle));
  EXPECT_EQ(aclrtMapMem(first, kTwoMiB, 0, handle, 0), ACL_ERROR_RT_INVALID_HANDLE);
  static_cast<uint32_t*>(first)[5] = 0xC0FFEEu;
  EXPECT_EQ(static_cast<uint32_t*>(second)[kTwoMiB / 4 + 5], 0xC0FFEEu);
  ASSERT_ACL_OK(aclrtMemset(second, kTwoMiB * 2, 0, kTwoMiB * 2));
  EXPECT_EQ(static_cast<uint32_t*>(first)[5], 0u);
  ASSERT_ACL_OK(aclrtUnmapMem(first));
  ASSERT_ACL_OK(aclrtUnmapMem(second));
  ASSERT_ACL_OK(aclrtReleaseMemAddress(first));
  ASSERT_ACL_OK(aclrtReleaseMemAddress(second));
}

TEST_F(VirtualMemoryTest, ReserveRoundsUpAndHonoursAlignment) {
  void* base = nullptr;
  ASSERT_ACL_OK(aclrtReserveMemAddress(&base, 100, size_t{1} << 24, nullptr, 0));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(base) % (size_t{1} << 24), 0u);
  aclrtPhysicalMemProp prop = DeviceProp(0);
  aclrtDrvMemHandle handle = nullptr;
  ASSERT_ACL_OK(aclrtMallocPhysical(&handle, kTwoMiB, &prop, 0));
  ASSERT_ACL_OK(aclrtMapMem(base, kTwoMiB, 0, handle, 0));  // 100 bytes reserve one granule
  ASSERT_ACL_OK(aclrtUnmapMem(base));
  ASSERT_ACL_OK(aclrtFreePhysical(handle));
  ASSERT_ACL_OK(aclrtReleaseMemAddress(base));
}

TEST_F(VirtualMemoryTest, MisuseFailsWithCannCodes) {
  void* base = nullptr;
  EXPECT_EQ(aclrtReserveMemAddress(nullptr, kTwoMiB, 0, nullptr, 0), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtReserveMemAddress(&base, 0, 0, nullptr, 0), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtReserveMemAddress(&base, kTwoMiB, 0, nullptr, 2), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtReserveMemAddress(&base, kTwoMiB, 3, nullptr, 0), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtReserveMemAddress(&base, kTwoMiB, 0, &base, 0), ACL_ERROR_INVALID_PARAM);
  ASSERT_ACL_OK(aclrtReserveMemAddress(&base, 2 * kTwoMiB, 0, nullptr, 0));

  aclrtPhysicalMemProp prop = DeviceProp(0);
  aclrtDrvMemHandle handle = nullptr;
  EXPECT_EQ(aclrtMallocPhysical(&handle, kTwoMiB + 1, &prop, 0), ACL_ERROR_INVALID_PARAM);  // unaligned size
  EXPECT_EQ(aclrtMallocPhysical(&handle, 0, &prop, 0), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtMallocPhysical(&handle, kTwoMiB, &prop, 1), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtMallocPhysical(&handle, kTwoMiB, nullptr, 0), ACL_ERROR_INVALID_PARAM);
  aclrtPhysicalMemProp bad = prop;
  bad.location.type = ACL_MEM_LOCATION_TYPE_MANAGED;
  EXPECT_EQ(aclrtMallocPhysical(&handle, kTwoMiB, &bad, 0), ACL_ERROR_INVALID_PARAM);
  bad = prop;
  bad.memAttr = ACL_DDR_MEM_HUGE;  // DDR is host memory
  EXPECT_EQ(aclrtMallocPhysical(&handle, kTwoMiB, &bad, 0), ACL_ERROR_INVALID_PARAM);
  bad = prop;
  bad.handleType = ACL_MEM_HANDLE_TYPE_POSIX;
  EXPECT_EQ(aclrtMallocPhysical(&handle, kTwoMiB, &bad, 0), ACL_ERROR_INVALID_PARAM);
  bad = prop;
  bad.location.id = 1u << 20;
  EXPECT_EQ(aclrtMallocPhysical(&handle, kTwoMiB, &bad, 0), ACL_ERROR_RT_INVALID_DEVICEID);
  ASSERT_ACL_OK(aclrtMallocPhysical(&handle, kTwoMiB, &prop, 0));

  auto* bytes = static_cast<char*>(base);
  EXPECT_EQ(aclrtMapMem(bytes + 4096, kTwoMiB, 0, handle, 0), ACL_ERROR_RT_ADDR_UNALIGNED);
  EXPECT_EQ(aclrtMapMem(base, kTwoMiB, 4096, handle, 0), ACL_ERROR_RT_ADDR_UNALIGNED);
  EXPECT_EQ(aclrtMapMem(base, 4096, 0, handle, 0), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtMapMem(base, 2 * kTwoMiB, 0, handle, 0), ACL_ERROR_INVALID_PARAM);  // beyond the allocation
  EXPECT_EQ(aclrtMapMem(base, kTwoMiB, 0, handle, 1), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtMapMem(base, kTwoMiB, 0, nullptr, 0), ACL_ERROR_INVALID_PARAM);
  int not_a_handle = 0;
  EXPECT_EQ(aclrtMapMem(base, kTwoMiB, 0, &not_a_handle, 0), ACL_ERROR_RT_INVALID_HANDLE);
  EXPECT_EQ(aclrtMapMem(bytes + 4 * kTwoMiB, kTwoMiB, 0, handle, 0), ACL_ERROR_RT_PARAM_INVALID);  // outside
  ASSERT_ACL_OK(aclrtMapMem(bytes + kTwoMiB, kTwoMiB, 0, handle, 0));
  EXPECT_EQ(aclrtMapMem(bytes + kTwoMiB, kTwoMiB, 0, handle, 0), ACL_ERROR_RT_PARAM_INVALID);  // mapped twice
  EXPECT_EQ(aclrtUnmapMem(base), ACL_ERROR_RT_PARAM_INVALID);                                  // nothing mapped there
  EXPECT_EQ(aclrtUnmapMem(nullptr), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtReleaseMemAddress(base), ACL_ERROR_RT_PARAM_INVALID);             // still mapped
  EXPECT_EQ(aclrtReleaseMemAddress(bytes + kTwoMiB), ACL_ERROR_RT_PARAM_INVALID);  // not a reservation's start
  ASSERT_ACL_OK(aclrtUnmapMem(bytes + kTwoMiB));
  EXPECT_EQ(aclrtUnmapMem(bytes + kTwoMiB), ACL_ERROR_RT_PARAM_INVALID);  // unmapped twice
  ASSERT_ACL_OK(aclrtFreePhysical(handle));
  EXPECT_EQ(aclrtFreePhysical(handle), ACL_ERROR_RT_INVALID_HANDLE);
  EXPECT_EQ(aclrtFreePhysical(nullptr), ACL_ERROR_INVALID_PARAM);
  ASSERT_ACL_OK(aclrtReleaseMemAddress(base));
  EXPECT_EQ(aclrtReleaseMemAddress(base), ACL_ERROR_RT_PARAM_INVALID);
}

TEST_F(VirtualMemoryTest, UnmappedRangeFaultsAgain) {
  void* base = nullptr;
  ASSERT_ACL_OK(aclrtReserveMemAddress(&base, kTwoMiB, 0, nullptr, 0));
  aclrtPhysicalMemProp prop = DeviceProp(0);
  aclrtDrvMemHandle handle = nullptr;
  ASSERT_ACL_OK(aclrtMallocPhysical(&handle, kTwoMiB, &prop, 0));
  ASSERT_ACL_OK(aclrtMapMem(base, kTwoMiB, 0, handle, 0));
  static_cast<volatile char*>(base)[0] = 1;
  ASSERT_ACL_OK(aclrtUnmapMem(base));
  EXPECT_DEATH(static_cast<volatile char*>(base)[0] = 2, "");
  ASSERT_ACL_OK(aclrtFreePhysical(handle));
  ASSERT_ACL_OK(aclrtReleaseMemAddress(base));
}

TEST_F(VirtualMemoryTest, FinalizeReleasesWhatWasLeft) {
  void* base = nullptr;
  ASSERT_ACL_OK(aclrtReserveMemAddress(&base, kTwoMiB, 0, nullptr, 0));
  aclrtPhysicalMemProp prop = DeviceProp(0);
  aclrtDrvMemHandle handle = nullptr;
  ASSERT_ACL_OK(aclrtMallocPhysical(&handle, kTwoMiB, &prop, 0));
  ASSERT_ACL_OK(aclrtMapMem(base, kTwoMiB, 0, handle, 0));
  ASSERT_ACL_OK(aclFinalize());
  ASSERT_ACL_OK(aclrtSetDevice(0));
  EXPECT_EQ(aclrtUnmapMem(base), ACL_ERROR_RT_PARAM_INVALID);
  EXPECT_EQ(aclrtFreePhysical(handle), ACL_ERROR_RT_INVALID_HANDLE);
  EXPECT_EQ(aclrtReleaseMemAddress(base), ACL_ERROR_RT_PARAM_INVALID);
}

}  // namespace
}  // namespace distbarrier::testing
