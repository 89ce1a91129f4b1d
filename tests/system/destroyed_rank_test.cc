// A rank whose communicator was destroyed (HcclCommDestroy) while its peers still wait for it:
// their timeout report (and hang warning, which shares the wording) says so (issue 16.15), for
// ranks that are threads of this process and for ranks in another process.
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

#include "test_support.h"

namespace distbarrier::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr int32_t kTimeoutUs = 50'000;

// One V2 barrier with a 50 ms timeout on the calling thread's device; its status and message.
std::pair<int, std::string> TimedBarrier(HcclComm comm, int ranks) {
  aclrtStream stream = NewStream();
  DeviceTensor x_ref = MakeTensor(ACL_FLOAT, {1});
  DeviceTensor timeout = MakeInt32Tensor({kTimeoutUs});
  int status = EnqueueBarrierV2(x_ref.tensor, timeout.tensor, nullptr, CommName(comm), ranks, stream);
  if (status == 0) status = aclrtSynchronizeStream(stream);
  return {status, aclGetRecentErrMsg()};
}

TEST_F(RuntimeTest, TimeoutReportSaysWhichMissingThreadRankWasDestroyed) {
  std::vector<HcclComm> comms = MakeGroup(FirstDevices(3));
  ASSERT_EQ(HcclCommDestroy(comms[2]), HCCL_SUCCESS);
  std::vector<std::pair<int, std::string>> results(2);
  RunRanks(2, [&](int rank) { results[rank] = TimedBarrier(comms[rank], 3); });
  for (int rank = 0; rank < 2; ++rank) {
    EXPECT_EQ(results[rank].first, ACL_ERROR_RT_VECTOR_CORE_TIMEOUT) << results[rank].second;
    EXPECT_THAT(results[rank].second, HasSubstr("ranks that had not arrived: [2 (communicator destroyed)]"));
  }
  for (int rank = 0; rank < 2; ++rank) HcclCommDestroy(comms[rank]);
}

TEST_F(RuntimeTest, TimeoutReportDoesNotCallALiveMissingRankDestroyed) {
  std::vector<HcclComm> comms = MakeGroup(FirstDevices(3));
  std::vector<std::pair<int, std::string>> results(2);
  RunRanks(2, [&](int rank) { results[rank] = TimedBarrier(comms[rank], 3); });
  for (int rank = 0; rank < 2; ++rank) {
    EXPECT_THAT(results[rank].second, HasSubstr("ranks that had not arrived: [2]"));
    EXPECT_THAT(results[rank].second, Not(HasSubstr("destroyed")));
  }
  for (HcclComm comm : comms) HcclCommDestroy(comm);
}

struct Area {
  std::atomic<int> root_ready;
  std::atomic<int> destroyed;  // rank 1 destroyed its communicator
  std::atomic<int> reported;   // rank 0 has its result: rank 1 may exit
  HcclRootInfo root;
  int status;
  char message[1024];
};

TEST(DestroyedRankProcesses, TimeoutReportSaysTheMissingRankOfAnotherProcessWasDestroyed) {
  auto* area =
      static_cast<Area*>(mmap(nullptr, sizeof(Area), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(area, MAP_FAILED);
  new (area) Area{};
  std::vector<pid_t> children;
  for (int rank = 0; rank < 2; ++rank) {
    const pid_t pid = fork();
    if (pid == 0) {
      aclrtSetDevice(0);
      if (rank == 0) {
        if (HcclGetRootInfo(&area->root) != HCCL_SUCCESS) _exit(3);
        area->root_ready.store(1, std::memory_order_release);
      }
      while (area->root_ready.load(std::memory_order_acquire) == 0) std::this_thread::yield();
      HcclRootInfo root = area->root;
      HcclComm comm = nullptr;
      if (HcclCommInitRootInfo(2, &root, static_cast<uint32_t>(rank), &comm) != HCCL_SUCCESS) _exit(4);
      if (rank == 1) {
        HcclCommDestroy(comm);
        area->destroyed.store(1, std::memory_order_release);
        // Stays alive: a destroyed communicator, not a dead process.
        while (area->reported.load(std::memory_order_acquire) == 0) std::this_thread::yield();
        _exit(0);
      }
      while (area->destroyed.load(std::memory_order_acquire) == 0) std::this_thread::yield();
      auto [status, message] = TimedBarrier(comm, 2);
      area->status = status;
      std::snprintf(area->message, sizeof(area->message), "%s", message.c_str());
      area->reported.store(1, std::memory_order_release);
      _exit(0);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) waitpid(pid, nullptr, 0);
  EXPECT_EQ(area->status, ACL_ERROR_RT_VECTOR_CORE_TIMEOUT) << area->message;
  EXPECT_THAT(std::string(area->message), HasSubstr("ranks that had not arrived: [1 (communicator destroyed)]"));
  munmap(area, sizeof(Area));
}

}  // namespace
}  // namespace distbarrier::testing
