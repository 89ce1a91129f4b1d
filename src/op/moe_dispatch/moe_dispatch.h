// aclnnMoeDistributeDispatchV2: stage 1 (every check of contract section 9, then an executor)
// and the task stage 2 enqueues.
#pragma once

#include <cstdint>

#include "aclnn/aclnn_base.h"

namespace distbarrier::op::moe {

inline constexpr const char* kDispatchPrepare = "aclnnMoeDistributeDispatchV2GetWorkspaceSize";
inline constexpr const char* kDispatchLaunch = "aclnnMoeDistributeDispatchV2";

struct DispatchArgs {
  const aclTensor* x;
  const aclTensor* expert_ids;
  const aclTensor* scales;
  const aclTensor* x_active_mask;
  const aclTensor* expert_scales;
  const char* group_ep;
  int64_t ep_world_size;
  int64_t ep_rank_id;
  int64_t moe_expert_num;
  const char* group_tp;
  int64_t tp_world_size;
  int64_t tp_rank_id;
  int64_t expert_shard_type;
  int64_t shared_expert_num;
  int64_t shared_expert_rank_num;
  int64_t quant_mode;
  int64_t global_bs;
  int64_t expert_token_nums_type;
  const char* comm_alg;
  aclTensor* expand_x;
  aclTensor* dynamic_scales;
  aclTensor* assist_info;
  aclTensor* expert_token_nums;
  aclTensor* ep_recv_counts;
  aclTensor* tp_recv_counts;
  aclTensor* expand_scales;
  uint64_t* workspace_size;
  aclOpExecutor** executor;
};

aclnnStatus PrepareDispatch(const DispatchArgs& args);

}  // namespace distbarrier::op::moe
