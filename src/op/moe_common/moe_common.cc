#include "op/moe_common/moe_common.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>
#include <string_view>
#include <variant>

#include "common/env.h"
#include "common/error.h"
#include "op/caller_rank.h"
#include "runtime/runtime.h"

namespace distbarrier::op::moe {
namespace {

constexpr aclnnStatus kNull = ACLNN_ERR_PARAM_NULLPTR;
constexpr aclnnStatus kInvalid = ACLNN_ERR_PARAM_INVALID;
constexpr aclnnStatus kRange = ACLNN_ERR_INNER_TILING_ERROR;

std::string TypeList(std::initializer_list<aclDataType> types) {
  std::string list;
  for (aclDataType type : types) list += fmt::format("{}{}", list.empty() ? "" : " or ", DataTypeName(type));
  return list;
}

bool Contiguous(const Tensor& tensor) {
  if (tensor.strides.empty()) return true;
  int64_t expected = 1;
  for (size_t i = tensor.view_dims.size(); i-- > 0;) {
    if (tensor.view_dims[i] != 1 && tensor.strides[i] != expected) return false;
    expected *= tensor.view_dims[i];
  }
  return true;
}

// A group name of [1, 128) bytes; reads no byte past the limit (the name may lack a NUL).
aclnnStatus CheckGroupName(const char* api, const char* name, const char* group) {
  const size_t length = strnlen(group, comm::kGroupNameCapacity);
  if (length == 0)
    return Fail(kRange, "{}: {} is an empty string, expected 1 to {} bytes", api, name, comm::kGroupNameCapacity - 1);
  if (length >= comm::kGroupNameCapacity) {
    return Fail(kRange, "{}: {} '{}...' is {} bytes or longer, the limit is {}", api, name, std::string_view(group, 40),
                comm::kGroupNameCapacity, comm::kGroupNameCapacity - 1);
  }
  return ACLNN_SUCCESS;
}

aclnnStatus ResolveOne(const char* api, const char* name, const char* group, int64_t size, const char* size_name,
                       int64_t rank_id, const char* rank_name, comm::Member* member) {
  auto resolved = ResolveCallerRank(group);
  if (auto* why = std::get_if<std::string>(&resolved)) return Fail(kInvalid, "{}: {}: {}", api, name, *why);
  *member = std::get<comm::Member>(std::move(resolved));
  if (size != member->group->Size()) {
    return Fail(kRange, "{}: {} {} differs from {} '{}' rank count {}", api, size_name, size, name, group,
                member->group->Size());
  }
  if (rank_id != member->rank) {
    return Fail(kRange, "{}: {} {} differs from the calling device's rank {} in {} '{}'", api, rank_name, rank_id,
                member->rank, name, group);
  }
  if (member->group->Collectives() == nullptr) {
    return Fail(kInvalid,
                "{}: {} '{}' has no data region: its processes were started with different HCCL_BUFFSIZE values", api,
                name, group);
  }
  return ACLNN_SUCCESS;
}

}  // namespace

int Layout::SharedRankFor(int source, int64_t copy) const {
  const int64_t ranks_per_copy = shared_ranks / shared_copies;
  return static_cast<int>(source % ranks_per_copy + copy * ranks_per_copy);
}

Layout MakeLayout(const CommonArgs& args, int64_t bs, int64_t h, int64_t k) {
  Layout layout;
  layout.ep = static_cast<int>(args.ep_world_size);
  layout.ep_rank = static_cast<int>(args.ep_rank_id);
  layout.tp = args.tp_world_size <= 1 ? 1 : static_cast<int>(args.tp_world_size);
  layout.tp_rank = args.tp_world_size <= 1 ? 0 : static_cast<int>(args.tp_rank_id);
  layout.moe_experts = args.moe_expert_num;
  layout.shared_ranks = args.shared_expert_rank_num;
  layout.shared_copies = layout.shared_ranks > 0 ? args.shared_expert_num : 0;
  layout.moe_local_experts = args.moe_expert_num / (args.ep_world_size - args.shared_expert_rank_num);
  layout.bs = bs;
  layout.h = h;
  layout.k = k;
  layout.global_bs = args.global_bs == 0 ? bs * args.ep_world_size : args.global_bs;
  const int64_t max_bs = layout.global_bs / layout.ep;
  if (layout.SharedRank(layout.ep_rank)) {
    layout.local_experts = 1;
    // A shared rank serves the EP ranks of one residue class: at most ceil(ep / ranks_per_copy)
    // of them (globalBs / sharedExpertRankNum when that divides evenly, as CANN documents).
    if (layout.shared_copies > 0) {
      const int64_t ranks_per_copy = layout.shared_ranks / layout.shared_copies;
      layout.capacity = (layout.ep + ranks_per_copy - 1) / ranks_per_copy * max_bs;
    }
  } else {
    layout.local_experts = layout.moe_local_experts;
    layout.capacity = layout.global_bs * std::min(layout.moe_local_experts, k);
  }
  return layout;
}

aclnnStatus CheckRequired(const char* api, std::initializer_list<std::pair<const char*, const void*>> required) {
  for (const auto& [name, pointer] : required) {
    if (pointer == nullptr) return Fail(ACLNN_ERR_PARAM_NULLPTR, "{}: {} is null", api, name);
  }
  return ACLNN_SUCCESS;
}

aclnnStatus FindTensor(const char* api, const char* name, const aclTensor* handle, bool required,
                       std::shared_ptr<Tensor>* out) {
  out->reset();
  if (handle == nullptr) {
    return required ? Fail(kNull, "{}: {} is null", api, name) : ACLNN_SUCCESS;
  }
  *out = Tensors().Find(handle);
  if (!*out) return Fail(kInvalid, "{}: {} {} is not a live aclTensor", api, name, static_cast<const void*>(handle));
  return ACLNN_SUCCESS;
}

aclnnStatus CheckKind(const char* api, const char* name, const Tensor& tensor,
                      std::initializer_list<aclDataType> allowed) {
  if (std::find(allowed.begin(), allowed.end(), tensor.dtype) == allowed.end()) {
    return Fail(kInvalid, "{}: {} dtype is {} ({}), expected {}", api, name, DataTypeName(tensor.dtype),
                static_cast<int>(tensor.dtype), TypeList(allowed));
  }
  if (tensor.format != ACL_FORMAT_ND) {
    return Fail(kInvalid, "{}: {} format is {} ({}), expected ND", api, name, FormatName(tensor.format),
                static_cast<int>(tensor.format));
  }
  if (!Contiguous(tensor)) return Fail(kInvalid, "{}: {} must be contiguous (row-major strides)", api, name);
  if (tensor.data == nullptr) return Fail(kInvalid, "{}: {} has no data address", api, name);
  constexpr int64_t kMaxOffset = int64_t{1} << 40;  // keeps address arithmetic from overflowing
  if (tensor.offset < 0 || tensor.offset > kMaxOffset) {
    return Fail(kInvalid, "{}: {} offset {} is out of range [0, 2^40]", api, name, tensor.offset);
  }
  for (int64_t dim : tensor.view_dims) {
    if (dim < 0) return Fail(kRange, "{}: {} shape {} has a negative dimension", api, name, tensor.ShapeString());
  }
  return ACLNN_SUCCESS;
}

aclnnStatus CheckShape(const char* api, const char* name, const Tensor& tensor, std::initializer_list<int64_t> dims,
                       const char* meaning) {
  if (!std::equal(tensor.view_dims.begin(), tensor.view_dims.end(), dims.begin(), dims.end())) {
    return Fail(kRange, "{}: {} shape is {}, expected ({}) = {}", api, name, tensor.ShapeString(),
                fmt::join(dims, ", "), meaning);
  }
  return ACLNN_SUCCESS;
}

aclnnStatus CheckAtLeast(const char* api, const char* name, const Tensor& tensor, int64_t elements,
                         const char* meaning) {
  if (tensor.view_dims.size() != 1 || tensor.view_dims[0] < elements) {
    return Fail(kRange, "{}: {} shape is {}, expected 1-D with at least {} elements ({})", api, name,
                tensor.ShapeString(), elements, meaning);
  }
  return ACLNN_SUCCESS;
}

aclnnStatus CheckRowsAtLeast(const char* api, const char* name, const Tensor& tensor, int64_t rows, int64_t cols,
                             const char* meaning) {
  if (tensor.view_dims.size() != 2 || tensor.view_dims[0] < rows || tensor.view_dims[1] != cols) {
    return Fail(kRange, "{}: {} shape is {}, expected (>= {}, {}) ({})", api, name, tensor.ShapeString(), rows, cols,
                meaning);
  }
  return ACLNN_SUCCESS;
}

aclnnStatus CheckCommonArgs(const char* api, const CommonArgs& args) {
  const int64_t ep = args.ep_world_size;
  if (ep < kMinEpWorldSize || ep > kMaxEpWorldSize) {
    return Fail(kRange, "{}: epWorldSize {} is out of the supported range [{}, {}]", api, ep, kMinEpWorldSize,
                kMaxEpWorldSize);
  }
  if (args.ep_rank_id < 0 || args.ep_rank_id >= ep) {
    return Fail(kRange, "{}: epRankId {} is out of range [0, epWorldSize {})", api, args.ep_rank_id, ep);
  }
  if (args.tp_world_size < 0 || args.tp_world_size > 2) {
    return Fail(kRange, "{}: tpWorldSize {} is not supported, expected 0, 1 or 2", api, args.tp_world_size);
  }
  const int64_t tp = std::max<int64_t>(args.tp_world_size, 1);
  if (args.tp_rank_id < 0 || args.tp_rank_id >= tp) {
    return Fail(kRange, "{}: tpRankId {} is out of range [0, {}) for tpWorldSize {}", api, args.tp_rank_id, tp,
                args.tp_world_size);
  }
  if (args.expert_shard_type != 0) {
    return Fail(kRange, "{}: expertShardType {} is not supported, expected 0", api, args.expert_shard_type);
  }
  if (args.shared_expert_num < 0 || args.shared_expert_num > kMaxSharedExpertNum) {
    return Fail(kRange, "{}: sharedExpertNum {} is out of range [0, {}]", api, args.shared_expert_num,
                kMaxSharedExpertNum);
  }
  const int64_t shared_ranks = args.shared_expert_rank_num;
  if (shared_ranks < 0 || shared_ranks >= ep) {
    return Fail(kRange, "{}: sharedExpertRankNum {} is out of range [0, epWorldSize {})", api, shared_ranks, ep);
  }
  if (shared_ranks > 0 && args.shared_expert_num > 0 && shared_ranks % args.shared_expert_num != 0) {
    return Fail(kRange, "{}: sharedExpertRankNum {} is not a multiple of sharedExpertNum {}", api, shared_ranks,
                args.shared_expert_num);
  }
  if (args.moe_expert_num <= 0 || args.moe_expert_num > kMaxMoeExpertNum) {
    return Fail(kRange, "{}: moeExpertNum {} is out of range (0, {}]", api, args.moe_expert_num, kMaxMoeExpertNum);
  }
  if (args.moe_expert_num % (ep - shared_ranks) != 0) {
    return Fail(kRange, "{}: moeExpertNum {} is not divisible by epWorldSize - sharedExpertRankNum = {}", api,
                args.moe_expert_num, ep - shared_ranks);
  }
  const int64_t local_experts = args.moe_expert_num / (ep - shared_ranks);
  if (args.tp_world_size == 2 && local_experts != 1) {
    return Fail(kRange, "{}: tpWorldSize 2 needs localExpertNum 1, but moeExpertNum {} on {} MoE ranks gives {}", api,
                args.moe_expert_num, ep - shared_ranks, local_experts);
  }
  if (aclnnStatus status = CheckGroupName(api, "groupEp", args.group_ep); status != ACLNN_SUCCESS) return status;
  if (args.tp_world_size == 2) {
    if (aclnnStatus status = CheckGroupName(api, "groupTp", args.group_tp); status != ACLNN_SUCCESS) return status;
    if (std::strncmp(args.group_ep, args.group_tp, comm::kGroupNameCapacity) == 0) {
      return Fail(kRange, "{}: groupEp and groupTp are both '{}'; they must be different communicators", api,
                  args.group_ep);
    }
  }
  if (args.comm_alg != nullptr && args.comm_alg[0] != '\0') {
    return Fail(kRange, "{}: commAlg '{}' is not supported, pass null or \"\"", api,
                std::string_view(args.comm_alg, strnlen(args.comm_alg, 64)));
  }
  return ACLNN_SUCCESS;
}

aclnnStatus CheckSizes(const char* api, const CommonArgs& args, int64_t bs, int64_t h, int64_t k) {
  if (h < kMinH || h > kMaxH) return Fail(kRange, "{}: H {} (x dim 1) is out of range [{}, {}]", api, h, kMinH, kMaxH);
  if (bs <= 0 || bs > kMaxBs) return Fail(kRange, "{}: Bs {} (x dim 0) is out of range (0, {}]", api, bs, kMaxBs);
  if (k <= 0 || k > kMaxK) return Fail(kRange, "{}: K {} (expertIds dim 1) is out of range (0, {}]", api, k, kMaxK);
  if (k > args.moe_expert_num) {
    return Fail(kRange, "{}: K {} (expertIds dim 1) exceeds moeExpertNum {}", api, k, args.moe_expert_num);
  }
  const int64_t ep = args.ep_world_size;
  if (args.global_bs != 0 && (args.global_bs < 0 || args.global_bs % ep != 0 || args.global_bs / ep < bs)) {
    return Fail(kRange, "{}: globalBs {} must be 0 or a multiple of epWorldSize {} of at least Bs * epWorldSize = {}",
                api, args.global_bs, ep, bs * ep);
  }
  return ACLNN_SUCCESS;
}

aclnnStatus ResolveMembers(const char* api, const CommonArgs& args, Members* members) {
  if (aclnnStatus status = ResolveOne(api, "groupEp", args.group_ep, args.ep_world_size, "epWorldSize", args.ep_rank_id,
                                      "epRankId", &members->ep);
      status != ACLNN_SUCCESS) {
    return status;
  }
  if (args.tp_world_size == 2) {
    return ResolveOne(api, "groupTp", args.group_tp, args.tp_world_size, "tpWorldSize", args.tp_rank_id, "tpRankId",
                      &members->tp);
  }
  return ACLNN_SUCCESS;
}

aclnnStatus CheckBufferSize(const char* api, uint64_t needed) {
  const int64_t megabytes = EnvInt("HCCL_BUFFSIZE", kDefaultBuffSizeMb);
  const uint64_t available = megabytes > 0 ? static_cast<uint64_t>(megabytes) << 20 : 0;
  if (needed > available) {
    return Fail(kRange,
                "{}: HCCL_BUFFSIZE is {} MB, but one call of this operator moves up to {} bytes per rank; set "
                "HCCL_BUFFSIZE to at least {} (MB)",
                api, megabytes, needed, (needed + (1u << 20) - 1) >> 20);
  }
  return ACLNN_SUCCESS;
}

HandleTable<MoeExecutor>& MoeExecutors() {
  static auto* executors = new HandleTable<MoeExecutor>(HandleKind::kMoeExecutor);
  return *executors;
}

aclnnStatus AddExecutor(const char* made_by, const char* runs_with, const comm::Member& ep,
                        std::function<runtime::Task()> make_task, uint64_t* workspace_size,
                        aclOpExecutor** executor) {
  auto made = std::make_shared<MoeExecutor>();
  made->made_by = made_by;
  made->runs_with = runs_with;
  made->device = ep.group->DeviceOfRank(ep.rank);
  made->rank_description = fmt::format("rank {} of group '{}'", ep.rank, ep.group->Name());
  made->make_task = std::move(make_task);
  *workspace_size = 0;
  *executor = static_cast<aclOpExecutor*>(MoeExecutors().Add(std::move(made)));
  return ACLNN_SUCCESS;
}

aclnnStatus LaunchMoe(const char* api, void* workspace, uint64_t workspace_size, aclOpExecutor* handle,
                      aclrtStream stream_handle) {
  (void)workspace;  // nothing is asked for on CPU (workspace size 0); any workspace is fine
  (void)workspace_size;
  if (handle == nullptr) return Fail(kNull, "{}: executor is null", api);
  std::shared_ptr<MoeExecutor> executor = MoeExecutors().Find(handle);
  if (!executor) {
    return Fail(kInvalid, "{}: executor {} is {}", api, static_cast<const void*>(handle),
                MoeExecutors().WasIssued(handle)
                    ? "no longer live: already run (executors are single-use unless made repeatable) or destroyed"
                    : "not an executor of a MoE operator");
  }
  if (std::strcmp(executor->runs_with, api) != 0) {
    return Fail(kInvalid, "{}: executor {} was made by {}; run it with {}", api, static_cast<const void*>(handle),
                executor->made_by, executor->runs_with);
  }
  aclError stream_error = ACL_SUCCESS;
  std::shared_ptr<runtime::Stream> stream = runtime::Runtime::Instance().ResolveStream(stream_handle, &stream_error);
  if (!stream) return Fail(kInvalid, "{}: stream {} is not usable", api, stream_handle);
  if (stream->Device() != executor->device) {
    return Fail(kInvalid, "{}: stream {} belongs to device {}, but the executor's {} is on device {}", api,
                stream_handle, stream->Device(), executor->rank_description, executor->device);
  }
  if (!executor->repeatable.load(std::memory_order_acquire) && !MoeExecutors().Take(handle)) {
    return Fail(kInvalid, "{}: executor {} was already run", api, static_cast<const void*>(handle));
  }
  stream->Enqueue(executor->make_task());
  return ACLNN_SUCCESS;
}

}  // namespace distbarrier::op::moe
