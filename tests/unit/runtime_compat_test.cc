// The runtime calls public CANN programs use beyond the core slice (issue 17), through the
// public C API: forced reset and destroy, run mode, memory info, failure mode, memset on a
// stream, callbacks with report threads, last errors, version, fp16, default stream, peers,
// and aclInit's configuration file.
#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "acl/acl.h"
#include "distbarrier/distbarrier.h"
#include "unit/runtime_fixture.h"

namespace distbarrier::testing {
namespace {

using CompatTest = StreamTest;

uint64_t ThisThread() {
  return static_cast<uint64_t>(pthread_self());
}

// --- devices and streams ---

TEST_F(CompatTest, ResetDeviceForceResetsHoweverOftenTheDeviceWasSet) {
  ASSERT_ACL_OK(aclrtSetDevice(1));
  ASSERT_ACL_OK(aclrtSetDevice(1));
  ASSERT_ACL_OK(aclrtResetDevice(1));
  int32_t device = -1;
  ASSERT_ACL_OK(aclrtGetDevice(&device));  // one plain reset leaves one user
  EXPECT_EQ(device, 1);
  ASSERT_ACL_OK(aclrtSetDevice(1));
  ASSERT_ACL_OK(aclrtResetDeviceForce(1));
  EXPECT_NE(aclrtGetDevice(&device), ACL_SUCCESS);  // its default context went with it
  EXPECT_EQ(aclrtResetDeviceForce(-1), ACL_ERROR_RT_INVALID_DEVICEID);
  EXPECT_EQ(aclrtResetDeviceForce(1 << 20), ACL_ERROR_RT_INVALID_DEVICEID);
}

TEST_F(CompatTest, RunModeIsHostSoProgramsCopyThroughMemcpy) {
  aclrtRunMode mode = ACL_DEVICE;
  ASSERT_ACL_OK(aclrtGetRunMode(&mode));
  EXPECT_EQ(mode, ACL_HOST);
  EXPECT_EQ(aclrtGetRunMode(nullptr), ACL_ERROR_INVALID_PARAM);
}

TEST_F(CompatTest, DestroyStreamForceDropsPendingTasks) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  aclrtStream stream = NewStream();
  Gate& gate = Block(stream);
  std::atomic<bool>& ran = NewFlag();
  ASSERT_ACL_OK(aclrtLaunchHostFunc(stream, SetFlag, &ran));
  aclrtEvent after = nullptr;
  ASSERT_ACL_OK(aclrtCreateEvent(&after));
  ASSERT_ACL_OK(aclrtRecordEvent(after, stream));
  ASSERT_ACL_OK(aclrtDestroyStreamForce(stream));
  // A running host function cannot be interrupted: once it returns (or if it had not started),
  // the tasks behind it are dropped, and the event recorded after them reports the abort.
  gate.Open();
  EXPECT_EQ(aclrtSynchronizeEvent(after), ACL_ERROR_RT_STREAM_ABORT);
  EXPECT_FALSE(ran.load());
  EXPECT_EQ(aclrtDestroyStreamForce(stream), ACL_ERROR_RT_INVALID_HANDLE);
  EXPECT_EQ(aclrtDestroyStreamForce(nullptr), ACL_ERROR_INVALID_PARAM);
  EXPECT_ACL_OK(aclrtDestroyEvent(after));
}

TEST_F(CompatTest, MemInfoReportsHostMemory) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  size_t free = 0;
  size_t total = 0;
  ASSERT_ACL_OK(aclrtGetMemInfo(ACL_HBM_MEM, &free, &total));
  EXPECT_GT(total, 0u);
  EXPECT_LE(free, total);
  ASSERT_ACL_OK(aclrtGetMemInfo(ACL_DDR_MEM, &free, &total));
  EXPECT_EQ(aclrtGetMemInfo(ACL_HBM_MEM, nullptr, &total), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtGetMemInfo(ACL_HBM_MEM, &free, nullptr), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtGetMemInfo(static_cast<aclrtMemAttr>(10), &free, &total), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtGetMemInfo(static_cast<aclrtMemAttr>(-1), &free, &total), ACL_ERROR_INVALID_PARAM);
}

TEST_F(CompatTest, StreamFailureModeAcceptsBothModes) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  aclrtStream stream = NewStream();
  EXPECT_ACL_OK(aclrtSetStreamFailureMode(stream, ACL_STOP_ON_FAILURE));
  EXPECT_ACL_OK(aclrtSetStreamFailureMode(stream, ACL_CONTINUE_ON_FAILURE));
  EXPECT_ACL_OK(aclrtSetStreamFailureMode(nullptr, ACL_STOP_ON_FAILURE));  // the default stream
  EXPECT_EQ(aclrtSetStreamFailureMode(stream, 2), ACL_ERROR_INVALID_PARAM);
  ASSERT_ACL_OK(aclrtDestroyStream(stream));
  EXPECT_EQ(aclrtSetStreamFailureMode(stream, ACL_STOP_ON_FAILURE), ACL_ERROR_RT_INVALID_HANDLE);
}

TEST_F(CompatTest, MemsetAsyncRunsInStreamOrder) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  aclrtStream stream = NewStream();
  void* device = nullptr;
  ASSERT_ACL_OK(aclrtMalloc(&device, 64, ACL_MEM_MALLOC_HUGE_FIRST));
  ASSERT_ACL_OK(aclrtMemset(device, 64, 0, 64));
  Gate& gate = Block(stream);
  ASSERT_ACL_OK(aclrtMemsetAsync(device, 64, 0x5a, 48, stream));
  std::vector<uint8_t> host(64, 1);
  ASSERT_ACL_OK(aclrtMemcpy(host.data(), 64, device, 64, ACL_MEMCPY_DEVICE_TO_HOST));
  EXPECT_EQ(host[0], 0);  // the stream has not reached the memset
  gate.Open();
  ASSERT_ACL_OK(aclrtSynchronizeStream(stream));
  ASSERT_ACL_OK(aclrtMemcpy(host.data(), 64, device, 64, ACL_MEMCPY_DEVICE_TO_HOST));
  EXPECT_EQ(host[0], 0x5a);
  EXPECT_EQ(host[47], 0x5a);
  EXPECT_EQ(host[48], 0);
  EXPECT_EQ(aclrtMemsetAsync(nullptr, 64, 0, 1, stream), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtMemsetAsync(device, 8, 0, 9, stream), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtMemsetAsync(device, 128, 0, 65, stream), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtMemsetAsync(host.data(), 64, 0, 64, stream), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtMemsetAsync(device, 64, 0, 64, reinterpret_cast<aclrtStream>(0x1234)), ACL_ERROR_RT_INVALID_HANDLE);
  ASSERT_ACL_OK(aclrtFree(device));
}

// As aclrtMemset: memory from aclrtMallocHost is set in stream order too.
TEST_F(CompatTest, MemsetAsyncFillsHostMemoryFromMallocHost) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  aclrtStream stream = NewStream();
  void* host = nullptr;
  ASSERT_ACL_OK(aclrtMallocHost(&host, 64));
  ASSERT_ACL_OK(aclrtMemset(host, 64, 0, 64));
  ASSERT_ACL_OK(aclrtMemsetAsync(host, 64, 0x33, 40, stream));
  ASSERT_ACL_OK(aclrtSynchronizeStream(stream));
  const auto* bytes = static_cast<const unsigned char*>(host);
  EXPECT_EQ(bytes[0], 0x33);
  EXPECT_EQ(bytes[39], 0x33);
  EXPECT_EQ(bytes[40], 0);
  EXPECT_EQ(aclrtMemsetAsync(host, 128, 0, 65, stream), ACL_ERROR_INVALID_PARAM);  // past the block
  ASSERT_ACL_OK(aclrtFreeHost(host));
}

// The memset holds its block: a free before the stream reached it leaves it alive (ASan
// reports a use after free otherwise).
TEST_F(CompatTest, MemsetAsyncKeepsItsBlockAliveAcrossFree) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  aclrtStream stream = NewStream();
  void* device = nullptr;
  ASSERT_ACL_OK(aclrtMalloc(&device, 1 << 16, ACL_MEM_MALLOC_HUGE_FIRST));
  Gate& gate = Block(stream);
  ASSERT_ACL_OK(aclrtMemsetAsync(device, 1 << 16, 3, 1 << 16, stream));
  ASSERT_ACL_OK(aclrtFree(device));
  gate.Open();
  EXPECT_ACL_OK(aclrtSynchronizeStream(stream));
}

TEST_F(CompatTest, CurrentDefaultStreamIsUsable) {
  aclrtStream stream = reinterpret_cast<aclrtStream>(0x1);
  ASSERT_ACL_OK(aclrtSetDevice(0));
  ASSERT_ACL_OK(aclrtCtxGetCurrentDefaultStream(&stream));
  std::atomic<bool>& ran = NewFlag();
  ASSERT_ACL_OK(aclrtLaunchHostFunc(stream, SetFlag, &ran));
  ASSERT_ACL_OK(aclrtSynchronizeStream(stream));
  EXPECT_TRUE(ran.load());
  EXPECT_EQ(aclrtCtxGetCurrentDefaultStream(nullptr), ACL_ERROR_INVALID_PARAM);
}

// --- callbacks ---

struct CallbackRecord {
  std::atomic<bool>* later_task_ran = nullptr;
  bool saw_later_task = true;
  uint64_t thread = 0;
  int calls = 0;
};

void RecordCallback(void* arg) {
  auto* record = static_cast<CallbackRecord*>(arg);
  record->thread = ThisThread();
  record->calls++;
  if (record->later_task_ran != nullptr) record->saw_later_task = record->later_task_ran->load();
}

TEST_F(CompatTest, CallbackRunsOnTheSubscribedThreadAndBlocksTheStream) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  aclrtStream stream = NewStream();
  ASSERT_ACL_OK(aclrtSubscribeReport(ThisThread(), stream));
  std::atomic<bool>& later = NewFlag();
  CallbackRecord record{.later_task_ran = &later};
  ASSERT_ACL_OK(aclrtLaunchCallback(RecordCallback, &record, ACL_CALLBACK_BLOCK, stream));
  ASSERT_ACL_OK(aclrtLaunchHostFunc(stream, SetFlag, &later));
  ASSERT_ACL_OK(aclrtProcessReport(-1));
  EXPECT_EQ(record.calls, 1);
  EXPECT_EQ(record.thread, ThisThread());
  EXPECT_FALSE(record.saw_later_task);  // the stream waited for the callback
  ASSERT_ACL_OK(aclrtSynchronizeStream(stream));
  EXPECT_TRUE(later.load());

  CallbackRecord no_block;
  ASSERT_ACL_OK(aclrtLaunchCallback(RecordCallback, &no_block, ACL_CALLBACK_NO_BLOCK, stream));
  ASSERT_ACL_OK(aclrtSynchronizeStream(stream));  // does not wait for the callback
  EXPECT_EQ(no_block.calls, 0);
  ASSERT_ACL_OK(aclrtProcessReport(-1));
  EXPECT_EQ(no_block.calls, 1);
  EXPECT_EQ(aclrtProcessReport(0), ACL_ERROR_RT_REPORT_TIMEOUT);
  ASSERT_ACL_OK(aclrtUnSubscribeReport(ThisThread(), stream));
  EXPECT_EQ(aclrtProcessReport(0), ACL_ERROR_RT_THREAD_SUBSCRIBE);
}

TEST_F(CompatTest, CallbackArgumentsAndSubscriptionsAreChecked) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  aclrtStream stream = NewStream();
  CallbackRecord record;
  EXPECT_EQ(aclrtLaunchCallback(RecordCallback, &record, ACL_CALLBACK_BLOCK, stream), ACL_ERROR_RT_STREAM_NO_CB_REG);
  EXPECT_EQ(aclrtProcessReport(0), ACL_ERROR_RT_THREAD_SUBSCRIBE);
  ASSERT_ACL_OK(aclrtSubscribeReport(ThisThread(), stream));
  EXPECT_EQ(aclrtSubscribeReport(ThisThread() + 1, stream), ACL_ERROR_RT_STREAM_SUBSCRIBE);
  EXPECT_EQ(aclrtLaunchCallback(nullptr, &record, ACL_CALLBACK_BLOCK, stream), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtLaunchCallback(RecordCallback, &record, static_cast<aclrtCallbackBlockType>(2), stream),
            ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtProcessReport(-2), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtUnSubscribeReport(ThisThread() + 1, stream), ACL_ERROR_RT_STREAM_NO_CB_REG);
  EXPECT_EQ(aclrtSubscribeReport(ThisThread(), reinterpret_cast<aclrtStream>(0x1234)), ACL_ERROR_RT_INVALID_HANDLE);
  ASSERT_ACL_OK(aclrtUnSubscribeReport(ThisThread(), stream));
}

// A blocking callback whose thread unsubscribes before running it fails its stream instead
// of holding it forever.
TEST_F(CompatTest, UnsubscribingReleasesABlockedStream) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  aclrtStream stream = NewStream();
  ASSERT_ACL_OK(aclrtSubscribeReport(ThisThread(), stream));
  CallbackRecord record;
  ASSERT_ACL_OK(aclrtLaunchCallback(RecordCallback, &record, ACL_CALLBACK_BLOCK, stream));
  ASSERT_ACL_OK(aclrtUnSubscribeReport(ThisThread(), stream));
  EXPECT_NE(aclrtSynchronizeStream(stream), ACL_SUCCESS);
  EXPECT_EQ(record.calls, 0);
}

// --- last errors, version, fp16, peers ---

TEST_F(CompatTest, LastErrorIsPerThreadAndGetClearsIt) {
  (void)aclrtGetLastError(ACL_RT_THREAD_LEVEL);  // start clean
  EXPECT_EQ(aclrtPeekAtLastError(ACL_RT_THREAD_LEVEL), ACL_SUCCESS);
  EXPECT_EQ(aclrtGetRunMode(nullptr), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtPeekAtLastError(ACL_RT_THREAD_LEVEL), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtPeekAtLastError(ACL_RT_THREAD_LEVEL), ACL_ERROR_INVALID_PARAM);
  int other_thread = -1;
  std::thread([&] { other_thread = aclrtPeekAtLastError(ACL_RT_THREAD_LEVEL); }).join();
  EXPECT_EQ(other_thread, ACL_SUCCESS);
  EXPECT_EQ(aclrtGetLastError(ACL_RT_THREAD_LEVEL), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtGetLastError(ACL_RT_THREAD_LEVEL), ACL_SUCCESS);
  EXPECT_EQ(aclrtResetDevice(-1), ACL_ERROR_RT_INVALID_DEVICEID);
  EXPECT_EQ(aclrtGetLastError(ACL_RT_THREAD_LEVEL), ACL_ERROR_RT_INVALID_DEVICEID);
  EXPECT_EQ(aclrtGetLastError(static_cast<aclrtLastErrLevel>(1)), ACL_ERROR_INVALID_PARAM);
}

TEST_F(CompatTest, VersionStringIsTheLibraryVersion) {
  char package[] = "runtime";
  char version[ACL_PKG_VERSION_MAX_SIZE] = {};
  ASSERT_ACL_OK(aclsysGetVersionStr(package, version));
  EXPECT_STREQ(version, distbarrierVersion());
  EXPECT_EQ(aclsysGetVersionStr(nullptr, version), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclsysGetVersionStr(package, nullptr), ACL_ERROR_INVALID_PARAM);
  char empty[] = "";
  EXPECT_EQ(aclsysGetVersionStr(empty, version), ACL_ERROR_INVALID_PARAM);
}

TEST_F(CompatTest, VersionNumberIsWeightedAsCanns) {
  char package[] = "runtime";
  int32_t number = -1;
  ASSERT_ACL_OK(aclsysGetVersionNum(package, &number));
  EXPECT_EQ(number, DISTBARRIER_VERSION_MAJOR * 10000000 + DISTBARRIER_VERSION_MINOR * 100000 +
                        DISTBARRIER_VERSION_PATCH * 1000);
  EXPECT_EQ(aclsysGetVersionNum(nullptr, &number), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclsysGetVersionNum(package, nullptr), ACL_ERROR_INVALID_PARAM);
  char empty[] = "";
  EXPECT_EQ(aclsysGetVersionNum(empty, &number), ACL_ERROR_INVALID_PARAM);
}

// The runtime's sample scripts run a helper that prints aclrtGetSocName() before any aclInit
// and accept only [A-Za-z0-9_-]+.
TEST_F(CompatTest, SocNameIsAnAscendNameWithoutInit) {
  const char* name = aclrtGetSocName();
  ASSERT_NE(name, nullptr);
  EXPECT_STREQ(name, "Ascend910_9391");
}

TEST_F(CompatTest, EveryValidDeviceIsNormal) {
  auto status = static_cast<aclrtDeviceStatus>(-1);
  ASSERT_ACL_OK(aclrtQueryDeviceStatus(0, &status));
  EXPECT_EQ(status, ACL_RT_DEVICE_STATUS_NORMAL);
  EXPECT_EQ(aclrtQueryDeviceStatus(0, nullptr), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtQueryDeviceStatus(-1, &status), ACL_ERROR_RT_INVALID_DEVICEID);
  EXPECT_EQ(aclrtQueryDeviceStatus(1 << 20, &status), ACL_ERROR_RT_INVALID_DEVICEID);
}

TEST_F(CompatTest, Float16ConversionsAreIeeeHalf) {
  EXPECT_EQ(aclFloatToFloat16(1.0f), 0x3C00);
  EXPECT_EQ(aclFloatToFloat16(-2.0f), 0xC000);
  EXPECT_EQ(aclFloatToFloat16(65504.0f), 0x7BFF);
  EXPECT_EQ(aclFloat16ToFloat(0x3C00), 1.0f);
  EXPECT_EQ(aclFloat16ToFloat(0x3555), aclFloat16ToFloat(aclFloatToFloat16(aclFloat16ToFloat(0x3555))));
  EXPECT_EQ(aclFloat16ToFloat(0x0001), 5.9604644775390625e-08f);  // the smallest subnormal
}

TEST_F(CompatTest, AnyTwoDistinctDevicesArePeers) {
  int32_t can = -1;
  ASSERT_ACL_OK(aclrtDeviceCanAccessPeer(&can, 0, 1));
  EXPECT_EQ(can, 1);
  ASSERT_ACL_OK(aclrtDeviceCanAccessPeer(&can, 3, 3));
  EXPECT_EQ(can, 0);
  EXPECT_EQ(aclrtDeviceCanAccessPeer(nullptr, 0, 1), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtDeviceCanAccessPeer(&can, -1, 1), ACL_ERROR_RT_INVALID_DEVICEID);
  EXPECT_EQ(aclrtDeviceCanAccessPeer(&can, 0, 1 << 20), ACL_ERROR_RT_INVALID_DEVICEID);
  ASSERT_ACL_OK(aclrtSetDevice(0));
  EXPECT_ACL_OK(aclrtDeviceEnablePeerAccess(1, 0));
  EXPECT_ACL_OK(aclrtDeviceDisablePeerAccess(1));
  EXPECT_EQ(aclrtDeviceEnablePeerAccess(1, 1), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtDeviceEnablePeerAccess(0, 0), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtDeviceEnablePeerAccess(-1, 0), ACL_ERROR_RT_INVALID_DEVICEID);
  EXPECT_EQ(aclrtDeviceDisablePeerAccess(1 << 20), ACL_ERROR_RT_INVALID_DEVICEID);
}

// --- aclInit ---

std::string WriteFile(const std::string& name, const std::string& text) {
  std::string path = ::testing::TempDir() + name;
  std::ofstream(path) << text;
  return path;
}

TEST_F(CompatTest, InitReadsItsConfigurationFile) {
  EXPECT_ACL_OK(aclInit(nullptr));
  EXPECT_EQ(aclInit(nullptr), ACL_ERROR_REPEAT_INITIALIZE);
  ASSERT_ACL_OK(aclFinalize());
  EXPECT_ACL_OK(aclInit(""));  // again after aclFinalize
  ASSERT_ACL_OK(aclFinalize());
  EXPECT_EQ(aclInit("/nonexistent/acl.json"), ACL_ERROR_INVALID_FILE);
  EXPECT_EQ(aclInit(WriteFile("distbarrier_bad_acl.json", "{\"dump\": ").c_str()), ACL_ERROR_PARSE_FILE);
  EXPECT_EQ(aclInit(WriteFile("distbarrier_list_acl.json", "[1, 2]").c_str()), ACL_ERROR_PARSE_FILE);
  EXPECT_ACL_OK(aclInit(WriteFile("distbarrier_acl.json", "{\"dump\": {\"dump_list\": []}}").c_str()));
  EXPECT_EQ(aclInit(nullptr), ACL_ERROR_REPEAT_INITIALIZE);
}

// A forked child starts its runtime afresh: its own aclInit is not a repeat of its parent's.
TEST_F(CompatTest, ForkedChildMayInitAgain) {
  ASSERT_ACL_OK(aclInit(nullptr));
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) _exit(aclInit(nullptr) == ACL_SUCCESS ? 0 : 1);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
}

}  // namespace
}  // namespace distbarrier::testing
