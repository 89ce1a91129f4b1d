/* distbarrier: aclnnMoeDistributeDispatchV2, CANN-compatible (contract section 9).
 * Sends each token row of x to the EP ranks of its experts (and to the shared-expert ranks),
 * all-to-all over groupEp; with tpWorldSize 2 the two TP ranks of an EP rank then all-gather
 * what they received. expandXOut holds the received rows grouped by local expert;
 * expertTokenNumsOut counts them (expertTokenNumsType 0: cumulative, 1: per expert).
 * assistInfoForCombineOut, epRecvCountsOut and tpRecvCountsOut are what
 * aclnnMoeDistributeCombineV2 needs to send the rows back. quantMode 2: expandXOut INT8 and
 * dynamicScalesOut = max|row| / 127 per row; scalesOptional (FLOAT, (sharedExpertNum +
 * moeExpertNum, H): the shared experts' rows first) multiplies each row by its expert's
 * smooth-quant scales before quantizing. */
#ifndef DISTBARRIER_ACLNNOP_ACLNN_MOE_DISTRIBUTE_DISPATCH_V2_H_
#define DISTBARRIER_ACLNNOP_ACLNN_MOE_DISTRIBUTE_DISPATCH_V2_H_

#include "../aclnn/aclnn_base.h"

#ifdef __cplusplus
extern "C" {
#endif

ACL_FUNC_VISIBILITY aclnnStatus aclnnMoeDistributeDispatchV2GetWorkspaceSize(
    const aclTensor* x, const aclTensor* expertIds, const aclTensor* scalesOptional,
    const aclTensor* xActiveMaskOptional, const aclTensor* expertScalesOptional, const char* groupEp,
    int64_t epWorldSize, int64_t epRankId, int64_t moeExpertNum, const char* groupTp, int64_t tpWorldSize,
    int64_t tpRankId, int64_t expertShardType, int64_t sharedExpertNum, int64_t sharedExpertRankNum, int64_t quantMode,
    int64_t globalBs, int64_t expertTokenNumsType, const char* commAlg, aclTensor* expandXOut,
    aclTensor* dynamicScalesOut, aclTensor* assistInfoForCombineOut, aclTensor* expertTokenNumsOut,
    aclTensor* epRecvCountsOut, aclTensor* tpRecvCountsOut, aclTensor* expandScalesOut, uint64_t* workspaceSize,
    aclOpExecutor** executor);

ACL_FUNC_VISIBILITY aclnnStatus aclnnMoeDistributeDispatchV2(void* workspace, uint64_t workspaceSize,
                                                             aclOpExecutor* executor, aclrtStream stream);

#ifdef __cplusplus
}
#endif

#endif /* DISTBARRIER_ACLNNOP_ACLNN_MOE_DISTRIBUTE_DISPATCH_V2_H_ */
