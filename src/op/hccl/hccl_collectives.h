// HCCL's collectives (HcclAllReduce, HcclBroadcast, ...) as stream tasks over the group's
// collectives layer (comm/collectives). A call is checked and given its place in the rank's
// call order when it is issued; its task then runs, in stream order, one descriptor exchange
// (every rank's operation, data type, counts and buffer budget, so that ranks that disagree
// fail with the same message naming them instead of trusting each other's sizes) and as many
// data exchanges as the transport's buffer (HCCL_BUFFSIZE) needs.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "comm/group.h"
#include "hccl/hccl_types.h"

namespace distbarrier::op::hccl {

enum class CollectiveKind : uint32_t {
  kAllReduce,
  kBroadcast,
  kAllGather,
  kReduceScatter,
  kReduce,
  kAlltoAll,
  kAlltoAllV,  // HcclAlltoAllV and HcclAlltoAllVC
  kScatter,
};

struct CollectiveArgs {
  CollectiveKind kind = CollectiveKind::kAllReduce;
  const char* api = "";
  const void* send = nullptr;
  void* recv = nullptr;  // Broadcast: the buffer
  // Elements: AllReduce, Broadcast, Reduce: of the buffer; AllGather: sent by each rank;
  // ReduceScatter, Scatter: received by each rank; AlltoAll: sent to each rank.
  uint64_t count = 0;
  HcclDataType type = HCCL_DATA_TYPE_FP32;
  HcclReduceOp op = HCCL_REDUCE_SUM;  // the reducing kinds only
  uint32_t root = 0;                  // Broadcast, Reduce, Scatter
  // AlltoAllV: elements and offsets (in elements) by peer.
  std::vector<uint64_t> send_counts{}, send_displs{}, recv_counts{}, recv_displs{};
  // Held by the task until it is done or dropped: a buffer the caller made for it
  // (HcclReduceScatterV's staging area).
  std::shared_ptr<const void> keep_alive{};
};

// Checks the arguments (HCCL_E_PTR, HCCL_E_PARA, HCCL_E_NOT_SUPPORT, each with a message as
// the recent error) and enqueues the collective on `stream` for `member`.
HcclResult EnqueueCollective(const comm::Member& member, CollectiveArgs args, void* stream);

// HcclSend, HcclRecv (one item; `names` the API's names for the item's fields) and
// HcclBatchSendRecv: the k-th send from A to B meets the k-th receive of B from A, in the
// order the calls are issued; all items of a batch move together.
struct ItemNames {
  const char* buf;
  const char* rank;
};
HcclResult EnqueueSendReceive(const comm::Member& member, const char* api, const HcclSendRecvItem* items,
                              uint32_t count, const ItemNames* names, void* stream);

}  // namespace distbarrier::op::hccl
