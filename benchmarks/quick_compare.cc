// A first side-by-side measurement (the full instrument is distbarrier-perf, a later issue):
// per-barrier time of distbarrier (K barriers enqueued per rank, then one sync) with arrival
// statistics on and off, next to std::barrier with the same number of threads, in the same
// run, each the median of 5 alternating rounds. Also the CPU that idle streams cost.
// Prints a table; asserts nothing.
//   quick_compare [iterations=2000] [idle_seconds=10]
#include <sys/resource.h>

#include <algorithm>
#include <barrier>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "acl/acl.h"
#include "aclnnop/aclnn_distribute_barrier.h"
#include "distbarrier/distbarrier.h"
#include "hccl/hccl.h"

namespace {

using Clock = std::chrono::steady_clock;

double DistbarrierNsPerBarrier(int ranks, int iterations) {
  std::vector<int32_t> devices(ranks);
  for (int i = 0; i < ranks; ++i) devices[i] = i;
  std::vector<HcclComm> comms(ranks);
  HcclCommInitAll(ranks, devices.data(), comms.data());
  char name[128];
  HcclGetCommName(comms[0], name);
  std::barrier start(ranks + 1);
  std::vector<std::thread> threads;
  for (int rank = 0; rank < ranks; ++rank) {
    threads.emplace_back([&, rank] {
      aclrtSetDevice(rank);
      aclrtStream stream;
      aclrtCreateStream(&stream);
      int64_t shape[1] = {1};
      void* data;
      aclrtMalloc(&data, 4, ACL_MEM_MALLOC_HUGE_FIRST);
      aclTensor* x = aclCreateTensor(shape, 1, ACL_FLOAT, shape, 0, ACL_FORMAT_ND, shape, 1, data);
      auto enqueue = [&] {
        uint64_t size;
        aclOpExecutor* executor;
        aclnnDistributeBarrierGetWorkspaceSize(x, name, ranks, &size, &executor);
        aclnnDistributeBarrier(nullptr, size, executor, stream);
      };
      for (int i = 0; i < 100; ++i) enqueue();  // warm-up
      aclrtSynchronizeStream(stream);
      start.arrive_and_wait();
      for (int i = 0; i < iterations; ++i) enqueue();
      aclrtSynchronizeStream(stream);
      start.arrive_and_wait();
    });
  }
  start.arrive_and_wait();
  auto begin = Clock::now();
  start.arrive_and_wait();
  auto end = Clock::now();
  for (auto& thread : threads) thread.join();
  for (auto comm : comms) HcclCommDestroy(comm);
  return std::chrono::duration<double, std::nano>(end - begin).count() / iterations;
}

double StdBarrierNsPerBarrier(int ranks, int iterations) {
  std::barrier barrier(ranks);
  std::vector<std::thread> threads;
  auto begin = Clock::now();
  for (int rank = 0; rank < ranks; ++rank) {
    threads.emplace_back([&] {
      for (int i = 0; i < iterations; ++i) barrier.arrive_and_wait();
    });
  }
  for (auto& thread : threads) thread.join();
  return std::chrono::duration<double, std::nano>(Clock::now() - begin).count() / iterations;
}

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec + (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  const int iterations = argc > 1 ? std::stoi(argv[1]) : 2000;
  const int idle_seconds = argc > 2 ? std::stoi(argv[2]) : 10;
  aclInit(nullptr);
  std::printf("%6s %14s %14s %14s %12s %12s\n", "ranks", "stats on ns", "stats off ns", "std::barrier", "on/off",
              "on/std");
  auto median = [](std::vector<double> values) {
    std::sort(values.begin(), values.end());
    return values[values.size() / 2];
  };
  for (int ranks : {2, 4, 8, 16}) {
    std::vector<double> on, off, std_barrier;
    for (int round = 0; round < 5; ++round) {
      distbarrierSetStatsEnabled(1);
      on.push_back(DistbarrierNsPerBarrier(ranks, iterations));
      distbarrierSetStatsEnabled(0);
      off.push_back(DistbarrierNsPerBarrier(ranks, iterations));
      std_barrier.push_back(StdBarrierNsPerBarrier(ranks, iterations));
    }
    distbarrierSetStatsEnabled(1);
    std::printf("%6d %14.0f %14.0f %14.0f %12.3f %12.2f\n", ranks, median(on), median(off), median(std_barrier),
                median(on) / median(off), median(on) / median(std_barrier));
  }
  // Idle cost: 16 devices x 3 streams, each used once (so its worker exists), then idle.
  std::vector<aclrtStream> streams;
  for (int device = 0; device < 16; ++device) {
    aclrtSetDevice(device);
    for (int i = 0; i < 3; ++i) {
      aclrtStream stream;
      aclrtCreateStream(&stream);
      aclrtLaunchHostFunc(stream, [](void*) {}, nullptr);
      aclrtSynchronizeStream(stream);
      streams.push_back(stream);
    }
  }
  double cpu_before = CpuSeconds();
  auto wall_before = Clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(idle_seconds));
  double cpu = CpuSeconds() - cpu_before;
  double wall = std::chrono::duration<double>(Clock::now() - wall_before).count();
  std::printf("idle: %zu streams for %.1f s used %.4f s of CPU = %.3f%% of one core\n", streams.size(), wall, cpu,
              100.0 * cpu / wall);
  aclFinalize();
  return 0;
}
