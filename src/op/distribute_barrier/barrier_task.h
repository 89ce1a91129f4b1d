// The barrier as a stream task: what one rank's barrier does when its stream reaches it.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "comm/group.h"
#include "runtime/memory.h"
#include "runtime/task.h"

namespace distbarrier::op {

struct BarrierPlan {
  comm::Member member;
  std::string api;  // the entry point, for messages
  // Timeout when no tensor gives one: DISTBARRIER_TIMEOUT_MS when stage 1 builds the plan. A
  // thread reuses its plan for later executors of the same xRef and group until a communicator
  // is made or destroyed, or a context or tensor destroyed (distribute_barrier.cc, PlanCache); a
  // setenv meanwhile applies from then on. DISTBARRIER_WARN_S likewise.
  std::optional<std::chrono::microseconds> default_timeout;
  // V2 device tensors, read when the barrier runs (as a kernel would read them).
  const int32_t* timeout_us = nullptr;    // one element; <= 0 means no timeout
  const int32_t* elastic_info = nullptr;  // 4 + 2 * worldSize elements
  // The allocations those tensors lie in, held while the plan lives (the executor and each
  // launched barrier): an aclrtFree after the launch leaves the bytes readable.
  runtime::MemoryRef timeout_memory;
  runtime::MemoryRef elastic_memory;
  // A barrier without timeout warns once after this long: DISTBARRIER_WARN_S (default 30).
  std::chrono::milliseconds warn_after{30000};
};

// Fills the plan's defaults from the environment.
void ApplyEnvironmentDefaults(BarrierPlan& plan);

runtime::Task MakeBarrierTask(std::shared_ptr<const BarrierPlan> plan);

// The ranks an elastic barrier waits for, from elasticInfo = [isElastic, rankNumAfter,
// sharedExpertRankNum, moeExpertNum, table1[worldSize], table2[worldSize]]; every rank
// when isElastic is 0. An error message when the table is inconsistent: table1 (epRank ->
// localRank or -1) must list rankNumAfter ranks, the caller among them, and table2 (localRank
// -> epRank) must map each of them back (table2[table1[r]] == r); table2's entries from
// rankNumAfter on are not read.
std::variant<std::vector<int>, std::string> ElasticRequiredRanks(const int32_t* info, int world_size,
                                                                 int my_rank);

}  // namespace distbarrier::op
