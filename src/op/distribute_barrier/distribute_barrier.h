// aclnnDistributeBarrier V1/V2: the two stages behind the C entry points.
// Stage 1 checks the arguments (every check of the contract, in its order) and builds an
// executor; stage 2 checks the executor, workspace and stream and enqueues the barrier task.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "aclnn/aclnn_base.h"
#include "common/handle_table.h"
#include "op/distribute_barrier/barrier_task.h"

namespace distbarrier::op {

inline constexpr int64_t kMinWorldSize = 2;
inline constexpr int64_t kMaxWorldSize = 384;
inline constexpr size_t kMaxDims = 8;
inline constexpr uint64_t kWorkspaceBytes = 0;  // nothing on CPU: the group owns the flags

struct BarrierArgs {
  const char* api;  // "aclnnDistributeBarrierGetWorkspaceSize" or its V2
  bool v2;
  const aclTensor* x_ref;
  const aclTensor* timeout;  // V2 only, optional
  const aclTensor* elastic;  // V2 only, optional
  const char* group;
  int64_t world_size;
  uint64_t* workspace_size;
  aclOpExecutor** executor;
};

struct Executor {
  std::shared_ptr<const BarrierPlan> plan;
  bool v2 = false;
  std::atomic<bool> repeatable{false};
};

HandleTable<Executor>& Executors();

aclnnStatus PrepareBarrier(const BarrierArgs& args);
// The one launch path of the barrier, for aclnnDistributeBarrier(V2) and HcclBarrier: the
// stream (null: the current context's default) must be live and on the device of the plan's
// rank; then `claim` (when given) may still refuse, e.g. a single-use executor already run;
// then the task is enqueued. Returns why it refused; the caller maps that to its status code.
std::optional<std::string> EnqueueBarrier(std::shared_ptr<const BarrierPlan> plan, aclrtStream stream_handle,
                                          const std::function<std::optional<std::string>()>& claim = {});
aclnnStatus LaunchBarrier(const char* api, bool v2, void* workspace, uint64_t workspace_size,
                          aclOpExecutor* executor, aclrtStream stream);
// Stage 2's workspace rule, apart so it can be tested with a non-zero requirement.
aclnnStatus CheckWorkspace(const char* api, uint64_t required, const void* workspace, uint64_t workspace_size);

}  // namespace distbarrier::op
