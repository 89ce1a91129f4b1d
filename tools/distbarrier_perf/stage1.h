// --stage1: the cost of stage 1 alone (aclnnDistributeBarrierGetWorkspaceSize), on one thread
// and on N threads calling it at once, each thread for its own rank of one group.
#pragma once

#include <vector>

#include "common.h"

namespace distbarrier::perf {

struct Stage1Figures {
  int threads = 0;
  double call_ns = 0;          // CPU ns per stage 1 call (median over threads and rounds)
  double call_ns_max = 0;      // the slowest thread's, in its median round
  double with_destroy_ns = 0;  // CPU ns per stage 1 + aclDestroyAclOpExecutor
};

// One row per thread count (1, then each rank count of the run); prints each as measured.
// Figures are thread CPU time (CLOCK_THREAD_CPUTIME_ID), so threads that outnumber the cores
// are not charged for waiting their turn: a shared lock or cache line shows as a rise.
std::vector<Stage1Figures> MeasureStage1(const Options& o);

}  // namespace distbarrier::perf
