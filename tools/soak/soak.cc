// Soak: many barriers with small random jitter, the barrier property checked on every one,
// in constant memory, with peak RSS sampled at start, middle and end.
//
//   distbarrier_soak threads [barriers=1000000] [ranks=16]   ranks are threads (HcclCommInitAll)
//   distbarrier_soak procs   [barriers=100000]  [ranks=8]    ranks are processes (root info)
//   distbarrier_soak flood   [barriers=1000000] [ranks=2]    no synchronize until the end
//
// flood: every rank thread launches all its barriers (stage 1 + stage 2 each) without ever
// synchronizing; a stream holds a bounded number of unfinished tasks
// (DISTBARRIER_STREAM_QUEUE_DEPTH), so the launches wait for room and RSS stays flat. RSS is
// sampled after 1 %, 50 % and 100 % of the launches; the queues fill in the first half, so the
// run fails when the end is more than 16 MB above the middle (without the bound, 10^6 launches
// on 2 ranks grow RSS from 9 to 178 MB, and 3 x 10^5 on 8 ranks from 18 to 870 MB).
//
// The check is the ticket idea of tests/system/barrier_checker.h: on each rank's stream a host
// function takes an "arrive" ticket from one shared counter just before the barrier task and a
// "leave" ticket just after; barrier k is right when max over ranks of arrive[k] < min over
// ranks of leave[k]. Tickets live in a window of kChunk barriers: every rank enqueues a chunk
// (stage 1 + stage 2 per barrier, as a program would), synchronizes its stream, then all ranks
// meet (std::barrier for threads, a process-shared pthread barrier for processes); one of them
// checks the chunk and clears it, and the next chunk reuses the memory.
//
// Exit status: 0 when every barrier was checked and none violated the property.
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "acl/acl.h"
#include "aclnn/aclnn_base.h"
#include "aclnnop/aclnn_distribute_barrier.h"
#include "hccl/hccl.h"

namespace {

constexpr int kChunk = 1000;
constexpr int kMaxRanks = 64;

using Clock = std::chrono::steady_clock;

// --- memory ---

struct Memory {
  long hwm_kb = 0;  // VmHWM: peak resident set so far
  long rss_kb = 0;  // VmRSS
};

Memory SampleMemory() {
  Memory memory;
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) memory.hwm_kb = std::atol(line.c_str() + 6);
    if (line.rfind("VmRSS:", 0) == 0) memory.rss_kb = std::atol(line.c_str() + 6);
  }
  return memory;
}

// --- jitter and tickets ---

struct Jitter {
  enum Kind : uint8_t { kNone, kSpin, kYield, kSleep } kind;
  uint16_t micros;
};

// Small on purpose: most barriers none, a few short spins, rare yields and short sleeps.
Jitter RandomJitter(std::mt19937& rng) {
  const uint32_t roll = rng() % 1000;
  if (roll < 900) return {Jitter::kNone, 0};
  if (roll < 980) return {Jitter::kSpin, static_cast<uint16_t>(rng() % 6)};
  if (roll < 995) return {Jitter::kYield, 0};
  return {Jitter::kSleep, static_cast<uint16_t>(rng() % 50)};
}

void ApplyJitter(const Jitter& jitter) {
  switch (jitter.kind) {
    case Jitter::kNone: break;
    case Jitter::kSpin: {
      const auto until = Clock::now() + std::chrono::microseconds(jitter.micros);
      while (Clock::now() < until) {
      }
      break;
    }
    case Jitter::kYield: std::this_thread::yield(); break;
    case Jitter::kSleep: std::this_thread::sleep_for(std::chrono::microseconds(jitter.micros)); break;
  }
}

// Per rank and barrier of the current chunk: what the two host functions need.
struct Slot {
  std::atomic<uint64_t>* clock;
  uint64_t* arrive;
  uint64_t* leave;
  Jitter jitter;
};

void BeforeBarrier(void* arg) {
  auto* slot = static_cast<Slot*>(arg);
  ApplyJitter(slot->jitter);
  *slot->arrive = slot->clock->fetch_add(1, std::memory_order_seq_cst) + 1;
}

void AfterBarrier(void* arg) {
  auto* slot = static_cast<Slot*>(arg);
  *slot->leave = slot->clock->fetch_add(1, std::memory_order_seq_cst) + 1;
}

// The tickets of one chunk: arrive[rank][k], leave[rank][k].
struct Tickets {
  uint64_t arrive[kMaxRanks][kChunk];
  uint64_t leave[kMaxRanks][kChunk];
};

struct Verdict {
  uint64_t checked = 0;
  uint64_t violations = 0;
  char first[256] = {0};
};

// Checks barriers [base, base + count) and clears their tickets (a missing ticket is a violation).
void CheckChunk(Tickets& tickets, int ranks, uint64_t base, int count, Verdict& verdict) {
  for (int k = 0; k < count; ++k) {
    uint64_t last_arrival = 0, first_leave = UINT64_MAX;
    int last_rank = -1, leaver = -1;
    bool missing = false;
    for (int r = 0; r < ranks; ++r) {
      const uint64_t a = tickets.arrive[r][k], l = tickets.leave[r][k];
      if (a == 0 || l == 0) missing = true;
      if (a > last_arrival) last_arrival = a, last_rank = r;
      if (l < first_leave) first_leave = l, leaver = r;
      tickets.arrive[r][k] = tickets.leave[r][k] = 0;
    }
    ++verdict.checked;
    if (missing || first_leave < last_arrival) {
      if (verdict.violations++ == 0) {
        std::snprintf(verdict.first, sizeof(verdict.first),
                      missing ? "barrier %llu: a ticket is missing"
                              : "barrier %llu: rank %d left (ticket %llu) before rank %d arrived (ticket %llu)",
                      static_cast<unsigned long long>(base + k), leaver, static_cast<unsigned long long>(first_leave),
                      last_rank, static_cast<unsigned long long>(last_arrival));
      }
    }
  }
}

[[noreturn]] void Fatal(const char* what, int status) {
  std::fprintf(stderr, "soak: %s failed with %d: %s\n", what, status, aclGetRecentErrMsg());
  std::fflush(stderr);
  _exit(2);
}

// One rank's loop over all chunks; `meet` is called after each chunk's stream sync (all ranks
// meet there, and one of them checks the chunk), `sample` after the first chunk, in the middle
// and at the end.
template <typename Meet, typename Sample>
void RankLoop(int rank, const std::string& group, int ranks, uint64_t barriers, std::atomic<uint64_t>* clock,
              Tickets* tickets, Meet meet, Sample sample) {
  aclrtStream stream = nullptr;
  if (int s = aclrtCreateStream(&stream)) Fatal("aclrtCreateStream", s);
  void* device_memory = nullptr;
  if (int s = aclrtMalloc(&device_memory, 4, ACL_MEM_MALLOC_HUGE_FIRST)) Fatal("aclrtMalloc", s);
  int64_t shape = 1, stride = 1;
  aclTensor* x_ref = aclCreateTensor(&shape, 1, ACL_FLOAT, &stride, 0, ACL_FORMAT_ND, &shape, 1, device_memory);
  std::mt19937 rng(static_cast<uint32_t>(0x5eed + 7919 * rank));
  std::vector<Slot> slots(kChunk);
  // SOAK_SKIP_BARRIER=1 leaves the barriers out: a check of the checker (it must see violations).
  const bool skip_barrier = std::getenv("SOAK_SKIP_BARRIER") != nullptr;
  for (uint64_t base = 0; base < barriers; base += kChunk) {
    const int count = static_cast<int>(std::min<uint64_t>(kChunk, barriers - base));
    for (int k = 0; k < count; ++k) {
      slots[k] = {clock, &tickets->arrive[rank][k], &tickets->leave[rank][k], RandomJitter(rng)};
      if (int s = aclrtLaunchHostFunc(stream, BeforeBarrier, &slots[k])) Fatal("aclrtLaunchHostFunc", s);
      uint64_t workspace_size = 0;
      aclOpExecutor* executor = nullptr;
      if (int s = aclnnDistributeBarrierGetWorkspaceSize(x_ref, group.c_str(), ranks, &workspace_size, &executor)) {
        Fatal("aclnnDistributeBarrierGetWorkspaceSize", s);
      }
      if (skip_barrier) {
        aclDestroyAclOpExecutor(executor);
      } else if (int s = aclnnDistributeBarrier(nullptr, workspace_size, executor, stream)) {
        Fatal("aclnnDistributeBarrier", s);
      }
      if (int s = aclrtLaunchHostFunc(stream, AfterBarrier, &slots[k])) Fatal("aclrtLaunchHostFunc", s);
    }
    if (int s = aclrtSynchronizeStream(stream)) Fatal("aclrtSynchronizeStream", s);
    meet(base, count);
    if (base == 0) sample(0);  // start: after the first chunk, streams and their threads exist
    if (base < barriers / 2 && base + kChunk >= barriers / 2) sample(1);
  }
  sample(2);
  aclDestroyTensor(x_ref);
  aclrtFree(device_memory);
  aclrtDestroyStream(stream);
}

void PrintMemory(const char* who, const Memory (&memory)[3]) {
  std::printf("%s peak RSS (VmHWM) start/middle/end: %ld / %ld / %ld kB; RSS %ld / %ld / %ld kB\n", who,
              memory[0].hwm_kb, memory[1].hwm_kb, memory[2].hwm_kb, memory[0].rss_kb, memory[1].rss_kb,
              memory[2].rss_kb);
}

// --- ranks as threads ---

int RunThreads(uint64_t barriers, int ranks) {
  const std::string device_count = std::to_string(std::max(16, ranks));
  setenv("DISTBARRIER_DEVICE_COUNT", device_count.c_str(), 0);
  std::vector<HcclComm> comms(ranks);
  std::vector<int32_t> devices(ranks);
  for (int r = 0; r < ranks; ++r) devices[r] = r;
  if (int s = HcclCommInitAll(ranks, devices.data(), comms.data())) Fatal("HcclCommInitAll", s);
  char name[COMM_NAME_MAX_LENGTH] = {0};
  HcclGetCommName(comms[0], name);
  const std::string group = name;

  auto tickets = std::make_unique<Tickets>();
  std::atomic<uint64_t> clock{0};
  Verdict verdict;
  uint64_t chunk_base = 0;
  int chunk_count = 0;
  Memory memory[3];
  auto check = [&]() noexcept { CheckChunk(*tickets, ranks, chunk_base, chunk_count, verdict); };
  std::barrier meet(ranks, check);

  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int rank = 0; rank < ranks; ++rank) {
    threads.emplace_back([&, rank] {
      if (int s = aclrtSetDevice(rank)) Fatal("aclrtSetDevice", s);
      RankLoop(
          rank, group, ranks, barriers, &clock, tickets.get(),
          [&](uint64_t base, int count) {
            if (rank == 0) chunk_base = base, chunk_count = count;  // read by the completion, after all arrive
            meet.arrive_and_wait();
            if (rank == 0 && (base / kChunk) % 100 == 99) {
              const Memory now = SampleMemory();
              std::printf("  threads: %llu barriers done, %.1f s, VmHWM %ld kB, VmRSS %ld kB\n",
                          static_cast<unsigned long long>(base + count),
                          std::chrono::duration<double>(Clock::now() - start).count(), now.hwm_kb, now.rss_kb);
              std::fflush(stdout);
            }
          },
          [&](int when) {
            if (rank == 0) memory[when] = SampleMemory();
          });
    });
  }
  for (auto& thread : threads) thread.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  for (HcclComm comm : comms) HcclCommDestroy(comm);
  aclFinalize();

  std::printf("threads: %d ranks, %llu barriers in %.1f s (%.1f us per barrier), %llu checked, %llu violations%s%s\n",
              ranks, static_cast<unsigned long long>(barriers), seconds, seconds * 1e6 / static_cast<double>(barriers),
              static_cast<unsigned long long>(verdict.checked), static_cast<unsigned long long>(verdict.violations),
              verdict.violations ? ": first " : "", verdict.first);
  PrintMemory("threads:", memory);
  return verdict.violations == 0 && verdict.checked == barriers ? 0 : 1;
}

// --- ranks as processes ---

struct SharedArea {
  pthread_barrier_t meet;
  std::atomic<int> root_ready;
  HcclRootInfo root;
  std::atomic<uint64_t> clock;
  Verdict verdict;
  Memory memory[kMaxRanks][3];
  double seconds;
  Tickets tickets;
};

int RunProcesses(uint64_t barriers, int ranks) {
  // Forked before anything touches the runtime: the parent stays a plain process.
  void* mapped = mmap(nullptr, sizeof(SharedArea), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mapped == MAP_FAILED) {
    std::perror("mmap");
    return 2;
  }
  auto* area = new (mapped) SharedArea{};
  pthread_barrierattr_t attributes;
  pthread_barrierattr_init(&attributes);
  pthread_barrierattr_setpshared(&attributes, PTHREAD_PROCESS_SHARED);
  pthread_barrier_init(&area->meet, &attributes, static_cast<unsigned>(ranks));

  std::vector<pid_t> children;
  for (int rank = 0; rank < ranks; ++rank) {
    const pid_t pid = fork();
    if (pid < 0) {
      std::perror("fork");
      return 2;
    }
    if (pid > 0) {
      children.push_back(pid);
      continue;
    }
    if (int s = aclrtSetDevice(0)) Fatal("aclrtSetDevice", s);
    if (rank == 0) {
      if (int s = HcclGetRootInfo(&area->root)) Fatal("HcclGetRootInfo", s);
      area->root_ready.store(1, std::memory_order_release);
    }
    while (area->root_ready.load(std::memory_order_acquire) == 0) std::this_thread::yield();
    HcclComm comm = nullptr;
    if (int s = HcclCommInitRootInfo(static_cast<uint32_t>(ranks), &area->root, static_cast<uint32_t>(rank), &comm)) {
      Fatal("HcclCommInitRootInfo", s);
    }
    char name[COMM_NAME_MAX_LENGTH] = {0};
    HcclGetCommName(comm, name);
    const auto start = Clock::now();
    RankLoop(
        rank, name, ranks, barriers, &area->clock, &area->tickets,
        [&](uint64_t base, int count) {
          pthread_barrier_wait(&area->meet);  // every rank's tickets of this chunk are written
          if (rank == 0) {
            CheckChunk(area->tickets, ranks, base, count, area->verdict);
            if ((base / kChunk) % 10 == 9) {
              const Memory now = SampleMemory();
              std::printf("  procs: %llu barriers done, %.1f s, rank 0 VmHWM %ld kB, VmRSS %ld kB\n",
                          static_cast<unsigned long long>(base + count),
                          std::chrono::duration<double>(Clock::now() - start).count(), now.hwm_kb, now.rss_kb);
              std::fflush(stdout);
            }
          }
          pthread_barrier_wait(&area->meet);  // checked and cleared: the next chunk may write
        },
        [&](int when) { area->memory[rank][when] = SampleMemory(); });
    if (rank == 0) area->seconds = std::chrono::duration<double>(Clock::now() - start).count();
    HcclCommDestroy(comm);
    aclFinalize();
    _exit(0);
  }
  bool children_ok = true;
  for (pid_t pid : children) {
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      children_ok = false;
      std::printf("procs: rank process %d ended with status %d\n", pid, status);
    }
  }
  const Verdict& verdict = area->verdict;
  std::printf("procs: %d ranks, %llu barriers in %.1f s (%.1f us per barrier), %llu checked, %llu violations%s%s\n",
              ranks, static_cast<unsigned long long>(barriers), area->seconds,
              area->seconds * 1e6 / static_cast<double>(barriers), static_cast<unsigned long long>(verdict.checked),
              static_cast<unsigned long long>(verdict.violations), verdict.violations ? ": first " : "",
              verdict.first);
  Memory highest[3];
  for (int rank = 0; rank < ranks; ++rank) {
    for (int when = 0; when < 3; ++when) {
      highest[when].hwm_kb = std::max(highest[when].hwm_kb, area->memory[rank][when].hwm_kb);
      highest[when].rss_kb = std::max(highest[when].rss_kb, area->memory[rank][when].rss_kb);
    }
  }
  PrintMemory("procs (highest rank):", highest);
  const bool ok = children_ok && verdict.violations == 0 && verdict.checked == barriers;
  munmap(mapped, sizeof(SharedArea));
  return ok ? 0 : 1;
}

}  // namespace

int RunFlood(uint64_t barriers, int ranks) {
  if (int s = aclInit(nullptr)) Fatal("aclInit", s);
  std::vector<int32_t> devices(static_cast<size_t>(ranks));
  for (int rank = 0; rank < ranks; ++rank) devices[rank] = rank;
  std::vector<HcclComm> comms(static_cast<size_t>(ranks));
  if (int s = HcclCommInitAll(static_cast<uint32_t>(ranks), devices.data(), comms.data())) Fatal("HcclCommInitAll", s);
  char name[COMM_NAME_MAX_LENGTH] = {0};
  if (int s = HcclGetCommName(comms[0], name)) Fatal("HcclGetCommName", s);
  const std::string group = name;
  Memory memory[3];
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int rank = 0; rank < ranks; ++rank) {
    threads.emplace_back([&, rank] {
      if (int s = aclrtSetDevice(rank)) Fatal("aclrtSetDevice", s);
      aclrtStream stream = nullptr;
      if (int s = aclrtCreateStream(&stream)) Fatal("aclrtCreateStream", s);
      void* device_memory = nullptr;
      if (int s = aclrtMalloc(&device_memory, 4, ACL_MEM_MALLOC_HUGE_FIRST)) Fatal("aclrtMalloc", s);
      int64_t shape = 1, stride = 1;
      aclTensor* x_ref = aclCreateTensor(&shape, 1, ACL_FLOAT, &stride, 0, ACL_FORMAT_ND, &shape, 1, device_memory);
      for (uint64_t k = 0; k < barriers; ++k) {
        uint64_t workspace_size = 0;
        aclOpExecutor* executor = nullptr;
        if (int s = aclnnDistributeBarrierGetWorkspaceSize(x_ref, group.c_str(), ranks, &workspace_size, &executor)) {
          Fatal("aclnnDistributeBarrierGetWorkspaceSize", s);
        }
        if (int s = aclnnDistributeBarrier(nullptr, workspace_size, executor, stream)) Fatal("aclnnDistributeBarrier", s);
        if (rank == 0 && (k + 1 == barriers / 100 || k + 1 == barriers / 2)) memory[k + 1 == barriers / 2] = SampleMemory();
      }
      if (int s = aclrtSynchronizeStream(stream)) Fatal("aclrtSynchronizeStream", s);
      if (rank == 0) memory[2] = SampleMemory();
      aclDestroyTensor(x_ref);
      aclrtFree(device_memory);
      aclrtDestroyStream(stream);
    });
  }
  for (auto& thread : threads) thread.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("flood: %d ranks x %llu barriers launched without a synchronize in %.1f s (queue depth: "
              "DISTBARRIER_STREAM_QUEUE_DEPTH or 4096)\n",
              ranks, static_cast<unsigned long long>(barriers), seconds);
  std::printf("flood: RSS after 1%% / 50%% / 100%% of the launches: %ld / %ld / %ld kB\n", memory[0].rss_kb,
              memory[1].rss_kb, memory[2].rss_kb);
  aclFinalize();
  constexpr long kAllowedGrowthKb = 16 * 1024;
  if (memory[2].rss_kb - memory[1].rss_kb > kAllowedGrowthKb) {
    std::printf("flood: FAILED: RSS grew by more than %ld kB in the second half\n", kAllowedGrowthKb);
    return 1;
  }
  std::printf("flood: RSS flat in the second half (within %ld kB)\n", kAllowedGrowthKb);
  return 0;
}

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "flood") {
    const uint64_t barriers = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1000000;
    const int ranks = argc > 3 ? std::atoi(argv[3]) : 2;
    if (ranks < 2 || ranks > kMaxRanks || barriers < 100) {
      std::fprintf(stderr, "soak: flood needs ranks in [2, %d] and at least 100 barriers\n", kMaxRanks);
      return 2;
    }
    return RunFlood(barriers, ranks);
  }
  if (mode != "threads" && mode != "procs") {
    std::fprintf(stderr, "usage: %s threads|procs|flood [barriers] [ranks]\n", argv[0]);
    return 2;
  }
  const bool threads = mode == "threads";
  const uint64_t barriers = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : (threads ? 1000000 : 100000);
  const int ranks = argc > 3 ? std::atoi(argv[3]) : (threads ? 16 : 8);
  if (ranks < 2 || ranks > kMaxRanks || barriers == 0) {
    std::fprintf(stderr, "soak: ranks must be in [2, %d] and barriers > 0\n", kMaxRanks);
    return 2;
  }
  return threads ? RunThreads(barriers, ranks) : RunProcesses(barriers, ranks);
}
