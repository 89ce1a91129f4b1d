// The rank runs: one row of the table measured on threads or forked processes (every rank
// runs the enabled implementations in phases and rounds), and the launch call alone.
#pragma once

#include <cmath>
#include <functional>
#include <vector>

#include "common.h"
#include "implementations.h"

namespace distbarrier::perf {

// Median over rounds of the max over ranks; NAN where not measured.
struct Row {
  int ranks = 0;
  double figure[kImplCount];
  std::vector<double> rounds[kImplCount];  // per round: max over ranks
  double mpi = NAN;
};

// Ranks are threads of this process, on devices 0..ranks-1 (aclInit done by the caller).
Row MeasureThreads(const Options& o, int ranks);

// Ranks are forked processes (each with its own aclInit); the first rank that fails stops the
// others and the tool.
Row MeasureProcesses(const Options& o, int ranks);

// Forks `ranks` processes that each run body(rank) and exit 0 (the caller has not touched the
// runtime), then waits for them all; the first that fails stops the others and the tool.
void RunRankProcesses(int ranks, const std::function<void(int rank)>& body);

// The cost of the launch call alone: ns per aclnnDistributeBarrier on a stream whose first
// barrier is still waiting (rank 1 comes only afterwards), so each timed call just validates,
// builds the task and enqueues it. Threads mode, one thread: no barrier runs while it is timed.
double LaunchNs(int launches);

}  // namespace distbarrier::perf
