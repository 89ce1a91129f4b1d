// Idle cost: the CPU that 16 devices x 3 streams, each used once, take while idle.
#pragma once

#include <optional>

namespace distbarrier::perf {

struct IdleResult {
  int streams = 0;
  double wall_s = 0, cpu_s = 0;
};

// Measured by getrusage in a child for `seconds`, so that processes mode keeps the parent off
// the runtime; nullopt if the child fails.
std::optional<IdleResult> MeasureIdle(double seconds);

}  // namespace distbarrier::perf
