#include "common/cpus.h"

#include <sched.h>

#include <algorithm>
#include <thread>

namespace distbarrier {

size_t CpusForThisProcess() {
  static const size_t cpus = [] {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) return static_cast<size_t>(CPU_COUNT(&set));
    return static_cast<size_t>(std::max(1u, std::thread::hardware_concurrency()));
  }();
  return cpus;
}

}  // namespace distbarrier
