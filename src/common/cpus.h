// The CPUs this process may run on, for choosing between spinning and yielding.
#pragma once

#include <cstddef>

namespace distbarrier {

// CPUs in this process's affinity mask (sched_getaffinity; hardware_concurrency if that
// fails), read once.
size_t CpusForThisProcess();

}  // namespace distbarrier
