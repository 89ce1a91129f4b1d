// The barriers distbarrier-perf measures per rank besides distbarrier itself (the central
// counter barrier, pthread barriers), and the area the ranks share in both modes.
#pragma once

#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "hccl/hccl.h"

namespace distbarrier::perf {

// The implementations measured per rank, in the order a round runs them (MPI runs apart).
// kStage12 is the doc's pattern (stage 1 + stage 2 per barrier, single-use executors);
// kB2bStatsOff is kB2b with arrival statistics switched off for the phase.
enum Impl { kB2b, kStage12, kB2bStatsOff, kRoundTrip, kStd, kPthread, kCentral, kImplCount };
inline constexpr const char* kImplKeys[kImplCount] = {"b2b", "s12", "nostats", "rt", "std", "pthread", "central"};
inline constexpr const char* kImplJson[kImplCount] = {
    "distbarrier_back_to_back_ns", "distbarrier_stage1_stage2_ns", "distbarrier_back_to_back_stats_off_ns",
    "distbarrier_round_trip_ns",   "std_barrier_ns",               "pthread_barrier_ns",
    "central_spin_yield_ns"};

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

  explicit SharedArea(size_t figure_count);  // exits the tool if the mapping fails
  ~SharedArea();
  SharedArea(const SharedArea&) = delete;
  SharedArea& operator=(const SharedArea&) = delete;
};

// Exits the tool if the barrier cannot be made.
void InitPthreadBarrier(pthread_barrier_t* barrier, unsigned count, bool process_shared);

}  // namespace distbarrier::perf
