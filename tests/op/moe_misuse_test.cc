// Misuse of the MoE operators ends in an error naming who is at fault, never in a hang:
// a dispatch on one rank only times out (HCCL_EXEC_TIMEOUT) naming the ranks that never
// came, or without a timeout warns naming them and is ended by aclFinalize; a rank with bad
// data fails, and its peers fail naming it instead of waiting for it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "common/log.h"
#include "moe_world.h"

namespace distbarrier::testing::moe {
namespace {

using ::testing::HasSubstr;

class MoeMisuseTest : public ::testing::Test {
 protected:
  void TearDown() override {
    aclFinalize();
    SetLogListener(nullptr, nullptr);
  }
};

Config Ep4() {
  Config c;
  c.ep = 4;
  c.moe_experts = 4;
  c.k = 2;
  return c;
}

TEST_F(MoeMisuseTest, DispatchOnOneRankOnlyTimesOutNamingTheMissingRanks) {
  setenv("HCCL_EXEC_TIMEOUT", "1", 1);
  const Config c = Ep4();
  World world = World::Make(c);
  ASSERT_EQ(aclrtSetDevice(0), 0);
  aclrtStream stream = nullptr;
  ASSERT_EQ(aclrtCreateStream(&stream), 0);
  RankTensors t(c, DrawInputs(c, 0, 0), 0);
  ASSERT_EQ(EnqueueDispatch(c, world, {0, 0, 0}, t, stream), 0) << aclGetRecentErrMsg();
  EXPECT_EQ(aclrtSynchronizeStream(stream), ACL_ERROR_RT_VECTOR_CORE_TIMEOUT);
  const std::string message = aclGetRecentErrMsg();
  EXPECT_THAT(message, HasSubstr("aclnnMoeDistributeDispatchV2 timed out"));
  EXPECT_THAT(message, HasSubstr("rank 0, collective #1 (all-to-all-v)"));
  EXPECT_THAT(message, HasSubstr("HCCL_EXEC_TIMEOUT 1.000 s"));
  EXPECT_THAT(message, HasSubstr("ranks that never came: [1, 2, 3]"));
}

struct Warnings {
  std::mutex mutex;
  std::condition_variable seen;
  std::string line;
};

void Listen(LogLevel level, std::string_view message, void* context) {
  auto* warnings = static_cast<Warnings*>(context);
  if (level != LogLevel::kWarning || message.find("still waiting") == std::string_view::npos) return;
  std::lock_guard lock(warnings->mutex);
  warnings->line = message;
  warnings->seen.notify_all();
}

TEST_F(MoeMisuseTest, WithoutATimeoutAHangWarnsNamingTheMissingRanksAndFinalizeEndsIt) {
  unsetenv("HCCL_EXEC_TIMEOUT");
  setenv("DISTBARRIER_WARN_S", "1", 1);
  Warnings warnings;
  SetLogListener(&Listen, &warnings);
  const Config c = Ep4();
  World world = World::Make(c);
  ASSERT_EQ(aclrtSetDevice(0), 0);
  aclrtStream stream = nullptr;
  ASSERT_EQ(aclrtCreateStream(&stream), 0);
  RankTensors t(c, DrawInputs(c, 0, 0), 0);
  ASSERT_EQ(EnqueueDispatch(c, world, {0, 0, 0}, t, stream), 0) << aclGetRecentErrMsg();
  std::unique_lock lock(warnings.mutex);
  warnings.seen.wait(lock, [&] { return !warnings.line.empty(); });
  EXPECT_THAT(warnings.line, HasSubstr("collective #1 (all-to-all-v) has waited"));
  EXPECT_THAT(warnings.line, HasSubstr("on rank 0 for ranks [1, 2, 3]"));
  // TearDown's aclFinalize aborts the stream: the waiting dispatch ends instead of hanging.
}

TEST_F(MoeMisuseTest, ABadExpertIdFailsItsRankAndItsPeersNameIt) {
  const Config c = Ep4();
  World world = World::Make(c);
  std::vector<int> dispatch_status(4), combine_status(4);
  std::vector<std::string> messages(4);
  std::vector<std::thread> threads;
  for (int device = 0; device < 4; ++device) {
    threads.emplace_back([&, device] {
      ASSERT_EQ(aclrtSetDevice(device), 0);
      aclrtStream stream = nullptr;
      ASSERT_EQ(aclrtCreateStream(&stream), 0);
      RankInputs in = DrawInputs(c, device, 0);
      if (device == 2) in.expert_ids[3] = 99;
      RankTensors t(c, in, device);
      ASSERT_EQ(EnqueueDispatch(c, world, {device, device, 0}, t, stream), 0) << aclGetRecentErrMsg();
      dispatch_status[device] = aclrtSynchronizeStream(stream);
      messages[device] = aclGetRecentErrMsg();
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(dispatch_status[2], ACL_ERROR_RT_PARAM_INVALID);
  EXPECT_THAT(messages[2], HasSubstr("expertIds[1, 1] is 99, out of range [0, moeExpertNum 4)"));
  for (int device : {0, 1, 3}) {
    EXPECT_EQ(dispatch_status[device], ACL_ERROR_RT_SUSPECT_REMOTE_ERROR) << device;
    EXPECT_THAT(messages[device], HasSubstr("rank 2 failed: aclnnMoeDistributeDispatchV2"));
  }
}

}  // namespace
}  // namespace distbarrier::testing::moe
