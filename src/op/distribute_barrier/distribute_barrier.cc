#include "op/distribute_barrier/distribute_barrier.h"

#include <pthread.h>

#include <array>
#include <cstring>
#include <string>
#include <string_view>

#include "common/error.h"
#include "op/caller_rank.h"
#include "op/tensor.h"
#include "runtime/runtime.h"

namespace distbarrier::op {
namespace {

bool SupportedXRefType(aclDataType dtype) {
  switch (dtype) {
    case ACL_BF16:
    case ACL_FLOAT16:
    case ACL_FLOAT:
    case ACL_BOOL:
    case ACL_INT8:
    case ACL_INT16:
    case ACL_INT32:
    case ACL_INT64:
    case ACL_UINT8:
    case ACL_UINT16:
    case ACL_UINT32:
    case ACL_UINT64:
      return true;
    default:
      return false;
  }
}

// A live tensor for a non-null handle, or the error already recorded.
aclnnStatus FindTensor(const char* api, const char* name, const aclTensor* handle, std::shared_ptr<Tensor>* out) {
  *out = Tensors().Find(handle);
  if (!*out) return Fail(ACLNN_ERR_PARAM_INVALID, "{}: {} {} is not a live aclTensor", api, name,
                         static_cast<const void*>(handle));
  return ACLNN_SUCCESS;
}

aclnnStatus CheckInt32Tensor(const char* api, const char* name, const Tensor& tensor, int64_t elements,
                             const char* expected_shape) {
  if (tensor.dtype != ACL_INT32) {
    return Fail(ACLNN_ERR_PARAM_INVALID, "{}: {} dtype is {}, expected INT32", api, name,
                DataTypeName(tensor.dtype));
  }
  if (tensor.view_dims.size() != 1 || tensor.view_dims[0] != elements) {
    return Fail(ACLNN_ERR_PARAM_INVALID, "{}: {} shape is {}, expected {}", api, name, tensor.ShapeString(),
                expected_shape);
  }
  if (tensor.data == nullptr) return Fail(ACLNN_ERR_PARAM_INVALID, "{}: {} has no data address", api, name);
  // The barrier reads the elements at data + offset; an offset no allocation can have would
  // overflow that address computation.
  constexpr int64_t kMaxOffset = (int64_t{1} << 40);
  if (tensor.offset < 0 || tensor.offset > kMaxOffset) {
    return Fail(ACLNN_ERR_PARAM_INVALID, "{}: {} offset {} is out of range [0, 2^40]", api, name, tensor.offset);
  }
  // The barrier reads the elements one after another: a strided view is refused, not read by
  // its strides.
  if (elements > 1 && !tensor.strides.empty() && tensor.strides[0] != 1) {
    return Fail(ACLNN_ERR_PARAM_INVALID, "{}: {} stride is {}, expected 1 (a contiguous view)", api, name,
                tensor.strides[0]);
  }
  return ACLNN_SUCCESS;
}

// The allocation that holds all of the int32 tensor's bytes: device memory from aclrtMalloc
// or host memory from aclrtMallocHost (the barrier reads them when it runs). Other memory,
// or a view that runs past its allocation's end, is refused.
aclnnStatus FindTensorMemory(const char* api, const char* name, const Tensor& tensor, runtime::MemoryRef* out) {
  const void* first = tensor.FirstElement();
  const size_t bytes = static_cast<size_t>(tensor.ElementCount()) * sizeof(int32_t);
  auto& memory = runtime::Runtime::Instance().Memory();
  *out = memory.Find(first, bytes, runtime::MemoryKind::kDevice);
  if (!*out) *out = memory.Find(first, bytes, runtime::MemoryKind::kHost);
  if (*out) return ACLNN_SUCCESS;
  return Fail(ACLNN_ERR_PARAM_INVALID,
              "{}: {} bytes [{}, +{}) do not lie inside one live allocation (device memory from aclrtMalloc or host "
              "memory from aclrtMallocHost): freed, too small for the view, or not from the runtime",
              api, name, first, bytes);
}

// Stage 1's per-thread cache of plans. A rank calls stage 1 once per barrier with the same
// xRef and group; every check then gives the same answer as long as the xRef handle, the
// calling thread's current context and the group registry have not changed (tensors are
// immutable once made), which three counters tell without a lock: the tensor and context
// tables' removal counts and the registry's generation, each read before the lookups whose
// answer the entry keeps. A hit skips the lookups, the environment reads and the plan
// allocation: executors of one thread share its plan. Only calls without V2's optional tensors
// are cached (those read tensor memory that can be freed).
struct PlanKey {
  const aclTensor* x_ref = nullptr;
  bool v2 = false;
  int64_t world_size = 0;
  size_t group_length = 0;
  const char* group = nullptr;  // group_length bytes, no NUL needed
};

// What the checks were made against.
struct PlanVersions {
  const runtime::Runtime* runtime = nullptr;
  void* context = nullptr;
  uint64_t context_removals = 0;
  uint64_t tensor_removals = 0;
  uint64_t registry_generation = 0;

  static PlanVersions Now() {
    const runtime::Runtime& rt = runtime::Runtime::Instance();
    return {&rt, rt.CurrentContextHandle(), rt.ContextRemovals(), Tensors().Removals(),
            comm::GroupRegistry::Instance().Generation()};
  }
  bool operator==(const PlanVersions&) const = default;
};

class PlanCache {
 public:
  // `now`: PlanVersions::Now() of this call. Entries checked against older versions can never
  // hit again (the counters only grow): they are dropped, so a destroyed communicator's group is
  // not kept alive by this cache beyond the thread's next stage 1.
  std::shared_ptr<const BarrierPlan> Find(const PlanKey& key, const PlanVersions& now) {
    for (Entry& entry : entries_) {
      if (!entry.plan) continue;
      if (entry.versions != now) {
        entry.plan.reset();
        continue;
      }
      if (entry.key.x_ref == key.x_ref && entry.key.v2 == key.v2 && entry.key.world_size == key.world_size &&
          entry.key.group_length == key.group_length && std::memcmp(entry.group, key.group, key.group_length) == 0) {
        return entry.plan;
      }
    }
    return nullptr;
  }

  // A forked child must not free its parent's plans (and with them groups whose threads do not
  // exist in the child) when the forking thread exits: it keeps them, like the runtime keeps
  // what it inherited.
  void ForgetInherited() {
    static auto* inherited = new std::vector<std::shared_ptr<const BarrierPlan>>;
    for (Entry& entry : entries_) {
      if (entry.plan) inherited->push_back(std::move(entry.plan));
    }
  }

  void Store(const PlanKey& key, const PlanVersions& versions, std::shared_ptr<const BarrierPlan> plan) {
    Entry& entry = entries_[next_++ % entries_.size()];
    entry.key = key;
    std::memcpy(entry.group, key.group, key.group_length);
    entry.key.group = entry.group;
    entry.versions = versions;
    entry.plan = std::move(plan);
  }

 private:
  struct Entry {
    PlanKey key;
    char group[comm::kGroupNameCapacity];
    PlanVersions versions;
    std::shared_ptr<const BarrierPlan> plan;
  };
  std::array<Entry, 4> entries_{};  // a few groups per thread (MoE uses two)
  size_t next_ = 0;
};

PlanCache& ThisThreadPlans() {
  static const int registered = pthread_atfork(nullptr, nullptr, [] { ThisThreadPlans().ForgetInherited(); });
  (void)registered;
  thread_local PlanCache cache;
  return cache;
}

aclnnStatus IssueExecutor(const BarrierArgs& args, std::shared_ptr<const BarrierPlan> plan) {
  auto executor = std::make_shared<Executor>();
  executor->plan = std::move(plan);
  executor->v2 = args.v2;
  *args.workspace_size = kWorkspaceBytes;
  *args.executor = static_cast<aclOpExecutor*>(Executors().Add(std::move(executor)));
  return ACLNN_SUCCESS;
}

}  // namespace

HandleTable<Executor>& Executors() {
  static auto* executors = new HandleTable<Executor>(HandleKind::kExecutor);
  return *executors;
}

aclnnStatus PrepareBarrier(const BarrierArgs& args) {
  const char* api = args.api;
  if (args.x_ref == nullptr) return Fail(ACLNN_ERR_PARAM_NULLPTR, "{}: xRef is null", api);
  if (args.group == nullptr) return Fail(ACLNN_ERR_PARAM_NULLPTR, "{}: group is null", api);
  if (args.workspace_size == nullptr) return Fail(ACLNN_ERR_PARAM_NULLPTR, "{}: workspaceSize is null", api);
  if (args.executor == nullptr) return Fail(ACLNN_ERR_PARAM_NULLPTR, "{}: executor is null", api);

  if (args.world_size < kMinWorldSize || args.world_size > kMaxWorldSize) {
    return Fail(ACLNN_ERR_INNER_TILING_ERROR, "{}: worldSize {} is out of the supported range [{}, {}]", api,
                args.world_size, kMinWorldSize, kMaxWorldSize);
  }

  // A forked child fails before any lookup: the parent's groups have no threads here, and a
  // parent thread may have held a table's lock at the fork.
  if (runtime::Runtime::Instance().InheritedAcrossFork()) {
    return Fail(ACLNN_ERR_PARAM_INVALID, "{}", runtime::Runtime::ForkedChildMessage(api));
  }

  // Read before every lookup: what a cached answer is valid against.
  const PlanVersions versions = PlanVersions::Now();
  const bool cacheable = args.timeout == nullptr && args.elastic == nullptr;
  const size_t group_length = strnlen(args.group, comm::kGroupNameCapacity);
  const PlanKey key{args.x_ref, args.v2, args.world_size, group_length, args.group};
  if (cacheable && group_length > 0 && group_length < comm::kGroupNameCapacity) {
    if (std::shared_ptr<const BarrierPlan> plan = ThisThreadPlans().Find(key, versions)) {
      return IssueExecutor(args, std::move(plan));
    }
  }

  std::shared_ptr<Tensor> x_ref;
  if (aclnnStatus status = FindTensor(api, "xRef", args.x_ref, &x_ref); status != ACLNN_SUCCESS) return status;
  if (!SupportedXRefType(x_ref->dtype)) {
    return Fail(ACLNN_ERR_PARAM_INVALID,
                "{}: xRef dtype {} ({}) is not supported; expected one of BF16, FLOAT16, FLOAT, BOOL, INT8, "
                "INT16, INT32, INT64, UINT8, UINT16, UINT32, UINT64",
                api, DataTypeName(x_ref->dtype), static_cast<int>(x_ref->dtype));
  }
  if (!IsOriginFormat(x_ref->format)) {
    return Fail(ACLNN_ERR_PARAM_INVALID,
                "{}: xRef format is {} ({}), a private format; expected an origin format (ND, NCHW, NHWC, NCDHW, "
                "NDHWC, NCL, NC, HWCN)",
                api, FormatName(x_ref->format), static_cast<int>(x_ref->format));
  }
  if (x_ref->view_dims.size() > kMaxDims) {
    return Fail(ACLNN_ERR_PARAM_INVALID, "{}: xRef has {} dims, at most {} are supported", api,
                x_ref->view_dims.size(), kMaxDims);
  }

  if (group_length == 0) return Fail(ACLNN_ERR_PARAM_INVALID, "{}: group is an empty string", api);
  if (group_length >= comm::kGroupNameCapacity) {
    // Only the bytes known to exist are read: the name may have no NUL at all.
    return Fail(ACLNN_ERR_PARAM_INVALID, "{}: group '{}...' is {} bytes or longer, the limit is {}", api,
                std::string_view(args.group, 40), comm::kGroupNameCapacity, comm::kGroupNameCapacity - 1);
  }
  const std::string group_name(args.group, group_length);

  auto resolved = ResolveCallerRank(group_name);
  if (auto* why = std::get_if<std::string>(&resolved)) return Fail(ACLNN_ERR_PARAM_INVALID, "{}: {}", api, *why);
  comm::Member member = std::get<comm::Member>(std::move(resolved));
  if (args.world_size != member.group->Size()) {
    return Fail(ACLNN_ERR_INNER_TILING_ERROR, "{}: worldSize {} differs from group '{}' rank count {}", api,
                args.world_size, group_name, member.group->Size());
  }

  auto plan = std::make_shared<BarrierPlan>();
  plan->member = std::move(member);
  plan->api = args.v2 ? "aclnnDistributeBarrierV2" : "aclnnDistributeBarrier";
  ApplyEnvironmentDefaults(*plan);

  if (args.timeout != nullptr) {
    std::shared_ptr<Tensor> timeout;
    if (aclnnStatus status = FindTensor(api, "timeOut", args.timeout, &timeout); status != ACLNN_SUCCESS) {
      return status;
    }
    if (aclnnStatus status = CheckInt32Tensor(api, "timeOut", *timeout, 1, "(1)"); status != ACLNN_SUCCESS) {
      return status;
    }
    if (aclnnStatus status = FindTensorMemory(api, "timeOut", *timeout, &plan->timeout_memory);
        status != ACLNN_SUCCESS) {
      return status;
    }
    plan->timeout_us = static_cast<const int32_t*>(timeout->FirstElement());
  }
  if (args.elastic != nullptr) {
    std::shared_ptr<Tensor> elastic;
    if (aclnnStatus status = FindTensor(api, "elasticInfo", args.elastic, &elastic); status != ACLNN_SUCCESS) {
      return status;
    }
    const int64_t elements = 4 + 2 * args.world_size;
    const std::string expected = fmt::format("({}) = 4 + 2 * worldSize", elements);
    if (aclnnStatus status = CheckInt32Tensor(api, "elasticInfo", *elastic, elements, expected.c_str());
        status != ACLNN_SUCCESS) {
      return status;
    }
    if (aclnnStatus status = FindTensorMemory(api, "elasticInfo", *elastic, &plan->elastic_memory);
        status != ACLNN_SUCCESS) {
      return status;
    }
    plan->elastic_info = static_cast<const int32_t*>(elastic->FirstElement());
  }

  if (cacheable) ThisThreadPlans().Store(key, versions, plan);
  return IssueExecutor(args, std::move(plan));
}

aclnnStatus CheckWorkspace(const char* api, uint64_t required, const void* workspace, uint64_t workspace_size) {
  if (workspace_size < required) {
    return Fail(ACLNN_ERR_PARAM_INVALID, "{}: workspaceSize {} is smaller than the {} bytes asked for", api,
                workspace_size, required);
  }
  if (required > 0 && workspace == nullptr) {
    return Fail(ACLNN_ERR_PARAM_INVALID, "{}: workspace is null but {} bytes are needed", api, required);
  }
  return ACLNN_SUCCESS;
}

aclnnStatus LaunchBarrier(const char* api, bool v2, void* workspace, uint64_t workspace_size,
                          aclOpExecutor* executor_handle, aclrtStream stream_handle) {
  if (executor_handle == nullptr) return Fail(ACLNN_ERR_PARAM_NULLPTR, "{}: executor is null", api);
  std::shared_ptr<Executor> executor = Executors().FindCached(executor_handle);
  if (!executor) {
    return Fail(ACLNN_ERR_PARAM_INVALID, "{}: executor {} is {}", api, static_cast<const void*>(executor_handle),
                Executors().WasIssued(executor_handle)
                    ? "no longer live: already run (executors are single-use unless made repeatable) or destroyed"
                    : "not an executor");
  }
  if (executor->v2 != v2) {
    return Fail(ACLNN_ERR_PARAM_INVALID, "{}: executor {} was made by {}", api,
                static_cast<const void*>(executor_handle),
                executor->v2 ? "aclnnDistributeBarrierV2GetWorkspaceSize" : "aclnnDistributeBarrierGetWorkspaceSize");
  }
  if (aclnnStatus status = CheckWorkspace(api, kWorkspaceBytes, workspace, workspace_size); status != ACLNN_SUCCESS) {
    return status;
  }
  auto claim = [&]() -> std::optional<std::string> {
    // A single-use executor is consumed here; a concurrent second launch finds it gone.
    if (executor->repeatable.load(std::memory_order_acquire) || Executors().Take(executor_handle)) return std::nullopt;
    return fmt::format("executor {} was already run", static_cast<const void*>(executor_handle));
  };
  if (auto refused = EnqueueBarrier(executor->plan, stream_handle, claim)) {
    return Fail(ACLNN_ERR_PARAM_INVALID, "{}: {}", api, *refused);
  }
  return ACLNN_SUCCESS;
}

std::optional<std::string> EnqueueBarrier(std::shared_ptr<const BarrierPlan> plan, aclrtStream stream_handle,
                                          const std::function<std::optional<std::string>()>& claim) {
  aclError stream_error = ACL_SUCCESS;
  std::shared_ptr<runtime::Stream> stream = runtime::Runtime::Instance().ResolveStream(stream_handle, &stream_error);
  if (!stream) return fmt::format("stream {} is not usable: {}", stream_handle, RecentError());
  const comm::Member& member = plan->member;
  const int rank_device = member.group->DeviceOfRank(member.rank);
  if (stream->Device() != rank_device) {
    return fmt::format("stream {} belongs to device {}, but rank {} of group '{}' is on device {}", stream_handle,
                       stream->Device(), member.rank, member.group->Name(), rank_device);
  }
  if (claim) {
    if (auto refused = claim()) return refused;
  }
  stream->Enqueue(MakeBarrierTask(std::move(plan)));
  return std::nullopt;
}

}  // namespace distbarrier::op
