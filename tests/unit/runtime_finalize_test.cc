// The ACL runtime slice through its public C API: aclFinalize.
#include <gtest/gtest.h>

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

// What a host function that calls an API saw.
struct HostCall {
  std::atomic<aclError> result{-1};
  std::string message;
};

void CallFinalize(void* arg) {
  auto* call = static_cast<HostCall*>(arg);
  call->message = aclGetRecentErrMsg();
  call->result = aclFinalize();
  call->message = aclGetRecentErrMsg();
}

// aclFinalize on a stream's worker made the worker drop the last reference to its own stream,
// which it cannot join: std::terminate. It is refused instead, and nothing is released.
TEST_F(FinalizeTest, FinalizeFromAHostFunctionIsRefusedAndNothingIsReleased) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  aclrtStream stream = NewStream();
  void* dev = nullptr;
  ASSERT_ACL_OK(aclrtMalloc(&dev, 64, ACL_MEM_MALLOC_HUGE_FIRST));
  HostCall call;
  std::atomic<bool>& after = NewFlag();
  EXPECT_ACL_OK(aclrtLaunchHostFunc(stream, CallFinalize, &call));
  EXPECT_ACL_OK(aclrtLaunchHostFunc(stream, SetFlag, &after));
  EXPECT_ACL_OK(aclrtSynchronizeStream(stream));  // the host function ran: `call` may go now
  EXPECT_EQ(call.result.load(), ACL_ERROR_FAILURE);
  EXPECT_NE(call.message.find("aclFinalize: called from a host function"), std::string::npos) << call.message;
  EXPECT_TRUE(after.load()) << "the stream stopped";
  // Everything is still there.
  EXPECT_ACL_OK(aclrtMemset(dev, 64, 0, 64));
  EXPECT_ACL_OK(aclrtFree(dev));
  EXPECT_ACL_OK(aclrtDestroyStream(stream));
  EXPECT_ACL_OK(aclFinalize());
}

// The first launch onto a stream starts its worker while aclFinalize, on another thread, joins
// the stream's worker: both touch the worker's thread object (a data race under TSan, and a
// worker started after the join ran on after aclFinalize returned).
TEST_F(FinalizeTest, FirstLaunchRacingFinalizeIsSafe) {
  constexpr int kRounds = 100;
  constexpr int kStreams = 4;
  for (int round = 0; round < kRounds; ++round) {
    ASSERT_ACL_OK(aclrtSetDevice(0));
    std::atomic<bool> go{false};
    std::vector<std::thread> launchers;
    for (int i = 0; i < kStreams; ++i) {
      aclrtStream stream = NewStream();
      std::atomic<bool>* ran = &NewFlag();
      launchers.emplace_back([&go, stream, ran] {
        while (!go.load()) std::this_thread::yield();
        // Succeeds (the host function runs or is dropped) or finds the stream already gone.
        const aclError result = aclrtLaunchHostFunc(stream, SetFlag, ran);
        EXPECT_TRUE(result == ACL_SUCCESS || result == ACL_ERROR_RT_INVALID_HANDLE) << result;
      });
    }
    go.store(true);
    EXPECT_ACL_OK(aclFinalize());
    for (std::thread& launcher : launchers) launcher.join();
  }
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

}  // namespace
}  // namespace distbarrier::testing
