// The ACL runtime slice through its public C API: device and host memory, copies, memset.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "acl/acl.h"
#include "unit/runtime_fixture.h"

namespace distbarrier::testing {
namespace {

// ---------------------------------------------------------------------------------------
// Memory

TEST_F(MemoryTest, MallocSizeZeroIsInvalidParam) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  void* dev = nullptr;
  EXPECT_EQ(aclrtMalloc(&dev, 0, ACL_MEM_MALLOC_HUGE_FIRST), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtMalloc(nullptr, 16, ACL_MEM_MALLOC_HUGE_FIRST), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtMalloc(&dev, 16, static_cast<aclrtMemMallocPolicy>(9)), ACL_ERROR_INVALID_PARAM);
}

// Rounding a size near SIZE_MAX up to the alignment wrapped to a tiny block that was recorded
// as huge, so later copies into it passed every check.
TEST_F(MemoryTest, MallocOfAnImpossibleSizeIsAllocationFailure) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  for (size_t size : {SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 63, SIZE_MAX / 2}) {
    void* dev = nullptr;
    EXPECT_EQ(aclrtMalloc(&dev, size, ACL_MEM_MALLOC_HUGE_FIRST), ACL_ERROR_RT_MEMORY_ALLOCATION) << size;
    EXPECT_EQ(dev, nullptr);
    EXPECT_NE(std::string(aclGetRecentErrMsg()).find("aclrtMalloc"), std::string::npos);
    void* host = nullptr;
    EXPECT_EQ(aclrtMallocHost(&host, size), ACL_ERROR_RT_MEMORY_ALLOCATION) << size;
    EXPECT_EQ(host, nullptr);
  }
}

TEST_F(MemoryTest, MallocWithoutContextIsContextNull) {
  void* dev = nullptr;
  EXPECT_EQ(aclrtMalloc(&dev, 16, ACL_MEM_MALLOC_HUGE_FIRST), ACL_ERROR_RT_CONTEXT_NULL);
}

TEST_F(MemoryTest, MallocPoliciesAllWork) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  // The P2P policies too: the runtime's own device_P2P example allocates with them.
  for (auto policy : {ACL_MEM_MALLOC_HUGE_FIRST, ACL_MEM_MALLOC_HUGE_ONLY, ACL_MEM_MALLOC_NORMAL_ONLY,
                      ACL_MEM_MALLOC_HUGE_FIRST_P2P, ACL_MEM_MALLOC_HUGE_ONLY_P2P, ACL_MEM_MALLOC_NORMAL_ONLY_P2P,
                      ACL_MEM_MALLOC_HUGE1G_ONLY, ACL_MEM_MALLOC_HUGE1G_ONLY_P2P}) {
    void* dev = nullptr;
    ASSERT_ACL_OK(aclrtMalloc(&dev, 100, policy));
    EXPECT_NE(dev, nullptr);
    EXPECT_ACL_OK(aclrtFree(dev));
  }
}

TEST_F(MemoryTest, FreeOfForeignPointerIsInvalidParam) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  int local = 0;
  EXPECT_EQ(aclrtFree(&local), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtFree(nullptr), ACL_ERROR_INVALID_PARAM);
  void* dev = nullptr;
  ASSERT_ACL_OK(aclrtMalloc(&dev, 64, ACL_MEM_MALLOC_HUGE_FIRST));
  EXPECT_EQ(aclrtFree(static_cast<char*>(dev) + 8), ACL_ERROR_INVALID_PARAM);  // interior pointer
  EXPECT_ACL_OK(aclrtFree(dev));
}

TEST_F(MemoryTest, DoubleFreeIsInvalidParam) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  void* dev = nullptr;
  ASSERT_ACL_OK(aclrtMalloc(&dev, 64, ACL_MEM_MALLOC_HUGE_FIRST));
  EXPECT_ACL_OK(aclrtFree(dev));
  EXPECT_EQ(aclrtFree(dev), ACL_ERROR_INVALID_PARAM);
}

TEST_F(MemoryTest, MemcpyCountAboveDestMaxIsInvalidParam) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  void* dev = nullptr;
  ASSERT_ACL_OK(aclrtMalloc(&dev, 64, ACL_MEM_MALLOC_HUGE_FIRST));
  std::array<char, 64> host{};
  EXPECT_EQ(aclrtMemcpy(dev, 32, host.data(), 33, ACL_MEMCPY_HOST_TO_DEVICE), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtMemcpy(host.data(), 32, dev, 64, ACL_MEMCPY_DEVICE_TO_HOST), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtMemcpy(nullptr, 64, host.data(), 1, ACL_MEMCPY_HOST_TO_DEVICE), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtMemcpy(dev, 64, nullptr, 1, ACL_MEMCPY_HOST_TO_DEVICE), ACL_ERROR_INVALID_PARAM);
  EXPECT_ACL_OK(aclrtFree(dev));
}

TEST_F(MemoryTest, MemcpyInvalidKindIsInvalidParam) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  void* dev = nullptr;
  ASSERT_ACL_OK(aclrtMalloc(&dev, 64, ACL_MEM_MALLOC_HUGE_FIRST));
  std::array<char, 64> host{};
  EXPECT_EQ(aclrtMemcpy(dev, 64, host.data(), 64, static_cast<aclrtMemcpyKind>(7)), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtMemcpy(dev, 64, host.data(), 64, static_cast<aclrtMemcpyKind>(-1)), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtMemcpyAsync(dev, 64, host.data(), 64, static_cast<aclrtMemcpyKind>(7), nullptr),
            ACL_ERROR_INVALID_PARAM);
  EXPECT_ACL_OK(aclrtFree(dev));
}

TEST_F(MemoryTest, MemcpyBeyondTheAllocationIsInvalidParam) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  void* dev = nullptr;
  ASSERT_ACL_OK(aclrtMalloc(&dev, 64, ACL_MEM_MALLOC_HUGE_FIRST));
  std::array<char, 256> host{};
  EXPECT_EQ(aclrtMemcpy(dev, 256, host.data(), 65, ACL_MEMCPY_HOST_TO_DEVICE), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtMemcpy(static_cast<char*>(dev) + 32, 256, host.data(), 33, ACL_MEMCPY_HOST_TO_DEVICE),
            ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtMemcpy(host.data(), 256, dev, 65, ACL_MEMCPY_DEVICE_TO_HOST), ACL_ERROR_INVALID_PARAM);
  // The exact fit is fine.
  EXPECT_ACL_OK(aclrtMemcpy(static_cast<char*>(dev) + 32, 32, host.data(), 32, ACL_MEMCPY_HOST_TO_DEVICE));
  EXPECT_ACL_OK(aclrtFree(dev));
}

TEST_F(MemoryTest, MemcpyKindMustMatchWhereMemoryLives) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  void* dev = nullptr;
  ASSERT_ACL_OK(aclrtMalloc(&dev, 64, ACL_MEM_MALLOC_HUGE_FIRST));
  std::array<char, 64> host{};
  std::array<char, 64> other{};
  // Host memory named as device memory, and device memory named as host memory.
  EXPECT_EQ(aclrtMemcpy(other.data(), 64, host.data(), 64, ACL_MEMCPY_HOST_TO_DEVICE), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtMemcpy(dev, 64, host.data(), 64, ACL_MEMCPY_HOST_TO_HOST), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtMemcpy(host.data(), 64, dev, 64, ACL_MEMCPY_HOST_TO_HOST), ACL_ERROR_INVALID_PARAM);
  // Host to host is plain memory.
  host.fill('h');
  EXPECT_ACL_OK(aclrtMemcpy(other.data(), 64, host.data(), 64, ACL_MEMCPY_HOST_TO_HOST));
  EXPECT_EQ(other, host);
  EXPECT_ACL_OK(aclrtFree(dev));
}

TEST_F(MemoryTest, RoundTripPreservesBytes) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  constexpr size_t kBytes = 4099;
  std::vector<unsigned char> source(kBytes);
  for (size_t i = 0; i < kBytes; ++i) source[i] = static_cast<unsigned char>((i * 131 + 7) & 0xff);
  void* a = nullptr;
  void* b = nullptr;
  ASSERT_ACL_OK(aclrtMalloc(&a, kBytes, ACL_MEM_MALLOC_HUGE_FIRST));
  ASSERT_ACL_OK(aclrtMalloc(&b, kBytes, ACL_MEM_MALLOC_NORMAL_ONLY));
  ASSERT_ACL_OK(aclrtMemcpy(a, kBytes, source.data(), kBytes, ACL_MEMCPY_HOST_TO_DEVICE));
  ASSERT_ACL_OK(aclrtMemcpy(b, kBytes, a, kBytes, ACL_MEMCPY_DEVICE_TO_DEVICE));
  std::vector<unsigned char> back(kBytes, 0);
  ASSERT_ACL_OK(aclrtMemcpy(back.data(), kBytes, b, kBytes, ACL_MEMCPY_DEVICE_TO_HOST));
  EXPECT_EQ(back, source);
  EXPECT_ACL_OK(aclrtFree(a));
  EXPECT_ACL_OK(aclrtFree(b));
}

struct FillArgs {
  std::vector<int32_t>* buffer;
  int32_t value;
};

TEST_F(MemoryTest, MemcpyAsyncRunsInStreamOrder) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  aclrtStream stream = NewStream();
  constexpr size_t kCount = 256;
  constexpr size_t kBytes = kCount * sizeof(int32_t);
  static std::vector<int32_t> source;
  static std::vector<int32_t> result;
  source.assign(kCount, 1);
  result.assign(kCount, 0);
  void* dev = nullptr;
  ASSERT_ACL_OK(aclrtMalloc(&dev, kBytes, ACL_MEM_MALLOC_HUGE_FIRST));

  // Held behind a gate so that nothing can have run when the test rewrites `source`.
  Gate& gate = Block(stream);
  static FillArgs fill;
  fill = FillArgs{&source, 7};
  ASSERT_ACL_OK(aclrtLaunchHostFunc(
      stream,
      [](void* arg) {
        auto* f = static_cast<FillArgs*>(arg);
        std::fill(f->buffer->begin(), f->buffer->end(), f->value);
      },
      &fill));
  ASSERT_ACL_OK(aclrtMemcpyAsync(dev, kBytes, source.data(), kBytes, ACL_MEMCPY_HOST_TO_DEVICE, stream));
  ASSERT_ACL_OK(aclrtMemcpyAsync(result.data(), kBytes, dev, kBytes, ACL_MEMCPY_DEVICE_TO_HOST, stream));
  EXPECT_EQ(result, std::vector<int32_t>(kCount, 0)) << "an async copy ran ahead of the blocked stream";
  gate.Open();
  ASSERT_ACL_OK(aclrtSynchronizeStream(stream));
  EXPECT_EQ(result, std::vector<int32_t>(kCount, 7));
  EXPECT_ACL_OK(aclrtFree(dev));
}

// The rule (docs/DESIGN.md, "Memory and queued tasks"): a free unregisters the pointer at
// once, but a queued task that uses the block keeps its bytes until it ran. Without it the
// copies below read and wrote freed memory (ASan: heap-use-after-free).
TEST_F(MemoryTest, FreeRightAfterAnAsyncCopyIsSafe) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  aclrtStream stream = NewStream();
  constexpr size_t kCount = 1024;
  constexpr size_t kBytes = kCount * sizeof(int32_t);
  void* pinned = nullptr;
  ASSERT_ACL_OK(aclrtMallocHost(&pinned, kBytes));
  std::fill_n(static_cast<int32_t*>(pinned), kCount, 42);
  void* dev = nullptr;
  ASSERT_ACL_OK(aclrtMalloc(&dev, kBytes, ACL_MEM_MALLOC_HUGE_FIRST));
  static std::vector<int32_t> result;
  result.assign(kCount, 0);

  Gate& gate = Block(stream);  // nothing runs before both frees
  ASSERT_ACL_OK(aclrtMemcpyAsync(dev, kBytes, pinned, kBytes, ACL_MEMCPY_HOST_TO_DEVICE, stream));
  ASSERT_ACL_OK(aclrtMemcpyAsync(result.data(), kBytes, dev, kBytes, ACL_MEMCPY_DEVICE_TO_HOST, stream));
  EXPECT_ACL_OK(aclrtFreeHost(pinned));
  EXPECT_ACL_OK(aclrtFree(dev));
  // The handles are gone at once.
  EXPECT_EQ(aclrtFree(dev), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtMemset(dev, kBytes, 0, kBytes), ACL_ERROR_INVALID_PARAM);
  gate.Open();
  ASSERT_ACL_OK(aclrtSynchronizeStream(stream));
  EXPECT_EQ(result, std::vector<int32_t>(kCount, 42));
}

TEST_F(MemoryTest, CopyPastTheEndOfAMallocHostBlockIsInvalidParam) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  void* pinned = nullptr;
  ASSERT_ACL_OK(aclrtMallocHost(&pinned, 64));
  void* dev = nullptr;
  ASSERT_ACL_OK(aclrtMalloc(&dev, 1024, ACL_MEM_MALLOC_HUGE_FIRST));
  EXPECT_EQ(aclrtMemcpy(pinned, 1024, dev, 1024, ACL_MEMCPY_DEVICE_TO_HOST), ACL_ERROR_INVALID_PARAM);
  EXPECT_NE(std::string(aclGetRecentErrMsg()).find("runs past the end of its aclrtMallocHost block"), std::string::npos)
      << aclGetRecentErrMsg();
  EXPECT_EQ(aclrtMemcpy(dev, 1024, static_cast<char*>(pinned) + 32, 64, ACL_MEMCPY_HOST_TO_DEVICE),
            ACL_ERROR_INVALID_PARAM);
  EXPECT_ACL_OK(aclrtMemcpy(dev, 1024, pinned, 64, ACL_MEMCPY_HOST_TO_DEVICE));
  EXPECT_ACL_OK(aclrtFreeHost(pinned));
  EXPECT_ACL_OK(aclrtFree(dev));
}

// A V2 barrier reads its timeOut and elasticInfo tensors when it runs, which may be after
// the program freed them: the barrier holds their blocks (ASan: heap-use-after-free without).
TEST_F(MemoryTest, BarrierTensorsFreedAfterTheLaunchStayReadable) {
  std::vector<HcclComm> comms = MakeGroup(FirstDevices(2));
  ASSERT_EQ(comms.size(), 2u);
  const std::string group = CommName(comms[0]);
  ASSERT_ACL_OK(aclrtSetDevice(0));
  aclrtStream stream0 = NewStream();
  DeviceTensor x0 = MakeInt32Tensor({0});
  DeviceTensor timeout = MakeInt32Tensor({60 * 1000 * 1000});        // 60 s, never reached
  DeviceTensor elastic = MakeInt32Tensor({1, 2, 0, 0, 0, 1, 0, 1});  // both ranks, elastically
  Gate& gate = Block(stream0);  // the barrier reads its tensors only after the frees
  ASSERT_EQ(EnqueueBarrierV2(x0.tensor, timeout.tensor, elastic.tensor, group, 2, stream0), 0) << aclGetRecentErrMsg();
  EXPECT_ACL_OK(aclrtFree(timeout.data));
  EXPECT_ACL_OK(aclrtFree(elastic.data));
  aclDestroyTensor(timeout.tensor);
  aclDestroyTensor(elastic.tensor);
  gate.Open();
  ASSERT_ACL_OK(aclrtSetDevice(1));
  aclrtStream stream1 = NewStream();
  DeviceTensor x1 = MakeInt32Tensor({0});
  ASSERT_EQ(EnqueueBarrierV2(x1.tensor, nullptr, nullptr, CommName(comms[1]), 2, stream1), 0) << aclGetRecentErrMsg();
  EXPECT_ACL_OK(aclrtSynchronizeStream(stream1));
  EXPECT_ACL_OK(aclrtSynchronizeStream(stream0));
}

TEST_F(MemoryTest, MemcpyAsyncChecksLikeMemcpy) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  void* dev = nullptr;
  ASSERT_ACL_OK(aclrtMalloc(&dev, 64, ACL_MEM_MALLOC_HUGE_FIRST));
  std::array<char, 128> host{};
  EXPECT_EQ(aclrtMemcpyAsync(dev, 32, host.data(), 64, ACL_MEMCPY_HOST_TO_DEVICE, nullptr), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtMemcpyAsync(dev, 128, host.data(), 128, ACL_MEMCPY_HOST_TO_DEVICE, nullptr), ACL_ERROR_INVALID_PARAM);
  host.fill('x');
  EXPECT_ACL_OK(aclrtMemcpyAsync(dev, 64, host.data(), 64, ACL_MEMCPY_HOST_TO_DEVICE, nullptr));
  EXPECT_ACL_OK(aclrtSynchronizeStream(nullptr));
  EXPECT_EQ(std::memcmp(dev, host.data(), 64), 0);
  EXPECT_ACL_OK(aclrtFree(dev));
}

TEST_F(MemoryTest, MemsetFillsDeviceMemory) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  void* dev = nullptr;
  ASSERT_ACL_OK(aclrtMalloc(&dev, 64, ACL_MEM_MALLOC_HUGE_FIRST));
  ASSERT_ACL_OK(aclrtMemset(dev, 64, 0xab, 64));
  ASSERT_ACL_OK(aclrtMemset(dev, 64, 0x11, 16));
  std::array<unsigned char, 64> back{};
  ASSERT_ACL_OK(aclrtMemcpy(back.data(), back.size(), dev, 64, ACL_MEMCPY_DEVICE_TO_HOST));
  for (size_t i = 0; i < back.size(); ++i) EXPECT_EQ(back[i], i < 16 ? 0x11 : 0xab) << "byte " << i;
  EXPECT_EQ(aclrtMemset(dev, 16, 0, 17), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtMemset(dev, 128, 0, 65), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtMemset(nullptr, 16, 0, 16), ACL_ERROR_INVALID_PARAM);
  std::array<char, 16> host{};
  EXPECT_EQ(aclrtMemset(host.data(), 16, 0, 16), ACL_ERROR_INVALID_PARAM);
  EXPECT_ACL_OK(aclrtFree(dev));
}

// CANN's aclrtMemset tells host from device memory by the address: memory from
// aclrtMallocHost is filled too (Ascend's memcpy samples memset their host buffers).
TEST_F(MemoryTest, MemsetFillsHostMemoryFromMallocHost) {
  void* host = nullptr;
  ASSERT_ACL_OK(aclrtMallocHost(&host, 64));
  ASSERT_ACL_OK(aclrtMemset(host, 64, 0x7e, 64));
  ASSERT_ACL_OK(aclrtMemset(static_cast<char*>(host) + 32, 32, 0x01, 8));
  const auto* bytes = static_cast<const unsigned char*>(host);
  for (size_t i = 0; i < 64; ++i) EXPECT_EQ(bytes[i], i >= 32 && i < 40 ? 0x01 : 0x7e) << "byte " << i;
  EXPECT_EQ(aclrtMemset(host, 128, 0, 65), ACL_ERROR_INVALID_PARAM);  // past the block
  EXPECT_ACL_OK(aclrtFreeHost(host));
  EXPECT_EQ(aclrtMemset(host, 64, 0, 64), ACL_ERROR_INVALID_PARAM);  // freed
}

TEST_F(MemoryTest, MallocHostAndFreeHost) {
  void* host = nullptr;
  ASSERT_ACL_OK(aclrtMallocHost(&host, 128));  // needs no device
  ASSERT_NE(host, nullptr);
  std::memset(host, 0x5a, 128);
  EXPECT_EQ(static_cast<unsigned char*>(host)[127], 0x5a);
  EXPECT_EQ(aclrtMallocHost(&host, 0), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtMallocHost(nullptr, 16), ACL_ERROR_INVALID_PARAM);
  EXPECT_ACL_OK(aclrtFreeHost(host));
  EXPECT_EQ(aclrtFreeHost(host), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtFreeHost(nullptr), ACL_ERROR_INVALID_PARAM);
}

TEST_F(MemoryTest, HostMemoryCopiesToAndFromDevice) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  void* host = nullptr;
  void* dev = nullptr;
  ASSERT_ACL_OK(aclrtMallocHost(&host, 32));
  ASSERT_ACL_OK(aclrtMalloc(&dev, 32, ACL_MEM_MALLOC_HUGE_FIRST));
  std::memset(host, 0x3c, 32);
  ASSERT_ACL_OK(aclrtMemcpy(dev, 32, host, 32, ACL_MEMCPY_HOST_TO_DEVICE));
  std::memset(host, 0, 32);
  ASSERT_ACL_OK(aclrtMemcpy(host, 32, dev, 32, ACL_MEMCPY_DEVICE_TO_HOST));
  EXPECT_EQ(static_cast<unsigned char*>(host)[0], 0x3c);
  EXPECT_EQ(static_cast<unsigned char*>(host)[31], 0x3c);
  EXPECT_ACL_OK(aclrtFree(dev));
  EXPECT_ACL_OK(aclrtFreeHost(host));
}

TEST_F(MemoryTest, FreeAndFreeHostDoNotCrossKinds) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  void* host = nullptr;
  void* dev = nullptr;
  ASSERT_ACL_OK(aclrtMallocHost(&host, 32));
  ASSERT_ACL_OK(aclrtMalloc(&dev, 32, ACL_MEM_MALLOC_HUGE_FIRST));
  EXPECT_EQ(aclrtFree(host), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtFreeHost(dev), ACL_ERROR_INVALID_PARAM);
  // Both are still live and free correctly.
  EXPECT_ACL_OK(aclrtFreeHost(host));
  EXPECT_ACL_OK(aclrtFree(dev));
}

}  // namespace
}  // namespace distbarrier::testing
