// The MoE mode of distbarrier-perf (--moe): one step is aclnnMoeDistributeDispatchV2 ->
// aclnnMoeDistributeCombineV2 on the vendor sample's EP 8 x TP 2 = 16 ranks, timed next to a
// single-core memcpy of the bytes the step moves, measured in the same run. See moe.cc.
#pragma once

#include <cmath>
#include <vector>

#include "common.h"

namespace distbarrier::perf {

// One row of the MoE table: one batch size.
struct MoeRow {
  int bs = 0;
  int64_t rows = 0;      // routed rows per step, summed over the ranks
  double bytes = 0;      // bytes moved per step (the formula in moe.cc)
  double step_ns = NAN;  // median over rounds of the max over ranks of ns per step
  std::vector<double> step_rounds;
  double memcpy_ns = NAN;  // median over rounds of one memcpy of `bytes`
  std::vector<double> memcpy_rounds;
};

// The whole MoE run: header, one row per o.moe_bs, the JSON file. Returns the exit code.
int RunMoe(const Options& o);

}  // namespace distbarrier::perf
