/* distbarrier: aclnn base types (tensors, executors, status codes), CANN-compatible. */
#ifndef DISTBARRIER_ACLNN_ACLNN_BASE_H_
#define DISTBARRIER_ACLNN_ACLNN_BASE_H_

#include <stdint.h>

#include "../acl/acl_base.h"
#include "acl_meta.h" /* aclnnStatus, aclTensor and the other argument objects, as in CANN */

#ifdef __cplusplus
extern "C" {
#endif

#define ACLNN_SUCCESS 0
#define ACLNN_ERR_PARAM_NULLPTR 161001
#define ACLNN_ERR_PARAM_INVALID 161002
#define ACLNN_ERR_RUNTIME_ERROR 361001
#define ACLNN_ERR_INNER 561000
#define ACLNN_ERR_INNER_INFERSHAPE_ERROR 561001
#define ACLNN_ERR_INNER_TILING_ERROR 561002
#define ACLNN_ERR_INNER_FIND_KERNEL_ERROR 561003

/* Executors are single-use (freed by the run) unless made repeatable. */
ACL_FUNC_VISIBILITY aclnnStatus aclSetAclOpExecutorRepeatable(aclOpExecutor *executor);
ACL_FUNC_VISIBILITY aclnnStatus aclDestroyAclOpExecutor(aclOpExecutor *executor);

/* Nothing to set up or tear down here (aclFinalize releases everything); configPath is
 * ignored and may be null. */
ACL_FUNC_VISIBILITY aclnnStatus aclnnInit(const char *configPath);
ACL_FUNC_VISIBILITY aclnnStatus aclnnFinalize(void);

#ifdef __cplusplus
}
#endif

#endif /* DISTBARRIER_ACLNN_ACLNN_BASE_H_ */
