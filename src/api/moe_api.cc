// The aclnn entry points of the MoE operators (contract section 9). No exception crosses
// the C boundary (api/guard.h).
#include "aclnnop/aclnn_moe_distribute_combine_v2.h"
#include "aclnnop/aclnn_moe_distribute_dispatch_v2.h"
#include "api/guard.h"
#include "op/moe_combine/moe_combine.h"
#include "op/moe_common/moe_common.h"
#include "op/moe_dispatch/moe_dispatch.h"

namespace moe = distbarrier::op::moe;

extern "C" {

aclnnStatus aclnnMoeDistributeDispatchV2GetWorkspaceSize(
    const aclTensor* x, const aclTensor* expertIds, const aclTensor* scalesOptional,
    const aclTensor* xActiveMaskOptional, const aclTensor* expertScalesOptional, const char* groupEp,
    int64_t epWorldSize, int64_t epRankId, int64_t moeExpertNum, const char* groupTp, int64_t tpWorldSize,
    int64_t tpRankId, int64_t expertShardType, int64_t sharedExpertNum, int64_t sharedExpertRankNum, int64_t quantMode,
    int64_t globalBs, int64_t expertTokenNumsType, const char* commAlg, aclTensor* expandXOut,
    aclTensor* dynamicScalesOut, aclTensor* assistInfoForCombineOut, aclTensor* expertTokenNumsOut,
    aclTensor* epRecvCountsOut, aclTensor* tpRecvCountsOut, aclTensor* expandScalesOut, uint64_t* workspaceSize,
    aclOpExecutor** executor) try {
  return moe::PrepareDispatch({x,
                               expertIds,
                               scalesOptional,
                               xActiveMaskOptional,
                               expertScalesOptional,
                               groupEp,
                               epWorldSize,
                               epRankId,
                               moeExpertNum,
                               groupTp,
                               tpWorldSize,
                               tpRankId,
                               expertShardType,
                               sharedExpertNum,
                               sharedExpertRankNum,
                               quantMode,
                               globalBs,
                               expertTokenNumsType,
                               commAlg,
                               expandXOut,
                               dynamicScalesOut,
                               assistInfoForCombineOut,
                               expertTokenNumsOut,
                               epRecvCountsOut,
                               tpRecvCountsOut,
                               expandScalesOut,
                               workspaceSize,
                               executor});
}
DISTBARRIER_ACLNN_GUARD

aclnnStatus aclnnMoeDistributeDispatchV2(void* workspace, uint64_t workspaceSize, aclOpExecutor* executor,
                                         aclrtStream stream) try {
  return moe::LaunchMoe(moe::kDispatchLaunch, workspace, workspaceSize, executor, stream);
}
DISTBARRIER_ACLNN_GUARD

aclnnStatus aclnnMoeDistributeCombineV2GetWorkspaceSize(
    const aclTensor* expandX, const aclTensor* expertIds, const aclTensor* assistInfoForCombine,
    const aclTensor* epSendCounts, const aclTensor* expertScales, const aclTensor* tpSendCountsOptional,
    const aclTensor* xActiveMaskOptional, const aclTensor* activationScaleOptional,
    const aclTensor* weightScaleOptional, const aclTensor* groupListOptional, const aclTensor* expandScalesOptional,
    const aclTensor* sharedExpertXOptional, const char* groupEp, int64_t epWorldSize, int64_t epRankId,
    int64_t moeExpertNum, const char* groupTp, int64_t tpWorldSize, int64_t tpRankId, int64_t expertShardType,
    int64_t sharedExpertNum, int64_t sharedExpertRankNum, int64_t globalBs, int64_t outDtype, int64_t commQuantMode,
    int64_t groupListType, const char* commAlg, aclTensor* xOut, uint64_t* workspaceSize,
    aclOpExecutor** executor) try {
  return moe::PrepareCombine({expandX,
                              expertIds,
                              assistInfoForCombine,
                              epSendCounts,
                              expertScales,
                              tpSendCountsOptional,
                              xActiveMaskOptional,
                              activationScaleOptional,
                              weightScaleOptional,
                              groupListOptional,
                              expandScalesOptional,
                              sharedExpertXOptional,
                              groupEp,
                              epWorldSize,
                              epRankId,
                              moeExpertNum,
                              groupTp,
                              tpWorldSize,
                              tpRankId,
                              expertShardType,
                              sharedExpertNum,
                              sharedExpertRankNum,
                              globalBs,
                              outDtype,
                              commQuantMode,
                              groupListType,
                              commAlg,
                              xOut,
                              workspaceSize,
                              executor});
}
DISTBARRIER_ACLNN_GUARD

aclnnStatus aclnnMoeDistributeCombineV2(void* workspace, uint64_t workspaceSize, aclOpExecutor* executor,
                                        aclrtStream stream) try {
  return moe::LaunchMoe(moe::kCombineLaunch, workspace, workspaceSize, executor, stream);
}
DISTBARRIER_ACLNN_GUARD

}  // extern "C"
