#include "collectives.h"

#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <barrier>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "acl/acl.h"
#include "common.h"
#include "hccl/hccl.h"
#include "mpirun.h"

namespace distbarrier::perf {
namespace {

constexpr int kMaxSizes = 64, kMaxRounds = 32, kMaxRanks = 64;

struct CollOptions {
  std::string coll = "allreduce";
  int ranks = 8;
  std::string min_size = "8", max_size = "128M";
  int factor = 2;
  int iterations = 20, warmup = 5, repeat = 5;
  std::string mode = "threads";
  double timeout_s = 0;
  bool alltoall() const { return coll == "alltoall"; }
};

// "8", "64K", "128M", "1G": bytes; 0 when malformed.
uint64_t ParseSize(const std::string& text) {
  char* end = nullptr;
  const unsigned long long value = std::strtoull(text.c_str(), &end, 10);
  if (end == text.c_str()) return 0;
  switch (*end) {
    case '\0': return value;
    case 'K':
    case 'k': return value << 10;
    case 'M':
    case 'm': return value << 20;
    case 'G':
    case 'g': return value << 30;
    default: return 0;
  }
}

// Figures of one run, [size][round][rank], in microseconds per call.
struct Figures {
  double us[kMaxSizes][kMaxRounds][kMaxRanks];
};

// The processes' shared area: the control barrier, the root info, the figures.
struct Shared {
  pthread_barrier_t control;
  std::atomic<int> ready;
  HcclRootInfo root;
  Figures figures;
};

// One rank's measurement: for every size and round, warm-up calls, the control barrier, then
// `iterations` calls enqueued back to back and one aclrtSynchronizeStream.
void RankLoop(const CollOptions& o, const std::vector<uint64_t>& sizes, HcclComm comm, int rank, int ranks,
              const std::function<void()>& control, Figures* figures) {
  aclrtStream stream = nullptr;
  CHECK_OK(aclrtCreateStream(&stream));
  const uint64_t most = std::max<uint64_t>(sizes.back(), 64);
  void* send = nullptr;
  void* recv = nullptr;
  CHECK_OK(aclrtMalloc(&send, most, ACL_MEM_MALLOC_HUGE_FIRST));
  CHECK_OK(aclrtMalloc(&recv, most, ACL_MEM_MALLOC_HUGE_FIRST));
  std::vector<float> ones(most / sizeof(float), 1.0f);
  CHECK_OK(aclrtMemcpy(send, most, ones.data(), ones.size() * sizeof(float), ACL_MEMCPY_HOST_TO_DEVICE));
  std::memset(recv, 0, most);  // touch every page before timing (device memory is host memory here)
  for (size_t s = 0; s < sizes.size(); ++s) {
    const uint64_t count = sizes[s] / sizeof(float);
    auto call = [&] {
      if (o.alltoall()) {
        const uint64_t per_peer = count / static_cast<uint64_t>(ranks);
        CHECK_OK(HcclAlltoAll(send, per_peer, HCCL_DATA_TYPE_FP32, recv, per_peer, HCCL_DATA_TYPE_FP32, comm, stream));
      } else {
        CHECK_OK(HcclAllReduce(send, recv, count, HCCL_DATA_TYPE_FP32, HCCL_REDUCE_SUM, comm, stream));
      }
    };
    for (int round = 0; round < o.repeat; ++round) {
      for (int i = 0; i < o.warmup; ++i) call();
      CHECK_OK(aclrtSynchronizeStream(stream));
      control();
      const auto begin = Clock::now();
      for (int i = 0; i < o.iterations; ++i) call();
      CHECK_OK(aclrtSynchronizeStream(stream));
      figures->us[s][round][rank] =
          std::chrono::duration<double, std::micro>(Clock::now() - begin).count() / o.iterations;
    }
  }
  CHECK_OK(aclrtFree(send));
  CHECK_OK(aclrtFree(recv));
  CHECK_OK(aclrtDestroyStream(stream));
}

void MeasureThreads(const CollOptions& o, const std::vector<uint64_t>& sizes, Figures* figures) {
  CHECK_OK(aclInit(nullptr));
  std::vector<int32_t> devices(static_cast<size_t>(o.ranks));
  for (int i = 0; i < o.ranks; ++i) devices[i] = i;
  std::vector<HcclComm> comms(devices.size());
  CHECK_OK(HcclCommInitAll(static_cast<uint32_t>(o.ranks), devices.data(), comms.data()));
  std::barrier<> control(o.ranks);
  std::vector<std::thread> threads;
  for (int rank = 0; rank < o.ranks; ++rank) {
    threads.emplace_back([&, rank] {
      CHECK_OK(aclrtSetDevice(rank));
      RankLoop(
          o, sizes, comms[rank], rank, o.ranks, [&] { control.arrive_and_wait(); }, figures);
    });
  }
  for (auto& thread : threads) thread.join();
  for (HcclComm comm : comms) CHECK_OK(HcclCommDestroy(comm));
  aclFinalize();
}

// One process per rank, one root info (HcclCommInitRootInfo): the data moves through the
// group's shared memory.
void MeasureProcesses(const CollOptions& o, const std::vector<uint64_t>& sizes, Figures* figures) {
  void* memory = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) Die("mmap", -1);
  auto* shared = new (memory) Shared{};
  pthread_barrierattr_t attributes;
  pthread_barrierattr_init(&attributes);
  pthread_barrierattr_setpshared(&attributes, PTHREAD_PROCESS_SHARED);
  pthread_barrier_init(&shared->control, &attributes, static_cast<unsigned>(o.ranks));
  std::vector<pid_t> children;
  std::fflush(nullptr);
  for (int rank = 0; rank < o.ranks; ++rank) {
    const pid_t pid = fork();
    if (pid < 0) Die("fork", -1);
    if (pid == 0) {
      CHECK_OK(aclrtSetDevice(0));
      if (rank == 0) {
        HcclRootInfo root;
        CHECK_OK(HcclGetRootInfo(&root));
        shared->root = root;
        shared->ready.store(1, std::memory_order_release);
      }
      while (shared->ready.load(std::memory_order_acquire) == 0) std::this_thread::yield();
      HcclRootInfo root = shared->root;
      HcclComm comm = nullptr;
      CHECK_OK(HcclCommInitRootInfo(static_cast<uint32_t>(o.ranks), &root, static_cast<uint32_t>(rank), &comm));
      RankLoop(
          o, sizes, comm, rank, o.ranks, [&] { pthread_barrier_wait(&shared->control); }, &shared->figures);
      pthread_barrier_wait(&shared->control);  // nobody leaves while a peer still runs
      CHECK_OK(HcclCommDestroy(comm));
      aclFinalize();
      _exit(0);
    }
    AddChild(pid);
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) Die("a rank process", status);
  }
  ForgetChildren();
  *figures = shared->figures;
  munmap(memory, sizeof(Shared));
}

// GB/s of one core copying `bytes` between two warm buffers.
double MemcpyGbps(uint64_t bytes, int repeat) {
  std::vector<char> from(std::max<uint64_t>(bytes, 1), 1), to(std::max<uint64_t>(bytes, 1), 0);
  const int copies =
      static_cast<int>(std::clamp<uint64_t>((uint64_t{256} << 20) / std::max<uint64_t>(bytes, 1), 2, 100000));
  std::vector<double> rounds;
  std::memcpy(to.data(), from.data(), bytes);
  for (int round = 0; round < repeat; ++round) {
    const auto begin = Clock::now();
    for (int i = 0; i < copies; ++i) {
      std::memcpy(to.data(), from.data(), bytes);
      asm volatile("" : : "r"(to.data()) : "memory");  // keeps every copy
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - begin).count();
    rounds.push_back(static_cast<double>(bytes) * copies / seconds / 1e9);
  }
  return Median(rounds);
}

struct Spread {
  double median = NAN, low = NAN, high = NAN;
};

Spread RoundsOf(const Figures& figures, size_t size, int repeat, int ranks) {
  std::vector<double> rounds;
  for (int round = 0; round < repeat; ++round) {
    double slowest = 0;
    for (int rank = 0; rank < ranks; ++rank) slowest = std::max(slowest, figures.us[size][round][rank]);
    rounds.push_back(slowest);
  }
  std::sort(rounds.begin(), rounds.end());
  return {Median(rounds), rounds.front(), rounds.back()};
}

}  // namespace

bool WantsCollectives(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--coll") == 0 || std::strncmp(argv[i], "--coll=", 7) == 0) return true;
  }
  return false;
}

int RunCollectives(int argc, char** argv) {
  CollOptions o;
  CLI::App app{"distbarrier-perf --coll: HCCL AllReduce / AlltoAll bandwidth next to memcpy and MPI, nccl-tests style"};
  app.add_option("--coll", o.coll, "the collective")->check(CLI::IsMember({"allreduce", "alltoall"}))->required();
  app.add_option("-g,--ranks", o.ranks, "ranks")->check(CLI::Range(2, kMaxRanks))->capture_default_str();
  app.add_option("-b,--minbytes", o.min_size, "smallest size (bytes of a rank's send buffer; K, M, G)")
      ->capture_default_str();
  app.add_option("-e,--maxbytes", o.max_size, "largest size")->capture_default_str();
  app.add_option("-f,--stepfactor", o.factor, "multiply the size by this")
      ->check(CLI::Range(2, 64))
      ->capture_default_str();
  app.add_option("-n,--iters", o.iterations, "timed calls per round")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("-w,--warmup_iters", o.warmup, "untimed calls before each round")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  app.add_option("--repeat", o.repeat, "rounds; each figure is the median")
      ->check(CLI::Range(1, kMaxRounds))
      ->capture_default_str();
  app.add_option("--mode", o.mode, "ranks are threads of this process or forked processes")
      ->check(CLI::IsMember({"threads", "processes"}))
      ->capture_default_str();
  app.add_option("--timeout", o.timeout_s, "stop the whole run after this many seconds (0: never)")
      ->check(CLI::NonNegativeNumber);
  CLI11_PARSE(app, argc, argv);
  const uint64_t min_bytes = ParseSize(o.min_size), max_bytes = ParseSize(o.max_size);
  if (min_bytes == 0 || max_bytes < min_bytes) {
    std::fprintf(stderr, "distbarrier-perf: -b %s / -e %s are not sizes with -b <= -e\n", o.min_size.c_str(),
                 o.max_size.c_str());
    return 2;
  }
  std::vector<uint64_t> sizes;
  for (uint64_t bytes = min_bytes; bytes <= max_bytes && sizes.size() < kMaxSizes; bytes *= o.factor) {
    sizes.push_back(bytes);
  }
  if (o.timeout_s > 0) ArmRunTimeout(o.timeout_s);
  const bool processes = o.mode == "processes";
  if (!processes && o.ranks > 16 && std::getenv("DISTBARRIER_DEVICE_COUNT") == nullptr) {
    setenv("DISTBARRIER_DEVICE_COUNT", std::to_string(o.ranks).c_str(), 1);
  }

  // MPI first, while no rank of ours runs.
  std::vector<Spread> mpi(sizes.size());
  const std::string mpirun = FindInPath("mpirun"), mpi_program = MpiCollectivesProgram();
  if (!mpirun.empty() && !mpi_program.empty()) {
    auto out = CaptureOutput({mpirun, "--allow-run-as-root", "--oversubscribe", "-np", std::to_string(o.ranks),
                              mpi_program, o.coll, "-b", std::to_string(min_bytes), "-e", std::to_string(max_bytes),
                              "-f", std::to_string(o.factor), "-n", std::to_string(o.iterations), "-w",
                              std::to_string(o.warmup), "-r", std::to_string(o.repeat)});
    for (size_t s = 0; out && s < sizes.size(); ++s) {
      const std::string key = "size " + std::to_string(sizes[s]) + " us ";
      const size_t at = out->find(key);
      if (at == std::string::npos) continue;
      char* end = nullptr;
      mpi[s].median = std::strtod(out->c_str() + at + key.size(), &end);
      mpi[s].low = std::strtod(end, &end);
      mpi[s].high = std::strtod(end, &end);
    }
    if (!out) std::fprintf(stderr, "distbarrier-perf: mpirun failed; the MPI columns are left empty\n");
  }

  auto figures = std::make_unique<Figures>();
  if (processes) {
    MeasureProcesses(o, sizes, figures.get());
  } else {
    MeasureThreads(o, sizes, figures.get());
  }

  const double n = o.ranks;
  const double bus_factor = o.alltoall() ? (n - 1) / n : 2 * (n - 1) / n;
  std::printf(
      "# distbarrier-perf --coll %s: %d ranks (%s), float sum, -n %d -w %d, median of %d rounds "
      "[slowest round's, fastest round's busbw]; %ld CPUs\n",
      o.coll.c_str(), o.ranks, o.mode.c_str(), o.iterations, o.warmup, o.repeat, sysconf(_SC_NPROCESSORS_ONLN));
  std::printf("# busbw = algbw x %s; memcpy: one core copying the same bytes; mpi: %s via mpirun\n",
              o.alltoall() ? "(n-1)/n" : "2(n-1)/n", o.alltoall() ? "MPI_Alltoall" : "MPI_Allreduce");
  std::printf("%12s %12s | %11s %9s %9s %19s | %10s | %11s %9s %19s\n", "size(B)", "count", "time(us)", "algbw",
              "busbw", "busbw range", "memcpy", "mpi(us)", "mpi busbw", "mpi busbw range");
  for (size_t s = 0; s < sizes.size(); ++s) {
    const Spread hccl = RoundsOf(*figures, s, o.repeat, o.ranks);
    const double bytes = static_cast<double>(sizes[s]);
    auto gbps = [&](double us) { return bytes / (us * 1e-6) / 1e9; };
    std::printf("%12llu %12llu | %11.1f %9.3f %9.3f [%8.3f, %8.3f] | %10.3f | %11.1f %9.3f [%8.3f, %8.3f]\n",
                static_cast<unsigned long long>(sizes[s]), static_cast<unsigned long long>(sizes[s] / sizeof(float)),
                hccl.median, gbps(hccl.median), gbps(hccl.median) * bus_factor, gbps(hccl.high) * bus_factor,
                gbps(hccl.low) * bus_factor, MemcpyGbps(sizes[s], o.repeat), mpi[s].median,
                gbps(mpi[s].median) * bus_factor, gbps(mpi[s].high) * bus_factor, gbps(mpi[s].low) * bus_factor);
  }
  std::fflush(stdout);
  return 0;
}

}  // namespace distbarrier::perf
