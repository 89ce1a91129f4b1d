#include "runners.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <thread>

#include "acl/acl.h"
#include "aclnnop/aclnn_distribute_barrier.h"
#include "distbarrier/distbarrier.h"
#include "hccl/hccl.h"

namespace distbarrier::perf {
namespace {

// One rank: the phases, the rounds.

struct RankContext {
  const Options* options;
  int ranks;
  Shared* shared;
  double* figures;              // [impl][round][rank]
  std::barrier<>* std_barrier;  // threads mode
  const char* group;
};

// What one rank launches its barriers with: a stream of the current device, an xRef, and a
// repeatable executor (with its workspace) for `group`.
struct RankBarrier {
  aclrtStream stream = nullptr;
  void* data = nullptr;
  aclTensor* x = nullptr;
  aclOpExecutor* executor = nullptr;
  void* workspace = nullptr;
  uint64_t workspace_size = 0;

  RankBarrier(const char* group, int ranks) {
    CHECK_OK(aclrtCreateStream(&stream));
    CHECK_OK(aclrtMalloc(&data, 64, ACL_MEM_MALLOC_HUGE_FIRST));
    int64_t shape[1] = {16};
    x = aclCreateTensor(shape, 1, ACL_FLOAT, nullptr, 0, ACL_FORMAT_ND, shape, 1, data);
    if (x == nullptr) Die("aclCreateTensor", -1);
    CHECK_OK(aclnnDistributeBarrierGetWorkspaceSize(x, group, ranks, &workspace_size, &executor));
    CHECK_OK(aclSetAclOpExecutorRepeatable(executor));
    if (workspace_size > 0) CHECK_OK(aclrtMalloc(&workspace, workspace_size, ACL_MEM_MALLOC_HUGE_FIRST));
  }
  ~RankBarrier() {
    if (workspace != nullptr) aclrtFree(workspace);
    CHECK_OK(aclDestroyAclOpExecutor(executor));
    aclDestroyTensor(x);
    CHECK_OK(aclrtDestroyStream(stream));
    aclrtFree(data);
  }
  RankBarrier(const RankBarrier&) = delete;
  RankBarrier& operator=(const RankBarrier&) = delete;

  void Launch() const { CHECK_OK(aclnnDistributeBarrier(workspace, workspace_size, executor, stream)); }

  // The doc's pattern: stage 1 makes a single-use executor, stage 2 launches (and consumes) it.
  void PrepareAndLaunch(const char* group, int ranks) const {
    uint64_t size = 0;
    aclOpExecutor* single_use = nullptr;
    CHECK_OK(aclnnDistributeBarrierGetWorkspaceSize(x, group, ranks, &size, &single_use));
    CHECK_OK(aclnnDistributeBarrier(workspace, size, single_use, stream));
  }
};

void RunRank(const RankContext& c, int rank) {
  const Options& o = *c.options;
  const RankBarrier barrier(c.group, c.ranks);

  auto run = [&](int impl, int count) {
    switch (impl) {
      case kB2b:
      case kB2bStatsOff:
        for (int i = 0; i < count; ++i) barrier.Launch();
        CHECK_OK(aclrtSynchronizeStream(barrier.stream));
        break;
      case kStage12:
        for (int i = 0; i < count; ++i) barrier.PrepareAndLaunch(c.group, c.ranks);
        CHECK_OK(aclrtSynchronizeStream(barrier.stream));
        break;
      case kRoundTrip:
        for (int i = 0; i < count; ++i) {
          barrier.Launch();
          CHECK_OK(aclrtSynchronizeStream(barrier.stream));
        }
        break;
      case kStd:
        for (int i = 0; i < count; ++i) c.std_barrier->arrive_and_wait();
        break;
      case kPthread:
        for (int i = 0; i < count; ++i) pthread_barrier_wait(&c.shared->measured);
        break;
      case kCentral:
        for (int i = 0; i < count; ++i) c.shared->central.Wait();
        break;
    }
  };

  for (int round = 0; round < o.repeat; ++round) {
    for (int position = 0; position < kImplCount; ++position) {
      // Odd rounds run the implementations in reverse order, so that none is always the one
      // that runs first (after the control barrier's wake-ups) or right after another's load.
      const int impl = round % 2 == 0 ? position : kImplCount - 1 - position;
      if (!o.enabled[impl] || (impl == kStd && c.std_barrier == nullptr)) continue;
      // Statistics are switched per process (every rank of a process sets the same flag), and
      // back on only once every rank has left the phase.
      if (impl == kB2bStatsOff) CHECK_OK(distbarrierSetStatsEnabled(0));
      pthread_barrier_wait(&c.shared->control);
      run(impl, o.warmup);
      pthread_barrier_wait(&c.shared->control);
      const auto begin = Clock::now();
      run(impl, o.iterations);
      const double ns = std::chrono::duration<double, std::nano>(Clock::now() - begin).count() / o.iterations;
      c.figures[(static_cast<size_t>(impl) * o.repeat + round) * c.ranks + rank] = ns;
      if (impl == kB2bStatsOff) {
        pthread_barrier_wait(&c.shared->control);
        CHECK_OK(distbarrierSetStatsEnabled(1));
      }
    }
  }
  pthread_barrier_wait(&c.shared->control);
}

// The row from the figures the ranks left in the shared area.
Row Summarize(const Options& o, int ranks, const double* figures, bool std_measured) {
  Row row;
  row.ranks = ranks;
  for (int impl = 0; impl < kImplCount; ++impl) {
    row.figure[impl] = NAN;
    if (!o.enabled[impl] || (impl == kStd && !std_measured)) continue;
    for (int round = 0; round < o.repeat; ++round) {
      const double* per_rank = figures + (static_cast<size_t>(impl) * o.repeat + round) * ranks;
      row.rounds[impl].push_back(*std::max_element(per_rank, per_rank + ranks));
    }
    row.figure[impl] = Median(row.rounds[impl]);
  }
  return row;
}

}  // namespace

Row MeasureThreads(const Options& o, int ranks) {
  SharedArea area(static_cast<size_t>(kImplCount) * o.repeat * ranks);
  InitPthreadBarrier(&area.shared->control, ranks, false);
  InitPthreadBarrier(&area.shared->measured, ranks, false);
  area.shared->central.ranks = ranks;
  std::vector<int32_t> devices(ranks);
  for (int i = 0; i < ranks; ++i) devices[i] = i;
  std::vector<HcclComm> comms(ranks);
  CHECK_OK(HcclCommInitAll(ranks, devices.data(), comms.data()));
  char group[128] = {0};
  CHECK_OK(HcclGetCommName(comms[0], group));
  std::barrier<> std_barrier(ranks);
  RankContext context{&o, ranks, area.shared, area.figures, &std_barrier, group};
  std::vector<std::thread> threads;
  threads.reserve(ranks);
  for (int rank = 0; rank < ranks; ++rank) {
    threads.emplace_back([&, rank] {
      CHECK_OK(aclrtSetDevice(rank));
      RunRank(context, rank);
    });
  }
  for (auto& thread : threads) thread.join();
  for (HcclComm comm : comms) CHECK_OK(HcclCommDestroy(comm));
  return Summarize(o, ranks, area.figures, true);
}

void RunRankProcesses(int ranks, const std::function<void(int rank)>& body) {
  std::fflush(nullptr);
  std::vector<pid_t> pids;
  for (int rank = 0; rank < ranks; ++rank) {
    pid_t pid = fork();
    if (pid < 0) {
      std::perror("distbarrier-perf: fork");
      for (pid_t child : pids) kill(child, SIGKILL);
      std::exit(1);
    }
    if (pid == 0) {
      body(rank);
      std::fflush(nullptr);
      _exit(0);
    }
    pids.push_back(pid);
    AddChild(pid);
  }
  // Wait for all; the first failure stops the others (they would wait forever for it).
  size_t left = pids.size();
  bool failed = false;
  while (left > 0) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0) break;
    if (std::find(pids.begin(), pids.end(), pid) == pids.end()) continue;
    --left;
    if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0) && !failed) {
      failed = true;
      const int rank = static_cast<int>(std::find(pids.begin(), pids.end(), pid) - pids.begin());
      std::fprintf(stderr, "distbarrier-perf: rank %d (pid %d) of %d %s %d\n", rank, pid, ranks,
                   WIFSIGNALED(status) ? "was killed by signal" : "exited with",
                   WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
      for (pid_t other : pids) kill(other, SIGKILL);
    }
  }
  ForgetChildren();
  if (failed) std::exit(1);
}

// --bind: rank r on the r-th CPU of the allowed set when every rank gets its own (the runtime's
// threads it starts later inherit it); otherwise unbound, as mpirun leaves oversubscribed ranks.
static void BindToOwnCpu(int rank, int ranks) {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0 || ranks > CPU_COUNT(&allowed)) return;
  int seen = 0;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &allowed) || seen++ != rank) continue;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    if (sched_setaffinity(0, sizeof(one), &one) != 0) std::perror("distbarrier-perf: sched_setaffinity");
    return;
  }
}

Row MeasureProcesses(const Options& o, int ranks) {
  SharedArea area(static_cast<size_t>(kImplCount) * o.repeat * ranks);
  InitPthreadBarrier(&area.shared->control, ranks, true);
  InitPthreadBarrier(&area.shared->measured, ranks, true);
  area.shared->central.ranks = ranks;
  RunRankProcesses(ranks, [&](int rank) {
    if (o.bind) BindToOwnCpu(rank, ranks);
    Shared* shared = area.shared;
    CHECK_OK(aclInit(nullptr));
    CHECK_OK(aclrtSetDevice(rank % 16));
    if (rank == 0) {
      CHECK_OK(HcclGetRootInfo(&shared->root));
      shared->root_ready.store(1, std::memory_order_release);
    } else {
      while (shared->root_ready.load(std::memory_order_acquire) == 0) sched_yield();
    }
    HcclRootInfo root;
    std::memcpy(&root, &shared->root, sizeof(root));
    HcclComm comm = nullptr;
    CHECK_OK(HcclCommInitRootInfo(ranks, &root, rank, &comm));
    char group[128] = {0};
    CHECK_OK(HcclGetCommName(comm, group));
    RankContext context{&o, ranks, shared, area.figures, nullptr, group};
    RunRank(context, rank);
    CHECK_OK(HcclCommDestroy(comm));
    CHECK_OK(aclFinalize());
  });
  return Summarize(o, ranks, area.figures, false);
}

double LaunchNs(int launches) {
  int32_t devices[2] = {0, 1};
  HcclComm comms[2] = {nullptr, nullptr};
  CHECK_OK(HcclCommInitAll(2, devices, comms));
  char group[128] = {0};
  CHECK_OK(HcclGetCommName(comms[0], group));
  double ns = 0;
  {
    CHECK_OK(aclrtSetDevice(0));
    const RankBarrier first(group, 2);
    CHECK_OK(aclrtSetDevice(1));
    const RankBarrier second(group, 2);
    // In runs that fit a stream's queue (DISTBARRIER_STREAM_QUEUE_DEPTH, default 4096): a launch
    // into a full queue would wait for room that only rank 1's launches, after it, can make.
    constexpr int kRun = 1024;
    Clock::duration launching{};
    for (int done = 0; done < launches;) {
      const int run = std::min(kRun, launches - done);
      first.Launch();  // waits for rank 1
      const auto begin = Clock::now();
      for (int i = 0; i < run; ++i) first.Launch();
      launching += Clock::now() - begin;
      for (int i = 0; i <= run; ++i) second.Launch();
      CHECK_OK(aclrtSynchronizeStream(first.stream));
      CHECK_OK(aclrtSynchronizeStream(second.stream));
      done += run;
    }
    ns = std::chrono::duration<double, std::nano>(launching).count() / launches;
  }
  for (HcclComm comm : comms) CHECK_OK(HcclCommDestroy(comm));
  return ns;
}

}  // namespace distbarrier::perf
