#include "stage1.h"

#include <pthread.h>
#include <time.h>

#include <algorithm>
#include <barrier>
#include <cstdio>
#include <thread>

#include "acl/acl.h"
#include "aclnnop/aclnn_distribute_barrier.h"
#include "hccl/hccl.h"

namespace distbarrier::perf {
namespace {

double ThreadCpuNs() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) * 1e9 + static_cast<double>(now.tv_nsec);
}

constexpr int kBatch = 500;  // executors made before they are destroyed (untimed) in the stage-1-alone loop

struct ThreadFigures {
  std::vector<double> alone;         // per round
  std::vector<double> with_destroy;  // per round
};

// One thread, rank `rank` of `group`: rounds of `calls` stage 1 calls, timed alone (executors
// destroyed afterwards, untimed) and then with their destroy.
void RunThread(const Options& o, const char* group, int ranks, int rank, std::barrier<>& start, ThreadFigures* out) {
  CHECK_OK(aclrtSetDevice(rank));
  void* data = nullptr;
  CHECK_OK(aclrtMalloc(&data, 64, ACL_MEM_MALLOC_HUGE_FIRST));
  int64_t shape[1] = {16};
  aclTensor* x = aclCreateTensor(shape, 1, ACL_FLOAT, nullptr, 0, ACL_FORMAT_ND, shape, 1, data);
  if (x == nullptr) Die("aclCreateTensor", -1);
  std::vector<aclOpExecutor*> executors(kBatch);
  uint64_t size = 0;
  const int calls = std::max(o.iterations, kBatch) / kBatch * kBatch;
  auto make_batch = [&] {
    for (aclOpExecutor*& executor : executors) {
      CHECK_OK(aclnnDistributeBarrierGetWorkspaceSize(x, group, ranks, &size, &executor));
    }
  };
  auto destroy_batch = [&] {
    for (aclOpExecutor* executor : executors) CHECK_OK(aclDestroyAclOpExecutor(executor));
  };
  make_batch();  // warm-up
  destroy_batch();
  for (int round = 0; round < o.repeat; ++round) {
    start.arrive_and_wait();
    double timed = 0;
    for (int done = 0; done < calls; done += kBatch) {
      const double begin = ThreadCpuNs();
      make_batch();
      timed += ThreadCpuNs() - begin;
      destroy_batch();
    }
    out->alone.push_back(timed / calls);
    start.arrive_and_wait();
    const double begin = ThreadCpuNs();
    for (int i = 0; i < calls; ++i) {
      aclOpExecutor* executor = nullptr;
      CHECK_OK(aclnnDistributeBarrierGetWorkspaceSize(x, group, ranks, &size, &executor));
      CHECK_OK(aclDestroyAclOpExecutor(executor));
    }
    out->with_destroy.push_back((ThreadCpuNs() - begin) / calls);
  }
  CHECK_OK(aclDestroyTensor(x));
  CHECK_OK(aclrtFree(data));
}

Stage1Figures Measure(const Options& o, int threads) {
  const int ranks = std::max(threads, 2);  // a group has 2 ranks at least; one thread uses rank 0
  std::vector<int32_t> devices(ranks);
  for (int i = 0; i < ranks; ++i) devices[i] = i;
  std::vector<HcclComm> comms(ranks);
  CHECK_OK(HcclCommInitAll(ranks, devices.data(), comms.data()));
  char group[128] = {0};
  CHECK_OK(HcclGetCommName(comms[0], group));
  std::barrier<> start(threads);
  std::vector<ThreadFigures> figures(threads);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] { RunThread(o, group, ranks, t, start, &figures[t]); });
  }
  for (auto& worker : workers) worker.join();
  for (HcclComm comm : comms) CHECK_OK(HcclCommDestroy(comm));

  Stage1Figures result;
  result.threads = threads;
  std::vector<double> alone, destroy, slowest;
  for (const ThreadFigures& f : figures) {
    alone.insert(alone.end(), f.alone.begin(), f.alone.end());
    destroy.insert(destroy.end(), f.with_destroy.begin(), f.with_destroy.end());
    slowest.push_back(Median(f.alone));
  }
  result.call_ns = Median(alone);
  result.call_ns_max = *std::max_element(slowest.begin(), slowest.end());
  result.with_destroy_ns = Median(destroy);
  return result;
}

}  // namespace

std::vector<Stage1Figures> MeasureStage1(const Options& o) {
  std::vector<int> counts{1};
  for (int ranks : o.ranks) {
    if (ranks > 1) counts.push_back(ranks);
  }
  std::vector<Stage1Figures> rows;
  for (int threads : counts) {
    Stage1Figures row = Measure(o, threads);
    std::printf(
        "# stage 1 (aclnnDistributeBarrierGetWorkspaceSize), %2d thread%s at once: %6.0f ns per call (slowest "
        "thread %6.0f), %6.0f ns with aclDestroyAclOpExecutor; thread CPU time\n",
        threads, threads == 1 ? " " : "s", row.call_ns, row.call_ns_max, row.with_destroy_ns);
    std::fflush(stdout);
    rows.push_back(row);
  }
  return rows;
}

}  // namespace distbarrier::perf
