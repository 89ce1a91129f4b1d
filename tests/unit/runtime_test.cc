// The ACL runtime slice through its public C API: devices, contexts, streams, events, memory,
// failed streams and aclFinalize. Streams are blocked with host functions that wait on a gate
// the test opens, never with sleeps, and nothing asserts on timing.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <future>
#include <list>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "acl/acl.h"
#include "test_support.h"

namespace distbarrier::testing {
namespace {

// A gate a host function waits on until the test opens it.
class Gate {
 public:
  Gate() : future_(promise_.get_future().share()) {}
  Gate(const Gate&) = delete;
  Gate& operator=(const Gate&) = delete;

  void Open() {
    std::lock_guard lock(mutex_);
    if (!opened_) {
      opened_ = true;
      promise_.set_value();
    }
  }
  void Wait() const { future_.wait(); }

 private:
  std::mutex mutex_;
  bool opened_ = false;
  std::promise<void> promise_;
  std::shared_future<void> future_;
};

// What a blocking host function gets: wait on `gate`, then set `done` (when given).
struct Blocker {
  Gate* gate = nullptr;
  std::atomic<bool>* done = nullptr;
  Gate* started = nullptr;  // opened by the host function as it starts (when given)
};

void WaitOnGate(void* arg) {
  auto* blocker = static_cast<Blocker*>(arg);
  if (blocker->started != nullptr) blocker->started->Open();
  blocker->gate->Wait();
  if (blocker->done != nullptr) blocker->done->store(true);
}

void SetFlag(void* arg) { static_cast<std::atomic<bool>*>(arg)->store(true); }

// Everything a host function may touch lives in the fixture, so it outlives the streams:
// TearDown opens every gate before aclFinalize joins the stream workers, even when an
// assertion ended the test early.
class StreamTest : public RuntimeTest {
 protected:
  void TearDown() override {
    for (Gate& gate : gates_) gate.Open();
    RuntimeTest::TearDown();
  }

  Gate& NewGate() { return gates_.emplace_back(); }
  std::atomic<bool>& NewFlag() { return flags_.emplace_back(false); }
  Blocker& NewBlocker(Gate& gate, std::atomic<bool>* done = nullptr) {
    return blockers_.emplace_back(Blocker{&gate, done});
  }

  // Enqueues on `stream` a host function that blocks until the returned gate opens and then
  // sets *done (when given).
  Gate& Block(aclrtStream stream, std::atomic<bool>* done = nullptr) {
    Gate& gate = NewGate();
    EXPECT_ACL_OK(aclrtLaunchHostFunc(stream, WaitOnGate, &NewBlocker(gate, done)));
    return gate;
  }

  std::list<Gate> gates_;
  std::list<std::atomic<bool>> flags_;
  std::list<Blocker> blockers_;
};

using DeviceTest = RuntimeTest;
using ContextTest = StreamTest;
using EventTest = StreamTest;
using MemoryTest = StreamTest;
using FailedStreamTest = StreamTest;
using FinalizeTest = StreamTest;

// ---------------------------------------------------------------------------------------
// Devices

TEST_F(DeviceTest, DefaultDeviceCountIs16) {
  uint32_t count = 0;
  ASSERT_ACL_OK(aclrtGetDeviceCount(&count));
  EXPECT_EQ(count, 16u);
  EXPECT_EQ(aclrtGetDeviceCount(nullptr), ACL_ERROR_INVALID_PARAM);
}

TEST_F(DeviceTest, SetDeviceOutOfRangeIsInvalidDeviceId) {
  EXPECT_EQ(aclrtSetDevice(-1), ACL_ERROR_RT_INVALID_DEVICEID);
  EXPECT_EQ(aclrtSetDevice(16), ACL_ERROR_RT_INVALID_DEVICEID);
  EXPECT_NE(std::string(aclGetRecentErrMsg()), "");
}

TEST_F(DeviceTest, GetDeviceReturnsTheDeviceSet) {
  int32_t device = -1;
  ASSERT_ACL_OK(aclrtSetDevice(5));
  ASSERT_ACL_OK(aclrtGetDevice(&device));
  EXPECT_EQ(device, 5);
  ASSERT_ACL_OK(aclrtSetDevice(15));
  ASSERT_ACL_OK(aclrtGetDevice(&device));
  EXPECT_EQ(device, 15);
  EXPECT_EQ(aclrtGetDevice(nullptr), ACL_ERROR_INVALID_PARAM);
}

TEST_F(DeviceTest, GetDeviceWithoutContextIsContextNull) {
  int32_t device = 42;
  EXPECT_EQ(aclrtGetDevice(&device), ACL_ERROR_RT_CONTEXT_NULL);
  EXPECT_EQ(device, 42);
}

TEST_F(DeviceTest, GetDeviceOnAnotherThreadWithoutSetDeviceIsContextNull) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  aclError result = ACL_SUCCESS;
  std::thread other([&] {
    int32_t device = 0;
    result = aclrtGetDevice(&device);
  });
  other.join();
  EXPECT_EQ(result, ACL_ERROR_RT_CONTEXT_NULL);
}

TEST_F(DeviceTest, ResetDeviceOutOfRangeIsInvalidDeviceId) {
  EXPECT_EQ(aclrtResetDevice(-1), ACL_ERROR_RT_INVALID_DEVICEID);
  EXPECT_EQ(aclrtResetDevice(16), ACL_ERROR_RT_INVALID_DEVICEID);
}

TEST_F(DeviceTest, ResetDeviceAfterSetDeviceSucceedsAndDropsTheContext) {
  ASSERT_ACL_OK(aclrtSetDevice(2));
  EXPECT_ACL_OK(aclrtResetDevice(2));
  int32_t device = -1;
  EXPECT_EQ(aclrtGetDevice(&device), ACL_ERROR_RT_CONTEXT_NULL);
  // The device can be set again.
  ASSERT_ACL_OK(aclrtSetDevice(2));
  ASSERT_ACL_OK(aclrtGetDevice(&device));
  EXPECT_EQ(device, 2);
}

// ---------------------------------------------------------------------------------------
// Contexts

TEST_F(ContextTest, CreateContextMakesItCurrent) {
  aclrtContext context = nullptr;
  ASSERT_ACL_OK(aclrtCreateContext(&context, 3));
  ASSERT_NE(context, nullptr);
  aclrtContext current = nullptr;
  ASSERT_ACL_OK(aclrtGetCurrentContext(&current));
  EXPECT_EQ(current, context);
  int32_t device = -1;
  ASSERT_ACL_OK(aclrtGetDevice(&device));
  EXPECT_EQ(device, 3);
  EXPECT_ACL_OK(aclrtDestroyContext(context));
}

TEST_F(ContextTest, SetCurrentContextSwitchesDevice) {
  aclrtContext first = nullptr;
  aclrtContext second = nullptr;
  ASSERT_ACL_OK(aclrtCreateContext(&first, 1));
  ASSERT_ACL_OK(aclrtCreateContext(&second, 4));
  int32_t device = -1;
  ASSERT_ACL_OK(aclrtGetDevice(&device));
  EXPECT_EQ(device, 4);
  ASSERT_ACL_OK(aclrtSetCurrentContext(first));
  ASSERT_ACL_OK(aclrtGetDevice(&device));
  EXPECT_EQ(device, 1);
  aclrtContext current = nullptr;
  ASSERT_ACL_OK(aclrtGetCurrentContext(&current));
  EXPECT_EQ(current, first);
}

TEST_F(ContextTest, CreateContextOutOfRangeIsInvalidDeviceId) {
  aclrtContext context = nullptr;
  EXPECT_EQ(aclrtCreateContext(&context, 16), ACL_ERROR_RT_INVALID_DEVICEID);
  EXPECT_EQ(aclrtCreateContext(&context, -1), ACL_ERROR_RT_INVALID_DEVICEID);
  EXPECT_EQ(aclrtCreateContext(nullptr, 0), ACL_ERROR_INVALID_PARAM);
}

TEST_F(ContextTest, DestroyedContextIsInvalidHandle) {
  aclrtContext context = nullptr;
  ASSERT_ACL_OK(aclrtCreateContext(&context, 2));
  ASSERT_ACL_OK(aclrtDestroyContext(context));
  EXPECT_EQ(aclrtSetCurrentContext(context), ACL_ERROR_RT_INVALID_HANDLE);
  EXPECT_EQ(aclrtDestroyContext(context), ACL_ERROR_RT_INVALID_HANDLE);
  // It was current: the thread has no current context any more.
  int32_t device = -1;
  EXPECT_EQ(aclrtGetDevice(&device), ACL_ERROR_RT_CONTEXT_NULL);
  aclrtContext current = nullptr;
  EXPECT_EQ(aclrtGetCurrentContext(&current), ACL_ERROR_RT_CONTEXT_NULL);
}

TEST_F(ContextTest, GarbageContextIsInvalidHandle) {
  EXPECT_EQ(aclrtSetCurrentContext(reinterpret_cast<aclrtContext>(0x1234)), ACL_ERROR_RT_INVALID_HANDLE);
  EXPECT_EQ(aclrtDestroyContext(reinterpret_cast<aclrtContext>(0x1234)), ACL_ERROR_RT_INVALID_HANDLE);
}

// Regression: the context's stream handles were once looked up by object address (handles
// are ids), so they stayed "live" after the context died and silently dropped work.
TEST_F(ContextTest, StreamsAreDestroyedWithTheirContext) {
  aclrtContext context = nullptr;
  ASSERT_ACL_OK(aclrtCreateContext(&context, 0));
  aclrtStream stream = NewStream();
  std::atomic<bool>& ran = NewFlag();
  ASSERT_ACL_OK(aclrtLaunchHostFunc(stream, SetFlag, &ran));
  ASSERT_ACL_OK(aclrtSynchronizeStream(stream));
  EXPECT_TRUE(ran.load());

  ASSERT_ACL_OK(aclrtDestroyContext(context));
  ASSERT_ACL_OK(aclrtSetDevice(0));  // a current context, so only the stream handle is at fault
  std::atomic<bool>& late = NewFlag();
  EXPECT_EQ(aclrtLaunchHostFunc(stream, SetFlag, &late), ACL_ERROR_RT_INVALID_HANDLE);
  EXPECT_EQ(aclrtSynchronizeStream(stream), ACL_ERROR_RT_INVALID_HANDLE);
  aclrtStreamStatus status = ACL_STREAM_STATUS_RESERVED;
  EXPECT_EQ(aclrtStreamQuery(stream, &status), ACL_ERROR_RT_INVALID_HANDLE);
  EXPECT_EQ(aclrtDestroyStream(stream), ACL_ERROR_RT_INVALID_HANDLE);
  ASSERT_ACL_OK(aclrtSynchronizeDevice());
  EXPECT_FALSE(late.load());
}

// The same through aclrtResetDevice, which destroys the device's default context.
TEST_F(ContextTest, StreamsAreDestroyedWithResetDevice) {
  ASSERT_ACL_OK(aclrtSetDevice(1));
  aclrtStream stream = NewStream();
  ASSERT_ACL_OK(aclrtResetDevice(1));
  EXPECT_EQ(aclrtSynchronizeStream(stream), ACL_ERROR_RT_INVALID_HANDLE);
  EXPECT_EQ(aclrtDestroyStream(stream), ACL_ERROR_RT_INVALID_HANDLE);
}

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
  EXPECT_EQ(aclrtMemcpyAsync(dev, 16, host.data(), 16, ACL_MEMCPY_HOST_TO_DEVICE, stream),
            ACL_ERROR_RT_INVALID_HANDLE);
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

TEST_F(EventTest, DestroyEventTwiceIsInvalidHandle) {
  aclrtEvent event = nullptr;
  ASSERT_ACL_OK(aclrtCreateEvent(&event));
  EXPECT_ACL_OK(aclrtDestroyEvent(event));
  EXPECT_EQ(aclrtDestroyEvent(event), ACL_ERROR_RT_INVALID_HANDLE);
  EXPECT_EQ(aclrtSynchronizeEvent(event), ACL_ERROR_RT_INVALID_HANDLE);
  aclrtEventRecordedStatus status = ACL_EVENT_RECORDED_STATUS_NOT_READY;
  EXPECT_EQ(aclrtQueryEventStatus(event, &status), ACL_ERROR_RT_INVALID_HANDLE);
  EXPECT_EQ(aclrtDestroyEvent(reinterpret_cast<aclrtEvent>(0x1234)), ACL_ERROR_RT_INVALID_HANDLE);
  EXPECT_EQ(aclrtCreateEvent(nullptr), ACL_ERROR_INVALID_PARAM);
}

// ---------------------------------------------------------------------------------------
// Events

TEST_F(EventTest, StreamWaitEventOrdersAcrossStreams) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  aclrtStream a = nullptr;
  aclrtStream b = nullptr;
  ASSERT_ACL_OK(aclrtCreateStream(&a));
  ASSERT_ACL_OK(aclrtCreateStream(&b));
  aclrtEvent event = nullptr;
  ASSERT_ACL_OK(aclrtCreateEvent(&event));

  std::atomic<bool>& a_done = NewFlag();
  Gate& gate = Block(a, &a_done);
  ASSERT_ACL_OK(aclrtRecordEvent(event, a));
  ASSERT_ACL_OK(aclrtStreamWaitEvent(b, event));

  // B's host function copies A's flag as it runs.
  struct Observer {
    std::atomic<bool>* a_done;
    std::atomic<bool>* ran;
    std::atomic<bool>* saw_a_done;
  };
  std::atomic<bool>& b_ran = NewFlag();
  std::atomic<bool>& saw = NewFlag();
  static Observer observer;
  observer = Observer{&a_done, &b_ran, &saw};
  ASSERT_ACL_OK(aclrtLaunchHostFunc(
      b,
      [](void* arg) {
        auto* o = static_cast<Observer*>(arg);
        o->saw_a_done->store(o->a_done->load());
        o->ran->store(true);
      },
      &observer));

  aclrtEventRecordedStatus event_status = ACL_EVENT_RECORDED_STATUS_COMPLETE;
  ASSERT_ACL_OK(aclrtQueryEventStatus(event, &event_status));
  EXPECT_EQ(event_status, ACL_EVENT_RECORDED_STATUS_NOT_READY);
  aclrtStreamStatus stream_status = ACL_STREAM_STATUS_RESERVED;
  ASSERT_ACL_OK(aclrtStreamQuery(b, &stream_status));
  EXPECT_EQ(stream_status, ACL_STREAM_STATUS_NOT_READY);
  EXPECT_EQ(aclrtSynchronizeStreamWithTimeout(b, 10), ACL_ERROR_RT_STREAM_SYNC_TIMEOUT);
  EXPECT_FALSE(b_ran.load());

  gate.Open();
  ASSERT_ACL_OK(aclrtSynchronizeStream(b));
  EXPECT_TRUE(b_ran.load());
  EXPECT_TRUE(saw.load()) << "B's host function ran before A's task finished";
  ASSERT_ACL_OK(aclrtSynchronizeEvent(event));
  ASSERT_ACL_OK(aclrtQueryEventStatus(event, &event_status));
  EXPECT_EQ(event_status, ACL_EVENT_RECORDED_STATUS_COMPLETE);
  EXPECT_ACL_OK(aclrtDestroyEvent(event));
}

TEST_F(EventTest, SynchronizeEventWaitsForTheRecord) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  aclrtStream stream = NewStream();
  aclrtEvent event = nullptr;
  ASSERT_ACL_OK(aclrtCreateEvent(&event));
  std::atomic<bool>& done = NewFlag();
  Gate& gate = Block(stream, &done);
  ASSERT_ACL_OK(aclrtRecordEvent(event, stream));
  // Another thread waits on the event; the gate is opened only here, so when the wait
  // returns the blocked task must have finished.
  bool done_when_synced = false;
  aclError result = -1;
  std::thread waiter([&] {
    result = aclrtSynchronizeEvent(event);
    done_when_synced = done.load();
  });
  gate.Open();
  waiter.join();
  EXPECT_EQ(result, ACL_SUCCESS);
  EXPECT_TRUE(done_when_synced);
  aclrtEventRecordedStatus status = ACL_EVENT_RECORDED_STATUS_NOT_READY;
  ASSERT_ACL_OK(aclrtQueryEventStatus(event, &status));
  EXPECT_EQ(status, ACL_EVENT_RECORDED_STATUS_COMPLETE);
  EXPECT_EQ(aclrtQueryEventStatus(event, nullptr), ACL_ERROR_INVALID_PARAM);
}

TEST_F(EventTest, ElapsedTimeBetweenTwoRecordsIsNonNegative) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  aclrtStream stream = NewStream();
  aclrtEvent start = nullptr;
  aclrtEvent end = nullptr;
  ASSERT_ACL_OK(aclrtCreateEvent(&start));
  ASSERT_ACL_OK(aclrtCreateEvent(&end));
  ASSERT_ACL_OK(aclrtRecordEvent(start, stream));
  std::atomic<bool>& ran = NewFlag();
  ASSERT_ACL_OK(aclrtLaunchHostFunc(stream, SetFlag, &ran));
  ASSERT_ACL_OK(aclrtRecordEvent(end, stream));
  ASSERT_ACL_OK(aclrtSynchronizeStream(stream));
  float ms = -1.0f;
  ASSERT_ACL_OK(aclrtEventElapsedTime(&ms, start, end));
  EXPECT_GE(ms, 0.0f);
  EXPECT_TRUE(ran.load());
  EXPECT_EQ(aclrtEventElapsedTime(nullptr, start, end), ACL_ERROR_INVALID_PARAM);
}

TEST_F(EventTest, ElapsedTimeOnNeverRecordedEventIsParamInvalid) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  aclrtStream stream = NewStream();
  aclrtEvent recorded = nullptr;
  aclrtEvent never = nullptr;
  ASSERT_ACL_OK(aclrtCreateEvent(&recorded));
  ASSERT_ACL_OK(aclrtCreateEvent(&never));
  ASSERT_ACL_OK(aclrtRecordEvent(recorded, stream));
  ASSERT_ACL_OK(aclrtSynchronizeStream(stream));
  float ms = -1.0f;
  EXPECT_EQ(aclrtEventElapsedTime(&ms, recorded, never), ACL_ERROR_RT_PARAM_INVALID);
  EXPECT_EQ(aclrtEventElapsedTime(&ms, never, recorded), ACL_ERROR_RT_PARAM_INVALID);
  EXPECT_EQ(ms, -1.0f);
}

TEST_F(EventTest, WaitingOnANeverRecordedEventIsANoOp) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  aclrtStream stream = NewStream();
  aclrtEvent event = nullptr;
  ASSERT_ACL_OK(aclrtCreateEvent(&event));
  ASSERT_ACL_OK(aclrtStreamWaitEvent(stream, event));
  std::atomic<bool>& ran = NewFlag();
  ASSERT_ACL_OK(aclrtLaunchHostFunc(stream, SetFlag, &ran));
  ASSERT_ACL_OK(aclrtSynchronizeStream(stream));
  EXPECT_TRUE(ran.load());
  EXPECT_ACL_OK(aclrtSynchronizeEvent(event));  // nothing to wait for either
}

TEST_F(EventTest, WaitEventTakesTheRecordMadeBeforeTheWait) {
  // Re-recording an event after a wait was enqueued does not extend that wait.
  ASSERT_ACL_OK(aclrtSetDevice(0));
  aclrtStream a = nullptr;
  aclrtStream b = nullptr;
  ASSERT_ACL_OK(aclrtCreateStream(&a));
  ASSERT_ACL_OK(aclrtCreateStream(&b));
  aclrtEvent event = nullptr;
  ASSERT_ACL_OK(aclrtCreateEvent(&event));
  ASSERT_ACL_OK(aclrtRecordEvent(event, a));
  ASSERT_ACL_OK(aclrtSynchronizeStream(a));  // first record complete
  ASSERT_ACL_OK(aclrtStreamWaitEvent(b, event));
  Gate& gate = Block(a);
  ASSERT_ACL_OK(aclrtRecordEvent(event, a));  // second record, behind the gate
  std::atomic<bool>& ran = NewFlag();
  ASSERT_ACL_OK(aclrtLaunchHostFunc(b, SetFlag, &ran));
  ASSERT_ACL_OK(aclrtSynchronizeStream(b));  // must not wait for the second record
  EXPECT_TRUE(ran.load());
  aclrtEventRecordedStatus status = ACL_EVENT_RECORDED_STATUS_COMPLETE;
  ASSERT_ACL_OK(aclrtQueryEventStatus(event, &status));
  EXPECT_EQ(status, ACL_EVENT_RECORDED_STATUS_NOT_READY);
  gate.Open();
  ASSERT_ACL_OK(aclrtSynchronizeEvent(event));
  ASSERT_ACL_OK(aclrtQueryEventStatus(event, &status));
  EXPECT_EQ(status, ACL_EVENT_RECORDED_STATUS_COMPLETE);
}

// ---------------------------------------------------------------------------------------
// Memory

TEST_F(MemoryTest, MallocSizeZeroIsInvalidParam) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  void* dev = nullptr;
  EXPECT_EQ(aclrtMalloc(&dev, 0, ACL_MEM_MALLOC_HUGE_FIRST), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtMalloc(nullptr, 16, ACL_MEM_MALLOC_HUGE_FIRST), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtMalloc(&dev, 16, static_cast<aclrtMemMallocPolicy>(9)), ACL_ERROR_INVALID_PARAM);
}

TEST_F(MemoryTest, MallocWithoutContextIsContextNull) {
  void* dev = nullptr;
  EXPECT_EQ(aclrtMalloc(&dev, 16, ACL_MEM_MALLOC_HUGE_FIRST), ACL_ERROR_RT_CONTEXT_NULL);
}

TEST_F(MemoryTest, MallocPoliciesAllWork) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  for (auto policy : {ACL_MEM_MALLOC_HUGE_FIRST, ACL_MEM_MALLOC_HUGE_ONLY, ACL_MEM_MALLOC_NORMAL_ONLY}) {
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

TEST_F(MemoryTest, MemcpyAsyncChecksLikeMemcpy) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  void* dev = nullptr;
  ASSERT_ACL_OK(aclrtMalloc(&dev, 64, ACL_MEM_MALLOC_HUGE_FIRST));
  std::array<char, 128> host{};
  EXPECT_EQ(aclrtMemcpyAsync(dev, 32, host.data(), 64, ACL_MEMCPY_HOST_TO_DEVICE, nullptr), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtMemcpyAsync(dev, 128, host.data(), 128, ACL_MEMCPY_HOST_TO_DEVICE, nullptr),
            ACL_ERROR_INVALID_PARAM);
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
// aclFinalize

TEST_F(FinalizeTest, FinalizeReleasesForgottenHandles) {
  ASSERT_ACL_OK(aclInit(nullptr));
  ASSERT_ACL_OK(aclrtSetDevice(0));
  aclrtStream stream = NewStream();
  aclrtEvent event = nullptr;
  ASSERT_ACL_OK(aclrtCreateEvent(&event));
  void* dev = nullptr;
  ASSERT_ACL_OK(aclrtMalloc(&dev, 64, ACL_MEM_MALLOC_HUGE_FIRST));
  void* host = nullptr;
  ASSERT_ACL_OK(aclrtMallocHost(&host, 64));
  aclrtContext context = nullptr;
  ASSERT_ACL_OK(aclrtCreateContext(&context, 1));
  aclrtStream context_stream = NewStream();
  std::atomic<bool>& ran = NewFlag();
  ASSERT_ACL_OK(aclrtLaunchHostFunc(stream, SetFlag, &ran));
  ASSERT_ACL_OK(aclrtRecordEvent(event, stream));

  ASSERT_ACL_OK(aclFinalize());

  EXPECT_EQ(aclrtSynchronizeStream(stream), ACL_ERROR_RT_INVALID_HANDLE);
  EXPECT_EQ(aclrtDestroyStream(stream), ACL_ERROR_RT_INVALID_HANDLE);
  EXPECT_EQ(aclrtSynchronizeStream(context_stream), ACL_ERROR_RT_INVALID_HANDLE);
  EXPECT_EQ(aclrtDestroyEvent(event), ACL_ERROR_RT_INVALID_HANDLE);
  EXPECT_EQ(aclrtSetCurrentContext(context), ACL_ERROR_RT_INVALID_HANDLE);
  EXPECT_EQ(aclrtFree(dev), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(aclrtFreeHost(host), ACL_ERROR_INVALID_PARAM);
  int32_t device = -1;
  EXPECT_EQ(aclrtGetDevice(&device), ACL_ERROR_RT_CONTEXT_NULL);

  // Everything works again after a new aclrtSetDevice.
  ASSERT_ACL_OK(aclrtSetDevice(0));
  ASSERT_ACL_OK(aclrtGetDevice(&device));
  EXPECT_EQ(device, 0);
  aclrtStream fresh = NewStream();
  EXPECT_NE(fresh, stream);  // handles are never reused
  std::atomic<bool>& again = NewFlag();
  ASSERT_ACL_OK(aclrtLaunchHostFunc(fresh, SetFlag, &again));
  EXPECT_ACL_OK(aclrtSynchronizeStream(fresh));
  EXPECT_TRUE(again.load());
  ASSERT_ACL_OK(aclrtMalloc(&dev, 64, ACL_MEM_MALLOC_HUGE_FIRST));
  EXPECT_ACL_OK(aclrtFree(dev));
  EXPECT_ACL_OK(aclrtDestroyStream(fresh));
}

TEST_F(FinalizeTest, FinalizeJoinsARunningTask) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  aclrtStream stream = NewStream();
  std::atomic<bool>& blocked_done = NewFlag();
  Gate& gate = NewGate();
  Gate& started = NewGate();
  Blocker& blocker = NewBlocker(gate, &blocked_done);
  blocker.started = &started;
  ASSERT_ACL_OK(aclrtLaunchHostFunc(stream, WaitOnGate, &blocker));
  std::atomic<bool>& queued = NewFlag();
  ASSERT_ACL_OK(aclrtLaunchHostFunc(stream, SetFlag, &queued));
  started.Wait();  // the host function is running now
  // aclFinalize asks the running task to stop; a host function cannot see that, so another
  // thread opens the gate; aclFinalize must join the running task, not abandon it.
  std::thread opener([&gate] { gate.Open(); });
  EXPECT_ACL_OK(aclFinalize());
  opener.join();
  EXPECT_TRUE(blocked_done.load());
  EXPECT_EQ(aclrtSynchronizeStream(stream), ACL_ERROR_RT_INVALID_HANDLE);
}

TEST_F(FinalizeTest, FinalizeTwiceIsHarmless) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  EXPECT_ACL_OK(aclFinalize());
  EXPECT_ACL_OK(aclFinalize());
  ASSERT_ACL_OK(aclrtSetDevice(0));
  int32_t device = -1;
  ASSERT_ACL_OK(aclrtGetDevice(&device));
  EXPECT_EQ(device, 0);
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

}  // namespace
}  // namespace distbarrier::testing
