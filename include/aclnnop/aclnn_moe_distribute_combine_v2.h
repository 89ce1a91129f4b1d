/* distbarrier: aclnnMoeDistributeCombineV2, CANN-compatible (contract section 9).
 * The inverse of aclnnMoeDistributeDispatchV2: with tpWorldSize 2 the TP pair adds its two
 * partial results per row; the rows travel back over groupEp; then, per token t, in fp32
 * rounded once to x's dtype:
 *   xOut[t] = sum_k expertScales[t,k] * row(t,k) + sum_s sharedRow(t,s) (+ sharedExpertX[t]).
 * A token masked out by xActiveMask gets a zero row. */
#ifndef DISTBARRIER_ACLNNOP_ACLNN_MOE_DISTRIBUTE_COMBINE_V2_H_
#define DISTBARRIER_ACLNNOP_ACLNN_MOE_DISTRIBUTE_COMBINE_V2_H_

#include "../aclnn/aclnn_base.h"

#ifdef __cplusplus
extern "C" {
#endif

ACL_FUNC_VISIBILITY aclnnStatus aclnnMoeDistributeCombineV2GetWorkspaceSize(
    const aclTensor* expandX, const aclTensor* expertIds, const aclTensor* assistInfoForCombine,
    const aclTensor* epSendCounts, const aclTensor* expertScales, const aclTensor* tpSendCountsOptional,
    const aclTensor* xActiveMaskOptional, const aclTensor* activationScaleOptional,
    const aclTensor* weightScaleOptional, const aclTensor* groupListOptional, const aclTensor* expandScalesOptional,
    const aclTensor* sharedExpertXOptional, const char* groupEp, int64_t epWorldSize, int64_t epRankId,
    int64_t moeExpertNum, const char* groupTp, int64_t tpWorldSize, int64_t tpRankId, int64_t expertShardType,
    int64_t sharedExpertNum, int64_t sharedExpertRankNum, int64_t globalBs, int64_t outDtype, int64_t commQuantMode,
    int64_t groupListType, const char* commAlg, aclTensor* xOut, uint64_t* workspaceSize, aclOpExecutor** executor);

ACL_FUNC_VISIBILITY aclnnStatus aclnnMoeDistributeCombineV2(void* workspace, uint64_t workspaceSize,
                                                            aclOpExecutor* executor, aclrtStream stream);

#ifdef __cplusplus
}
#endif

#endif /* DISTBARRIER_ACLNNOP_ACLNN_MOE_DISTRIBUTE_COMBINE_V2_H_ */
