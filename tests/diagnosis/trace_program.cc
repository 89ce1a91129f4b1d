// Writes a barrier trace for check_trace.py: `trace_program RANKS BARRIERS MODE SLOW_RANK`
// runs BARRIERS barriers on RANKS ranks with DISTBARRIER_TRACE set by the caller. SLOW_RANK
// (or -1) is made last in every barrier by construction: it waits until the others arrived,
// then 1 ms more. MODE says how the program ends:
//   finish  aclFinalize and exit 0
//   exit    one more barrier left pending on rank 0, then exit(3) without aclFinalize
//   abort   the same, then abort()
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "acl/acl.h"
#include "aclnnop/aclnn_distribute_barrier.h"
#include "comm/group.h"
#include "hccl/hccl.h"

namespace {

struct Gate {
  distbarrier::comm::Group* group;
  int slow_rank;
  uint64_t seq;
};

void WaitForOthersThenDelay(void* arg) {
  auto* gate = static_cast<Gate*>(arg);
  for (int rank = 0; rank < gate->group->Size(); ++rank) {
    while (rank != gate->slow_rank && gate->group->Window().ArrivedSequence(rank) < gate->seq) {
      std::this_thread::yield();
    }
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

void Check(int status, const char* what) {
  if (status != 0) {
    std::fprintf(stderr, "%s failed: %d %s\n", what, status, aclGetRecentErrMsg());
    std::exit(1);
  }
}

void EnqueueBarrier(aclTensor* x_ref, const char* group, int ranks, aclrtStream stream) {
  uint64_t size = 0;
  aclOpExecutor* executor = nullptr;
  Check(aclnnDistributeBarrierGetWorkspaceSize(x_ref, group, ranks, &size, &executor), "stage 1");
  Check(aclnnDistributeBarrier(nullptr, size, executor, stream), "stage 2");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: trace_program RANKS BARRIERS finish|exit|abort SLOW_RANK\n");
    return 2;
  }
  const int ranks = std::atoi(argv[1]);
  const int barriers = std::atoi(argv[2]);
  const std::string mode = argv[3];
  const int slow_rank = std::atoi(argv[4]);
  std::vector<int32_t> devices(ranks);
  for (int i = 0; i < ranks; ++i) devices[i] = i;
  std::vector<HcclComm> comms(ranks);
  Check(HcclCommInitAll(ranks, devices.data(), comms.data()), "HcclCommInitAll");
  char group[128];
  Check(HcclGetCommName(comms[0], group), "HcclGetCommName");
  Check(aclrtSetDevice(0), "aclrtSetDevice");
  auto* group_object = std::get<distbarrier::comm::Member>(distbarrier::comm::GroupRegistry::Instance().Find(group, 0))
                           .group.get();

  std::vector<aclrtStream> streams(ranks);
  std::vector<aclTensor*> x_refs(ranks);
  std::vector<Gate> gates(barriers);
  std::vector<std::thread> threads;
  for (int rank = 0; rank < ranks; ++rank) {
    threads.emplace_back([&, rank] {
      Check(aclrtSetDevice(rank), "aclrtSetDevice");
      Check(aclrtCreateStream(&streams[rank]), "aclrtCreateStream");
      void* data = nullptr;
      Check(aclrtMalloc(&data, 4, ACL_MEM_MALLOC_HUGE_FIRST), "aclrtMalloc");
      int64_t shape[1] = {1};
      x_refs[rank] = aclCreateTensor(shape, 1, ACL_FLOAT, nullptr, 0, ACL_FORMAT_ND, shape, 1, data);
      for (int k = 0; k < barriers; ++k) {
        if (rank == slow_rank) {
          gates[k] = {group_object, slow_rank, static_cast<uint64_t>(k + 1)};
          Check(aclrtLaunchHostFunc(streams[rank], WaitForOthersThenDelay, &gates[k]), "aclrtLaunchHostFunc");
        }
        EnqueueBarrier(x_refs[rank], group, ranks, streams[rank]);
      }
      Check(aclrtSynchronizeStream(streams[rank]), "aclrtSynchronizeStream");
    });
  }
  for (auto& thread : threads) thread.join();
  if (mode == "finish") {
    aclFinalize();
    return 0;
  }
  Check(aclrtSetDevice(0), "aclrtSetDevice");
  EnqueueBarrier(x_refs[0], group, ranks, streams[0]);  // never completes: rank 0 waits alone
  if (mode == "exit") std::exit(3);
  std::abort();
}
