#include "op/moe_combine/moe_combine.h"

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

// A row travelling back to its token's rank: this header, then H values: floats when the
// TP pair summed two partial results (so that the sum is rounded only once, at the end),
// else the row's own BF16/FP16 elements.
struct ReturnHeader {
  int32_t token;
  int32_t slot;
};

struct CombinePlan {
  Layout layout;
  Members members;
  comm::collectives::CallOptions call;
  aclDataType dtype = ACL_BF16;

  const std::byte* expand_x = nullptr;
  int64_t expand_x_rows = 0;
  const int32_t* assist = nullptr;
  int64_t assist_length = 0;
  const int32_t* ep_send_counts = nullptr;
  const float* expert_scales = nullptr;
  const uint8_t* active_mask = nullptr;
  const std::byte* shared_expert_x = nullptr;
  std::byte* x_out = nullptr;
};

template <typename T>
T* Elements(const std::shared_ptr<Tensor>& tensor) {
  return tensor ? static_cast<T*>(tensor->FirstElement()) : nullptr;
}

class CombineRun {
 public:
  explicit CombineRun(std::shared_ptr<const CombinePlan> plan) : plan_(std::move(plan)), l_(plan_->layout) {}

  runtime::TaskStatus Run(const std::stop_token& stop) {
    const CombinePlan& p = *plan_;
    CallOptions call = p.call;
    call.stop = stop;
    ReadRows();
    std::vector<int64_t> own;   // rows of this rank's TP plane, in expandX order
    std::vector<int64_t> peer;  // rows of the TP peer's plane
    for (int64_t row = 0; row < rows_; ++row) (Assist(row)[0] == l_.tp_rank ? own : peer).push_back(row);

    // 1. With TP 2: each rank sends its partial results of the peer's rows to the peer. They
    // are copied out of the exchange, not used in place by an EP exchange nested in it:
    // dispatch nests TP in EP, and the other order here would invert the two groups' call
    // locks (a rank could deadlock running both operators on two streams).
    std::vector<std::byte> partials;  // the peer's halves of this rank's rows, in `own` order
    if (l_.tp == 2) {
      const int peer_rank = 1 - l_.tp_rank;
      std::vector<size_t> send_bytes(2, 0);
      send_bytes[peer_rank] = peer.size() * HalfRow();
      call.local_error = error_.message;
      Note(p.members.tp.group->Collectives()->AllToAllV(
          p.members.tp.rank, send_bytes,
          [&](int to, std::byte* out) {
            if (to != peer_rank) return;
            for (int64_t row : peer) {
              std::memcpy(out, p.expand_x + static_cast<size_t>(row) * HalfRow(), HalfRow());
              out += HalfRow();
            }
          },
          [&](const Blocks& from_tp) {
            if (from_tp[peer_rank].size() != own.size() * HalfRow()) {
              return Fail(fmt::format("{}: the TP peer sent {} rows of this rank's plane, expected {}", Where(),
                                      from_tp[peer_rank].size() / HalfRow(), own.size()));
            }
            partials.assign(from_tp[peer_rank].begin(), from_tp[peer_rank].end());
          },
          call));
    }
    // 2. and 3. (after a failed exchange too, so that the EP peers hear of it).
    ReturnRows(call, own, partials.data());
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
    return fmt::format("{}: group '{}', EP rank {}, TP rank {}", kCombineLaunch, plan_->members.ep.group->Name(),
                       l_.ep_rank, l_.tp_rank);
  }
  const int32_t* Assist(int64_t row) const { return plan_->assist + row * kAssistInts; }
  size_t HalfRow() const { return static_cast<size_t>(l_.h) * 2; }

  // 2. Every row of this rank's plane goes back to the EP rank its token came from: with TP 2
  // as floats, its value plus the peer's partial (`partials`, in `own` order), so that the sum
  // is rounded only once; else as it is. The rows that come home make xOut in place (step 3).
  void ReturnRows(CallOptions call, const std::vector<int64_t>& own, const std::byte* partials) {
    const CombinePlan& p = *plan_;
    const bool summed = l_.tp == 2;
    const size_t value_bytes = summed ? static_cast<size_t>(l_.h) * sizeof(float) : HalfRow();
    const size_t return_row = sizeof(ReturnHeader) + value_bytes;
    std::vector<std::vector<size_t>> back(static_cast<size_t>(l_.ep));  // positions in `own`
    if (error_.ok()) {
      for (size_t i = 0; i < own.size(); ++i) back[Assist(own[i])[1]].push_back(i);
    }
    std::vector<size_t> send_bytes(static_cast<size_t>(l_.ep));
    for (int to = 0; to < l_.ep; ++to) send_bytes[to] = back[to].size() * return_row;
    call.local_error = error_.message;
    Note(p.members.ep.group->Collectives()->AllToAllV(
        l_.ep_rank, send_bytes,
        [&](int to, std::byte* out) {
          for (size_t i : back[to]) {
            const int32_t* assist = Assist(own[i]);
            const ReturnHeader header{assist[2], assist[3]};
            std::memcpy(out, &header, sizeof header);
            const std::byte* mine = p.expand_x + static_cast<size_t>(own[i]) * HalfRow();
            if (summed) {
              AddHalfRows(mine, partials + i * HalfRow(), p.dtype, l_.h, out + sizeof header);
            } else {
              std::memcpy(out + sizeof header, mine, HalfRow());
            }
            out += return_row;
          }
        },
        [&](const Blocks& from_ep) { SumReturnedRows(from_ep, return_row); }, call));
  }

  // 3. xOut[t] = sum over the rows that came home for token t of weight * row
  // (+ sharedExpertX[t]), in float, rounded once; read where the rows lie, one token at a time.
  void SumReturnedRows(const Blocks& from_ep, size_t return_row) {
    const CombinePlan& p = *plan_;
    struct Term {
      const std::byte* values;
      float weight;
    };
    std::vector<std::vector<Term>> terms(static_cast<size_t>(l_.bs));  // by token, in arrival order
    for (int from = 0; from < l_.ep; ++from) {
      const std::span<const std::byte> block = from_ep[from];
      if (block.size() % return_row != 0) {
        return Fail(
            fmt::format("{}: EP rank {} sent {} bytes, not a whole number of rows", Where(), from, block.size()));
      }
      for (size_t offset = 0; offset < block.size(); offset += return_row) {
        ReturnHeader header;
        std::memcpy(&header, block.data() + offset, sizeof header);
        if (header.token < 0 || header.token >= l_.bs || header.slot < 0 || header.slot >= l_.Slots()) {
          return Fail(
              fmt::format("{}: EP rank {} returned a row for token {} slot {}, but this rank has Bs {} and {} slots "
                          "(K + shared copies): do dispatch and combine agree?",
                          Where(), from, header.token, header.slot, l_.bs, l_.Slots()));
        }
        const float weight = header.slot < l_.k ? p.expert_scales[header.token * l_.k + header.slot] : 1.0f;
        terms[header.token].push_back({block.data() + offset + sizeof header, weight});
      }
    }
    std::vector<float> sum(static_cast<size_t>(l_.h));
    for (int64_t token = 0; token < l_.bs; ++token) {
      std::byte* out = p.x_out + static_cast<size_t>(token) * HalfRow();
      if (p.active_mask != nullptr && p.active_mask[token] == 0) {
        std::memset(out, 0, HalfRow());  // +0 in BF16 and FP16
        continue;
      }
      std::fill(sum.begin(), sum.end(), 0.0f);
      for (const Term& term : terms[token]) {
        if (l_.tp == 2) {
          AccumulateFloatRow(term.values, term.weight, l_.h, sum.data());
        } else {
          AccumulateHalfRow(term.values, p.dtype, term.weight, l_.h, sum.data());
        }
      }
      const std::byte* shared = p.shared_expert_x != nullptr ? p.shared_expert_x + token * HalfRow() : nullptr;
      StoreHalfRow(sum.data(), shared, p.dtype, l_.h, out);
    }
  }

  // How many rows expandX holds (the sum of epSendCounts), each checked against the layout.
  void ReadRows() {
    const CombinePlan& p = *plan_;
    int64_t total = 0;
    const int64_t cells = l_.tp * l_.local_experts * l_.ep;
    for (int64_t i = 0; i < cells; ++i) {
      const int32_t count = p.ep_send_counts[i];
      if (count < 0) return Fail(fmt::format("{}: epSendCounts[{}] is {}", Where(), i, count));
      total += count;
    }
    if (total > p.expand_x_rows || total > p.assist_length / kAssistInts) {
      return Fail(fmt::format("{}: epSendCounts add up to {} rows, but expandX holds {} and assistInfoForCombine {}",
                              Where(), total, p.expand_x_rows, p.assist_length / kAssistInts));
    }
    for (int64_t row = 0; row < total; ++row) {
      const int32_t* assist = Assist(row);
      if (assist[0] < 0 || assist[0] >= l_.tp || assist[1] < 0 || assist[1] >= l_.ep) {
        return Fail(
            fmt::format("{}: assistInfoForCombine row {} names TP plane {} and EP rank {}: not written by "
                        "aclnnMoeDistributeDispatchV2 with these arguments",
                        Where(), row, assist[0], assist[1]));
      }
    }
    rows_ = total;
  }

  const std::shared_ptr<const CombinePlan> plan_;
  const Layout& l_;
  runtime::TaskStatus error_;
  int64_t rows_ = 0;
};

}  // namespace

aclnnStatus PrepareCombine(const CombineArgs& a) {
  const char* api = kCombinePrepare;
  MOE_RETURN_IF_ERROR(CheckRequired(api, {
                                             {"expandX", a.expand_x},
                                             {"expertIds", a.expert_ids},
                                             {"assistInfoForCombine", a.assist_info},
                                             {"epSendCounts", a.ep_send_counts},
                                             {"expertScales", a.expert_scales},
                                             {"groupEp", a.group_ep},
                                             {"xOut", a.x_out},
                                             {"workspaceSize", a.workspace_size},
                                             {"executor", a.executor},
                                         }));
  if (a.tp_world_size == 2 && a.group_tp == nullptr) {
    return Fail(ACLNN_ERR_PARAM_NULLPTR, "{}: groupTp is null with tpWorldSize 2", api);
  }

  const CommonArgs common{a.group_ep,          a.ep_world_size,          a.ep_rank_id, a.moe_expert_num,
                          a.group_tp,          a.tp_world_size,          a.tp_rank_id, a.expert_shard_type,
                          a.shared_expert_num, a.shared_expert_rank_num, a.global_bs,  a.comm_alg};
  MOE_RETURN_IF_ERROR(CheckCommonArgs(api, common));
  if (a.out_dtype != 0) {
    return Fail(ACLNN_ERR_INNER_TILING_ERROR, "{}: outDtype {} is not supported, expected 0 (x's dtype)", api,
                a.out_dtype);
  }
  if (a.comm_quant_mode != 0) {
    return Fail(ACLNN_ERR_INNER_TILING_ERROR, "{}: commQuantMode {} is not supported, expected 0", api,
                a.comm_quant_mode);
  }
  if (a.group_list_type != 0 && a.group_list_type != 1) {
    return Fail(ACLNN_ERR_INNER_TILING_ERROR, "{}: groupListType {} is not supported, expected 0 or 1", api,
                a.group_list_type);
  }
  const std::pair<const char*, const void*> reserved[] = {{"activationScaleOptional", a.activation_scale},
                                                          {"weightScaleOptional", a.weight_scale},
                                                          {"groupListOptional", a.group_list}};
  for (const auto& [name, pointer] : reserved) {
    if (pointer != nullptr) {
      return Fail(ACLNN_ERR_INNER_TILING_ERROR, "{}: {} is reserved and not supported; pass null", api, name);
    }
  }

  std::shared_ptr<Tensor> expand_x, ids, assist, ep_counts, weights, tp_counts, mask, expand_scales, shared_x, x_out;
  MOE_RETURN_IF_ERROR(FindTensor(api, "expandX", a.expand_x, true, &expand_x));
  MOE_RETURN_IF_ERROR(FindTensor(api, "expertIds", a.expert_ids, true, &ids));
  MOE_RETURN_IF_ERROR(FindTensor(api, "assistInfoForCombine", a.assist_info, true, &assist));
  MOE_RETURN_IF_ERROR(FindTensor(api, "epSendCounts", a.ep_send_counts, true, &ep_counts));
  MOE_RETURN_IF_ERROR(FindTensor(api, "expertScales", a.expert_scales, true, &weights));
  MOE_RETURN_IF_ERROR(FindTensor(api, "tpSendCountsOptional", a.tp_send_counts, false, &tp_counts));
  MOE_RETURN_IF_ERROR(FindTensor(api, "xActiveMaskOptional", a.x_active_mask, false, &mask));
  MOE_RETURN_IF_ERROR(FindTensor(api, "expandScalesOptional", a.expand_scales, false, &expand_scales));
  MOE_RETURN_IF_ERROR(FindTensor(api, "sharedExpertXOptional", a.shared_expert_x, false, &shared_x));
  MOE_RETURN_IF_ERROR(FindTensor(api, "xOut", a.x_out, true, &x_out));

  MOE_RETURN_IF_ERROR(CheckKind(api, "expandX", *expand_x, {ACL_BF16, ACL_FLOAT16}));
  MOE_RETURN_IF_ERROR(CheckKind(api, "expertIds", *ids, {ACL_INT32}));
  MOE_RETURN_IF_ERROR(CheckKind(api, "assistInfoForCombine", *assist, {ACL_INT32}));
  MOE_RETURN_IF_ERROR(CheckKind(api, "epSendCounts", *ep_counts, {ACL_INT32}));
  MOE_RETURN_IF_ERROR(CheckKind(api, "expertScales", *weights, {ACL_FLOAT}));
  if (tp_counts) MOE_RETURN_IF_ERROR(CheckKind(api, "tpSendCountsOptional", *tp_counts, {ACL_INT32}));
  if (mask) MOE_RETURN_IF_ERROR(CheckKind(api, "xActiveMaskOptional", *mask, {ACL_BOOL}));
  if (expand_scales) MOE_RETURN_IF_ERROR(CheckKind(api, "expandScalesOptional", *expand_scales, {ACL_FLOAT}));
  if (shared_x) MOE_RETURN_IF_ERROR(CheckKind(api, "sharedExpertXOptional", *shared_x, {expand_x->dtype}));
  MOE_RETURN_IF_ERROR(CheckKind(api, "xOut", *x_out, {expand_x->dtype}));

  if (x_out->view_dims.size() != 2) {
    return Fail(ACLNN_ERR_INNER_TILING_ERROR, "{}: xOut shape is {}, expected (Bs, H)", api, x_out->ShapeString());
  }
  if (ids->view_dims.size() != 2) {
    return Fail(ACLNN_ERR_INNER_TILING_ERROR, "{}: expertIds shape is {}, expected (Bs, K)", api, ids->ShapeString());
  }
  const int64_t bs = x_out->view_dims[0];
  const int64_t h = x_out->view_dims[1];
  const int64_t k = ids->view_dims[1];
  MOE_RETURN_IF_ERROR(CheckSizes(api, common, bs, h, k));
  const Layout layout = MakeLayout(common, bs, h, k);
  const int64_t tp = layout.tp;
  const int64_t a_rows = layout.capacity;
  MOE_RETURN_IF_ERROR(CheckShape(api, "expertIds", *ids, {bs, k}, "(Bs, K)"));
  MOE_RETURN_IF_ERROR(CheckShape(api, "expertScales", *weights, {bs, k}, "(Bs, K)"));
  MOE_RETURN_IF_ERROR(CheckRowsAtLeast(api, "expandX", *expand_x, tp * a_rows, h, "max(tpWorldSize, 1) * A rows"));
  MOE_RETURN_IF_ERROR(
      CheckAtLeast(api, "assistInfoForCombine", *assist, kAssistInts * tp * a_rows, "4 * max(tpWorldSize, 1) * A"));
  MOE_RETURN_IF_ERROR(CheckAtLeast(api, "epSendCounts", *ep_counts, tp * layout.local_experts * layout.ep,
                                   "max(tpWorldSize, 1) * localExpertNum * epWorldSize"));
  if (tp_counts) {
    MOE_RETURN_IF_ERROR(CheckAtLeast(api, "tpSendCountsOptional", *tp_counts, tp * layout.local_experts,
                                     "max(tpWorldSize, 1) * localExpertNum"));
  }
  if (mask) MOE_RETURN_IF_ERROR(CheckShape(api, "xActiveMaskOptional", *mask, {bs}, "(Bs)"));
  if (shared_x) MOE_RETURN_IF_ERROR(CheckShape(api, "sharedExpertXOptional", *shared_x, {bs, h}, "(Bs, H)"));

  Members members;
  MOE_RETURN_IF_ERROR(ResolveMembers(api, common, &members));

  const size_t half_row = static_cast<size_t>(h) * 2;
  const size_t return_row = 2 * sizeof(int32_t) + (tp == 2 ? static_cast<size_t>(h) * sizeof(float) : half_row);
  const uint64_t ep_bytes =
      comm::collectives::GroupCollectives::PostBytes(layout.ep, static_cast<size_t>(a_rows) * return_row);
  const uint64_t tp_bytes = comm::collectives::GroupCollectives::PostBytes(2, static_cast<size_t>(a_rows) * half_row);
  MOE_RETURN_IF_ERROR(CheckBufferSize(api, std::max(ep_bytes, tp == 2 ? tp_bytes : 0)));

  auto plan = std::make_shared<CombinePlan>();
  plan->layout = layout;
  plan->members = std::move(members);
  plan->call = CallOptionsFromEnvironment(kCombineLaunch);
  plan->dtype = expand_x->dtype;
  plan->expand_x = Elements<const std::byte>(expand_x);
  plan->expand_x_rows = expand_x->view_dims[0];
  plan->assist = Elements<const int32_t>(assist);
  plan->assist_length = assist->ElementCount();
  plan->ep_send_counts = Elements<const int32_t>(ep_counts);
  plan->expert_scales = Elements<const float>(weights);
  plan->active_mask = Elements<const uint8_t>(mask);
  plan->shared_expert_x = Elements<const std::byte>(shared_x);
  plan->x_out = Elements<std::byte>(x_out);

  return AddExecutor(
      kCombinePrepare, kCombineLaunch, plan->members.ep,
      [plan = std::shared_ptr<const CombinePlan>(plan)] {
        runtime::Task task;
        task.run = [plan](const std::stop_token& stop) { return CombineRun(plan).Run(stop); };
        return task;
      },
      a.workspace_size, a.executor);
}

}  // namespace distbarrier::op::moe
