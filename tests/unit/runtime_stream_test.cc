// The ACL runtime slice through its public C API: streams (order, independence, handle
// misuse, a failed task, aclrtSynchronizeDevice).
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "acl/acl.h"
#include "runtime/stream.h"
#include "unit/runtime_fixture.h"

namespace distbarrier::testing {
namespace {

// ---------------------------------------------------------------------------------------
// Streams

struct OrderLog {
  std::mutex mutex;
  std::vector<int> seen;
};

struct OrderItem {
  OrderLog* log;
  int value;
};

void Append(void* arg) {
  auto* item = static_cast<OrderItem*>(arg);
  std::lock_guard lock(item->log->mutex);
  item->log->seen.push_back(item->value);
}

TEST_F(StreamTest, HostFunctionsRunInOrder) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  aclrtStream stream = NewStream();
  constexpr int kTasks = 500;
  OrderLog log;
  std::vector<OrderItem> items;
  items.reserve(kTasks);
  std::vector<int> expected;
  for (int i = 0; i < kTasks; ++i) {
    items.push_back({&log, i});
    expected.push_back(i);
  }
  for (auto& item : items) ASSERT_ACL_OK(aclrtLaunchHostFunc(stream, Append, &item));
  ASSERT_ACL_OK(aclrtSynchronizeStream(stream));
  std::lock_guard lock(log.mutex);
  EXPECT_EQ(log.seen, expected);
  EXPECT_ACL_OK(aclrtDestroyStream(stream));
}

TEST_F(StreamTest, HostFunctionsRunInOrderBehindABlockedTask) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  aclrtStream stream = NewStream();
  Gate& gate = Block(stream);
  constexpr int kTasks = 100;
  OrderLog log;
  std::vector<OrderItem> items;
  items.reserve(kTasks);
  for (int i = 0; i < kTasks; ++i) items.push_back({&log, i});
  for (auto& item : items) ASSERT_ACL_OK(aclrtLaunchHostFunc(stream, Append, &item));
  {
    std::lock_guard lock(log.mutex);
    EXPECT_TRUE(log.seen.empty()) << "tasks ran ahead of the blocked one";
  }
  gate.Open();
  ASSERT_ACL_OK(aclrtSynchronizeStream(stream));
  std::lock_guard lock(log.mutex);
  ASSERT_EQ(log.seen.size(), static_cast<size_t>(kTasks));
  for (int i = 0; i < kTasks; ++i) EXPECT_EQ(log.seen[i], i);
}

TEST_F(StreamTest, StreamsOfOneDeviceRunIndependently) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  aclrtStream a = nullptr;
  aclrtStream b = nullptr;
  ASSERT_ACL_OK(aclrtCreateStream(&a));
  ASSERT_ACL_OK(aclrtCreateStream(&b));
  std::atomic<bool>& a_done = NewFlag();
  Gate& gate = Block(a, &a_done);

  std::atomic<bool>& b_ran = NewFlag();
  ASSERT_ACL_OK(aclrtLaunchHostFunc(b, SetFlag, &b_ran));
  ASSERT_ACL_OK(aclrtSynchronizeStream(b));  // must not wait for A
  EXPECT_TRUE(b_ran.load());
  EXPECT_FALSE(a_done.load());

  aclrtStreamStatus status = ACL_STREAM_STATUS_RESERVED;
  ASSERT_ACL_OK(aclrtStreamQuery(a, &status));
  EXPECT_EQ(status, ACL_STREAM_STATUS_NOT_READY);
  ASSERT_ACL_OK(aclrtStreamQuery(b, &status));
  EXPECT_EQ(status, ACL_STREAM_STATUS_COMPLETE);

  gate.Open();
  ASSERT_ACL_OK(aclrtSynchronizeStream(a));
  EXPECT_TRUE(a_done.load());
  ASSERT_ACL_OK(aclrtStreamQuery(a, &status));
  EXPECT_EQ(status, ACL_STREAM_STATUS_COMPLETE);
}

TEST_F(StreamTest, StreamQueryOfNewStreamIsComplete) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  aclrtStream stream = NewStream();
  aclrtStreamStatus status = ACL_STREAM_STATUS_RESERVED;
  ASSERT_ACL_OK(aclrtStreamQuery(stream, &status));
  EXPECT_EQ(status, ACL_STREAM_STATUS_COMPLETE);
  EXPECT_EQ(aclrtStreamQuery(stream, nullptr), ACL_ERROR_INVALID_PARAM);
}

TEST_F(StreamTest, SynchronizeWithTimeoutOnBlockedStreamTimesOutAndStreamStaysUsable) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  aclrtStream stream = NewStream();
  std::atomic<bool>& done = NewFlag();
  Gate& gate = Block(stream, &done);
  EXPECT_EQ(aclrtSynchronizeStreamWithTimeout(stream, 10), ACL_ERROR_RT_STREAM_SYNC_TIMEOUT);
  EXPECT_NE(std::string(aclGetRecentErrMsg()), "");
  EXPECT_EQ(aclrtSynchronizeStreamWithTimeout(stream, 0), ACL_ERROR_RT_STREAM_SYNC_TIMEOUT);
  EXPECT_FALSE(done.load());

  gate.Open();
  EXPECT_ACL_OK(aclrtSynchronizeStreamWithTimeout(stream, -1));
  EXPECT_TRUE(done.load());
  // Still usable: new work runs and syncs cleanly.
  std::atomic<bool>& after = NewFlag();
  ASSERT_ACL_OK(aclrtLaunchHostFunc(stream, SetFlag, &after));
  EXPECT_ACL_OK(aclrtSynchronizeStream(stream));
  EXPECT_TRUE(after.load());
  EXPECT_ACL_OK(aclrtSynchronizeStreamWithTimeout(stream, 10));
}

TEST_F(StreamTest, SynchronizeWithTimeoutBelowMinusOneIsInvalidParam) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  aclrtStream stream = NewStream();
  EXPECT_EQ(aclrtSynchronizeStreamWithTimeout(stream, -2), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtSynchronizeStreamWithTimeout(stream, INT32_MIN), ACL_ERROR_INVALID_PARAM);
}

TEST_F(StreamTest, NullStreamIsTheDefaultStreamOfTheCurrentContext) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  std::atomic<bool>& ran = NewFlag();
  ASSERT_ACL_OK(aclrtLaunchHostFunc(nullptr, SetFlag, &ran));
  ASSERT_ACL_OK(aclrtSynchronizeStream(nullptr));
  EXPECT_TRUE(ran.load());
  aclrtStreamStatus status = ACL_STREAM_STATUS_RESERVED;
  ASSERT_ACL_OK(aclrtStreamQuery(nullptr, &status));
  EXPECT_EQ(status, ACL_STREAM_STATUS_COMPLETE);
}

TEST_F(StreamTest, NullStreamIsInOrder) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  std::atomic<bool>& first = NewFlag();
  Gate& gate = Block(nullptr, &first);
  aclrtStreamStatus status = ACL_STREAM_STATUS_RESERVED;
  ASSERT_ACL_OK(aclrtStreamQuery(nullptr, &status));
  EXPECT_EQ(status, ACL_STREAM_STATUS_NOT_READY);
  EXPECT_EQ(aclrtSynchronizeStreamWithTimeout(nullptr, 1), ACL_ERROR_RT_STREAM_SYNC_TIMEOUT);
  gate.Open();
  ASSERT_ACL_OK(aclrtSynchronizeStream(nullptr));
  EXPECT_TRUE(first.load());
}

TEST_F(StreamTest, NullStreamWithoutContextIsContextNull) {
  std::atomic<bool>& ran = NewFlag();
  EXPECT_EQ(aclrtLaunchHostFunc(nullptr, SetFlag, &ran), ACL_ERROR_RT_CONTEXT_NULL);
  EXPECT_EQ(aclrtSynchronizeStream(nullptr), ACL_ERROR_RT_CONTEXT_NULL);
  aclrtStream stream = nullptr;
  EXPECT_EQ(aclrtCreateStream(&stream), ACL_ERROR_RT_CONTEXT_NULL);
  EXPECT_FALSE(ran.load());
}

TEST_F(StreamTest, LaunchHostFuncNullFunctionIsInvalidParam) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  EXPECT_EQ(aclrtLaunchHostFunc(nullptr, nullptr, nullptr), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtCreateStream(nullptr), ACL_ERROR_INVALID_PARAM);
}

TEST_F(StreamTest, DestroyStreamWaitsForNothingAndQueuedWorkStillRuns) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  aclrtStream stream = NewStream();
  std::atomic<bool>& done = NewFlag();
  Gate& gate = Block(stream, &done);
  EXPECT_ACL_OK(aclrtDestroyStream(stream));  // returns while the stream is blocked
  EXPECT_FALSE(done.load());
  gate.Open();
  // The destroyed stream's worker finishes its queue; synchronizing the device must not
  // be disturbed by it.
  EXPECT_ACL_OK(aclrtSynchronizeDevice());
}

TEST_F(StreamTest, ManyStreamsOnOneDevice) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  constexpr int kStreams = 48;
  std::vector<aclrtStream> streams(kStreams, nullptr);
  for (auto& stream : streams) ASSERT_ACL_OK(aclrtCreateStream(&stream));
  std::vector<std::atomic<bool>*> flags;
  for (auto& stream : streams) {
    flags.push_back(&NewFlag());
    ASSERT_ACL_OK(aclrtLaunchHostFunc(stream, SetFlag, flags.back()));
  }
  for (auto& stream : streams) EXPECT_ACL_OK(aclrtSynchronizeStream(stream));
  for (auto* flag : flags) EXPECT_TRUE(flag->load());
  for (auto& stream : streams) EXPECT_ACL_OK(aclrtDestroyStream(stream));
}

// ---------------------------------------------------------------------------------------
// Handle misuse

TEST_F(StreamTest, DestroyStreamTwiceIsInvalidHandle) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  aclrtStream stream = NewStream();
  EXPECT_ACL_OK(aclrtDestroyStream(stream));
  EXPECT_EQ(aclrtDestroyStream(stream), ACL_ERROR_RT_INVALID_HANDLE);
  EXPECT_NE(std::string(aclGetRecentErrMsg()), "");
}

TEST_F(StreamTest, UsingADestroyedStreamIsInvalidHandle) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  aclrtStream stream = NewStream();
  ASSERT_ACL_OK(aclrtDestroyStream(stream));
  std::atomic<bool>& ran = NewFlag();
  EXPECT_EQ(aclrtLaunchHostFunc(stream, SetFlag, &ran), ACL_ERROR_RT_INVALID_HANDLE);
  EXPECT_EQ(aclrtSynchronizeStream(stream), ACL_ERROR_RT_INVALID_HANDLE);
  EXPECT_EQ(aclrtSynchronizeStreamWithTimeout(stream, 10), ACL_ERROR_RT_INVALID_HANDLE);
  aclrtStreamStatus status = ACL_STREAM_STATUS_RESERVED;
  EXPECT_EQ(aclrtStreamQuery(stream, &status), ACL_ERROR_RT_INVALID_HANDLE);
  aclrtEvent event = nullptr;
  ASSERT_ACL_OK(aclrtCreateEvent(&event));
  EXPECT_EQ(aclrtRecordEvent(event, stream), ACL_ERROR_RT_INVALID_HANDLE);
  EXPECT_EQ(aclrtStreamWaitEvent(stream, event), ACL_ERROR_RT_INVALID_HANDLE);
  void* dev = nullptr;
  ASSERT_ACL_OK(aclrtMalloc(&dev, 16, ACL_MEM_MALLOC_HUGE_FIRST));
  std::array<char, 16> host{};
  EXPECT_EQ(aclrtMemcpyAsync(dev, 16, host.data(), 16, ACL_MEMCPY_HOST_TO_DEVICE, stream), ACL_ERROR_RT_INVALID_HANDLE);
  ASSERT_ACL_OK(aclrtSynchronizeDevice());
  EXPECT_FALSE(ran.load());
}

TEST_F(StreamTest, GarbageStreamHandleIsInvalidHandle) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  auto garbage = reinterpret_cast<aclrtStream>(0x1234);
  std::atomic<bool>& ran = NewFlag();
  EXPECT_EQ(aclrtLaunchHostFunc(garbage, SetFlag, &ran), ACL_ERROR_RT_INVALID_HANDLE);
  EXPECT_EQ(aclrtSynchronizeStream(garbage), ACL_ERROR_RT_INVALID_HANDLE);
  EXPECT_EQ(aclrtDestroyStream(garbage), ACL_ERROR_RT_INVALID_HANDLE);
  aclrtStreamStatus status = ACL_STREAM_STATUS_RESERVED;
  EXPECT_EQ(aclrtStreamQuery(garbage, &status), ACL_ERROR_RT_INVALID_HANDLE);
  int local = 0;
  EXPECT_EQ(aclrtSynchronizeStream(static_cast<aclrtStream>(&local)), ACL_ERROR_RT_INVALID_HANDLE);
  EXPECT_FALSE(ran.load());
}

TEST_F(StreamTest, EventHandlePassedAsStreamIsInvalidHandle) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  aclrtEvent event = nullptr;
  ASSERT_ACL_OK(aclrtCreateEvent(&event));
  std::atomic<bool>& ran = NewFlag();
  EXPECT_EQ(aclrtLaunchHostFunc(static_cast<aclrtStream>(event), SetFlag, &ran), ACL_ERROR_RT_INVALID_HANDLE);
  EXPECT_EQ(aclrtSynchronizeStream(static_cast<aclrtStream>(event)), ACL_ERROR_RT_INVALID_HANDLE);
  EXPECT_EQ(aclrtDestroyStream(static_cast<aclrtStream>(event)), ACL_ERROR_RT_INVALID_HANDLE);
  // The event is untouched by the misuse.
  EXPECT_ACL_OK(aclrtDestroyEvent(event));
  EXPECT_FALSE(ran.load());
}

TEST_F(StreamTest, StreamHandlePassedAsEventIsInvalidHandle) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  aclrtStream stream = NewStream();
  aclrtEvent as_event = static_cast<aclrtEvent>(stream);
  EXPECT_EQ(aclrtRecordEvent(as_event, stream), ACL_ERROR_RT_INVALID_HANDLE);
  EXPECT_EQ(aclrtSynchronizeEvent(as_event), ACL_ERROR_RT_INVALID_HANDLE);
  EXPECT_EQ(aclrtDestroyEvent(as_event), ACL_ERROR_RT_INVALID_HANDLE);
  EXPECT_ACL_OK(aclrtSynchronizeStream(stream));
  EXPECT_ACL_OK(aclrtDestroyStream(stream));
}

// ---------------------------------------------------------------------------------------
// A failed task fails its stream

TEST_F(FailedStreamTest, FailedTaskDropsLaterTasksAndEverySyncReturnsTheError) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  std::vector<HcclComm> comms = MakeGroup(FirstDevices(2));
  ASSERT_EQ(comms.size(), 2u);
  const std::string group = CommName(comms[0]);
  aclrtStream stream = nullptr;
  aclrtStream other = nullptr;
  ASSERT_ACL_OK(aclrtCreateStream(&stream));
  ASSERT_ACL_OK(aclrtCreateStream(&other));
  DeviceTensor x = MakeInt32Tensor({0});
  DeviceTensor timeout = MakeInt32Tensor({1000});  // 1 ms, in microseconds
  ASSERT_NE(x.tensor, nullptr);
  ASSERT_NE(timeout.tensor, nullptr);

  // Rank 0 (device 0) arrives; rank 1 (device 1) never does.
  ASSERT_EQ(EnqueueBarrierV2(x.tensor, timeout.tensor, nullptr, group, 2, stream), 0) << aclGetRecentErrMsg();
  std::atomic<bool>& after = NewFlag();
  ASSERT_ACL_OK(aclrtLaunchHostFunc(stream, SetFlag, &after));
  EXPECT_EQ(aclrtSynchronizeStream(stream), ACL_ERROR_RT_VECTOR_CORE_TIMEOUT);
  EXPECT_NE(std::string(aclGetRecentErrMsg()).find("timed out"), std::string::npos) << aclGetRecentErrMsg();
  EXPECT_FALSE(after.load()) << "a task behind the failed one ran";

  // Still failed: later work is dropped and each sync reports the same error.
  std::atomic<bool>& later = NewFlag();
  EXPECT_ACL_OK(aclrtLaunchHostFunc(stream, SetFlag, &later));
  EXPECT_EQ(aclrtSynchronizeStream(stream), ACL_ERROR_RT_VECTOR_CORE_TIMEOUT);
  EXPECT_EQ(aclrtSynchronizeStreamWithTimeout(stream, -1), ACL_ERROR_RT_VECTOR_CORE_TIMEOUT);
  EXPECT_FALSE(after.load());
  EXPECT_FALSE(later.load());
  aclrtStreamStatus status = ACL_STREAM_STATUS_RESERVED;
  ASSERT_ACL_OK(aclrtStreamQuery(stream, &status));
  EXPECT_EQ(status, ACL_STREAM_STATUS_COMPLETE);

  // An event recorded on the failed stream reports the failure instead of hanging.
  aclrtEvent event = nullptr;
  ASSERT_ACL_OK(aclrtCreateEvent(&event));
  ASSERT_ACL_OK(aclrtRecordEvent(event, stream));
  EXPECT_EQ(aclrtSynchronizeEvent(event), ACL_ERROR_RT_VECTOR_CORE_TIMEOUT);

  // Another stream of the same device is unaffected.
  std::atomic<bool>& elsewhere = NewFlag();
  ASSERT_ACL_OK(aclrtLaunchHostFunc(other, SetFlag, &elsewhere));
  EXPECT_ACL_OK(aclrtSynchronizeStream(other));
  EXPECT_TRUE(elsewhere.load());

  // The device sync reports the failed stream.
  EXPECT_EQ(aclrtSynchronizeDevice(), ACL_ERROR_RT_VECTOR_CORE_TIMEOUT);

  // Destroying the failed stream clears it from the device.
  EXPECT_ACL_OK(aclrtDestroyStream(stream));
  EXPECT_ACL_OK(aclrtSynchronizeDevice());
  EXPECT_ACL_OK(aclrtDestroyStream(other));
}

TEST_F(FailedStreamTest, FailedStreamDoesNotDisturbOtherDevices) {
  std::vector<HcclComm> comms = MakeGroup(FirstDevices(2));
  ASSERT_EQ(comms.size(), 2u);
  const std::string group = CommName(comms[0]);
  ASSERT_ACL_OK(aclrtSetDevice(0));
  aclrtStream stream = NewStream();
  DeviceTensor x = MakeInt32Tensor({0});
  DeviceTensor timeout = MakeInt32Tensor({1000});
  ASSERT_EQ(EnqueueBarrierV2(x.tensor, timeout.tensor, nullptr, group, 2, stream), 0) << aclGetRecentErrMsg();
  EXPECT_EQ(aclrtSynchronizeStream(stream), ACL_ERROR_RT_VECTOR_CORE_TIMEOUT);

  ASSERT_ACL_OK(aclrtSetDevice(2));
  aclrtStream far = NewStream();
  std::atomic<bool>& ran = NewFlag();
  ASSERT_ACL_OK(aclrtLaunchHostFunc(far, SetFlag, &ran));
  EXPECT_ACL_OK(aclrtSynchronizeStream(far));
  EXPECT_TRUE(ran.load());
  EXPECT_ACL_OK(aclrtSynchronizeDevice());
}

// ---------------------------------------------------------------------------------------
// aclrtSynchronizeDevice

TEST_F(StreamTest, SynchronizeDeviceWaitsForAllStreamsOfTheCurrentDevice) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  aclrtStream a = nullptr;
  aclrtStream b = nullptr;
  ASSERT_ACL_OK(aclrtCreateStream(&a));
  ASSERT_ACL_OK(aclrtCreateStream(&b));
  std::atomic<bool>& a_done = NewFlag();
  std::atomic<bool>& b_done = NewFlag();
  std::atomic<bool>& default_done = NewFlag();
  Gate& gate_a = Block(a, &a_done);
  Gate& gate_b = Block(b, &b_done);
  Gate& gate_default = Block(nullptr, &default_done);

  // A stream of another device stays blocked throughout: the device-0 sync must not wait for it.
  ASSERT_ACL_OK(aclrtSetDevice(1));
  aclrtStream other_device = NewStream();
  std::atomic<bool>& other_done = NewFlag();
  Gate& gate_other = Block(other_device, &other_done);
  ASSERT_ACL_OK(aclrtSetDevice(0));

  aclError result = -1;
  bool all_done_at_return = false;
  std::thread syncer([&] {
    if (aclrtSetDevice(0) != ACL_SUCCESS) return;
    result = aclrtSynchronizeDevice();
    all_done_at_return = a_done.load() && b_done.load() && default_done.load();
  });
  gate_b.Open();
  gate_default.Open();
  gate_a.Open();
  syncer.join();
  EXPECT_EQ(result, ACL_SUCCESS);
  EXPECT_TRUE(all_done_at_return);
  EXPECT_FALSE(other_done.load());
  aclrtStreamStatus status = ACL_STREAM_STATUS_RESERVED;
  ASSERT_ACL_OK(aclrtStreamQuery(other_device, &status));
  EXPECT_EQ(status, ACL_STREAM_STATUS_NOT_READY);
  gate_other.Open();
  EXPECT_ACL_OK(aclrtSynchronizeStream(other_device));
  EXPECT_TRUE(other_done.load());
}

TEST_F(StreamTest, SynchronizeDeviceWithoutContextIsContextNull) {
  EXPECT_EQ(aclrtSynchronizeDevice(), ACL_ERROR_RT_CONTEXT_NULL);
}

// ---------------------------------------------------------------------------------------
// Synchronizing a stream from its own host function

// What a host function saw when it synchronized its own stream in each way.
struct SelfSync {
  aclrtStream stream = nullptr;
  int32_t device = 0;
  aclError plain = -1;
  aclError with_timeout = -1;
  aclError forever = -1;
  aclError device_sync = -1;
  std::string message;
};

void SynchronizeOwnStream(void* arg) {
  auto* sync = static_cast<SelfSync*>(arg);
  sync->plain = aclrtSynchronizeStream(sync->stream);
  sync->message = aclGetRecentErrMsg();
  sync->with_timeout = aclrtSynchronizeStreamWithTimeout(sync->stream, 10);
  sync->forever = aclrtSynchronizeStreamWithTimeout(sync->stream, -1);
  if (aclrtSetDevice(sync->device) == ACL_SUCCESS) {
    sync->device_sync = aclrtSynchronizeDevice();
    aclrtResetDevice(sync->device);
  }
}

// It waited for the very task that waited: a silent deadlock.
TEST_F(StreamTest, SynchronizingItsOwnStreamFromAHostFunctionIsAnError) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  SelfSync sync;
  sync.stream = NewStream();
  std::atomic<bool>& after = NewFlag();
  EXPECT_ACL_OK(aclrtLaunchHostFunc(sync.stream, SynchronizeOwnStream, &sync));
  EXPECT_ACL_OK(aclrtLaunchHostFunc(sync.stream, SetFlag, &after));
  EXPECT_ACL_OK(aclrtSynchronizeStream(sync.stream));  // the host function ran: `sync` may go now
  EXPECT_EQ(sync.plain, ACL_ERROR_RT_PARAM_INVALID);
  EXPECT_NE(sync.message.find("would wait for itself"), std::string::npos) << sync.message;
  EXPECT_EQ(sync.with_timeout, ACL_ERROR_RT_PARAM_INVALID);
  EXPECT_EQ(sync.forever, ACL_ERROR_RT_PARAM_INVALID);
  EXPECT_EQ(sync.device_sync, ACL_ERROR_RT_PARAM_INVALID);
  EXPECT_TRUE(after.load());
}

// ---------------------------------------------------------------------------------------
// A worker thread that cannot start

// What std::thread throws when no thread can be made (RLIMIT_NPROC, EAGAIN).
std::thread RefuseThread(std::function<void()> /*body*/) {
  throw std::system_error(EAGAIN, std::generic_category(), "Resource temporarily unavailable");
}

struct RefuseThreads {
  RefuseThreads() { runtime::Stream::SetThreadStarterForTesting(RefuseThread); }
  ~RefuseThreads() { runtime::Stream::SetThreadStarterForTesting(nullptr); }
};

// std::system_error escaped the C API and terminated the program.
TEST_F(StreamTest, AWorkerThatCannotStartIsAnErrorCodeAndNothingIsQueued) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  std::vector<HcclComm> comms = MakeGroup(FirstDevices(2));
  ASSERT_EQ(comms.size(), 2u);
  aclrtStream stream = NewStream();
  aclrtEvent event = nullptr;
  ASSERT_ACL_OK(aclrtCreateEvent(&event));
  std::atomic<bool>& ran = NewFlag();
  DeviceTensor x_ref = MakeInt32Tensor({0});
  {
    RefuseThreads refuse;
    EXPECT_EQ(aclrtLaunchHostFunc(stream, SetFlag, &ran), ACL_ERROR_RT_INTERNAL_ERROR);
    const std::string message = aclGetRecentErrMsg();
    EXPECT_NE(message.find("aclrtLaunchHostFunc"), std::string::npos) << message;
    EXPECT_NE(message.find("Resource temporarily unavailable"), std::string::npos) << message;
    EXPECT_EQ(aclrtRecordEvent(event, stream), ACL_ERROR_RT_INTERNAL_ERROR);
    EXPECT_EQ(HcclBarrier(comms[0], stream), HCCL_E_SYSCALL);
    EXPECT_EQ(EnqueueBarrier(x_ref.tensor, CommName(comms[0]), 2, stream), ACLNN_ERR_RUNTIME_ERROR);
  }
  // Nothing was left queued: the stream syncs at once, the failed record does not hang its
  // waiters, and the stream works once threads can be made again.
  EXPECT_ACL_OK(aclrtSynchronizeStream(stream));
  EXPECT_EQ(aclrtSynchronizeEvent(event), ACL_ERROR_RT_INTERNAL_ERROR);
  EXPECT_ACL_OK(aclrtLaunchHostFunc(stream, SetFlag, &ran));
  EXPECT_ACL_OK(aclrtSynchronizeStream(stream));
  EXPECT_TRUE(ran.load());
}

}  // namespace
}  // namespace distbarrier::testing
