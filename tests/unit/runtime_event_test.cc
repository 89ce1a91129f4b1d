// The ACL runtime slice through its public C API: events.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
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

// Runs on the stream for at least `kHostWork` of steady-clock time, as measured by itself.
constexpr auto kHostWork = std::chrono::milliseconds(20);
void WorkForAWhile(void* /*arg*/) {
  const auto until = std::chrono::steady_clock::now() + kHostWork;
  while (std::chrono::steady_clock::now() < until) std::this_thread::sleep_until(until);
}

// The time between two records covers the work between them: a lower bound only (the
// stream's work took at least kHostWork), never an upper one.
TEST_F(EventTest, ElapsedTimeBetweenTwoRecordsCoversTheWorkBetweenThem) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  aclrtStream stream = NewStream();
  aclrtEvent start = nullptr;
  aclrtEvent end = nullptr;
  ASSERT_ACL_OK(aclrtCreateEvent(&start));
  ASSERT_ACL_OK(aclrtCreateEvent(&end));
  ASSERT_ACL_OK(aclrtRecordEvent(start, stream));
  ASSERT_ACL_OK(aclrtLaunchHostFunc(stream, WorkForAWhile, nullptr));
  ASSERT_ACL_OK(aclrtRecordEvent(end, stream));
  ASSERT_ACL_OK(aclrtSynchronizeStream(stream));
  const float work_ms = std::chrono::duration<float, std::milli>(kHostWork).count();
  float ms = -1.0f;
  ASSERT_ACL_OK(aclrtEventElapsedTime(&ms, start, end));
  EXPECT_GE(ms, work_ms);
  // Reversed, the same span is negative.
  float reversed = 0.0f;
  ASSERT_ACL_OK(aclrtEventElapsedTime(&reversed, end, start));
  EXPECT_LE(reversed, -work_ms);
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

}  // namespace
struct EventSelfSync {
  aclrtEvent event = nullptr;
  aclError result = -1;
  std::string message;
};

void SynchronizeEventFromHostFunction(void* arg) {
  auto* sync = static_cast<EventSelfSync*>(arg);
  sync->result = aclrtSynchronizeEvent(sync->event);
  sync->message = aclGetRecentErrMsg();
}

// The record sits behind the host function on the same stream: waiting for it from there
// would never end, so it is refused (as synchronizing the own stream is).
TEST_F(EventTest, SynchronizingARecordQueuedBehindTheCallingHostFunctionIsAnError) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  aclrtStream stream = NewStream();
  EventSelfSync sync;
  ASSERT_ACL_OK(aclrtCreateEvent(&sync.event));
  Gate& gate = Block(stream);  // the record is made before the host function runs
  ASSERT_ACL_OK(aclrtLaunchHostFunc(stream, SynchronizeEventFromHostFunction, &sync));
  ASSERT_ACL_OK(aclrtRecordEvent(sync.event, stream));
  gate.Open();
  ASSERT_ACL_OK(aclrtSynchronizeStream(stream));
  EXPECT_EQ(sync.result, ACL_ERROR_RT_PARAM_INVALID);
  EXPECT_NE(sync.message.find("wait for itself"), std::string::npos) << sync.message;
  EXPECT_ACL_OK(aclrtSynchronizeEvent(sync.event));  // from the host thread it completes
  EXPECT_ACL_OK(aclrtDestroyEvent(sync.event));
}

// A record on another stream, or one already complete, may be waited for from a host function.
TEST_F(EventTest, HostFunctionMayWaitForARecordOfAnotherStream) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  aclrtStream stream = NewStream();
  aclrtStream other = NewStream();
  EventSelfSync sync;
  ASSERT_ACL_OK(aclrtCreateEvent(&sync.event));
  ASSERT_ACL_OK(aclrtRecordEvent(sync.event, other));
  ASSERT_ACL_OK(aclrtLaunchHostFunc(stream, SynchronizeEventFromHostFunction, &sync));
  ASSERT_ACL_OK(aclrtSynchronizeStream(stream));
  EXPECT_EQ(sync.result, ACL_SUCCESS) << sync.message;
  ASSERT_ACL_OK(aclrtRecordEvent(sync.event, stream));
  ASSERT_ACL_OK(aclrtSynchronizeStream(stream));
  sync.result = -1;
  ASSERT_ACL_OK(aclrtLaunchHostFunc(stream, SynchronizeEventFromHostFunction, &sync));  // record done
  ASSERT_ACL_OK(aclrtSynchronizeStream(stream));
  EXPECT_EQ(sync.result, ACL_SUCCESS) << sync.message;
  EXPECT_ACL_OK(aclrtDestroyEvent(sync.event));
}

}  // namespace distbarrier::testing
