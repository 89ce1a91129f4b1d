#include "op/moe_dispatch/moe_dispatch.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <span>
#include <stop_token>
#include <vector>

#include "common/error.h"
#include "op/moe_common/moe_common.h"
#include "op/moe_common/rows.h"

namespace distbarrier::op::moe {
namespace {

using comm::collectives::Blocks;
using comm::collectives::CallOptions;
using comm::collectives::CallResult;

// A row on the wire: this header, then H elements (x's dtype, or INT8 when quantized).
struct RowHeader {
  int32_t token;         // index in the source rank's x
  int16_t slot;          // k in [0, K) for an expert row, K + c for shared copy c
  int16_t local_expert;  // on the destination rank
  float weight;          // expertScales[token, k] (1 for shared copies)
  float dynamic_scale;   // quantMode 2
};
static_assert(sizeof(RowHeader) == 16);

struct DispatchPlan {
  Layout layout;
  Members members;
  comm::collectives::CallOptions call;
  aclDataType x_dtype = ACL_BF16;
  bool quantize = false;
  bool cumulative_counts = false;
  size_t row_bytes = 0;      // header + payload
  size_t payload_bytes = 0;  // H elements

  const std::byte* x = nullptr;
  const int32_t* expert_ids = nullptr;
  const float* smooth_scales = nullptr;  // quantMode 2 only; row per expert (shared first)
  const uint8_t* active_mask = nullptr;
  const float* expert_scales = nullptr;

  std::byte* expand_x = nullptr;
  int64_t expand_x_rows = 0;
  float* dynamic_scales = nullptr;
  int64_t dynamic_scales_length = 0;
  int32_t* assist = nullptr;
  int64_t assist_length = 0;
  int64_t* token_nums = nullptr;
  int32_t* ep_recv_counts = nullptr;
  int32_t* tp_recv_counts = nullptr;
  float* expand_scales = nullptr;
  int64_t expand_scales_length = 0;
};

template <typename T>
T* Elements(const std::shared_ptr<Tensor>& tensor) {
  return tensor ? static_cast<T*>(tensor->FirstElement()) : nullptr;
}

int64_t Length(const std::shared_ptr<Tensor>& tensor) {
  return tensor ? tensor->ElementCount() : 0;
}

// The rows each source rank sent to this rank in one TP plane (in place, in a collective's blocks).
using PlaneRows = std::vector<std::vector<const std::byte*>>;

class DispatchRun {
 public:
  explicit DispatchRun(std::shared_ptr<const DispatchPlan> plan) : plan_(std::move(plan)), l_(plan_->layout) {}

  runtime::TaskStatus Run(const std::stop_token& stop) {
    CallOptions call = plan_->call;
    call.stop = stop;

    // 1. Route this rank's tokens and exchange them over the EP group.
    std::vector<std::vector<RowHeader>> routes = Route();
    std::vector<size_t> send_bytes(static_cast<size_t>(l_.ep));
    for (int to = 0; to < l_.ep; ++to) send_bytes[to] = routes[to].size() * plan_->row_bytes;
    call.local_error = error_.message;
    std::vector<PlaneRows> planes(static_cast<size_t>(l_.tp));
    bool gathered = false;
    Note(plan_->members.ep.group->Collectives()->AllToAllV(
        l_.ep_rank, send_bytes, [&](int to, std::byte* out) { Pack(to, routes[to], out); },
        [&](const Blocks& from_ep) {
          planes[l_.tp_rank] = SplitRows(from_ep);
          if (l_.tp == 2) {
            gathered = true;
            GatherPlanes(call, planes);
          } else if (error_.ok()) {
            WriteOutputs(planes);
          }
        },
        call));
    // After a failed exchange the TP call still happens, so that the peer hears of the failure.
    if (l_.tp == 2 && !gathered) GatherPlanes(call, planes);
    return error_;
  }

 private:
  void Note(const CallResult& result) {
    if (error_.ok() && !result.ok()) error_ = ToTaskStatus(result);
  }
  void Fail(std::string message) {
    if (error_.ok()) error_ = {ACL_ERROR_RT_PARAM_INVALID, std::move(message)};
  }
  std::string Where() const {
    return fmt::format("{}: group '{}', EP rank {}, TP rank {}", kDispatchLaunch, plan_->members.ep.group->Name(),
                       l_.ep_rank, l_.tp_rank);
  }

  // 2. With TP 2, the TP pair all-gathers what each received ([count per source][rows]), and
  // the rows are laid out while both planes are still in place (this runs inside the EP
  // exchange, whose blocks hold this rank's own plane).
  void GatherPlanes(CallOptions call, std::vector<PlaneRows>& planes) {
    size_t own_rows = 0;
    for (const auto& rows : planes[l_.tp_rank]) own_rows += rows.size();
    const size_t block = static_cast<size_t>(l_.ep) * sizeof(uint64_t) + own_rows * plan_->row_bytes;
    call.local_error = error_.message;
    Note(plan_->members.tp.group->Collectives()->AllGather(
        plan_->members.tp.rank, block, [&](int, std::byte* out) { PackPlane(planes[l_.tp_rank], out); },
        [&](const Blocks& from_tp) {
          for (int plane = 0; plane < l_.tp && error_.ok(); ++plane) {
            if (plane != l_.tp_rank) planes[plane] = ParsePlane(from_tp[plane]);
          }
          if (error_.ok()) WriteOutputs(planes);
        },
        call));
  }

  std::vector<std::vector<RowHeader>> Route() {
    std::vector<std::vector<RowHeader>> routes(static_cast<size_t>(l_.ep));
    for (int64_t token = 0; token < l_.bs; ++token) {
      if (plan_->active_mask != nullptr && plan_->active_mask[token] == 0) continue;
      for (int64_t k = 0; k < l_.k; ++k) {
        const int32_t expert = plan_->expert_ids[token * l_.k + k];
        if (expert < 0 || expert >= l_.moe_experts) {
          Fail(fmt::format("{}: expertIds[{}, {}] is {}, out of range [0, moeExpertNum {})", Where(), token, k, expert,
                           l_.moe_experts));
          return std::vector<std::vector<RowHeader>>(static_cast<size_t>(l_.ep));
        }
        const float weight = plan_->expert_scales != nullptr ? plan_->expert_scales[token * l_.k + k] : 1.0f;
        routes[l_.ExpertRank(expert)].push_back({static_cast<int32_t>(token), static_cast<int16_t>(k),
                                                 static_cast<int16_t>(l_.LocalExpert(expert)), weight, 0.0f});
      }
      for (int64_t copy = 0; copy < l_.shared_copies; ++copy) {
        routes[l_.SharedRankFor(l_.ep_rank, copy)].push_back(
            {static_cast<int32_t>(token), static_cast<int16_t>(l_.k + copy), 0, 1.0f, 0.0f});
      }
    }
    return routes;
  }

  void Pack(int to, const std::vector<RowHeader>& rows, std::byte* out) const {
    for (RowHeader header : rows) {
      const std::byte* source = plan_->x + static_cast<size_t>(header.token) * static_cast<size_t>(l_.h) * 2;
      std::byte* payload = out + sizeof(RowHeader);
      if (plan_->quantize) {
        const float* smooth = nullptr;
        if (plan_->smooth_scales != nullptr) {
          // Rows of scales: the shared experts first, then the MoE experts.
          const int64_t expert_row =
              header.slot >= l_.k
                  ? header.slot - l_.k
                  : l_.shared_copies + (to - l_.shared_ranks) * l_.moe_local_experts + header.local_expert;
          smooth = plan_->smooth_scales + expert_row * l_.h;
        }
        header.dynamic_scale = QuantizeRow(source, plan_->x_dtype, smooth, l_.h, payload);
      } else {
        std::memcpy(payload, source, plan_->payload_bytes);
      }
      std::memcpy(out, &header, sizeof header);
      out += plan_->row_bytes;
    }
  }

  PlaneRows SplitRows(const Blocks& received) {
    PlaneRows rows(static_cast<size_t>(l_.ep));
    for (int from = 0; from < l_.ep; ++from) {
      const std::span<const std::byte> block = received[from];
      if (block.size() % plan_->row_bytes != 0) {
        Fail(fmt::format("{}: rank {} sent {} bytes, not a whole number of rows", Where(), from, block.size()));
        return rows;
      }
      for (size_t offset = 0; offset < block.size(); offset += plan_->row_bytes) rows[from].push_back(&block[offset]);
    }
    return rows;
  }

  void PackPlane(const PlaneRows& plane, std::byte* out) const {
    for (int from = 0; from < l_.ep; ++from) {
      const uint64_t count = plane.empty() ? 0 : plane[from].size();
      std::memcpy(out + static_cast<size_t>(from) * sizeof count, &count, sizeof count);
    }
    out += static_cast<size_t>(l_.ep) * sizeof(uint64_t);
    for (const auto& rows : plane) {
      for (const std::byte* row : rows) {
        std::memcpy(out, row, plan_->row_bytes);
        out += plan_->row_bytes;
      }
    }
  }

  PlaneRows ParsePlane(std::span<const std::byte> block) {
    PlaneRows rows(static_cast<size_t>(l_.ep));
    const size_t table = static_cast<size_t>(l_.ep) * sizeof(uint64_t);
    size_t offset = table;
    for (int from = 0; from < l_.ep && block.size() >= table; ++from) {
      uint64_t count;
      std::memcpy(&count, block.data() + static_cast<size_t>(from) * sizeof count, sizeof count);
      for (uint64_t i = 0; i < count && offset + plan_->row_bytes <= block.size(); ++i) {
        rows[from].push_back(block.data() + offset);
        offset += plan_->row_bytes;
      }
    }
    if (offset != block.size()) Fail(fmt::format("{}: the TP peer's rows are malformed", Where()));
    return rows;
  }

  void WriteOutputs(const std::vector<PlaneRows>& planes) {
    const DispatchPlan& p = *plan_;
    const int64_t experts = l_.local_experts;
    // Count rows per (local expert, plane, source): their places follow from the counts.
    std::vector<int64_t> counts(static_cast<size_t>(experts * l_.tp * l_.ep), 0);
    auto cell = [&](int64_t expert, int plane, int from) {
      return static_cast<size_t>((expert * l_.tp + plane) * l_.ep + from);
    };
    int64_t total = 0;
    int64_t own = 0;
    for (int plane = 0; plane < l_.tp; ++plane) {
      for (int from = 0; from < l_.ep; ++from) {
        for (const std::byte* row : planes[plane][from]) {
          RowHeader header;
          std::memcpy(&header, row, sizeof header);
          if (header.local_expert < 0 || header.local_expert >= experts || header.slot < 0 ||
              header.slot >= l_.Slots()) {
            return Fail(fmt::format("{}: a row from EP rank {} names local expert {} (this rank has {})", Where(), from,
                                    header.local_expert, experts));
          }
          ++counts[cell(header.local_expert, plane, from)];
          ++total;
          if (plane == l_.tp_rank) ++own;
        }
      }
    }
    const int64_t room = std::min(
        {p.expand_x_rows, p.assist_length / kAssistInts, p.quantize ? p.dynamic_scales_length : p.expand_x_rows});
    if (total > room || (p.expand_scales != nullptr && own > p.expand_scales_length)) {
      return Fail(
          fmt::format("{}: received {} rows ({} in its own TP plane), more than the outputs hold ({} rows; "
                      "A = {} per plane): are expertIds of one token distinct?",
                      Where(), total, own, room, l_.capacity));
    }
    std::vector<int64_t> next(counts.size());
    int64_t place = 0;
    for (size_t i = 0; i < counts.size(); ++i) {
      next[i] = place;
      place += counts[i];
    }
    // Counts for combine and for the grouped matmul.
    std::fill_n(p.ep_recv_counts, l_.tp * experts * l_.ep, 0);
    if (p.tp_recv_counts != nullptr) std::fill_n(p.tp_recv_counts, l_.tp * experts, 0);
    for (int64_t expert = 0; expert < experts; ++expert) {
      int64_t expert_rows = 0;
      for (int plane = 0; plane < l_.tp; ++plane) {
        for (int from = 0; from < l_.ep; ++from) {
          const int64_t n = counts[cell(expert, plane, from)];
          p.ep_recv_counts[(plane * experts + expert) * l_.ep + from] = static_cast<int32_t>(n);
          if (p.tp_recv_counts != nullptr) p.tp_recv_counts[plane * experts + expert] += static_cast<int32_t>(n);
          expert_rows += n;
        }
      }
      p.token_nums[expert] = expert_rows + (p.cumulative_counts && expert > 0 ? p.token_nums[expert - 1] : 0);
    }
    // The rows themselves. expandScales lists the own plane's rows, in expandX order.
    std::vector<std::pair<int64_t, float>> own_scales;
    for (int plane = 0; plane < l_.tp; ++plane) {
      for (int from = 0; from < l_.ep; ++from) {
        for (const std::byte* row : planes[plane][from]) {
          RowHeader header;
          std::memcpy(&header, row, sizeof header);
          const int64_t index = next[cell(header.local_expert, plane, from)]++;
          std::memcpy(p.expand_x + static_cast<size_t>(index) * p.payload_bytes, row + sizeof header, p.payload_bytes);
          if (p.quantize) p.dynamic_scales[index] = header.dynamic_scale;
          int32_t* assist = p.assist + index * kAssistInts;
          assist[0] = plane;
          assist[1] = from;
          assist[2] = header.token;
          assist[3] = header.slot;
          if (plane == l_.tp_rank) own_scales.emplace_back(index, header.weight);
        }
      }
    }
    if (p.expand_scales != nullptr) {
      std::sort(own_scales.begin(), own_scales.end());
      for (size_t j = 0; j < own_scales.size(); ++j) p.expand_scales[j] = own_scales[j].second;
    }
  }

  const std::shared_ptr<const DispatchPlan> plan_;
  const Layout& l_;
  runtime::TaskStatus error_;
};

}  // namespace

aclnnStatus PrepareDispatch(const DispatchArgs& a) {
  const char* api = kDispatchPrepare;
  // Required pointers: 161001.
  MOE_RETURN_IF_ERROR(CheckRequired(api, {
                                             {"x", a.x},
                                             {"expertIds", a.expert_ids},
                                             {"groupEp", a.group_ep},
                                             {"expandXOut", a.expand_x},
                                             {"assistInfoForCombineOut", a.assist_info},
                                             {"expertTokenNumsOut", a.expert_token_nums},
                                             {"epRecvCountsOut", a.ep_recv_counts},
                                             {"workspaceSize", a.workspace_size},
                                             {"executor", a.executor},
                                         }));
  if (a.tp_world_size == 2) {
    if (a.group_tp == nullptr) return Fail(ACLNN_ERR_PARAM_NULLPTR, "{}: groupTp is null with tpWorldSize 2", api);
    if (a.tp_recv_counts == nullptr) {
      return Fail(ACLNN_ERR_PARAM_NULLPTR, "{}: tpRecvCountsOut is null with tpWorldSize 2", api);
    }
  }
  if (a.quant_mode == 2 && a.dynamic_scales == nullptr) {
    return Fail(ACLNN_ERR_PARAM_NULLPTR, "{}: dynamicScalesOut is null with quantMode 2", api);
  }

  // Scalars: 561002.
  const CommonArgs common{a.group_ep,          a.ep_world_size,          a.ep_rank_id, a.moe_expert_num,
                          a.group_tp,          a.tp_world_size,          a.tp_rank_id, a.expert_shard_type,
                          a.shared_expert_num, a.shared_expert_rank_num, a.global_bs,  a.comm_alg};
  MOE_RETURN_IF_ERROR(CheckCommonArgs(api, common));
  if (a.quant_mode != 0 && a.quant_mode != 2) {
    return Fail(ACLNN_ERR_INNER_TILING_ERROR, "{}: quantMode {} is not supported, expected 0 (none) or 2 (dynamic)",
                api, a.quant_mode);
  }
  if (a.expert_token_nums_type != 0 && a.expert_token_nums_type != 1) {
    return Fail(ACLNN_ERR_INNER_TILING_ERROR, "{}: expertTokenNumsType {} is not supported, expected 0 or 1", api,
                a.expert_token_nums_type);
  }

  // Tensors: live, dtype and format (161002).
  std::shared_ptr<Tensor> x, ids, scales, mask, weights, expand_x, dynamic_scales, assist, token_nums, ep_counts,
      tp_counts, expand_scales;
  MOE_RETURN_IF_ERROR(FindTensor(api, "x", a.x, true, &x));
  MOE_RETURN_IF_ERROR(FindTensor(api, "expertIds", a.expert_ids, true, &ids));
  MOE_RETURN_IF_ERROR(FindTensor(api, "scalesOptional", a.scales, false, &scales));
  MOE_RETURN_IF_ERROR(FindTensor(api, "xActiveMaskOptional", a.x_active_mask, false, &mask));
  MOE_RETURN_IF_ERROR(FindTensor(api, "expertScalesOptional", a.expert_scales, false, &weights));
  MOE_RETURN_IF_ERROR(FindTensor(api, "expandXOut", a.expand_x, true, &expand_x));
  MOE_RETURN_IF_ERROR(FindTensor(api, "dynamicScalesOut", a.dynamic_scales, false, &dynamic_scales));
  MOE_RETURN_IF_ERROR(FindTensor(api, "assistInfoForCombineOut", a.assist_info, true, &assist));
  MOE_RETURN_IF_ERROR(FindTensor(api, "expertTokenNumsOut", a.expert_token_nums, true, &token_nums));
  MOE_RETURN_IF_ERROR(FindTensor(api, "epRecvCountsOut", a.ep_recv_counts, true, &ep_counts));
  MOE_RETURN_IF_ERROR(FindTensor(api, "tpRecvCountsOut", a.tp_recv_counts, false, &tp_counts));
  MOE_RETURN_IF_ERROR(FindTensor(api, "expandScalesOut", a.expand_scales, false, &expand_scales));

  MOE_RETURN_IF_ERROR(CheckKind(api, "x", *x, {ACL_BF16, ACL_FLOAT16}));
  MOE_RETURN_IF_ERROR(CheckKind(api, "expertIds", *ids, {ACL_INT32}));
  if (scales) MOE_RETURN_IF_ERROR(CheckKind(api, "scalesOptional", *scales, {ACL_FLOAT}));
  if (mask) MOE_RETURN_IF_ERROR(CheckKind(api, "xActiveMaskOptional", *mask, {ACL_BOOL}));
  if (weights) MOE_RETURN_IF_ERROR(CheckKind(api, "expertScalesOptional", *weights, {ACL_FLOAT}));
  MOE_RETURN_IF_ERROR(CheckKind(api, "expandXOut", *expand_x, {a.quant_mode == 2 ? ACL_INT8 : x->dtype}));
  if (dynamic_scales) MOE_RETURN_IF_ERROR(CheckKind(api, "dynamicScalesOut", *dynamic_scales, {ACL_FLOAT}));
  MOE_RETURN_IF_ERROR(CheckKind(api, "assistInfoForCombineOut", *assist, {ACL_INT32}));
  MOE_RETURN_IF_ERROR(CheckKind(api, "expertTokenNumsOut", *token_nums, {ACL_INT64}));
  MOE_RETURN_IF_ERROR(CheckKind(api, "epRecvCountsOut", *ep_counts, {ACL_INT32}));
  if (tp_counts) MOE_RETURN_IF_ERROR(CheckKind(api, "tpRecvCountsOut", *tp_counts, {ACL_INT32}));
  if (expand_scales) MOE_RETURN_IF_ERROR(CheckKind(api, "expandScalesOut", *expand_scales, {ACL_FLOAT}));

  // Shapes and sizes: 561002.
  if (x->view_dims.size() != 2) {
    return Fail(ACLNN_ERR_INNER_TILING_ERROR, "{}: x shape is {}, expected (Bs, H)", api, x->ShapeString());
  }
  if (ids->view_dims.size() != 2) {
    return Fail(ACLNN_ERR_INNER_TILING_ERROR, "{}: expertIds shape is {}, expected (Bs, K)", api, ids->ShapeString());
  }
  const int64_t bs = x->view_dims[0];
  const int64_t h = x->view_dims[1];
  const int64_t k = ids->view_dims[1];
  MOE_RETURN_IF_ERROR(CheckSizes(api, common, bs, h, k));
  const Layout layout = MakeLayout(common, bs, h, k);
  const int64_t tp = layout.tp;
  const int64_t a_rows = layout.capacity;
  MOE_RETURN_IF_ERROR(CheckShape(api, "expertIds", *ids, {bs, k}, "(Bs, K)"));
  if (scales && a.quant_mode == 2) {
    MOE_RETURN_IF_ERROR(CheckShape(api, "scalesOptional", *scales, {layout.shared_copies + layout.moe_experts, h},
                                   "(sharedExpertNum + moeExpertNum, H)"));
  }
  if (mask) MOE_RETURN_IF_ERROR(CheckShape(api, "xActiveMaskOptional", *mask, {bs}, "(Bs)"));
  if (weights) MOE_RETURN_IF_ERROR(CheckShape(api, "expertScalesOptional", *weights, {bs, k}, "(Bs, K)"));
  MOE_RETURN_IF_ERROR(CheckRowsAtLeast(api, "expandXOut", *expand_x, tp * a_rows, h, "max(tpWorldSize, 1) * A rows"));
  if (a.quant_mode == 2) {
    MOE_RETURN_IF_ERROR(CheckAtLeast(api, "dynamicScalesOut", *dynamic_scales, tp * a_rows, "max(tpWorldSize, 1) * A"));
  }
  MOE_RETURN_IF_ERROR(
      CheckAtLeast(api, "assistInfoForCombineOut", *assist, kAssistInts * tp * a_rows, "4 * max(tpWorldSize, 1) * A"));
  MOE_RETURN_IF_ERROR(CheckAtLeast(api, "expertTokenNumsOut", *token_nums, layout.local_experts, "localExpertNum"));
  MOE_RETURN_IF_ERROR(CheckAtLeast(api, "epRecvCountsOut", *ep_counts, tp * layout.local_experts * layout.ep,
                                   "max(tpWorldSize, 1) * localExpertNum * epWorldSize"));
  if (tp_counts) {
    MOE_RETURN_IF_ERROR(CheckAtLeast(api, "tpRecvCountsOut", *tp_counts, tp * layout.local_experts,
                                     "max(tpWorldSize, 1) * localExpertNum"));
  }
  if (expand_scales) MOE_RETURN_IF_ERROR(CheckAtLeast(api, "expandScalesOut", *expand_scales, a_rows, "A"));

  // Groups: 161002 / 561002.
  Members members;
  MOE_RETURN_IF_ERROR(ResolveMembers(api, common, &members));

  auto plan = std::make_shared<DispatchPlan>();
  plan->layout = layout;
  plan->quantize = a.quant_mode == 2;
  plan->payload_bytes = static_cast<size_t>(h) * (plan->quantize ? 1 : 2);
  plan->row_bytes = sizeof(RowHeader) + plan->payload_bytes;
  // What one rank posts: its routed rows over EP, then its received plane over TP.
  const uint64_t ep_bytes = comm::collectives::GroupCollectives::PostBytes(
      layout.ep, static_cast<size_t>(bs * layout.Slots()) * plan->row_bytes);
  const uint64_t tp_bytes = comm::collectives::GroupCollectives::PostBytes(
      2, static_cast<size_t>(layout.ep) * sizeof(uint64_t) + static_cast<size_t>(a_rows) * plan->row_bytes);
  MOE_RETURN_IF_ERROR(CheckBufferSize(api, std::max(ep_bytes, tp == 2 ? tp_bytes : 0)));

  plan->members = std::move(members);
  plan->call = CallOptionsFromEnvironment(kDispatchLaunch);
  plan->x_dtype = x->dtype;
  plan->cumulative_counts = a.expert_token_nums_type == 0;
  plan->x = Elements<const std::byte>(x);
  plan->expert_ids = Elements<const int32_t>(ids);
  plan->smooth_scales = plan->quantize ? Elements<const float>(scales) : nullptr;
  plan->active_mask = Elements<const uint8_t>(mask);
  plan->expert_scales = Elements<const float>(weights);
  plan->expand_x = Elements<std::byte>(expand_x);
  plan->expand_x_rows = expand_x->view_dims[0];
  plan->dynamic_scales = Elements<float>(dynamic_scales);
  plan->dynamic_scales_length = Length(dynamic_scales);
  plan->assist = Elements<int32_t>(assist);
  plan->assist_length = Length(assist);
  plan->token_nums = Elements<int64_t>(token_nums);
  plan->ep_recv_counts = Elements<int32_t>(ep_counts);
  plan->tp_recv_counts = Elements<int32_t>(tp_counts);
  plan->expand_scales = Elements<float>(expand_scales);
  plan->expand_scales_length = Length(expand_scales);

  return AddExecutor(
      kDispatchPrepare, kDispatchLaunch, plan->members.ep,
      [plan = std::shared_ptr<const DispatchPlan>(plan)] {
        runtime::Task task;
        task.run = [plan](const std::stop_token& stop) { return DispatchRun(plan).Run(stop); };
        return task;
      },
      a.workspace_size, a.executor);
}

}  // namespace distbarrier::op::moe
