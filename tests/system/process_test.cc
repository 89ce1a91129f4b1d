// Ranks as real processes on one host: root-info bootstrap, barriers over shared memory,
// peer death, refusal of bad peers, and no leftovers.
//
// Each test forks its ranks before anything touches the runtime (the parent stays a plain,
// single-threaded process). Ranks share one anonymous MAP_SHARED area with the parent: the
// root info, ticket counters for the barrier property, and per-rank results. Ranks wait for
// the root info by watching a flag in that area; nothing sleeps to synchronize.
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <functional>
#include <random>
#include <set>
#include <string>
#include <thread>

#include "comm/bootstrap/root_info.h"
#include "distbarrier/distbarrier.h"
#include "system/barrier_checker.h"
#include "test_support.h"

namespace distbarrier::testing {
namespace {

using ::testing::HasSubstr;

constexpr int kMaxRanks = 16;
constexpr int kMaxBarriers = 512;

struct RankResult {
  int status;  // 0 ok, else the failing call's code
  char message[512];
  int64_t value;  // test-specific
};

struct SharedArea {
  std::atomic<int> root_ready;
  std::atomic<int> intruder_done;
  std::atomic<int> stats_reset;
  HcclRootInfo root;
  std::atomic<uint64_t> clock;
  uint64_t arrive[kMaxRanks][kMaxBarriers];
  uint64_t leave[kMaxRanks][kMaxBarriers];
  RankResult results[kMaxRanks + 4];
};

SharedArea* NewSharedArea() {
  void* memory = mmap(nullptr, sizeof(SharedArea), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  EXPECT_NE(memory, MAP_FAILED);
  return new (memory) SharedArea{};
}

// In a rank process: records a failure and leaves without running any exit handlers.
[[noreturn]] void Die(SharedArea* area, int slot, int status, const std::string& what) {
  area->results[slot].status = status == 0 ? -1 : status;
  std::snprintf(area->results[slot].message, sizeof(area->results[slot].message), "%s: %s", what.c_str(),
                aclGetRecentErrMsg());
  _exit(1);
}

void PublishRootInfo(SharedArea* area) {
  HcclRootInfo root;
  if (HcclGetRootInfo(&root) != HCCL_SUCCESS) Die(area, 0, 1, "HcclGetRootInfo");
  area->root = root;
  area->root_ready.store(1, std::memory_order_release);
}

HcclRootInfo AwaitRootInfo(SharedArea* area) {
  while (area->root_ready.load(std::memory_order_acquire) == 0) std::this_thread::yield();
  return area->root;
}

// A rank: SetDevice(0) (each process has its own simulated devices), join, run `body`.
HcclComm JoinAsRank(SharedArea* area, int rank, int ranks) {
  if (aclrtSetDevice(0) != ACL_SUCCESS) Die(area, rank, 1, "aclrtSetDevice");
  if (rank == 0) PublishRootInfo(area);
  HcclRootInfo root = AwaitRootInfo(area);
  HcclComm comm = nullptr;
  int status = HcclCommInitRootInfo(static_cast<uint32_t>(ranks), &root, static_cast<uint32_t>(rank), &comm);
  if (status != HCCL_SUCCESS) Die(area, rank, status, "HcclCommInitRootInfo");
  return comm;
}

// Forks one process per entry of `bodies` (body(i) runs in child i and returns its exit
// code); returns each child's wait status and pid.
struct Child {
  pid_t pid;
  int wait_status;
};
std::vector<Child> RunProcesses(const std::vector<std::function<int()>>& bodies) {
  std::vector<Child> children;
  for (const auto& body : bodies) {
    pid_t pid = fork();
    if (pid == 0) _exit(body());
    children.push_back({pid, 0});
  }
  for (Child& child : children) waitpid(child.pid, &child.wait_status, 0);
  return children;
}

bool ExitedZero(const Child& child) { return WIFEXITED(child.wait_status) && WEXITSTATUS(child.wait_status) == 0; }

std::string GroupName(HcclComm comm) {
  char name[COMM_NAME_MAX_LENGTH] = {0};
  HcclGetCommName(comm, name);
  return name;
}

int BarrierV2(aclTensor* x_ref, aclTensor* timeout, aclTensor* elastic, const std::string& group, int ranks,
              aclrtStream stream) {
  int status = EnqueueBarrierV2(x_ref, timeout, elastic, group, ranks, stream);
  return status != 0 ? status : aclrtSynchronizeStream(stream);
}

class ProcessTest : public ::testing::Test {
 protected:
  void SetUp() override { area_ = NewSharedArea(); }
  void TearDown() override { munmap(area_, sizeof(SharedArea)); }
  void ExpectAllOk(const std::vector<Child>& children) {
    for (size_t i = 0; i < children.size(); ++i) {
      EXPECT_TRUE(ExitedZero(children[i])) << "rank " << i << " status " << children[i].wait_status << ": "
                                           << area_->results[i].message;
    }
  }
  SharedArea* area_ = nullptr;
};

// --- the barrier property across processes ---

class ProcessPropertyTest : public ProcessTest, public ::testing::WithParamInterface<int> {};

TEST_P(ProcessPropertyTest, NoRankLeavesBarrierKBeforeAllArrivedAtK) {
  const int ranks = GetParam();
  constexpr int kBarriers = 300;
  std::vector<std::function<int()>> bodies;
  for (int rank = 0; rank < ranks; ++rank) {
    bodies.push_back([&, rank] {
      HcclComm comm = JoinAsRank(area_, rank, ranks);
      const std::string group = GroupName(comm);
      aclrtStream stream = NewStream();
      DeviceTensor x_ref = MakeTensor(ACL_FLOAT, {1});
      std::mt19937 rng(static_cast<uint32_t>(77 * ranks + rank));
      std::vector<Jitter> jitters(kBarriers);
      std::vector<Ticket> arrive(kBarriers), leave(kBarriers);
      for (int k = 0; k < kBarriers; ++k) {
        jitters[k] = RandomJitter(rng);
        arrive[k] = {&area_->clock, &area_->arrive[rank][k]};
        leave[k] = {&area_->clock, &area_->leave[rank][k]};
        aclrtLaunchHostFunc(stream, ApplyJitter, &jitters[k]);
        aclrtLaunchHostFunc(stream, TakeTicket, &arrive[k]);
        if (EnqueueBarrier(x_ref.tensor, group, ranks, stream) != 0) Die(area_, rank, 1, "barrier");
        aclrtLaunchHostFunc(stream, TakeTicket, &leave[k]);
      }
      int status = aclrtSynchronizeStream(stream);
      if (status != 0) Die(area_, rank, status, "aclrtSynchronizeStream");
      HcclCommDestroy(comm);
      aclFinalize();
      return 0;
    });
  }
  ExpectAllOk(RunProcesses(bodies));
  std::vector<std::vector<uint64_t>> arrive(ranks), leave(ranks);
  for (int rank = 0; rank < ranks; ++rank) {
    arrive[rank].assign(area_->arrive[rank], area_->arrive[rank] + kBarriers);
    leave[rank].assign(area_->leave[rank], area_->leave[rank] + kBarriers);
  }
  EXPECT_EQ(FirstViolation(arrive, leave), "");
}

INSTANTIATE_TEST_SUITE_P(Processes, ProcessPropertyTest, ::testing::Values(2, 4, 8),
                         [](const ::testing::TestParamInfo<int>& info) { return std::to_string(info.param) + "procs"; });

// --- a peer dies ---

TEST_F(ProcessTest, KillOfOneRankIsReportedNamingItThenSurvivorsGoOnElastically) {
  constexpr int kRanks = 4;
  constexpr int kVictim = 2;
  constexpr int kTimeoutUs = 10'000'000;  // 10 s: death must be seen long before
  std::vector<std::function<int()>> bodies;
  for (int rank = 0; rank < kRanks; ++rank) {
    bodies.push_back([&, rank] {
      HcclComm comm = JoinAsRank(area_, rank, kRanks);
      const std::string group = GroupName(comm);
      aclrtStream stream = NewStream();
      DeviceTensor x_ref = MakeTensor(ACL_FLOAT, {1});
      DeviceTensor timeout = MakeInt32Tensor({kTimeoutUs});
      for (int k = 0; k < 5; ++k) {
        int status = BarrierV2(x_ref.tensor, timeout.tensor, nullptr, group, kRanks, stream);
        if (status != 0) Die(area_, rank, status, "barrier before the kill");
      }
      if (rank == kVictim) raise(SIGKILL);
      auto start = std::chrono::steady_clock::now();
      int status = BarrierV2(x_ref.tensor, timeout.tensor, nullptr, group, kRanks, stream);
      area_->results[rank].value =
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
      area_->results[rank].status = status;
      std::snprintf(area_->results[rank].message, sizeof(area_->results[rank].message), "%s", aclGetRecentErrMsg());
      if (status != ACL_ERROR_RT_SUSPECT_REMOTE_ERROR) return 2;
      // Same communicator, a fresh stream, the dead rank left out.
      std::vector<int32_t> info = {1, kRanks - 1, 0, 0};
      for (int r = 0; r < kRanks; ++r) info.push_back(r == kVictim ? -1 : (r < kVictim ? r : r - 1));
      for (int r = 0; r < kRanks; ++r) info.push_back(r < kRanks - 1 ? (r < kVictim ? r : r + 1) : -1);
      DeviceTensor elastic = MakeInt32Tensor(info);
      aclrtStream fresh = NewStream();
      for (int k = 0; k < 3; ++k) {
        int again = BarrierV2(x_ref.tensor, timeout.tensor, elastic.tensor, group, kRanks, fresh);
        if (again != 0) Die(area_, rank, again, "elastic barrier after the kill");
      }
      aclFinalize();
      return 0;
    });
  }
  std::vector<Child> children = RunProcesses(bodies);
  ASSERT_TRUE(WIFSIGNALED(children[kVictim].wait_status));
  EXPECT_EQ(WTERMSIG(children[kVictim].wait_status), SIGKILL);
  const std::string victim = "rank 2 (pid " + std::to_string(children[kVictim].pid) + ") died";
  for (int rank = 0; rank < kRanks; ++rank) {
    if (rank == kVictim) continue;
    EXPECT_TRUE(ExitedZero(children[rank])) << rank << ": " << area_->results[rank].message;
    EXPECT_EQ(area_->results[rank].status, ACL_ERROR_RT_SUSPECT_REMOTE_ERROR);
    EXPECT_THAT(std::string(area_->results[rank].message), HasSubstr(victim));
    // Bound, not a speed claim: within the barrier's timeout + 10 %.
    EXPECT_LT(area_->results[rank].value, kTimeoutUs / 1000 * 11 / 10);
  }
}

// --- bad peers are refused; the job is not disturbed ---

TEST_F(ProcessTest, WrongSecretIsRefusedAndTheJobGoesOn) {
  constexpr int kRanks = 3;
  std::vector<std::function<int()>> bodies;
  for (int rank = 0; rank < kRanks; ++rank) {
    bodies.push_back([&, rank] {
      // Rank 1 joins only after the intruder was turned away, so rank 0 is still gathering
      // when the intruder comes (otherwise it might find the group already complete).
      if (rank == 1) {
        while (area_->intruder_done.load(std::memory_order_acquire) == 0) std::this_thread::yield();
      }
      HcclComm comm = JoinAsRank(area_, rank, kRanks);
      aclrtStream stream = NewStream();
      DeviceTensor x_ref = MakeTensor(ACL_FLOAT, {1});
      int status = BarrierV2(x_ref.tensor, nullptr, nullptr, GroupName(comm), kRanks, stream);
      if (status != 0) Die(area_, rank, status, "barrier");
      return 0;
    });
  }
  // The intruder knows where rank 0 listens but not the secret; it asks for rank 1.
  bodies.push_back([&] {
    aclrtSetDevice(0);
    HcclRootInfo root = AwaitRootInfo(area_);
    auto decoded = std::get<comm::RootInfo>(comm::RootInfo::Decode(root));
    decoded.secret[0] ^= 0xff;
    HcclRootInfo forged;
    decoded.Encode(&forged);
    HcclComm comm = nullptr;
    area_->results[kRanks].status = HcclCommInitRootInfo(kRanks, &forged, 1, &comm);
    std::snprintf(area_->results[kRanks].message, sizeof(area_->results[kRanks].message), "%s", aclGetRecentErrMsg());
    area_->intruder_done.store(1, std::memory_order_release);
    return 0;
  });
  std::vector<Child> children = RunProcesses(bodies);
  children.pop_back();
  ExpectAllOk(children);
  EXPECT_EQ(area_->results[kRanks].status, HCCL_E_PARA);
  EXPECT_THAT(std::string(area_->results[kRanks].message), HasSubstr("wrong secret"));
}

TEST_F(ProcessTest, ADuplicateRankIsRefusedAndTheJobGoesOn) {
  constexpr int kRanks = 3;
  // Processes 1 and 3 both ask for rank 1: exactly one gets it, the other is told why.
  std::vector<std::function<int()>> bodies;
  for (int process = 0; process < kRanks + 1; ++process) {
    const int rank = process == kRanks ? 1 : process;
    bodies.push_back([&, process, rank] {
      if (aclrtSetDevice(0) != ACL_SUCCESS) Die(area_, process, 1, "aclrtSetDevice");
      if (rank == 0) PublishRootInfo(area_);
      // Rank 2 comes only after one rank-1 process was refused, so both rank-1 hellos reach
      // rank 0 while it is still gathering.
      if (rank == 2) {
        while (area_->intruder_done.load(std::memory_order_acquire) == 0) std::this_thread::yield();
      }
      HcclRootInfo root = AwaitRootInfo(area_);
      HcclComm comm = nullptr;
      int status = HcclCommInitRootInfo(kRanks, &root, static_cast<uint32_t>(rank), &comm);
      area_->results[process].status = status;
      std::snprintf(area_->results[process].message, sizeof(area_->results[process].message), "%s",
                    aclGetRecentErrMsg());
      if (status != HCCL_SUCCESS) {
        area_->intruder_done.store(1, std::memory_order_release);
        return 0;
      }
      aclrtStream stream = NewStream();
      DeviceTensor x_ref = MakeTensor(ACL_FLOAT, {1});
      area_->results[process].value = BarrierV2(x_ref.tensor, nullptr, nullptr, GroupName(comm), kRanks, stream);
      return 0;
    });
  }
  std::vector<Child> children = RunProcesses(bodies);
  ExpectAllOk(children);
  const int winner = area_->results[1].status == HCCL_SUCCESS ? 1 : kRanks;
  const int loser = winner == 1 ? kRanks : 1;
  EXPECT_EQ(area_->results[loser].status, HCCL_E_PARA);
  EXPECT_THAT(std::string(area_->results[loser].message), HasSubstr("asked for rank 1, already taken"));
  for (int process : {0, 2, winner}) {
    EXPECT_EQ(area_->results[process].status, HCCL_SUCCESS) << area_->results[process].message;
    EXPECT_EQ(area_->results[process].value, 0) << "barrier of process " << process;
  }
}

TEST_F(ProcessTest, GarbageTruncatedAndOutOfRangeRootInfoAreRefusedLocally) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  HcclComm comm = nullptr;
  HcclRootInfo garbage;
  std::mt19937 rng(5);
  for (char& byte : garbage.internal) byte = static_cast<char>(rng());
  EXPECT_EQ(HcclCommInitRootInfo(2, &garbage, 1, &comm), HCCL_E_PARA);
  EXPECT_THAT(std::string(aclGetRecentErrMsg()), HasSubstr("does not come from HcclGetRootInfo"));
  HcclRootInfo real;
  ASSERT_EQ(HcclGetRootInfo(&real), HCCL_SUCCESS);
  HcclRootInfo truncated{};
  std::memcpy(truncated.internal, real.internal, 100);
  EXPECT_EQ(HcclCommInitRootInfo(2, &truncated, 1, &comm), HCCL_E_PARA);
  EXPECT_THAT(std::string(aclGetRecentErrMsg()), HasSubstr("damaged or truncated"));
  EXPECT_EQ(HcclCommInitRootInfo(2, &real, 2, &comm), HCCL_E_PARA);
  EXPECT_THAT(std::string(aclGetRecentErrMsg()), HasSubstr("rank 2 is not below nRanks 2"));
  EXPECT_EQ(HcclCommInitRootInfo(0, &real, 0, &comm), HCCL_E_PARA);
  aclFinalize();
}

// Statistics are recorded once per barrier per group, by the releasing arrival, into state every
// process shares (not once per process into its own copy): a reset in one process is seen in the
// other, and one more barrier then counts once for every rank.
TEST_F(ProcessTest, StatisticsAreOneRecordPerBarrierSharedByEveryProcess) {
  constexpr int kRanks = 2;
  constexpr int kBarriers = 20;
  std::vector<std::function<int()>> bodies;
  for (int rank = 0; rank < kRanks; ++rank) {
    bodies.push_back([&, rank] {
      HcclComm comm = JoinAsRank(area_, rank, kRanks);
      const std::string group = GroupName(comm);
      aclrtStream stream = NewStream();
      DeviceTensor x_ref = MakeTensor(ACL_FLOAT, {1});
      for (int k = 0; k < kBarriers; ++k) {
        if (EnqueueBarrier(x_ref.tensor, group, kRanks, stream) != 0) Die(area_, rank, 1, "barrier");
      }
      if (int status = aclrtSynchronizeStream(stream); status != 0) Die(area_, rank, status, "synchronize");
      distbarrierBarrierInfo info{};
      if (distbarrierGetLastBarrier(group.c_str(), &info, nullptr, 0) != 0) Die(area_, rank, 1, "last barrier");
      if (info.sequence != kBarriers) Die(area_, rank, 1, "last barrier is #" + std::to_string(info.sequence));
      if (rank == 0) {
        // Barrier kBarriers is recorded (GetLastBarrier waited for it): reset every rank's figures.
        if (distbarrierResetStats(group.c_str()) != 0) Die(area_, rank, 1, "reset");
        area_->stats_reset.store(1, std::memory_order_release);
      } else {
        while (area_->stats_reset.load(std::memory_order_acquire) == 0) std::this_thread::yield();
      }
      if (EnqueueBarrier(x_ref.tensor, group, kRanks, stream) != 0) Die(area_, rank, 1, "barrier");
      if (int status = aclrtSynchronizeStream(stream); status != 0) Die(area_, rank, status, "synchronize");
      if (distbarrierGetLastBarrier(group.c_str(), &info, nullptr, 0) != 0) Die(area_, rank, 1, "last barrier");
      distbarrierRankStats stats[kRanks];
      if (distbarrierGetRankStats(group.c_str(), stats, kRanks) != 0) Die(area_, rank, 1, "rank stats");
      area_->results[rank].value = static_cast<int64_t>(stats[0].barriers * 1000 + stats[1].barriers);
      HcclCommDestroy(comm);
      aclFinalize();
      return 0;
    });
  }
  ExpectAllOk(RunProcesses(bodies));
  for (int rank = 0; rank < kRanks; ++rank) {
    // 1001: one barrier each for ranks 0 and 1 since the reset, seen alike in both processes.
    EXPECT_EQ(area_->results[rank].value, 1001) << "process of rank " << rank;
  }
}

TEST_F(ProcessTest, ConnectTimeoutNamesTheRankThatNeverCame) {
  constexpr int kRanks = 3;  // rank 2 never starts
  setenv("DISTBARRIER_CONNECT_TIMEOUT_S", "1", 1);
  std::vector<std::function<int()>> bodies;
  for (int rank = 0; rank < 2; ++rank) {
    bodies.push_back([&, rank] {
      if (aclrtSetDevice(0) != ACL_SUCCESS) Die(area_, rank, 1, "aclrtSetDevice");
      if (rank == 0) PublishRootInfo(area_);
      HcclRootInfo root = AwaitRootInfo(area_);
      HcclComm comm = nullptr;
      area_->results[rank].status = HcclCommInitRootInfo(kRanks, &root, static_cast<uint32_t>(rank), &comm);
      std::snprintf(area_->results[rank].message, sizeof(area_->results[rank].message), "%s", aclGetRecentErrMsg());
      return 0;
    });
  }
  ExpectAllOk(RunProcesses(bodies));
  unsetenv("DISTBARRIER_CONNECT_TIMEOUT_S");
  for (int rank = 0; rank < 2; ++rank) {
    EXPECT_EQ(area_->results[rank].status, HCCL_E_TIMEOUT) << rank;
    EXPECT_THAT(std::string(area_->results[rank].message), HasSubstr("ranks [2] of 3 never connected")) << rank;
  }
}

// --- nothing is left behind ---

std::set<std::string> Entries(const char* directory) {
  std::set<std::string> names;
  if (DIR* dir = opendir(directory)) {
    while (dirent* entry = readdir(dir)) names.insert(entry->d_name);
    closedir(dir);
  }
  return names;
}

bool AbstractSocketOf(pid_t pid) {
  std::ifstream unix_sockets("/proc/net/unix");
  std::string line;
  const std::string ours = "@distbarrier-" + std::to_string(pid) + "-";
  while (std::getline(unix_sockets, line)) {
    if (line.find(ours) != std::string::npos) return true;
  }
  return false;
}

TEST_F(ProcessTest, KillOfAllRanksLeavesNothingInDevShmTmpOrSockets) {
  constexpr int kRanks = 4;
  const std::set<std::string> shm_before = Entries("/dev/shm");
  const std::set<std::string> tmp_before = Entries("/tmp");
  std::vector<std::function<int()>> bodies;
  for (int rank = 0; rank < kRanks; ++rank) {
    bodies.push_back([&, rank] {
      HcclComm comm = JoinAsRank(area_, rank, kRanks);
      aclrtStream stream = NewStream();
      DeviceTensor x_ref = MakeTensor(ACL_FLOAT, {1});
      for (int k = 0; k < 3; ++k) BarrierV2(x_ref.tensor, nullptr, nullptr, GroupName(comm), kRanks, stream);
      EnqueueBarrierV2(x_ref.tensor, nullptr, nullptr, GroupName(comm), kRanks, stream);  // in flight
      raise(SIGKILL);
      return 0;
    });
  }
  std::vector<Child> children = RunProcesses(bodies);
  for (const Child& child : children) {
    EXPECT_TRUE(WIFSIGNALED(child.wait_status));
    EXPECT_FALSE(AbstractSocketOf(child.pid)) << child.pid;
  }
  // What the library names there is per process (distbarrier-flight.<pid>.json): entries that
  // name one of the children. Tests that run meanwhile (ctest -j) make entries of their own.
  const auto from_children = [&](const std::string& name) {
    if (name.find("distbarrier") == std::string::npos) return false;
    for (const Child& child : children) {
      if (name.find(std::to_string(child.pid)) != std::string::npos) return true;
    }
    return false;
  };
  for (const std::string& name : Entries("/dev/shm")) {
    EXPECT_TRUE(shm_before.count(name) || !from_children(name)) << "/dev/shm/" << name;
  }
  for (const std::string& name : Entries("/tmp")) {
    EXPECT_TRUE(tmp_before.count(name) || !from_children(name)) << "/tmp/" << name;
  }
}

}  // namespace
}  // namespace distbarrier::testing
