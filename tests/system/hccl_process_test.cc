// HCCL collectives and send/receive over processes (HcclCommInitRootInfo): the cases of hccl_world.h with the
// data moving through the group's shared-memory slots, HCCL_BUFFSIZE=1 (MB) so that large
// calls go in pieces; one rank per process, and two ranks (threads) per process as CANN's
// examples run them. Ranks are forked before anything touches the runtime; they share an
// anonymous MAP_SHARED area with the parent for the root info and their results.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <thread>
#include <vector>

#include "op/hccl_world.h"

namespace distbarrier::testing::hccl {
namespace {

constexpr int kMaxRanks = 16;

struct SharedArea {
  std::atomic<int> ready;
  HcclRootInfo root;
  char message[kMaxRanks][512];
  std::atomic<int> finished;
};

// One rank: joins the group and runs the cases; the failure, if any, lands in the area.
void RunRank(SharedArea* area, int ranks, int rank, int device, const std::vector<Case>& cases) {
  auto fail = [&](const std::string& what) {
    std::snprintf(area->message[rank], sizeof(area->message[rank]), "%s", what.c_str());
  };
  if (aclrtSetDevice(device) != 0) return fail(std::string("aclrtSetDevice: ") + aclGetRecentErrMsg());
  if (rank == 0) {
    HcclRootInfo made;
    if (HcclGetRootInfo(&made) != HCCL_SUCCESS) return fail(std::string("HcclGetRootInfo: ") + aclGetRecentErrMsg());
    area->root = made;
    area->ready.store(1, std::memory_order_release);
  }
  while (area->ready.load(std::memory_order_acquire) == 0) std::this_thread::yield();
  HcclRootInfo root = area->root;
  HcclComm comm = nullptr;
  if (HcclCommInitRootInfo(static_cast<uint32_t>(ranks), &root, static_cast<uint32_t>(rank), &comm) != HCCL_SUCCESS) {
    return fail(std::string("HcclCommInitRootInfo: ") + aclGetRecentErrMsg());
  }
  aclrtStream stream = nullptr;
  if (aclrtCreateStream(&stream) != 0) return fail("aclrtCreateStream");
  for (const Case& c : cases) {
    if (std::string error = RunCase(c, comm, stream); !error.empty()) return fail(error);
  }
  // Point to point after the collectives: small, odd, and larger than a slot (1 MB).
  uint64_t salt = 0;
  for (uint64_t count : {uint64_t{0}, uint64_t{1031}, uint64_t{300007}}) {
    if (std::string error = RunPointToPoint(comm, stream, HCCL_DATA_TYPE_FP32, count, ++salt); !error.empty()) {
      return fail(error);
    }
  }
  aclrtDestroyStream(stream);
  area->finished.fetch_add(1, std::memory_order_acq_rel);
  // Leave together: a process that exits is a dead peer to a group still running.
  while (area->finished.load(std::memory_order_acquire) < ranks) std::this_thread::yield();
  HcclCommDestroy(comm);
}

// `processes` processes with `threads` ranks each (rank = process * threads + thread, on
// device `thread`); returns the ranks' failures.
std::vector<std::string> RunOnProcesses(int processes, int threads, const std::vector<Case>& cases) {
  void* memory = mmap(nullptr, sizeof(SharedArea), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) return {"mmap failed"};
  auto* area = new (memory) SharedArea{};
  const int ranks = processes * threads;
  setenv("HCCL_EXEC_TIMEOUT", "60", 0);  // a failure is a message, never a hang
  std::vector<pid_t> children;
  for (int process = 0; process < processes; ++process) {
    const pid_t pid = fork();
    if (pid == 0) {
      std::vector<std::thread> workers;
      for (int thread = 0; thread < threads; ++thread) {
        workers.emplace_back([&, thread] { RunRank(area, ranks, process * threads + thread, thread, cases); });
      }
      for (auto& worker : workers) worker.join();
      aclFinalize();
      _exit(0);
    }
    children.push_back(pid);
  }
  std::vector<std::string> failures;
  for (pid_t pid : children) {
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failures.push_back("a rank process exited abnormally");
  }
  for (int rank = 0; rank < ranks; ++rank) {
    if (area->message[rank][0] != '\0') failures.push_back(area->message[rank]);
  }
  munmap(memory, sizeof(SharedArea));
  return failures;
}

std::vector<Case> EveryCollective(uint64_t count, uint32_t root) {
  std::vector<Case> cases;
  uint64_t salt = count;
  for (HcclDataType type : {HCCL_DATA_TYPE_FP32, HCCL_DATA_TYPE_BFP16, HCCL_DATA_TYPE_INT64}) {
    cases.push_back({.kind = Kind::kAllReduce, .type = type, .count = count, .salt = ++salt});
  }
  cases.push_back({.kind = Kind::kAllReduce,
                   .type = HCCL_DATA_TYPE_FP16,
                   .op = HCCL_REDUCE_MAX,
                   .count = count,
                   .in_place = true,
                   .salt = ++salt});
  cases.push_back({.kind = Kind::kReduce,
                   .type = HCCL_DATA_TYPE_INT16,
                   .op = HCCL_REDUCE_PROD,
                   .count = count,
                   .root = root,
                   .salt = ++salt});
  cases.push_back({.kind = Kind::kReduceScatter,
                   .type = HCCL_DATA_TYPE_FP64,
                   .op = HCCL_REDUCE_MIN,
                   .count = count,
                   .in_place = true,
                   .salt = ++salt});
  for (Kind kind :
       {Kind::kBroadcast, Kind::kAllGather, Kind::kAlltoAll, Kind::kAlltoAllV, Kind::kAlltoAllVC, Kind::kScatter}) {
    cases.push_back({.kind = kind, .type = HCCL_DATA_TYPE_INT128, .count = count, .root = root, .salt = ++salt});
  }
  cases.push_back({.kind = Kind::kAllGatherV, .type = HCCL_DATA_TYPE_INT128, .count = count, .salt = ++salt});
  cases.push_back({.kind = Kind::kReduceScatterV,
                   .type = HCCL_DATA_TYPE_BFP16,
                   .op = HCCL_REDUCE_SUM,
                   .count = count,
                   .salt = ++salt});
  return cases;
}

TEST(HcclProcessTest, EveryCollectiveOnFourProcesses) {
  std::vector<Case> cases;
  for (uint64_t count : {0, 1, 1031}) {
    for (const Case& c : EveryCollective(count, static_cast<uint32_t>(count % 4))) cases.push_back(c);
  }
  EXPECT_THAT(RunOnProcesses(4, 1, cases), ::testing::IsEmpty());
}

// HCCL_BUFFSIZE is 1 MB (the test's environment): each call moves several slots' worth.
TEST(HcclProcessTest, DataLargerThanTheSlotMovesInPieces) {
  std::vector<Case> cases = EveryCollective(70001, 2);  // 1.1 MB of int128 per block
  cases.push_back({.kind = Kind::kAllReduce, .type = HCCL_DATA_TYPE_FP32, .count = 700001, .in_place = true});
  EXPECT_THAT(RunOnProcesses(3, 1, cases), ::testing::IsEmpty());
}

// Two ranks per process, one thread per device, one shared root info: CANN's examples.
TEST(HcclProcessTest, TwoRanksPerProcess) {
  std::vector<Case> cases = EveryCollective(517, 3);
  EXPECT_THAT(RunOnProcesses(2, 2, cases), ::testing::IsEmpty());
}

}  // namespace
}  // namespace distbarrier::testing::hccl
