// The HCCL entry points: communicators in this process (threads as ranks).
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <set>

#include "api/guard.h"
#include "api/join_comm.h"
#include "comm/bootstrap/bootstrap.h"
#include "comm/bootstrap/cluster.h"
#include "comm/bootstrap/rank_table.h"
#include "comm/collectives/reduce.h"
#include "comm/group.h"
#include "common/env.h"
#include "common/error.h"
#include "hccl/hccl.h"
#include "op/distribute_barrier/distribute_barrier.h"
#include "op/hccl/hccl_collectives.h"
#include "runtime/runtime.h"

using distbarrier::Fail;
using distbarrier::comm::Communicators;
using distbarrier::comm::Group;
using distbarrier::comm::GroupRegistry;
using distbarrier::comm::Member;

namespace {

std::shared_ptr<Member> FindComm(const char* api, HcclComm comm, HcclResult* error) {
  if (comm == nullptr) {
    *error = Fail(HCCL_E_PTR, "{}: comm is null", api);
    return nullptr;
  }
  std::shared_ptr<Member> member = Communicators().Find(comm);
  if (!member) *error = Fail(HCCL_E_PARA, "{}: comm {} is not live (destroyed or never created)", api, comm);
  return member;
}

using distbarrier::op::hccl::CollectiveArgs;
using distbarrier::op::hccl::CollectiveKind;

HcclResult Enqueue(HcclComm comm, CollectiveArgs args, aclrtStream stream) {
  HcclResult error = HCCL_SUCCESS;
  auto member = FindComm(args.api, comm, &error);
  if (!member) return error;
  return distbarrier::op::hccl::EnqueueCollective(*member, std::move(args), stream);
}

// AlltoAll's and AlltoAllV's send and receive types must agree: no conversion happens.
HcclResult CheckSameType(const char* api, HcclDataType send_type, HcclDataType recv_type) {
  if (send_type != recv_type) {
    return Fail(HCCL_E_PARA, "{}: sendType {} and recvType {} differ; they must be the same data type", api,
                static_cast<int>(send_type), static_cast<int>(recv_type));
  }
  return HCCL_SUCCESS;
}

// How long a rank waits for its group: DISTBARRIER_CONNECT_TIMEOUT_S, else CANN's
// HCCL_CONNECT_TIMEOUT (s), else 120 s; at least 1 s.
std::chrono::milliseconds ConnectTimeout() {
  return std::max<std::chrono::milliseconds>(
      std::chrono::seconds(1), distbarrier::EnvDuration("DISTBARRIER_CONNECT_TIMEOUT_S", std::chrono::seconds(1))
                                   .value_or(distbarrier::EnvDuration("HCCL_CONNECT_TIMEOUT", std::chrono::seconds(1))
                                                 .value_or(std::chrono::seconds(120))));
}

// A process group's rank joins (`join` runs the bootstrap with the attach step below) and, once
// the whole group is there, gets its communicator. `api` starts every message.
HcclResult JoinProcessGroup(const std::string& api, uint32_t rank,
                            const std::function<std::optional<distbarrier::comm::BootstrapError>(
                                const distbarrier::comm::RankAttach&)>& join,
                            HcclComm* comm) {
  // As in HCCL, the communicator belongs to the calling thread's current device.
  aclError context_error = ACL_SUCCESS;
  auto context = distbarrier::runtime::Runtime::Instance().CurrentContext(&context_error);
  if (!context) return Fail(HCCL_E_PARA, "{}: call aclrtSetDevice before, the communicator belongs to a device", api);
  std::shared_ptr<Member> member;
  distbarrier::comm::RankAttach attach;
  attach.attach = [&](distbarrier::comm::JoinedGroup& joined) -> std::optional<distbarrier::comm::BootstrapError> {
    auto attached = GroupRegistry::Instance().AttachProcessRank(joined.name, joined.rank_count, std::move(joined.memory),
                                                                static_cast<int>(rank), context->device, joined.layout,
                                                                std::move(joined.agent));
    if (auto* error = std::get_if<std::pair<HcclResult, std::string>>(&attached)) {
      return distbarrier::comm::BootstrapError{error->first, error->second};
    }
    member = std::make_shared<Member>(std::get<Member>(attached));
    return std::nullopt;
  };
  attach.detach = [&] {
    GroupRegistry::Instance().Release(*member);
    member.reset();
  };
  if (auto error = join(attach)) return Fail(error->code, "{}: {}", api, error->message);
  *comm = Communicators().Add(std::move(member));
  return HCCL_SUCCESS;
}

}  // namespace

namespace distbarrier::api {

HcclResult JoinComm(const char* api, uint32_t nRanks, const HcclRootInfo& root, uint32_t rank, HcclComm* comm) {
  auto join = [&](const distbarrier::comm::RankAttach& attach) {
    return distbarrier::comm::JoinGroup(root, nRanks, rank, ConnectTimeout(), attach);
  };
  return JoinProcessGroup(fmt::format("{} (rank {} of {})", api, rank, nRanks), rank, join, comm);
}

}  // namespace distbarrier::api

extern "C" {

HcclResult HcclCommInitAll(uint32_t ndev, int32_t* devices, HcclComm* comms) try {
  if (devices == nullptr || comms == nullptr) return Fail(HCCL_E_PTR, "HcclCommInitAll: devices or comms is null");
  auto& runtime = distbarrier::runtime::Runtime::Instance();
  if (ndev == 0 || ndev > static_cast<uint32_t>(runtime.DeviceCount())) {
    return Fail(HCCL_E_PARA, "HcclCommInitAll: ndev {} is out of range [1, {}]", ndev, runtime.DeviceCount());
  }
  std::vector<int> device_list(devices, devices + ndev);
  std::set<int> seen;
  for (uint32_t rank = 0; rank < ndev; ++rank) {
    if (!runtime.ValidDevice(device_list[rank])) {
      return Fail(HCCL_E_PARA, "HcclCommInitAll: devices[{}] = {} is not a device id in [0, {})", rank,
                  device_list[rank], runtime.DeviceCount());
    }
    if (!seen.insert(device_list[rank]).second) {
      return Fail(HCCL_E_PARA, "HcclCommInitAll: device {} appears twice in devices", device_list[rank]);
    }
  }
  auto& registry = GroupRegistry::Instance();
  auto group = std::make_shared<Group>(registry.NewGroupName(), std::move(device_list));
  registry.Add(group);
  for (uint32_t rank = 0; rank < ndev; ++rank) {
    comms[rank] = Communicators().Add(std::make_shared<Member>(Member{group, static_cast<int>(rank)}));
  }
  return HCCL_SUCCESS;
} DISTBARRIER_HCCL_GUARD

HcclResult HcclGetRootInfo(HcclRootInfo* rootInfo) try {
  if (rootInfo == nullptr) return Fail(HCCL_E_PTR, "HcclGetRootInfo: rootInfo is null");
  auto created = distbarrier::comm::CreateRootInfo();
  if (auto* error = std::get_if<distbarrier::comm::BootstrapError>(&created)) {
    return Fail(error->code, "HcclGetRootInfo: {}", error->message);
  }
  *rootInfo = std::get<HcclRootInfo>(created);
  return HCCL_SUCCESS;
} DISTBARRIER_HCCL_GUARD

HcclResult HcclCommInitRootInfo(uint32_t nRanks, const HcclRootInfo* rootInfo, uint32_t rank, HcclComm* comm) try {
  if (rootInfo == nullptr || comm == nullptr) return Fail(HCCL_E_PTR, "HcclCommInitRootInfo: rootInfo or comm is null");
  return distbarrier::api::JoinComm("HcclCommInitRootInfo", nRanks, *rootInfo, rank, comm);
} DISTBARRIER_HCCL_GUARD

HcclResult HcclCommInitClusterInfo(const char* clusterInfo, uint32_t rank, HcclComm* comm) try {
  if (clusterInfo == nullptr || comm == nullptr) {
    return Fail(HCCL_E_PTR, "HcclCommInitClusterInfo: clusterInfo or comm is null");
  }
  auto read = distbarrier::comm::ReadRankTable(clusterInfo);
  if (auto* why = std::get_if<std::string>(&read)) return Fail(HCCL_E_PARA, "HcclCommInitClusterInfo: {}", *why);
  const auto& table = std::get<distbarrier::comm::RankTable>(read);
  const std::string api = fmt::format("HcclCommInitClusterInfo (rank {} of {})", rank, table.rank_count);
  // As in CANN, the rank's device is the table's device_id, and the thread must be on it.
  if (rank < table.rank_count) {
    const int32_t device = table.DeviceOf(rank).device_id;
    aclError context_error = ACL_SUCCESS;
    auto context = distbarrier::runtime::Runtime::Instance().CurrentContext(&context_error);
    if (context && context->device != device) {
      return Fail(HCCL_E_PARA, "{}: the rank table gives rank {} device {} ({}.device_id), but this thread's "
                  "current device is {}; call aclrtSetDevice({}) first",
                  api, rank, device, table.FieldOf(rank), context->device, device);
    }
  }
  auto join = [&](const distbarrier::comm::RankAttach& attach) {
    return distbarrier::comm::JoinClusterGroup(table, rank, ConnectTimeout(), attach);
  };
  return JoinProcessGroup(api, rank, join, comm);
} DISTBARRIER_HCCL_GUARD

HcclResult HcclCommDestroy(HcclComm comm) try {
  if (comm == nullptr) return Fail(HCCL_E_PTR, "HcclCommDestroy: comm is null");
  // In a forked child the group's peer watch thread is not there to be joined.
  if (distbarrier::runtime::Runtime::Instance().CheckNotForked("HcclCommDestroy") != ACL_SUCCESS) return HCCL_E_RUNTIME;
  std::shared_ptr<Member> member = Communicators().Take(comm);
  if (!member) return Fail(HCCL_E_PARA, "HcclCommDestroy: comm {} is not live (destroyed twice?)", comm);
  GroupRegistry::Instance().Release(*member);
  return HCCL_SUCCESS;
} DISTBARRIER_HCCL_GUARD

HcclResult HcclGetCommName(HcclComm comm, char* commName) try {
  HcclResult error = HCCL_SUCCESS;
  auto member = FindComm("HcclGetCommName", comm, &error);
  if (!member) return error;
  if (commName == nullptr) return Fail(HCCL_E_PTR, "HcclGetCommName: commName is null");
  const std::string& name = member->group->Name();
  std::memcpy(commName, name.c_str(), name.size() + 1);  // names are < COMM_NAME_MAX_LENGTH
  return HCCL_SUCCESS;
} DISTBARRIER_HCCL_GUARD

HcclResult HcclGetRankSize(HcclComm comm, uint32_t* rankSize) try {
  HcclResult error = HCCL_SUCCESS;
  auto member = FindComm("HcclGetRankSize", comm, &error);
  if (!member) return error;
  if (rankSize == nullptr) return Fail(HCCL_E_PTR, "HcclGetRankSize: rankSize is null");
  *rankSize = static_cast<uint32_t>(member->group->Size());
  return HCCL_SUCCESS;
} DISTBARRIER_HCCL_GUARD

HcclResult HcclGetRankId(HcclComm comm, uint32_t* rank) try {
  HcclResult error = HCCL_SUCCESS;
  auto member = FindComm("HcclGetRankId", comm, &error);
  if (!member) return error;
  if (rank == nullptr) return Fail(HCCL_E_PTR, "HcclGetRankId: rank is null");
  *rank = static_cast<uint32_t>(member->rank);
  return HCCL_SUCCESS;
} DISTBARRIER_HCCL_GUARD

HcclResult HcclBarrier(HcclComm comm, aclrtStream stream) try {
  HcclResult error = HCCL_SUCCESS;
  auto member = FindComm("HcclBarrier", comm, &error);
  if (!member) return error;
  auto plan = std::make_shared<distbarrier::op::BarrierPlan>();
  plan->member = *member;
  plan->api = "HcclBarrier";
  distbarrier::op::ApplyEnvironmentDefaults(*plan);
  if (auto refused = distbarrier::op::EnqueueBarrier(std::move(plan), stream)) {
    return Fail(HCCL_E_PARA, "HcclBarrier: {}", *refused);
  }
  return HCCL_SUCCESS;
} DISTBARRIER_HCCL_GUARD

HcclResult HcclAllReduce(void* sendBuf, void* recvBuf, uint64_t count, HcclDataType dataType, HcclReduceOp op,
                         HcclComm comm, aclrtStream stream) try {
  CollectiveArgs args{.kind = CollectiveKind::kAllReduce,
                      .api = "HcclAllReduce",
                      .send = sendBuf,
                      .recv = recvBuf,
                      .count = count,
                      .type = dataType,
                      .op = op};
  return Enqueue(comm, std::move(args), stream);
}
DISTBARRIER_HCCL_GUARD

HcclResult HcclBroadcast(void* buf, uint64_t count, HcclDataType dataType, uint32_t root, HcclComm comm,
                         aclrtStream stream) try {
  CollectiveArgs args{.kind = CollectiveKind::kBroadcast,
                      .api = "HcclBroadcast",
                      .send = buf,
                      .recv = buf,
                      .count = count,
                      .type = dataType,
                      .root = root};
  return Enqueue(comm, std::move(args), stream);
}
DISTBARRIER_HCCL_GUARD

HcclResult HcclReduceScatter(void* sendBuf, void* recvBuf, uint64_t recvCount, HcclDataType dataType, HcclReduceOp op,
                             HcclComm comm, aclrtStream stream) try {
  CollectiveArgs args{.kind = CollectiveKind::kReduceScatter,
                      .api = "HcclReduceScatter",
                      .send = sendBuf,
                      .recv = recvBuf,
                      .count = recvCount,
                      .type = dataType,
                      .op = op};
  return Enqueue(comm, std::move(args), stream);
}
DISTBARRIER_HCCL_GUARD

HcclResult HcclReduce(void* sendBuf, void* recvBuf, uint64_t count, HcclDataType dataType, HcclReduceOp op,
                      uint32_t root, HcclComm comm, aclrtStream stream) try {
  CollectiveArgs args{.kind = CollectiveKind::kReduce,
                      .api = "HcclReduce",
                      .send = sendBuf,
                      .recv = recvBuf,
                      .count = count,
                      .type = dataType,
                      .op = op,
                      .root = root};
  return Enqueue(comm, std::move(args), stream);
}
DISTBARRIER_HCCL_GUARD

HcclResult HcclScatter(void* sendBuf, void* recvBuf, uint64_t recvCount, HcclDataType dataType, uint32_t root,
                       HcclComm comm, aclrtStream stream) try {
  CollectiveArgs args{.kind = CollectiveKind::kScatter,
                      .api = "HcclScatter",
                      .send = sendBuf,
                      .recv = recvBuf,
                      .count = recvCount,
                      .type = dataType,
                      .root = root};
  return Enqueue(comm, std::move(args), stream);
}
DISTBARRIER_HCCL_GUARD

HcclResult HcclAllGather(void* sendBuf, void* recvBuf, uint64_t sendCount, HcclDataType dataType, HcclComm comm,
                         aclrtStream stream) try {
  CollectiveArgs args{.kind = CollectiveKind::kAllGather,
                      .api = "HcclAllGather",
                      .send = sendBuf,
                      .recv = recvBuf,
                      .count = sendCount,
                      .type = dataType};
  return Enqueue(comm, std::move(args), stream);
}
DISTBARRIER_HCCL_GUARD

HcclResult HcclAlltoAll(const void* sendBuf, uint64_t sendCount, HcclDataType sendType, const void* recvBuf,
                        uint64_t recvCount, HcclDataType recvType, HcclComm comm, aclrtStream stream) try {
  constexpr const char* kApi = "HcclAlltoAll";
  if (HcclResult error = CheckSameType(kApi, sendType, recvType); error != HCCL_SUCCESS) return error;
  if (sendCount != recvCount) {
    return Fail(HCCL_E_PARA, "{}: sendCount {} and recvCount {} differ; each rank sends and receives as many", kApi,
                sendCount, recvCount);
  }
  CollectiveArgs args{.kind = CollectiveKind::kAlltoAll,
                      .api = kApi,
                      .send = sendBuf,
                      .recv = const_cast<void*>(recvBuf),
                      .count = sendCount,
                      .type = sendType};
  return Enqueue(comm, std::move(args), stream);
}
DISTBARRIER_HCCL_GUARD

HcclResult HcclAlltoAllV(const void* sendBuf, const void* sendCounts, const void* sdispls, HcclDataType sendType,
                         const void* recvBuf, const void* recvCounts, const void* rdispls, HcclDataType recvType,
                         HcclComm comm, aclrtStream stream) try {
  constexpr const char* kApi = "HcclAlltoAllV";
  HcclResult error = HCCL_SUCCESS;
  auto member = FindComm(kApi, comm, &error);
  if (!member) return error;
  if (error = CheckSameType(kApi, sendType, recvType); error != HCCL_SUCCESS) return error;
  for (auto [array, name] : {std::pair{sendCounts, "sendCounts"}, std::pair{sdispls, "sdispls"},
                             std::pair{recvCounts, "recvCounts"}, std::pair{rdispls, "rdispls"}}) {
    if (array == nullptr) return Fail(HCCL_E_PTR, "{}: {} is null", kApi, name);
  }
  const size_t ranks = static_cast<size_t>(member->group->Size());
  auto vector = [ranks](const void* array) {
    const auto* values = static_cast<const uint64_t*>(array);
    return std::vector<uint64_t>(values, values + ranks);
  };
  CollectiveArgs args{.kind = CollectiveKind::kAlltoAllV,
                      .api = kApi,
                      .send = sendBuf,
                      .recv = const_cast<void*>(recvBuf),
                      .type = sendType,
                      .send_counts = vector(sendCounts),
                      .send_displs = vector(sdispls),
                      .recv_counts = vector(recvCounts),
                      .recv_displs = vector(rdispls)};
  return distbarrier::op::hccl::EnqueueCollective(*member, std::move(args), stream);
}
DISTBARRIER_HCCL_GUARD

HcclResult HcclAlltoAllVC(const void* sendBuf, const void* sendCountMatrix, HcclDataType sendType, const void* recvBuf,
                          HcclDataType recvType, HcclComm comm, aclrtStream stream) try {
  constexpr const char* kApi = "HcclAlltoAllVC";
  HcclResult error = HCCL_SUCCESS;
  auto member = FindComm(kApi, comm, &error);
  if (!member) return error;
  if (error = CheckSameType(kApi, sendType, recvType); error != HCCL_SUCCESS) return error;
  if (sendCountMatrix == nullptr) return Fail(HCCL_E_PTR, "{}: sendCountMatrix is null", kApi);
  const size_t ranks = static_cast<size_t>(member->group->Size());
  const size_t me = static_cast<size_t>(member->rank);
  const auto* matrix = static_cast<const uint64_t*>(sendCountMatrix);
  CollectiveArgs args{.kind = CollectiveKind::kAlltoAllV,
                      .api = kApi,
                      .send = sendBuf,
                      .recv = const_cast<void*>(recvBuf),
                      .type = sendType};
  uint64_t sent = 0, received = 0;
  for (size_t peer = 0; peer < ranks; ++peer) {
    const uint64_t out = matrix[me * ranks + peer], in = matrix[peer * ranks + me];
    args.send_counts.push_back(out);
    args.send_displs.push_back(sent);
    args.recv_counts.push_back(in);
    args.recv_displs.push_back(received);
    // Offsets saturate instead of wrapping; the count check then refuses them.
    sent = out > UINT64_MAX - sent ? UINT64_MAX : sent + out;
    received = in > UINT64_MAX - received ? UINT64_MAX : received + in;
  }
  return distbarrier::op::hccl::EnqueueCollective(*member, std::move(args), stream);
}
DISTBARRIER_HCCL_GUARD

// AllGatherV is an AlltoAllV in which every rank sends the same elements to each peer: the
// descriptor exchange then checks each rank's sendCount against every peer's recvCounts.
HcclResult HcclAllGatherV(void* sendBuf, uint64_t sendCount, void* recvBuf, const void* recvCounts,
                          const void* recvDispls, HcclDataType dataType, HcclComm comm, aclrtStream stream) try {
  constexpr const char* kApi = "HcclAllGatherV";
  HcclResult error = HCCL_SUCCESS;
  auto member = FindComm(kApi, comm, &error);
  if (!member) return error;
  if (recvCounts == nullptr || recvDispls == nullptr) {
    return Fail(HCCL_E_PTR, "{}: {} is null", kApi, recvCounts == nullptr ? "recvCounts" : "recvDispls");
  }
  const size_t ranks = static_cast<size_t>(member->group->Size());
  const auto* counts = static_cast<const uint64_t*>(recvCounts);
  const auto* displs = static_cast<const uint64_t*>(recvDispls);
  CollectiveArgs args{.kind = CollectiveKind::kAlltoAllV,
                      .api = kApi,
                      .send = sendBuf,
                      .recv = recvBuf,
                      .type = dataType,
                      .send_counts = std::vector<uint64_t>(ranks, sendCount),
                      .send_displs = std::vector<uint64_t>(ranks, 0),
                      .recv_counts = std::vector<uint64_t>(counts, counts + ranks),
                      .recv_displs = std::vector<uint64_t>(displs, displs + ranks)};
  return distbarrier::op::hccl::EnqueueCollective(*member, std::move(args), stream);
}
DISTBARRIER_HCCL_GUARD

// ReduceScatterV: an AlltoAllV brings every rank's part for this rank into a staging area
// (rankSize x recvCount elements), then a task on the same stream reduces it into recvBuf in
// rank order (as HcclReduceScatter does). The exchange checks recvCount against every rank's
// sendCounts[this rank].
HcclResult HcclReduceScatterV(void* sendBuf, const void* sendCounts, const void* sendDispls, void* recvBuf,
                              uint64_t recvCount, HcclDataType dataType, HcclReduceOp op, HcclComm comm,
                              aclrtStream stream) try {
  namespace collectives = distbarrier::comm::collectives;
  constexpr const char* kApi = "HcclReduceScatterV";
  HcclResult error = HCCL_SUCCESS;
  auto member = FindComm(kApi, comm, &error);
  if (!member) return error;
  if (sendCounts == nullptr || sendDispls == nullptr) {
    return Fail(HCCL_E_PTR, "{}: {} is null", kApi, sendCounts == nullptr ? "sendCounts" : "sendDispls");
  }
  if (recvBuf == nullptr) return Fail(HCCL_E_PTR, "{}: recvBuf is null", kApi);
  if (recvBuf == sendBuf) return Fail(HCCL_E_PARA, "{}: recvBuf and sendBuf are the same address {}", kApi, recvBuf);
  const size_t element = collectives::ElementBytes(dataType);
  if (element == 0)
    return Fail(HCCL_E_PARA, "{}: dataType {} is not an HCCL data type", kApi, static_cast<int>(dataType));
  if (op < HCCL_REDUCE_SUM || op > HCCL_REDUCE_MIN) {
    return Fail(HCCL_E_PARA, "{}: op {} is not an HcclReduceOp (SUM 0, PROD 1, MAX 2, MIN 3)", kApi,
                static_cast<int>(op));
  }
  if (!collectives::Reducible(dataType)) {
    return Fail(HCCL_E_NOT_SUPPORT, "{}: dataType {} cannot be reduced (op {})", kApi,
                collectives::DataTypeName(dataType), collectives::ReduceOpName(op));
  }
  const size_t ranks = static_cast<size_t>(member->group->Size());
  constexpr uint64_t kMaxStagedBytes = uint64_t{1} << 40;
  if (recvCount > kMaxStagedBytes / element / ranks) {
    return Fail(HCCL_E_PARA, "{}: recvCount {} is too large: {} ranks x {} x {}-byte elements", kApi, recvCount, ranks,
                recvCount, element);
  }
  aclError stream_error = ACL_SUCCESS;
  auto resolved = distbarrier::runtime::Runtime::Instance().ResolveStream(stream, &stream_error);
  if (!resolved) return Fail(HCCL_E_PARA, "{}: stream {} is not usable", kApi, stream);
  // Never empty: the exchange refuses a null receive buffer even when nothing arrives.
  auto staged = std::make_shared<std::vector<std::byte>>(std::max<size_t>(ranks * recvCount * element, 1));
  const auto* counts = static_cast<const uint64_t*>(sendCounts);
  const auto* displs = static_cast<const uint64_t*>(sendDispls);
  CollectiveArgs args{.kind = CollectiveKind::kAlltoAllV,
                      .api = kApi,
                      .send = sendBuf,
                      .recv = staged->data(),
                      .type = dataType,
                      .send_counts = std::vector<uint64_t>(counts, counts + ranks),
                      .send_displs = std::vector<uint64_t>(displs, displs + ranks),
                      .recv_counts = std::vector<uint64_t>(ranks, recvCount),
                      .recv_displs = {},
                      .keep_alive = staged};  // even if the stream drops the reduction after it
  for (size_t peer = 0; peer < ranks; ++peer) args.recv_displs.push_back(peer * recvCount);
  if (error = distbarrier::op::hccl::EnqueueCollective(*member, std::move(args), stream); error != HCCL_SUCCESS) {
    return error;
  }
  if (recvCount == 0) return HCCL_SUCCESS;
  auto* out = static_cast<std::byte*>(recvBuf);
  resolved->Enqueue(
      distbarrier::runtime::Task{.run = [staged, out, recvCount, element, ranks, dataType, op](const std::stop_token&) {
        const size_t part = recvCount * element;
        collectives::ReduceSources(
            dataType, op, static_cast<int>(ranks), recvCount,
            [&](int source, size_t first, size_t count, std::byte* into) {
              std::memcpy(into, staged->data() + static_cast<size_t>(source) * part + first * element, count * element);
            },
            out);
        return distbarrier::runtime::TaskStatus::Ok();
      }});
  return HCCL_SUCCESS;
}
DISTBARRIER_HCCL_GUARD

HcclResult HcclSend(void* sendBuf, uint64_t count, HcclDataType dataType, uint32_t destRank, HcclComm comm,
                    aclrtStream stream) try {
  HcclResult error = HCCL_SUCCESS;
  auto member = FindComm("HcclSend", comm, &error);
  if (!member) return error;
  const HcclSendRecvItem item{HCCL_SEND, sendBuf, count, dataType, destRank};
  const distbarrier::op::hccl::ItemNames names{"sendBuf", "destRank"};
  return distbarrier::op::hccl::EnqueueSendReceive(*member, "HcclSend", &item, 1, &names, stream);
}
DISTBARRIER_HCCL_GUARD

HcclResult HcclRecv(void* recvBuf, uint64_t count, HcclDataType dataType, uint32_t srcRank, HcclComm comm,
                    aclrtStream stream) try {
  HcclResult error = HCCL_SUCCESS;
  auto member = FindComm("HcclRecv", comm, &error);
  if (!member) return error;
  const HcclSendRecvItem item{HCCL_RECV, recvBuf, count, dataType, srcRank};
  const distbarrier::op::hccl::ItemNames names{"recvBuf", "srcRank"};
  return distbarrier::op::hccl::EnqueueSendReceive(*member, "HcclRecv", &item, 1, &names, stream);
}
DISTBARRIER_HCCL_GUARD

HcclResult HcclBatchSendRecv(HcclSendRecvItem* sendRecvInfo, uint32_t itemNum, HcclComm comm, aclrtStream stream) try {
  HcclResult error = HCCL_SUCCESS;
  auto member = FindComm("HcclBatchSendRecv", comm, &error);
  if (!member) return error;
  if (sendRecvInfo == nullptr && itemNum > 0) return Fail(HCCL_E_PTR, "HcclBatchSendRecv: sendRecvInfo is null");
  return distbarrier::op::hccl::EnqueueSendReceive(*member, "HcclBatchSendRecv", sendRecvInfo, itemNum, nullptr,
                                                   stream);
}
DISTBARRIER_HCCL_GUARD

const char* HcclGetErrorString(HcclResult code) {
  switch (code) {
    case HCCL_SUCCESS: return "success";
    case HCCL_E_PARA: return "parameter error";
    case HCCL_E_PTR: return "empty pointer";
    case HCCL_E_MEMORY: return "memory error";
    case HCCL_E_INTERNAL: return "internal error";
    case HCCL_E_NOT_SUPPORT: return "not support feature";
    case HCCL_E_NOT_FOUND: return "not found specific resource";
    case HCCL_E_UNAVAIL: return "resource unavailable";
    case HCCL_E_SYSCALL: return "call system interface error";
    case HCCL_E_TIMEOUT: return "timeout";
    case HCCL_E_OPEN_FILE_FAILURE: return "open file fail";
    case HCCL_E_TCP_CONNECT: return "tcp connect fail";
    case HCCL_E_ROCE_CONNECT: return "roce connect fail";
    case HCCL_E_TCP_TRANSFER: return "tcp transfer fail";
    case HCCL_E_ROCE_TRANSFER: return "roce transfer fail";
    case HCCL_E_RUNTIME: return "call runtime api fail";
    case HCCL_E_DRV: return "call driver api fail";
    case HCCL_E_PROFILING: return "call profiling api fail";
    case HCCL_E_CCE: return "call cce api fail";
    case HCCL_E_NETWORK: return "call network api fail";
    case HCCL_E_AGAIN: return "try again";
    case HCCL_E_REMOTE: return "error cqe";
    case HCCL_E_SUSPENDING: return "error communicator suspending";
    case HCCL_E_OPRETRY_FAIL: return "retry constraint";
    case HCCL_E_OOM: return "out of memory";
    case HCCL_E_IN_STATUS: return "the error information is in the status";
    default: return "unknown HcclResult";
  }
}

}  // extern "C"
