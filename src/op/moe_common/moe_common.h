// What aclnnMoeDistributeDispatchV2 and aclnnMoeDistributeCombineV2 share (contract section
// 9): the checks of their common arguments, the routing of tokens to ranks, the run options
// read from the environment, and their executors.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>

#include "aclnn/aclnn_base.h"
#include "comm/collectives/collectives.h"
#include "op/collective_call.h"
#include "comm/group.h"
#include "common/handle_table.h"
#include "op/tensor.h"
#include "runtime/task.h"

namespace distbarrier::op::moe {

// Ranges of contract section 9.
inline constexpr int64_t kMinEpWorldSize = 2;
inline constexpr int64_t kMaxEpWorldSize = 768;
inline constexpr int64_t kMaxMoeExpertNum = 1024;
inline constexpr int64_t kMaxSharedExpertNum = 4;
inline constexpr int64_t kMinH = 1024;
inline constexpr int64_t kMaxH = 8192;
inline constexpr int64_t kMaxBs = 512;
inline constexpr int64_t kMaxK = 16;
inline constexpr int64_t kDefaultBuffSizeMb = 200;  // HCCL_BUFFSIZE
// assistInfoForCombine holds, per row of expandX: TP plane, source EP rank, token, slot.
inline constexpr int64_t kAssistInts = 4;

// The arguments both operators take, as the caller passed them.
struct CommonArgs {
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
  const char* comm_alg;
};

// Where tokens go, from one rank's point of view. Shared-expert ranks are EP ranks
// [0, shared_ranks); expert e lives on rank shared_ranks + e / moe_local_experts.
struct Layout {
  int ep = 0;
  int ep_rank = 0;
  int tp = 1;  // tpWorldSize 0 counts as 1
  int tp_rank = 0;
  int64_t moe_experts = 0;
  int64_t shared_copies = 0;  // copies of each token sent to shared ranks (0 without shared ranks)
  int64_t shared_ranks = 0;
  int64_t moe_local_experts = 0;  // L on MoE ranks
  int64_t local_experts = 0;      // L on this rank (1 on a shared rank)
  int64_t bs = 0;
  int64_t h = 0;
  int64_t k = 0;
  int64_t global_bs = 0;
  int64_t capacity = 0;  // A: the rows one TP plane can bring to this rank

  bool SharedRank(int rank) const { return rank < shared_ranks; }
  int ExpertRank(int64_t expert) const { return static_cast<int>(shared_ranks + expert / moe_local_experts); }
  int LocalExpert(int64_t expert) const { return static_cast<int>(expert % moe_local_experts); }
  // The shared rank that gets copy `copy` of the tokens of EP rank `source`.
  int SharedRankFor(int source, int64_t copy) const;
  // Slots of a token: K routed rows, then one per shared copy.
  int64_t Slots() const { return k + shared_copies; }
};

Layout MakeLayout(const CommonArgs& args, int64_t bs, int64_t h, int64_t k);

// Stage 1 returns the first failed check's status. Variadic, so that an argument holding a
// braced list (whose commas the preprocessor would split on) passes whole.
#define MOE_RETURN_IF_ERROR(...)                                                       \
  do {                                                                                 \
    if (aclnnStatus status_ = (__VA_ARGS__); status_ != ACLNN_SUCCESS) return status_; \
  } while (0)

// 161001 naming the first null of the required arguments (name, pointer), in their order.
aclnnStatus CheckRequired(const char* api, std::initializer_list<std::pair<const char*, const void*>> required);

// The live tensor behind `handle`: a null `handle` is 161001 when `required` (and *out stays
// null otherwise); a dead one is 161002.
aclnnStatus FindTensor(const char* api, const char* name, const aclTensor* handle, bool required,
                       std::shared_ptr<Tensor>* out);
// dtype one of `allowed`, format ND, contiguous, with data: else 161002.
aclnnStatus CheckKind(const char* api, const char* name, const Tensor& tensor,
                      std::initializer_list<aclDataType> allowed);
// Exact shape: else 561002.
aclnnStatus CheckShape(const char* api, const char* name, const Tensor& tensor, std::initializer_list<int64_t> dims,
                       const char* meaning);
// 1-D with at least `elements`, or 2-D with at least `rows` rows of `cols`: else 561002.
aclnnStatus CheckAtLeast(const char* api, const char* name, const Tensor& tensor, int64_t elements,
                         const char* meaning);
aclnnStatus CheckRowsAtLeast(const char* api, const char* name, const Tensor& tensor, int64_t rows, int64_t cols,
                             const char* meaning);

// The scalar and string checks both operators share (all 561002), in the contract's order.
aclnnStatus CheckCommonArgs(const char* api, const CommonArgs& args);
// x-shape dependent ranges (Bs, H, K, globalBs): 561002.
aclnnStatus CheckSizes(const char* api, const CommonArgs& args, int64_t bs, int64_t h, int64_t k);

// The caller's ranks in groupEp (and groupTp when tpWorldSize is 2): 161002 when a group is
// unknown or holds no rank of the current device, 561002 when a size or rank id disagrees.
struct Members {
  comm::Member ep;
  comm::Member tp;  // group null when tpWorldSize <= 1
};
aclnnStatus ResolveMembers(const char* api, const CommonArgs& args, Members* members);

// HCCL_BUFFSIZE (MB) must hold `needed` bytes per rank and call: else 561002 naming the need.
aclnnStatus CheckBufferSize(const char* api, uint64_t needed);

// An executor of either operator: the task it enqueues, made at stage 1.
struct MoeExecutor {
  const char* made_by = "";      // the stage-1 entry point
  const char* runs_with = "";    // the stage-2 entry point that accepts it
  int device = 0;                // the device of the caller's rank
  std::string rank_description;  // "rank 3 of group 'x'"
  std::function<runtime::Task()> make_task;
  std::atomic<bool> repeatable{false};
};

HandleTable<MoeExecutor>& MoeExecutors();

// Stage 1's last step for either operator: registers an executor of the caller's EP rank whose
// task `make_task` builds, and answers workspace size 0 (nothing is needed on CPU).
aclnnStatus AddExecutor(const char* made_by, const char* runs_with, const comm::Member& ep,
                        std::function<runtime::Task()> make_task, uint64_t* workspace_size,
                        aclOpExecutor** executor);

aclnnStatus LaunchMoe(const char* api, void* workspace, uint64_t workspace_size, aclOpExecutor* executor,
                      aclrtStream stream);

}  // namespace distbarrier::op::moe
