// The ACL runtime slice through its public C API: a child forked from a process whose runtime
// was in use. The parent's stream workers do not exist in the child, so what it inherited
// fails with a clear error (never a hang), and aclFinalize forgets it so the child can start
// again.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <new>
#include <string>

#include "acl/acl.h"
#include "unit/runtime_fixture.h"

namespace distbarrier::testing {
namespace {

#if defined(__SANITIZE_THREAD__)
// TSan ends a child of a multi-threaded process that starts threads (die_after_fork).
constexpr bool kChildMayStartThreads = false;
#else
constexpr bool kChildMayStartThreads = true;
#endif

// What the child saw, in memory shared with the parent.
struct ChildReport {
  aclError sync_stream = -1;
  aclError launch = -1;
  aclError sync_event = -1;
  aclError set_device = -1;
  aclError sync_device = -1;
  aclError finalize = -1;
  aclError fresh_set_device = -1;
  aclError fresh_sync = -1;
  std::atomic<bool> fresh_ran{false};
  char message[512] = {};
};

using ForkTest = StreamTest;

// A synchronize on an inherited stream hung forever (its worker is not in the child), and
// aclFinalize aborted joining it.
TEST_F(ForkTest, ChildOfAnInitializedRuntimeGetsAClearErrorAndCanStartAgain) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  aclrtStream stream = NewStream();
  std::atomic<bool>& ran = NewFlag();
  ASSERT_ACL_OK(aclrtLaunchHostFunc(stream, SetFlag, &ran));  // the stream's worker runs now
  ASSERT_ACL_OK(aclrtSynchronizeStream(stream));
  aclrtEvent event = nullptr;
  ASSERT_ACL_OK(aclrtCreateEvent(&event));
  Gate& gate = Block(stream);  // a record the child would wait for forever
  ASSERT_ACL_OK(aclrtRecordEvent(event, stream));

  void* memory = mmap(nullptr, sizeof(ChildReport), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(memory, MAP_FAILED);
  auto* report = new (memory) ChildReport;
  const pid_t child = fork();
  if (child == 0) {
    alarm(60);  // a hang ends the child (the parent sees a signal), not the test run
    report->sync_stream = aclrtSynchronizeStream(stream);
    std::snprintf(report->message, sizeof(report->message), "%s", aclGetRecentErrMsg());
    std::atomic<bool> flag{false};
    report->launch = aclrtLaunchHostFunc(stream, SetFlag, &flag);
    report->sync_event = aclrtSynchronizeEvent(event);
    report->set_device = aclrtSetDevice(1);
    report->sync_device = aclrtSynchronizeDevice();
    report->finalize = aclFinalize();
    if (kChildMayStartThreads) {
      report->fresh_set_device = aclrtSetDevice(0);
      aclrtStream fresh = nullptr;
      if (aclrtCreateStream(&fresh) == ACL_SUCCESS && aclrtLaunchHostFunc(fresh, SetFlag, &report->fresh_ran) == 0) {
        report->fresh_sync = aclrtSynchronizeStream(fresh);
      }
      aclFinalize();
    }
    _exit(0);
  }
  ASSERT_GT(child, 0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  EXPECT_EQ(report->sync_stream, ACL_ERROR_UNINITIALIZE);
  EXPECT_NE(std::string(report->message).find("forked after the runtime was initialized"), std::string::npos)
      << report->message;
  EXPECT_EQ(report->launch, ACL_ERROR_UNINITIALIZE);
  EXPECT_EQ(report->sync_event, ACL_ERROR_UNINITIALIZE);
  EXPECT_EQ(report->set_device, ACL_ERROR_UNINITIALIZE);
  EXPECT_EQ(report->sync_device, ACL_ERROR_UNINITIALIZE);
  EXPECT_EQ(report->finalize, ACL_SUCCESS);
  if (kChildMayStartThreads) {
    EXPECT_EQ(report->fresh_set_device, ACL_SUCCESS);
    EXPECT_EQ(report->fresh_sync, ACL_SUCCESS);
    EXPECT_TRUE(report->fresh_ran.load());
  }
  munmap(memory, sizeof(ChildReport));

  // The parent is untouched.
  gate.Open();
  EXPECT_ACL_OK(aclrtSynchronizeEvent(event));
  EXPECT_ACL_OK(aclrtSynchronizeStream(stream));
}

// A child of a process that finalized (or never initialized) the runtime uses it freely.
TEST_F(ForkTest, ChildOfAFinalizedRuntimeStartsNormally) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  aclrtStream stream = NewStream();
  ASSERT_ACL_OK(aclrtSynchronizeStream(stream));
  ASSERT_ACL_OK(aclFinalize());
  void* memory = mmap(nullptr, sizeof(ChildReport), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(memory, MAP_FAILED);
  auto* report = new (memory) ChildReport;
  const pid_t child = fork();
  if (child == 0) {
    alarm(60);
    report->set_device = aclrtSetDevice(0);
    aclrtStream fresh = nullptr;
    report->launch = aclrtCreateStream(&fresh);
    if (kChildMayStartThreads && report->launch == ACL_SUCCESS) report->fresh_sync = aclrtSynchronizeStream(fresh);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  EXPECT_EQ(report->set_device, ACL_SUCCESS);
  EXPECT_EQ(report->launch, ACL_SUCCESS);
  if (kChildMayStartThreads) {
    EXPECT_EQ(report->fresh_sync, ACL_SUCCESS);
  }
  munmap(memory, sizeof(ChildReport));
}

}  // namespace
}  // namespace distbarrier::testing
