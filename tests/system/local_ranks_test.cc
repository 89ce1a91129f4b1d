// Several ranks of one root-info group in one process (issue 16.9, issue 17 item 3): one
// thread per device, all calling HcclCommInitRootInfo with the same HcclRootInfo after
// aclrtSetDevice on their own device, as CANN's HCCL examples do; alone, and mixed with ranks
// of other processes. A rank that cannot join fails the group for every rank.
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "system/barrier_checker.h"
#include "test_support.h"

namespace distbarrier::testing {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;

// `barriers` barriers on `comm` from the calling thread (its device current), alternating
// HcclBarrier and aclnnDistributeBarrier, each between an arrive and a leave ticket.
int RunBarriers(HcclComm comm, int ranks, int barriers, std::atomic<uint64_t>* clock, uint64_t* arrive,
                uint64_t* leave) {
  const std::string group = CommName(comm);
  aclrtStream stream = NewStream();
  DeviceTensor x_ref = MakeTensor(ACL_FLOAT, {1});
  std::vector<Ticket> arrive_tickets(barriers), leave_tickets(barriers);
  for (int k = 0; k < barriers; ++k) {
    arrive_tickets[k] = {clock, &arrive[k]};
    leave_tickets[k] = {clock, &leave[k]};
    aclrtLaunchHostFunc(stream, TakeTicket, &arrive_tickets[k]);
    const int status = k % 2 == 0 ? HcclBarrier(comm, stream) : EnqueueBarrier(x_ref.tensor, group, ranks, stream);
    if (status != 0) return status;
    aclrtLaunchHostFunc(stream, TakeTicket, &leave_tickets[k]);
  }
  const int status = aclrtSynchronizeStream(stream);
  aclDestroyTensor(x_ref.tensor);
  aclrtFree(x_ref.data);
  aclrtDestroyStream(stream);
  return status;
}

TEST_F(RuntimeTest, FourThreadsOfOneProcessAreFourRanksOfARootInfoGroup) {
  constexpr int kRanks = 4;
  constexpr int kBarriers = 1000;
  ASSERT_ACL_OK(aclrtSetDevice(0));
  HcclRootInfo root;
  ASSERT_EQ(HcclGetRootInfo(&root), HCCL_SUCCESS);
  std::atomic<uint64_t> clock{0};
  std::vector<std::vector<uint64_t>> arrive(kRanks, std::vector<uint64_t>(kBarriers)),
      leave(kRanks, std::vector<uint64_t>(kBarriers));
  std::vector<int> init(kRanks, -1), barrier(kRanks, -1);
  std::vector<std::string> messages(kRanks);
  RunRanks(kRanks, [&](int rank) {
    HcclComm comm = nullptr;
    init[rank] = HcclCommInitRootInfo(kRanks, &root, static_cast<uint32_t>(rank), &comm);
    messages[rank] = aclGetRecentErrMsg();
    if (init[rank] != HCCL_SUCCESS) return;
    uint32_t id = 99, size = 0;
    HcclGetRankId(comm, &id);
    HcclGetRankSize(comm, &size);
    EXPECT_EQ(id, static_cast<uint32_t>(rank));
    EXPECT_EQ(size, static_cast<uint32_t>(kRanks));
    barrier[rank] = RunBarriers(comm, kRanks, kBarriers, &clock, arrive[rank].data(), leave[rank].data());
    messages[rank] = aclGetRecentErrMsg();
    EXPECT_EQ(HcclCommDestroy(comm), HCCL_SUCCESS);
  });
  for (int rank = 0; rank < kRanks; ++rank) {
    ASSERT_EQ(init[rank], HCCL_SUCCESS) << "rank " << rank << ": " << messages[rank];
    ASSERT_EQ(barrier[rank], 0) << "rank " << rank << ": " << messages[rank];
  }
  EXPECT_EQ(FirstViolation(arrive, leave), "");
}

TEST_F(RuntimeTest, ADuplicateRankInTheSameProcessIsRefusedAndTheOthersGoOn) {
  constexpr int kRanks = 3;
  ASSERT_ACL_OK(aclrtSetDevice(0));
  HcclRootInfo root;
  ASSERT_EQ(HcclGetRootInfo(&root), HCCL_SUCCESS);
  // Threads on devices 0..3 ask for ranks 0, 1, 1, 2. Rank 2 comes only after one of the
  // rank-1 threads was refused, so both rank-1 hellos reach rank 0 while it gathers.
  const int wanted[] = {0, 1, 1, 2};
  std::atomic<int> refused{0};
  std::vector<int> result(4, -1), barrier(4, -1);
  std::vector<std::string> messages(4);
  RunRanks(4, [&](int thread) {
    const int rank = wanted[thread];
    if (rank == 2) {
      while (refused.load(std::memory_order_acquire) == 0) std::this_thread::yield();
    }
    HcclComm comm = nullptr;
    result[thread] = HcclCommInitRootInfo(kRanks, &root, static_cast<uint32_t>(rank), &comm);
    messages[thread] = aclGetRecentErrMsg();
    if (result[thread] != HCCL_SUCCESS) {
      refused.store(1, std::memory_order_release);
      return;
    }
    aclrtStream stream = NewStream();
    barrier[thread] = HcclBarrier(comm, stream);
    if (barrier[thread] == 0) barrier[thread] = aclrtSynchronizeStream(stream);
    HcclCommDestroy(comm);
  });
  const int loser = result[1] == HCCL_SUCCESS ? 2 : 1;
  const int winner = 3 - loser;
  EXPECT_EQ(result[loser], HCCL_E_PARA);
  EXPECT_THAT(messages[loser], HasSubstr("asked for rank 1, already taken by pid " + std::to_string(getpid())));
  for (int thread : {0, winner, 3}) {
    EXPECT_EQ(result[thread], HCCL_SUCCESS) << "thread " << thread << ": " << messages[thread];
    EXPECT_EQ(barrier[thread], 0) << "thread " << thread << ": " << messages[thread];
  }
}

TEST_F(RuntimeTest, ALocalRankThatCannotJoinFailsTheGroupForEveryRank) {
  constexpr int kRanks = 3;
  ASSERT_ACL_OK(aclrtSetDevice(0));
  HcclRootInfo root;
  ASSERT_EQ(HcclGetRootInfo(&root), HCCL_SUCCESS);
  // Ranks 1 and 2 both on device 1: whichever attaches second cannot (a device holds one
  // rank of a group); nobody may be left with a communicator of a group missing a rank.
  const int device_of[] = {0, 1, 1};
  std::vector<int> result(kRanks, -1);
  std::vector<std::string> messages(kRanks);
  std::vector<std::thread> threads;
  for (int rank = 0; rank < kRanks; ++rank) {
    threads.emplace_back([&, rank] {
      aclrtSetDevice(device_of[rank]);
      HcclComm comm = nullptr;
      result[rank] = HcclCommInitRootInfo(kRanks, &root, static_cast<uint32_t>(rank), &comm);
      messages[rank] = aclGetRecentErrMsg();
      if (comm != nullptr) HcclCommDestroy(comm);
    });
  }
  for (auto& thread : threads) thread.join();
  int device_messages = 0;
  for (int rank = 0; rank < kRanks; ++rank) {
    EXPECT_NE(result[rank], HCCL_SUCCESS) << "rank " << rank << " got a communicator of a broken group";
    device_messages += messages[rank].find("each rank needs its own device") != std::string::npos;
  }
  EXPECT_EQ(device_messages, kRanks) << messages[0] << "\n" << messages[1] << "\n" << messages[2];
}

// --- two processes of two threads each ---

constexpr int kMixedBarriers = 300;

struct MixedArea {
  std::atomic<int> root_ready;
  HcclRootInfo root;
  std::atomic<uint64_t> clock;
  uint64_t arrive[4][kMixedBarriers];
  uint64_t leave[4][kMixedBarriers];
  int status[4];
};

TEST(LocalRanksProcesses, TwoProcessesOfTwoThreadsEachAreOneGroupOfFour) {
  auto* area = static_cast<MixedArea*>(
      mmap(nullptr, sizeof(MixedArea), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(area, MAP_FAILED);
  new (area) MixedArea{};
  for (int& status : area->status) status = -1;
  std::vector<pid_t> children;
  for (int process = 0; process < 2; ++process) {
    const pid_t pid = fork();
    if (pid == 0) {
      if (process == 0) {
        aclrtSetDevice(0);
        if (HcclGetRootInfo(&area->root) != HCCL_SUCCESS) _exit(3);
        area->root_ready.store(1, std::memory_order_release);
      }
      while (area->root_ready.load(std::memory_order_acquire) == 0) std::this_thread::yield();
      std::vector<std::thread> threads;
      for (int local = 0; local < 2; ++local) {
        threads.emplace_back([area, process, local] {
          const int rank = process * 2 + local;
          aclrtSetDevice(local);  // each process has its own simulated devices
          HcclRootInfo root = area->root;
          HcclComm comm = nullptr;
          int status = HcclCommInitRootInfo(4, &root, static_cast<uint32_t>(rank), &comm);
          if (status == HCCL_SUCCESS) {
            status = RunBarriers(comm, 4, kMixedBarriers, &area->clock, area->arrive[rank], area->leave[rank]);
            HcclCommDestroy(comm);
          }
          area->status[rank] = status;
        });
      }
      for (auto& thread : threads) thread.join();
      aclFinalize();
      _exit(0);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int wait_status = 0;
    waitpid(pid, &wait_status, 0);
    EXPECT_TRUE(WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0) << wait_status;
  }
  std::vector<std::vector<uint64_t>> arrive(4), leave(4);
  for (int rank = 0; rank < 4; ++rank) {
    EXPECT_EQ(area->status[rank], 0) << "rank " << rank;
    arrive[rank].assign(area->arrive[rank], area->arrive[rank] + kMixedBarriers);
    leave[rank].assign(area->leave[rank], area->leave[rank] + kMixedBarriers);
  }
  EXPECT_EQ(FirstViolation(arrive, leave), "");
  munmap(area, sizeof(MixedArea));
}

}  // namespace
}  // namespace distbarrier::testing
