// aclnnMoeDistributeCombineV2: stage 1 (every check of contract section 9, then an executor)
// and the task stage 2 enqueues.
#pragma once

#include <cstdint>

#include "aclnn/aclnn_base.h"

namespace distbarrier::op::moe {

inline constexpr const char* kCombinePrepare = "aclnnMoeDistributeCombineV2GetWorkspaceSize";
inline constexpr const char* kCombineLaunch = "aclnnMoeDistributeCombineV2";

struct CombineArgs {
  const aclTensor* expand_x;
  const aclTensor* expert_ids;
  const aclTensor* assist_info;
  const aclTensor* ep_send_counts;
  const aclTensor* expert_scales;
  const aclTensor* tp_send_counts;
  const aclTensor* x_active_mask;
  const aclTensor* activation_scale;
  const aclTensor* weight_scale;
  const aclTensor* group_list;
  const aclTensor* expand_scales;
  const aclTensor* shared_expert_x;
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
  int64_t global_bs;
  int64_t out_dtype;
  int64_t comm_quant_mode;
  int64_t group_list_type;
  const char* comm_alg;
  aclTensor* x_out;
  uint64_t* workspace_size;
  aclOpExecutor** executor;
};

aclnnStatus PrepareCombine(const CombineArgs& args);

}  // namespace distbarrier::op::moe
