/* distbarrier: aclnnDistributeBarrierV2 (timeout and elastic mode), CANN-compatible. */
#ifndef DISTBARRIER_ACLNNOP_ACLNN_DISTRIBUTE_BARRIER_V2_H_
#define DISTBARRIER_ACLNNOP_ACLNN_DISTRIBUTE_BARRIER_V2_H_

#include "aclnn/aclnn_base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* timeOutOptional: INT32 tensor of shape (1,), microseconds, read when the barrier runs;
 *   <= 0 means no timeout. On timeout the stream fails with ACL_ERROR_RT_VECTOR_CORE_TIMEOUT.
 * elasticInfoOptional: INT32 1-D tensor of 4 + 2 * worldSize elements:
 *   [isElastic, rankNumAfter, sharedExpertRankNum, moeExpertNum,
 *    table1[worldSize] (epRank -> localRank or -1), table2[worldSize] (localRank -> epRank)].
 *   With isElastic = 1 the barrier waits only for ranks whose table1 entry is not -1. */
ACL_FUNC_VISIBILITY aclnnStatus aclnnDistributeBarrierV2GetWorkspaceSize(
    const aclTensor *xRef, const aclTensor *timeOutOptional, const aclTensor *elasticInfoOptional,
    const char *group, int64_t worldSize, uint64_t *workspaceSize, aclOpExecutor **executor);

ACL_FUNC_VISIBILITY aclnnStatus aclnnDistributeBarrierV2(void *workspace, uint64_t workspaceSize,
                                                         aclOpExecutor *executor, aclrtStream stream);

#ifdef __cplusplus
}
#endif

#endif /* DISTBARRIER_ACLNNOP_ACLNN_DISTRIBUTE_BARRIER_V2_H_ */
