#include "floors.h"

#include <sched.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <new>
#include <thread>

#include "common.h"
#include "implementations.h"  // CpuRelax

namespace distbarrier::perf {
namespace {

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

}  // namespace

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

}  // namespace distbarrier::perf
