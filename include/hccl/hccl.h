/* distbarrier: HCCL communicators (the slice the barrier operator needs). */
#ifndef DISTBARRIER_HCCL_HCCL_H_
#define DISTBARRIER_HCCL_HCCL_H_

#include "../acl/acl.h" /* as CANN's hccl.h does: HCCL programs use the runtime through it */
#include "hccl_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One communicator per device in devices[0..ndev), all in this process; comms[i] is rank i. */
ACL_FUNC_VISIBILITY HcclResult HcclCommInitAll(uint32_t ndev, int32_t *devices, HcclComm *comms);
ACL_FUNC_VISIBILITY HcclResult HcclGetRootInfo(HcclRootInfo *rootInfo);
ACL_FUNC_VISIBILITY HcclResult HcclCommInitRootInfo(uint32_t nRanks, const HcclRootInfo *rootInfo,
                                                    uint32_t rank, HcclComm *comm);
ACL_FUNC_VISIBILITY HcclResult HcclCommDestroy(HcclComm comm);
/* commName must hold COMM_NAME_MAX_LENGTH bytes. */
ACL_FUNC_VISIBILITY HcclResult HcclGetCommName(HcclComm comm, char *commName);
ACL_FUNC_VISIBILITY HcclResult HcclGetRankSize(HcclComm comm, uint32_t *rankSize);
ACL_FUNC_VISIBILITY HcclResult HcclGetRankId(HcclComm comm, uint32_t *rank);
/* Enqueues on stream a barrier over all ranks of comm. */
ACL_FUNC_VISIBILITY HcclResult HcclBarrier(HcclComm comm, aclrtStream stream);
ACL_FUNC_VISIBILITY const char *HcclGetErrorString(HcclResult code);

#ifdef __cplusplus
}
#endif

#endif /* DISTBARRIER_HCCL_HCCL_H_ */
