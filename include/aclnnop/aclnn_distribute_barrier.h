/* distbarrier: aclnnDistributeBarrier (V1), CANN-compatible. */
#ifndef DISTBARRIER_ACLNNOP_ACLNN_DISTRIBUTE_BARRIER_H_
#define DISTBARRIER_ACLNNOP_ACLNN_DISTRIBUTE_BARRIER_H_

#include "aclnn/aclnn_base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Stage 1: validates the arguments, resolves the caller's rank in `group` from the calling
 * thread's current device, and returns the workspace size and a single-use executor.
 * xRef is never read or written; it only orders the barrier in a graph. */
ACL_FUNC_VISIBILITY aclnnStatus aclnnDistributeBarrierGetWorkspaceSize(aclTensor *xRef, const char *group,
                                                                       int64_t worldSize,
                                                                       uint64_t *workspaceSize,
                                                                       aclOpExecutor **executor);

/* Stage 2: enqueues the barrier on `stream` and returns at once. The stream passes the barrier
 * only when every rank of the group has reached its barrier of the same sequence number.
 * Timeout: DISTBARRIER_TIMEOUT_MS (unset or <= 0: none). */
ACL_FUNC_VISIBILITY aclnnStatus aclnnDistributeBarrier(void *workspace, uint64_t workspaceSize,
                                                       aclOpExecutor *executor, aclrtStream stream);

#ifdef __cplusplus
}
#endif

#endif /* DISTBARRIER_ACLNNOP_ACLNN_DISTRIBUTE_BARRIER_H_ */
