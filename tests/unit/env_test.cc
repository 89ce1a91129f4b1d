// Durations from the environment saturate instead of overflowing: a huge value means
// "practically never", not "at once". Each test case runs as its own process, so setenv is
// local to it.
#include "common/env.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <future>
#include <string>
#include <thread>

#include "common/deadline.h"
#include "op/distribute_barrier/barrier_task.h"
#include "test_support.h"

namespace distbarrier::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr auto kFiftyYears = std::chrono::hours(24 * 365 * 50);

TEST(EnvDurationTest, ParsesCountsOfTheUnit) {
  setenv("DISTBARRIER_TEST_DURATION", "1500", 1);
  EXPECT_EQ(EnvDuration("DISTBARRIER_TEST_DURATION", 1ms), 1500ms);
  EXPECT_EQ(EnvDuration("DISTBARRIER_TEST_DURATION", 1s), 1500s);
  setenv("DISTBARRIER_TEST_DURATION", "0", 1);
  EXPECT_EQ(EnvDuration("DISTBARRIER_TEST_DURATION", 1s), 0ms);
  setenv("DISTBARRIER_TEST_DURATION", "-5", 1);
  EXPECT_EQ(EnvDuration("DISTBARRIER_TEST_DURATION", 1s), 0ms);
  setenv("DISTBARRIER_TEST_DURATION", "12abc", 1);
  EXPECT_EQ(EnvDuration("DISTBARRIER_TEST_DURATION", 1s), std::nullopt);
  unsetenv("DISTBARRIER_TEST_DURATION");
  EXPECT_EQ(EnvDuration("DISTBARRIER_TEST_DURATION", 1s), std::nullopt);
}

TEST(EnvDurationTest, HugeValuesSaturate) {
  for (const char* text : {"9223372036854", "9223372036854775807", "99999999999999999999"}) {
    setenv("DISTBARRIER_TEST_DURATION", text, 1);
    for (auto unit : {std::chrono::milliseconds(1ms), std::chrono::milliseconds(1s)}) {
      auto value = EnvDuration("DISTBARRIER_TEST_DURATION", unit);
      if (std::string(text) == "99999999999999999999") {
        EXPECT_EQ(value, std::nullopt) << "not an int64: not a number";
        continue;
      }
      ASSERT_TRUE(value.has_value()) << text;
      EXPECT_GT(*value, kFiftyYears) << text;
      EXPECT_LE(*value, kMaxEnvDuration) << text;
    }
  }
}

TEST(DeadlineTest, SaturatesAtTheClocksEnd) {
  const Clock::time_point now = Clock::now();
  EXPECT_EQ(DeadlineAfter(now, std::chrono::seconds(INT64_MAX)), Clock::time_point::max());
  EXPECT_EQ(DeadlineAfter(now, std::chrono::hours(INT64_MAX / 2)), Clock::time_point::max());
  EXPECT_EQ(DeadlineAfter(now, Clock::duration::max()), Clock::time_point::max());
  EXPECT_EQ(DeadlineAfter(now, 5ms), now + 5ms);
  EXPECT_EQ(DeadlineAfter(now, kMaxEnvDuration), now + kMaxEnvDuration);
  EXPECT_EQ(DeadlineAfter(now, -5ms), now);
}

// DISTBARRIER_WARN_S near INT64_MAX seconds overflowed into a warning time in the past.
TEST(EnvDurationTest, HugeWarnTimeWarnsPracticallyNever) {
  setenv("DISTBARRIER_WARN_S", "9223372036854775807", 1);
  setenv("DISTBARRIER_TIMEOUT_MS", "9223372036854775807", 1);
  op::BarrierPlan plan;
  op::ApplyEnvironmentDefaults(plan);
  EXPECT_GT(plan.warn_after, kFiftyYears);
  ASSERT_TRUE(plan.default_timeout.has_value());
  EXPECT_GT(*plan.default_timeout, kFiftyYears);
  const Clock::time_point now = Clock::now();
  EXPECT_GT(DeadlineAfter(now, plan.warn_after), now + kFiftyYears);
  EXPECT_GT(DeadlineAfter(now, *plan.default_timeout), now + kFiftyYears);
}

class EnvBarrierTest : public RuntimeTest {};

// DISTBARRIER_TIMEOUT_MS=9223372036854 (about 292 years) overflowed the deadline: the barrier
// failed at once with 507034. It must simply wait for the late rank.
TEST_F(EnvBarrierTest, HugeDefaultTimeoutDoesNotTimeOutAtOnce) {
  setenv("DISTBARRIER_TIMEOUT_MS", "9223372036854", 1);
  std::vector<HcclComm> comms = MakeGroup(FirstDevices(2));
  ASSERT_EQ(comms.size(), 2u);
  ASSERT_ACL_OK(aclrtSetDevice(0));
  aclrtStream stream0 = NewStream();
  DeviceTensor x0 = MakeInt32Tensor({0});
  ASSERT_EQ(EnqueueBarrierV2(x0.tensor, nullptr, nullptr, CommName(comms[0]), 2, stream0), 0) << aclGetRecentErrMsg();
  // Rank 1 has not arrived: the barrier is still waiting (the stream-sync timeout, not a
  // barrier timeout). No upper bound on anything: only "not failed by now".
  EXPECT_EQ(aclrtSynchronizeStreamWithTimeout(stream0, 100), ACL_ERROR_RT_STREAM_SYNC_TIMEOUT) << aclGetRecentErrMsg();
  ASSERT_ACL_OK(aclrtSetDevice(1));
  aclrtStream stream1 = NewStream();
  DeviceTensor x1 = MakeInt32Tensor({0});
  ASSERT_EQ(EnqueueBarrierV2(x1.tensor, nullptr, nullptr, CommName(comms[1]), 2, stream1), 0) << aclGetRecentErrMsg();
  EXPECT_ACL_OK(aclrtSynchronizeStream(stream1));
  EXPECT_ACL_OK(aclrtSynchronizeStream(stream0));
}

// What two rank processes share: the root info and what each saw.
struct ConnectArea {
  std::atomic<int> root_ready{0};
  std::atomic<int> rank1_may_join{0};
  HcclRootInfo root{};
  std::atomic<int> rank0_waited{-1};  // 1: still joining after 100 ms, 0: returned before
  std::atomic<int> status[2] = {-1, -1};
};

// DISTBARRIER_CONNECT_TIMEOUT_S=INT64_MAX overflowed into a connect deadline in the past: rank
// 0 gave up at once. It must wait for rank 1, however late. The parent stays single-threaded
// and away from the runtime; each rank is a process.
TEST(EnvConnectTest, HugeConnectTimeoutWaitsForALateRank) {
  setenv("DISTBARRIER_CONNECT_TIMEOUT_S", "9223372036854775807", 1);
  void* memory = mmap(nullptr, sizeof(ConnectArea), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(memory, MAP_FAILED);
  auto* area = new (memory) ConnectArea;
  const pid_t rank0 = fork();
  if (rank0 == 0) {
    HcclComm comm = nullptr;
    if (aclrtSetDevice(0) != ACL_SUCCESS || HcclGetRootInfo(&area->root) != HCCL_SUCCESS) _exit(1);
    area->root_ready.store(1);
    auto joined = std::async(std::launch::async, [&] {
      return aclrtSetDevice(0) == ACL_SUCCESS ? HcclCommInitRootInfo(2, &area->root, 0, &comm) : -1;
    });
    // Only a lower bound: still joining after 100 ms means the deadline was not in the past.
    const bool waited = joined.wait_for(100ms) == std::future_status::timeout;
    area->rank0_waited.store(waited ? 1 : 0);
    area->rank1_may_join.store(waited ? 1 : 2);  // 2: rank 0 is gone, do not join
    area->status[0].store(joined.get());
    _exit(0);
  }
  const pid_t rank1 = fork();
  if (rank1 == 0) {
    while (area->root_ready.load() == 0 || area->rank1_may_join.load() == 0) std::this_thread::yield();
    if (area->rank1_may_join.load() != 1) _exit(0);
    HcclComm comm = nullptr;
    if (aclrtSetDevice(0) != ACL_SUCCESS) _exit(1);
    area->status[1].store(HcclCommInitRootInfo(2, &area->root, 1, &comm));
    _exit(0);
  }
  int wait_status = 0;
  waitpid(rank0, &wait_status, 0);
  waitpid(rank1, &wait_status, 0);
  EXPECT_EQ(area->rank0_waited.load(), 1) << "rank 0 stopped joining at once";
  EXPECT_EQ(area->status[0].load(), HCCL_SUCCESS);
  EXPECT_EQ(area->status[1].load(), HCCL_SUCCESS);
  munmap(memory, sizeof(ConnectArea));
  unsetenv("DISTBARRIER_CONNECT_TIMEOUT_S");
}

}  // namespace
}  // namespace distbarrier::testing
