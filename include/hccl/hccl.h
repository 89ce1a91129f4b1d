/* distbarrier: HCCL communicators and collectives on simulated devices (CANN's signatures). */
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
/* A communicator from a rank table file (clusterInfo: its path, < 4096 bytes): rank is a
 * rank_id of the file and the calling thread's current device its device_id. A table spanning
 * hosts needs DISTBARRIER_JOB_SECRET or DISTBARRIER_JOB_SECRET_FILE (see README). */
ACL_FUNC_VISIBILITY HcclResult HcclCommInitClusterInfo(const char *clusterInfo, uint32_t rank, HcclComm *comm);
ACL_FUNC_VISIBILITY HcclResult HcclCommDestroy(HcclComm comm);
/* commName must hold COMM_NAME_MAX_LENGTH bytes. */
ACL_FUNC_VISIBILITY HcclResult HcclGetCommName(HcclComm comm, char *commName);
ACL_FUNC_VISIBILITY HcclResult HcclGetRankSize(HcclComm comm, uint32_t *rankSize);
ACL_FUNC_VISIBILITY HcclResult HcclGetRankId(HcclComm comm, uint32_t *rank);
/* Enqueues on stream a barrier over all ranks of comm. */
ACL_FUNC_VISIBILITY HcclResult HcclBarrier(HcclComm comm, aclrtStream stream);
ACL_FUNC_VISIBILITY const char *HcclGetErrorString(HcclResult code);

/* Collectives: each is enqueued on stream and runs in stream order; counts are elements of
 * dataType. Reductions take every integer type, FP16, BF16 (combined in fp32), FP32 and FP64. */
ACL_FUNC_VISIBILITY HcclResult HcclAllReduce(void *sendBuf, void *recvBuf, uint64_t count, HcclDataType dataType,
                                             HcclReduceOp op, HcclComm comm, aclrtStream stream);
ACL_FUNC_VISIBILITY HcclResult HcclBroadcast(void *buf, uint64_t count, HcclDataType dataType, uint32_t root,
                                             HcclComm comm, aclrtStream stream);
ACL_FUNC_VISIBILITY HcclResult HcclReduceScatter(void *sendBuf, void *recvBuf, uint64_t recvCount,
                                                 HcclDataType dataType, HcclReduceOp op, HcclComm comm,
                                                 aclrtStream stream);
ACL_FUNC_VISIBILITY HcclResult HcclReduce(void *sendBuf, void *recvBuf, uint64_t count, HcclDataType dataType,
                                          HcclReduceOp op, uint32_t root, HcclComm comm, aclrtStream stream);
ACL_FUNC_VISIBILITY HcclResult HcclScatter(void *sendBuf, void *recvBuf, uint64_t recvCount, HcclDataType dataType,
                                           uint32_t root, HcclComm comm, aclrtStream stream);
ACL_FUNC_VISIBILITY HcclResult HcclAllGather(void *sendBuf, void *recvBuf, uint64_t sendCount, HcclDataType dataType,
                                             HcclComm comm, aclrtStream stream);
ACL_FUNC_VISIBILITY HcclResult HcclAlltoAll(const void *sendBuf, uint64_t sendCount, HcclDataType sendType,
                                            const void *recvBuf, uint64_t recvCount, HcclDataType recvType,
                                            HcclComm comm, aclrtStream stream);
/* sendCounts, sdispls, recvCounts, rdispls: rankSize uint64_t each, in elements. */
ACL_FUNC_VISIBILITY HcclResult HcclAlltoAllV(const void *sendBuf, const void *sendCounts, const void *sdispls,
                                             HcclDataType sendType, const void *recvBuf, const void *recvCounts,
                                             const void *rdispls, HcclDataType recvType, HcclComm comm,
                                             aclrtStream stream);
/* AllGatherV: rank i's sendCount elements land at recvDispls[i] (elements) of every rank's
 * recvBuf; recvCounts[i] must equal rank i's sendCount. ReduceScatterV: rank i gets, at recvBuf,
 * the reduction over all ranks of their sendCounts[i] elements at sendDispls[i]; recvCount must
 * equal every rank's sendCounts[i], and recvBuf must not be sendBuf. rankSize uint64_t per array. */
ACL_FUNC_VISIBILITY HcclResult HcclAllGatherV(void *sendBuf, uint64_t sendCount, void *recvBuf, const void *recvCounts,
                                              const void *recvDispls, HcclDataType dataType, HcclComm comm,
                                              aclrtStream stream);
ACL_FUNC_VISIBILITY HcclResult HcclReduceScatterV(void *sendBuf, const void *sendCounts, const void *sendDispls,
                                                  void *recvBuf, uint64_t recvCount, HcclDataType dataType,
                                                  HcclReduceOp op, HcclComm comm, aclrtStream stream);
/* sendCountMatrix: rankSize x rankSize uint64_t, entry [i][j] the elements rank i sends to j. */
/* Point to point: the k-th send from rank A to rank B meets the k-th receive of B from A. A
 * send completes when its receiver has taken the data; HcclBatchSendRecv moves all its items
 * together (a rank may send to and receive from the same peer in one batch). */
ACL_FUNC_VISIBILITY HcclResult HcclSend(void *sendBuf, uint64_t count, HcclDataType dataType, uint32_t destRank,
                                        HcclComm comm, aclrtStream stream);
ACL_FUNC_VISIBILITY HcclResult HcclRecv(void *recvBuf, uint64_t count, HcclDataType dataType, uint32_t srcRank,
                                        HcclComm comm, aclrtStream stream);
ACL_FUNC_VISIBILITY HcclResult HcclBatchSendRecv(HcclSendRecvItem *sendRecvInfo, uint32_t itemNum, HcclComm comm,
                                                 aclrtStream stream);
ACL_FUNC_VISIBILITY HcclResult HcclAlltoAllVC(const void *sendBuf, const void *sendCountMatrix, HcclDataType sendType,
                                              const void *recvBuf, HcclDataType recvType, HcclComm comm,
                                              aclrtStream stream);

#ifdef __cplusplus
}
#endif

#endif /* DISTBARRIER_HCCL_HCCL_H_ */
