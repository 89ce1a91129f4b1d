// distbarrier-perf: barrier latency in the style of nccl-tests.
//
//   distbarrier-perf -b 2 -e 16 [-f 2] [-n 2000] [-w 200] [--repeat 5] [--mode threads|processes]
//                    [--timeout S] [--json FILE] [--idle S] [--impls b2b,rt,std,pthread,central,mpi]
//
// One row per rank count; every column is ns per barrier, measured in the same run on the same
// ranks, each the median of --repeat rounds (implementations alternate within a round). A
// round's figure is the maximum over ranks of the rank's own steady_clock time for the timed
// loop / iterations; the phases start together on a control barrier outside the timed region.
//
//   b2b      distbarrier back to back: one repeatable executor, n aclnnDistributeBarrier on the
//            rank's stream, then one aclrtSynchronizeStream
//   rtrip    distbarrier round trip: n times (aclnnDistributeBarrier + aclrtSynchronizeStream)
//   std      std::barrier::arrive_and_wait (threads mode only)
//   pthread  pthread_barrier_wait (PROCESS_PRIVATE for threads, PROCESS_SHARED in a MAP_SHARED
//            mapping for processes)
//   central  a central counter barrier whose waiters spin 16 checks, then sched_yield
//   mpi      MPI_Barrier via mpirun of distbarrier_perf_mpi (processes mode, MPI installed)
//   pp       one round trip of a cache line between two threads/processes (the floor)
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "acl/acl.h"
#include "aclnnop/aclnn_distribute_barrier.h"
#include "hccl/hccl.h"

namespace {

using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------------
// Implementations measured per rank.

enum Impl { kB2b, kRoundTrip, kStd, kPthread, kCentral, kImplCount };
const char* const kImplKeys[kImplCount] = {"b2b", "rt", "std", "pthread", "central"};
const char* const kImplJson[kImplCount] = {"distbarrier_back_to_back_ns", "distbarrier_round_trip_ns",
                                           "std_barrier_ns", "pthread_barrier_ns", "central_spin_yield_ns"};

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// A central counter barrier: the last arrival resets the count and bumps the generation;
// waiters spin 16 checks, then sched_yield until the generation moves. No futex.
struct alignas(64) CentralBarrier {
  alignas(64) std::atomic<uint32_t> count{0};
  alignas(64) std::atomic<uint32_t> generation{0};
  uint32_t ranks = 0;

  void Wait() {
    const uint32_t generation_seen = generation.load(std::memory_order_acquire);
    if (count.fetch_add(1, std::memory_order_acq_rel) + 1 == ranks) {
      count.store(0, std::memory_order_relaxed);
      generation.store(generation_seen + 1, std::memory_order_release);
      return;
    }
    for (int spins = 0; generation.load(std::memory_order_acquire) == generation_seen; ++spins) {
      if (spins < 16) CpuRelax();
      else sched_yield();
    }
  }
};

static_assert(std::atomic<uint32_t>::is_always_lock_free);

// Everything ranks share, in a MAP_SHARED anonymous mapping (also in threads mode, for one code
// path). Followed by the figures: double[kImplCount][repeat][ranks].
struct Shared {
  pthread_barrier_t control;   // phase starts, outside the timed region
  pthread_barrier_t measured;  // the pthread column
  CentralBarrier central;
  alignas(64) std::atomic<uint32_t> root_ready{0};
  std::atomic<uint32_t> failed{0};
  HcclRootInfo root;
};

struct SharedArea {
  void* memory = MAP_FAILED;
  size_t bytes = 0;
  Shared* shared = nullptr;
  double* figures = nullptr;

  SharedArea(size_t figure_count) {
    bytes = sizeof(Shared) + sizeof(double) * figure_count;
    memory = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) {
      std::perror("distbarrier-perf: mmap");
      std::exit(1);
    }
    shared = new (memory) Shared;
    figures = reinterpret_cast<double*>(static_cast<char*>(memory) + sizeof(Shared));
  }
  ~SharedArea() {
    pthread_barrier_destroy(&shared->control);
    pthread_barrier_destroy(&shared->measured);
    shared->~Shared();
    munmap(memory, bytes);
  }
  SharedArea(const SharedArea&) = delete;
  SharedArea& operator=(const SharedArea&) = delete;
};

void InitPthreadBarrier(pthread_barrier_t* barrier, unsigned count, bool process_shared) {
  pthread_barrierattr_t attr;
  pthread_barrierattr_init(&attr);
  pthread_barrierattr_setpshared(&attr, process_shared ? PTHREAD_PROCESS_SHARED : PTHREAD_PROCESS_PRIVATE);
  if (pthread_barrier_init(barrier, &attr, count) != 0) {
    std::fprintf(stderr, "distbarrier-perf: pthread_barrier_init failed\n");
    std::exit(1);
  }
  pthread_barrierattr_destroy(&attr);
}

// ---------------------------------------------------------------------------------------------
// Options and run-wide state.

struct Options {
  std::vector<int> ranks;
  int min_ranks = 2, max_ranks = 16, factor = 2;
  int iterations = 2000, warmup = 200, repeat = 5;
  std::string mode = "threads";
  double timeout_s = 0;
  std::string json;
  double idle_s = 0;
  bool context_switch = false;
  bool launch = false;
  std::string impls = "b2b,rt,std,pthread,central,mpi";
  bool enabled[kImplCount] = {};
  bool mpi = false;
  bool processes() const { return mode == "processes"; }
};

// Children (rank processes, mpirun) to stop when the run guard fires.
constexpr int kMaxChildren = 8192;
volatile pid_t g_children[kMaxChildren];
volatile sig_atomic_t g_child_count = 0;

void AddChild(pid_t pid) {
  const int count = g_child_count;
  if (count >= kMaxChildren) return;
  g_children[count] = pid;
  g_child_count = count + 1;
}
void ForgetChildren() { g_child_count = 0; }

void OnAlarm(int) {
  static const char message[] = "distbarrier-perf: --timeout reached, stopping\n";
  ssize_t ignored = write(STDERR_FILENO, message, sizeof(message) - 1);
  (void)ignored;
  for (int i = 0; i < g_child_count; ++i) kill(g_children[i], SIGKILL);
  _exit(124);
}

[[noreturn]] void Die(const char* what, int code) {
  std::fprintf(stderr, "distbarrier-perf: %s failed: %d: %s\n", what, code, aclGetRecentErrMsg());
  std::fflush(stderr);
  _exit(1);
}

#define CHECK_OK(call)                  \
  do {                                  \
    int code_ = (call);                 \
    if (code_ != 0) Die(#call, code_);  \
  } while (0)

double Median(std::vector<double> values) {
  if (values.empty()) return NAN;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

// ---------------------------------------------------------------------------------------------
// The cache-line ping-pong: side 0 writes odd values and waits for the even answer.

void PinToNthCpu(int n) {
  cpu_set_t allowed;
  if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0 || CPU_COUNT(&allowed) < 2) return;
  for (int cpu = 0, seen = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &allowed)) continue;
    if (seen++ == n) {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpu, &one);
      sched_setaffinity(0, sizeof(one), &one);  // this thread only
      return;
    }
  }
}

void AwaitValue(std::atomic<uint32_t>& word, uint32_t value) {
  for (int spins = 0; word.load(std::memory_order_acquire) != value; ++spins) {
    if (spins < 4096) CpuRelax();
    else sched_yield();  // the peer shares our core (pinning failed or was refused)
  }
}

// Returns ns per round trip (side 0) or 0 (side 1).
double PingPongSide(std::atomic<uint32_t>& word, int side, int iterations) {
  PinToNthCpu(side);
  Clock::time_point begin;
  for (int i = 0; i < iterations; ++i) {
    const uint32_t base = 2u * static_cast<uint32_t>(i);
    if (side == 0) {
      if (i == iterations / 10) begin = Clock::now();  // the first 10% warm up
      word.store(base + 1, std::memory_order_release);
      AwaitValue(word, base + 2);
    } else {
      AwaitValue(word, base + 1);
      word.store(base + 2, std::memory_order_release);
    }
  }
  if (side != 0) return 0;
  return std::chrono::duration<double, std::nano>(Clock::now() - begin).count() /
         (iterations - iterations / 10);
}

struct alignas(64) PingPongArea {
  alignas(64) std::atomic<uint32_t> word{0};
  alignas(64) double ns = 0;
};

double PingPong(bool processes, int iterations) {
  void* memory = mmap(nullptr, sizeof(PingPongArea), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) return NAN;
  auto* area = new (memory) PingPongArea;
  if (!processes) {
    std::thread peer([&] { PingPongSide(area->word, 1, iterations); });
    std::thread self([&] { area->ns = PingPongSide(area->word, 0, iterations); });
    self.join();
    peer.join();
  } else {
    std::fflush(nullptr);
    pid_t pids[2];
    for (int side = 0; side < 2; ++side) {
      pids[side] = fork();
      if (pids[side] == 0) {
        double ns = PingPongSide(area->word, side, iterations);
        if (side == 0) area->ns = ns;
        _exit(0);
      }
      AddChild(pids[side]);
    }
    for (pid_t pid : pids) waitpid(pid, nullptr, 0);
    ForgetChildren();
  }
  double ns = area->ns;
  munmap(memory, sizeof(PingPongArea));
  return ns;
}

// The context-switch cost: two processes pinned to one CPU hand a byte back and forth through
// two pipes; a round trip is two switches (plus a write and a read each). ns per switch.
double ContextSwitchNs(int round_trips) {
  int to_peer[2], to_self[2];
  if (pipe(to_peer) != 0 || pipe(to_self) != 0) return NAN;
  std::fflush(nullptr);
  pid_t pids[2];
  int result_pipe[2];
  if (pipe(result_pipe) != 0) return NAN;
  for (int side = 0; side < 2; ++side) {
    pids[side] = fork();
    if (pids[side] == 0) {
      PinToNthCpu(0);
      char byte = 0;
      bool ok = true;
      Clock::time_point begin = Clock::now();
      for (int i = 0; i < round_trips && ok; ++i) {
        if (side == 0) {
          if (i == round_trips / 10) begin = Clock::now();
          ok = write(to_peer[1], &byte, 1) == 1 && read(to_self[0], &byte, 1) == 1;
        } else {
          ok = read(to_peer[0], &byte, 1) == 1 && write(to_self[1], &byte, 1) == 1;
        }
      }
      if (side == 0) {
        double ns = ok ? std::chrono::duration<double, std::nano>(Clock::now() - begin).count() /
                             (round_trips - round_trips / 10) / 2
                       : NAN;
        ssize_t ignored = write(result_pipe[1], &ns, sizeof(ns));
        (void)ignored;
      }
      _exit(ok ? 0 : 1);
    }
    AddChild(pids[side]);
  }
  double ns = NAN;
  if (read(result_pipe[0], &ns, sizeof(ns)) != sizeof(ns)) ns = NAN;
  for (pid_t pid : pids) waitpid(pid, nullptr, 0);
  ForgetChildren();
  for (int fd : {to_peer[0], to_peer[1], to_self[0], to_self[1], result_pipe[0], result_pipe[1]}) close(fd);
  return ns;
}

// ---------------------------------------------------------------------------------------------
// One rank: the phases, the rounds.

struct RankContext {
  const Options* options;
  int ranks;
  Shared* shared;
  double* figures;  // [impl][round][rank]
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
};

void RunRank(const RankContext& c, int rank) {
  const Options& o = *c.options;
  const RankBarrier barrier(c.group, c.ranks);

  auto run = [&](int impl, int count) {
    switch (impl) {
      case kB2b:
        for (int i = 0; i < count; ++i) barrier.Launch();
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
    for (int impl = 0; impl < kImplCount; ++impl) {
      if (!o.enabled[impl] || (impl == kStd && c.std_barrier == nullptr)) continue;
      pthread_barrier_wait(&c.shared->control);
      run(impl, o.warmup);
      pthread_barrier_wait(&c.shared->control);
      const auto begin = Clock::now();
      run(impl, o.iterations);
      const double ns = std::chrono::duration<double, std::nano>(Clock::now() - begin).count() / o.iterations;
      c.figures[(static_cast<size_t>(impl) * o.repeat + round) * c.ranks + rank] = ns;
    }
  }
  pthread_barrier_wait(&c.shared->control);
}

// The cost of the launch call alone: ns per aclnnDistributeBarrier on a stream whose first
// barrier is still waiting (rank 1 comes only afterwards), so each timed call just validates,
// builds the task and enqueues it. Threads mode, one thread: no barrier runs while it is timed.
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
    first.Launch();  // waits for rank 1
    const auto begin = Clock::now();
    for (int i = 0; i < launches; ++i) first.Launch();
    ns = std::chrono::duration<double, std::nano>(Clock::now() - begin).count() / launches;
    for (int i = 0; i <= launches; ++i) second.Launch();
    CHECK_OK(aclrtSynchronizeStream(first.stream));
    CHECK_OK(aclrtSynchronizeStream(second.stream));
  }
  for (HcclComm comm : comms) CHECK_OK(HcclCommDestroy(comm));
  return ns;
}

// Median over rounds of the max over ranks; NAN where not measured.
struct Row {
  int ranks = 0;
  double figure[kImplCount];
  std::vector<double> rounds[kImplCount];  // per round: max over ranks
  double mpi = NAN;
};

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

Row MeasureProcesses(const Options& o, int ranks) {
  SharedArea area(static_cast<size_t>(kImplCount) * o.repeat * ranks);
  InitPthreadBarrier(&area.shared->control, ranks, true);
  InitPthreadBarrier(&area.shared->measured, ranks, true);
  area.shared->central.ranks = ranks;
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
                   WIFSIGNALED(status) ? "was killed by signal" : "exited with", WIFSIGNALED(status) ?
                   WTERMSIG(status) : WEXITSTATUS(status));
      for (pid_t other : pids) kill(other, SIGKILL);
    }
  }
  ForgetChildren();
  if (failed) std::exit(1);
  return Summarize(o, ranks, area.figures, false);
}

// ---------------------------------------------------------------------------------------------
// MPI_Barrier through mpirun.

std::string MpiProgram() {
  char self[4096];
  ssize_t length = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (length > 0) {
    self[length] = 0;
    std::string dir(self);
    dir = dir.substr(0, dir.rfind('/'));
    std::string next_to_us = dir + "/distbarrier_perf_mpi";
    if (access(next_to_us.c_str(), X_OK) == 0) return next_to_us;
  }
#ifdef DISTBARRIER_PERF_MPI_PATH
  if (access(DISTBARRIER_PERF_MPI_PATH, X_OK) == 0) return DISTBARRIER_PERF_MPI_PATH;
#endif
  return "";
}

std::string FindInPath(const char* name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

// Runs argv, returns its stdout (stderr passes through) or nullopt if it failed.
std::optional<std::string> Capture(const std::vector<std::string>& args) {
  int fds[2];
  if (pipe(fds) != 0) return std::nullopt;
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) return std::nullopt;
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    std::vector<char*> argv;
    for (const auto& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  AddChild(pid);
  close(fds[1]);
  std::string out;
  char buffer[4096];
  ssize_t n;
  while ((n = read(fds[0], buffer, sizeof(buffer))) > 0) out.append(buffer, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  ForgetChildren();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return std::nullopt;
  return out;
}

double MeasureMpi(const Options& o, int ranks, const std::string& mpirun, const std::string& program) {
  auto out = Capture({mpirun, "--allow-run-as-root", "--oversubscribe", "-np", std::to_string(ranks), program,
                      "-n", std::to_string(o.iterations), "-w", std::to_string(o.warmup), "-r",
                      std::to_string(o.repeat)});
  if (!out) {
    std::fprintf(stderr, "distbarrier-perf: mpirun with %d ranks failed; MPI column left empty\n", ranks);
    return NAN;
  }
  auto at = out->find("ns_per_barrier ");
  if (at == std::string::npos) return NAN;
  return std::strtod(out->c_str() + at + 15, nullptr);
}

// ---------------------------------------------------------------------------------------------
// Idle cost: 16 devices x 3 streams, each used once, then idle; CPU by getrusage. In a child,
// so that processes mode keeps the parent off the runtime.

struct IdleResult {
  int streams = 0;
  double wall_s = 0, cpu_s = 0;
};

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec + (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

std::optional<IdleResult> MeasureIdle(double seconds) {
  void* memory = mmap(nullptr, sizeof(IdleResult), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) return std::nullopt;
  auto* result = new (memory) IdleResult;
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    std::vector<aclrtStream> streams;
    for (int device = 0; device < 16; ++device) {
      CHECK_OK(aclrtSetDevice(device));
      for (int i = 0; i < 3; ++i) {
        aclrtStream stream;
        CHECK_OK(aclrtCreateStream(&stream));
        CHECK_OK(aclrtLaunchHostFunc(stream, [](void*) {}, nullptr));
        CHECK_OK(aclrtSynchronizeStream(stream));
        streams.push_back(stream);
      }
    }
    const double cpu_before = CpuSeconds();
    const auto wall_before = Clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    result->cpu_s = CpuSeconds() - cpu_before;
    result->wall_s = std::chrono::duration<double>(Clock::now() - wall_before).count();
    result->streams = static_cast<int>(streams.size());
    _exit(0);
  }
  AddChild(pid);
  int status = 0;
  waitpid(pid, &status, 0);
  ForgetChildren();
  std::optional<IdleResult> out;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) out = *result;
  munmap(memory, sizeof(IdleResult));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Output.

std::string CpuModel() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) {
        std::string model = line.substr(colon + 1);
        model.erase(0, model.find_first_not_of(" \t"));
        return model;
      }
    }
  }
  return "unknown";
}

std::string Cell(double value, int width, int precision) {
  char buffer[64];
  if (std::isnan(value)) std::snprintf(buffer, sizeof(buffer), "%*s", width, "-");
  else std::snprintf(buffer, sizeof(buffer), "%*.*f", width, precision, value);
  return buffer;
}

std::string JsonNumber(double value) {
  if (std::isnan(value)) return "null";
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.1f", value);
  return buffer;
}

std::string JsonString(const std::string& text) {
  std::string out = "\"";
  for (char ch : text) {
    if (ch == '"' || ch == '\\') out += '\\';
    if (static_cast<unsigned char>(ch) >= 0x20) out += ch;
  }
  return out + "\"";
}

constexpr int kWidth = 11;

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"distbarrier-perf: ns per barrier of distbarrier next to std::barrier, pthread_barrier, a "
               "spin-then-yield central barrier, MPI_Barrier and the cache-line ping-pong"};
  app.add_option("-g,--ranks", o.ranks, "rank counts (one or more); overrides -b/-e")->check(CLI::Range(1, 4096));
  app.add_option("-b,--minranks", o.min_ranks, "smallest rank count")->check(CLI::Range(1, 4096))->capture_default_str();
  app.add_option("-e,--maxranks", o.max_ranks, "largest rank count")->check(CLI::Range(1, 4096))->capture_default_str();
  app.add_option("-f,--stepfactor", o.factor, "multiply the rank count by this")->check(CLI::Range(2, 64))
      ->capture_default_str();
  app.add_option("-n,--iters", o.iterations, "timed barriers per round")->check(CLI::Range(1, 100000000))
      ->capture_default_str();
  app.add_option("-w,--warmup_iters", o.warmup, "untimed barriers before each timed loop")
      ->check(CLI::Range(0, 100000000))->capture_default_str();
  app.add_option("--repeat", o.repeat, "rounds; each figure is the median")->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--mode", o.mode, "ranks are threads of this process or forked processes")
      ->check(CLI::IsMember({"threads", "processes"}))->capture_default_str();
  app.add_option("--timeout", o.timeout_s, "stop the whole run after this many seconds (0: never)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--json", o.json, "also write every figure to this JSON file");
  app.add_option("--idle", o.idle_s, "also measure the CPU of 48 idle streams for this many seconds")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--ctxswitch", o.context_switch,
               "also measure a context switch: pipe ping-pong between two processes pinned to one CPU");
  app.add_flag("--launch", o.launch,
               "also measure one aclnnDistributeBarrier call that only enqueues (threads mode)");
  app.add_option("--impls", o.impls, "comma-separated subset of b2b,rt,std,pthread,central,mpi")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  {
    std::stringstream list(o.impls);
    std::string item;
    while (std::getline(list, item, ',')) {
      bool known = false;
      for (int impl = 0; impl < kImplCount; ++impl) {
        if (item == kImplKeys[impl]) o.enabled[impl] = known = true;
      }
      if (item == "mpi") o.mpi = known = true;
      if (!known) {
        std::fprintf(stderr, "distbarrier-perf: unknown implementation '%s' in --impls\n", item.c_str());
        return 2;
      }
    }
  }
  if (o.ranks.empty()) {
    if (o.min_ranks > o.max_ranks) {
      std::fprintf(stderr, "distbarrier-perf: -b %d is above -e %d\n", o.min_ranks, o.max_ranks);
      return 2;
    }
    for (int n = o.min_ranks; n <= o.max_ranks; n *= o.factor) o.ranks.push_back(n);
  }
  const int most_ranks = *std::max_element(o.ranks.begin(), o.ranks.end());
  const bool processes = o.processes();

  if (o.timeout_s > 0) {
    std::signal(SIGALRM, OnAlarm);
    alarm(static_cast<unsigned>(std::ceil(o.timeout_s)));
  }
  // Threads mode: devices 0..N-1 must exist before the first ACL call.
  if (!processes && most_ranks > 16 && std::getenv("DISTBARRIER_DEVICE_COUNT") == nullptr) {
    setenv("DISTBARRIER_DEVICE_COUNT", std::to_string(most_ranks).c_str(), 1);
  } else if (!processes && std::getenv("DISTBARRIER_DEVICE_COUNT") != nullptr &&
             std::atoi(std::getenv("DISTBARRIER_DEVICE_COUNT")) < most_ranks) {
    setenv("DISTBARRIER_DEVICE_COUNT", std::to_string(most_ranks).c_str(), 1);
  }

  std::string mpirun, mpi_program;
  if (processes && o.mpi) {
    mpirun = FindInPath("mpirun");
    mpi_program = MpiProgram();
    if (mpirun.empty() || mpi_program.empty()) o.mpi = false;
  } else {
    o.mpi = false;
  }

  const long nproc = sysconf(_SC_NPROCESSORS_ONLN);
  const std::string cpu = CpuModel();
  std::printf("# distbarrier-perf: mode %s, nproc %ld, CPU %s, -n %d -w %d --repeat %d\n", o.mode.c_str(), nproc,
              cpu.c_str(), o.iterations, o.warmup, o.repeat);
  std::printf("# ns per barrier; each figure the median of %d rounds of the max over ranks of the rank's own "
              "time / %d; pp = cache-line ping-pong round trip between two %s (measured once); MPI: %s\n",
              o.repeat, o.iterations, processes ? "processes" : "threads",
              o.mpi ? "mpirun" : (processes ? "not available" : "processes mode only"));
  std::fflush(stdout);

  std::optional<IdleResult> idle;
  if (o.idle_s > 0) idle = MeasureIdle(o.idle_s);

  // The floor, once per run: median of --repeat rounds.
  std::vector<double> pp_rounds;
  const int pp_iterations = std::clamp(o.iterations, 20000, 200000);
  for (int round = 0; round < o.repeat; ++round) pp_rounds.push_back(PingPong(processes, pp_iterations));
  const double pp = Median(pp_rounds);
  double context_switch = NAN;
  if (o.context_switch) {
    std::vector<double> rounds;
    for (int round = 0; round < o.repeat; ++round) rounds.push_back(ContextSwitchNs(20000));
    context_switch = Median(rounds);
    std::printf("# context switch (pipe ping-pong, two processes pinned to one CPU): %.0f ns\n", context_switch);
  }

  if (!processes) CHECK_OK(aclInit(nullptr));
  double launch = NAN;
  if (o.launch && !processes) {
    std::vector<double> rounds;
    for (int round = 0; round < o.repeat; ++round) rounds.push_back(LaunchNs(o.iterations));
    launch = Median(rounds);
    std::printf("# launch (aclnnDistributeBarrier that only enqueues, one thread): %.0f ns\n", launch);
    std::fflush(stdout);
  }

  const char* versus = processes ? "b2b/MPI" : "b2b/std";
  std::printf("%6s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s\n", "ranks", kWidth, "b2b", kWidth, "rtrip", kWidth,
              "std", kWidth, "pthread", kWidth, "central", kWidth, "MPI", kWidth, "pp", 8, "b2b/pp", 8, versus, 8,
              "rt/b2b", 8, "b2b/cen");
  std::fflush(stdout);

  std::vector<Row> rows;
  for (int ranks : o.ranks) {
    Row row = processes ? MeasureProcesses(o, ranks) : MeasureThreads(o, ranks);
    if (o.mpi) row.mpi = MeasureMpi(o, ranks, mpirun, mpi_program);
    const double b2b = row.figure[kB2b];
    const double reference = processes ? row.mpi : row.figure[kStd];
    std::printf("%6d %s %s %s %s %s %s %s %s %s %s %s\n", ranks, Cell(b2b, kWidth, 0).c_str(),
                Cell(row.figure[kRoundTrip], kWidth, 0).c_str(), Cell(row.figure[kStd], kWidth, 0).c_str(),
                Cell(row.figure[kPthread], kWidth, 0).c_str(), Cell(row.figure[kCentral], kWidth, 0).c_str(),
                Cell(row.mpi, kWidth, 0).c_str(), Cell(pp, kWidth, 0).c_str(), Cell(b2b / pp, 8, 2).c_str(),
                Cell(b2b / reference, 8, 2).c_str(), Cell(row.figure[kRoundTrip] / b2b, 8, 2).c_str(),
                Cell(b2b / row.figure[kCentral], 8, 2).c_str());
    std::fflush(stdout);
    rows.push_back(std::move(row));
  }
  if (!processes) aclFinalize();
  if (idle) {
    std::printf("# idle: %d streams for %.1f s used %.4f s of CPU = %.3f%% of one core\n", idle->streams,
                idle->wall_s, idle->cpu_s, 100.0 * idle->cpu_s / idle->wall_s);
  } else if (o.idle_s > 0) {
    std::printf("# idle: measurement failed\n");
  }

  if (!o.json.empty()) {
    std::ofstream out(o.json);
    out << "{\n  \"tool\": \"distbarrier-perf\",\n  \"mode\": " << JsonString(o.mode)
        << ",\n  \"machine\": {\"nproc\": " << nproc << ", \"cpu\": " << JsonString(cpu) << "},\n"
        << "  \"iterations\": " << o.iterations << ",\n  \"warmup\": " << o.warmup << ",\n  \"repeat\": " << o.repeat
        << ",\n  \"figure\": \"median over rounds of the max over ranks of ns per barrier\",\n"
        << "  \"pingpong_ns\": " << JsonNumber(pp) << ",\n  \"pingpong_rounds_ns\": [";
    for (size_t i = 0; i < pp_rounds.size(); ++i) out << (i ? ", " : "") << JsonNumber(pp_rounds[i]);
    out << "],\n  \"context_switch_ns\": " << JsonNumber(context_switch) << ",\n  \"launch_ns\": " << JsonNumber(launch)
        << ",\n  \"idle\": ";
    if (idle) {
      out << "{\"streams\": " << idle->streams << ", \"wall_s\": " << idle->wall_s << ", \"cpu_s\": " << idle->cpu_s
          << "}";
    } else {
      out << "null";
    }
    out << ",\n  \"rows\": [\n";
    for (size_t r = 0; r < rows.size(); ++r) {
      const Row& row = rows[r];
      out << "    {\"ranks\": " << row.ranks;
      for (int impl = 0; impl < kImplCount; ++impl) out << ", \"" << kImplJson[impl] << "\": " << JsonNumber(row.figure[impl]);
      out << ", \"mpi_barrier_ns\": " << JsonNumber(row.mpi) << ", \"rounds\": {";
      for (int impl = 0; impl < kImplCount; ++impl) {
        out << (impl ? ", " : "") << "\"" << kImplJson[impl] << "\": [";
        for (size_t i = 0; i < row.rounds[impl].size(); ++i) out << (i ? ", " : "") << JsonNumber(row.rounds[impl][i]);
        out << "]";
      }
      out << "}}" << (r + 1 < rows.size() ? "," : "") << "\n";
    }
    out << "  ]\n}\n";
    if (!out) {
      std::fprintf(stderr, "distbarrier-perf: cannot write %s\n", o.json.c_str());
      return 1;
    }
  }
  return 0;
}
