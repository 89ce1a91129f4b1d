// Shared by the MoE tests and examples/moe_step: a world of EP x TP devices with the
// communicators the vendor's sample makes (one EP group per TP index, one TP group per EP
// rank), random routing, the host reference, and one rank's dispatch -> expert -> combine.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "acl/acl.h"
#include "aclnnop/aclnn_moe_distribute_combine_v2.h"
#include "aclnnop/aclnn_moe_distribute_dispatch_v2.h"
#include "hccl/hccl.h"
#include "common/half_float.h"

namespace distbarrier::testing::moe {

struct Config {
  int ep = 2;
  int tp = 1;  // 1 or 2
  int shared_ranks = 0;
  int shared_experts = 0;
  int moe_experts = 2;
  int k = 1;
  int bs = 4;
  int h = 1024;
  int quant_mode = 0;
  int token_nums_type = 1;
  bool mask = false;
  bool smooth = false;  // quantMode 2 with smooth-quant scales (scalesOptional)
  aclDataType dtype = ACL_BF16;
  uint32_t seed = 1;

  int Devices() const { return ep * tp; }
  int SharedCopies() const { return shared_ranks > 0 ? shared_experts : 0; }
  int LocalExperts(int ep_rank) const { return ep_rank < shared_ranks ? 1 : moe_experts / (ep - shared_ranks); }
  int64_t GlobalBs() const { return int64_t{bs} * ep; }
  // A of contract section 9 (the rows one TP plane can bring to an EP rank).
  int64_t A(int ep_rank) const {
    if (ep_rank < shared_ranks) {
      if (shared_experts == 0) return 0;
      const int per = shared_ranks / shared_experts;
      return (ep + per - 1) / per * bs;
    }
    return GlobalBs() * std::min(LocalExperts(ep_rank), k);
  }
  std::string Describe() const {
    return "EP " + std::to_string(ep) + " TP " + std::to_string(tp) + " sharedRanks " + std::to_string(shared_ranks) +
           " sharedExperts " + std::to_string(shared_experts) + " moeExperts " + std::to_string(moe_experts) + " K " +
           std::to_string(k) + " Bs " + std::to_string(bs) + " H " + std::to_string(h) + " quantMode " +
           std::to_string(quant_mode) + " tokenNumsType " + std::to_string(token_nums_type) + (mask ? " mask" : "") +
           (dtype == ACL_BF16 ? " BF16" : " FP16") + " seed " + std::to_string(seed);
  }
};

inline float ToFloat(uint16_t bits, aclDataType dtype) {
  return dtype == ACL_BF16 ? Bf16ToFloat(bits) : Fp16ToFloat(bits);
}
inline uint16_t FromFloat(float value, aclDataType dtype) {
  return dtype == ACL_BF16 ? FloatToBf16(value) : FloatToFp16(value);
}
// Unit roundoff of the dtype: the largest relative error of one rounding.
inline double Roundoff(aclDataType dtype) {
  return dtype == ACL_BF16 ? 1.0 / 256 : 1.0 / 2048;
}

// The "experts": expert e multiplies its rows by ExpertFactor(e); shared copy s by
// SharedFactor(s). With TP 2 each TP rank computes its share of the factor (the partial
// results combine adds).
inline float ExpertFactor(int expert) {
  return 0.5f + 0.125f * static_cast<float>(expert % 7);
}
inline float SharedFactor(int copy) {
  return 0.75f + 0.25f * static_cast<float>(copy);
}
inline float TpShare(int tp, int tp_rank) {
  return tp == 1 ? 1.0f : (tp_rank == 0 ? 0.25f : 0.75f);
}

// One rank's inputs, drawn from (seed, device, round).
struct RankInputs {
  std::vector<uint16_t> x;  // Bs x H, dtype bits
  std::vector<int32_t> expert_ids;
  std::vector<float> expert_scales;
  std::vector<uint8_t> active;  // all 1 without a mask
  // Smooth-quant scales: a row of H per expert, the shared experts' first (empty without).
  std::vector<float> smooth;
};

inline RankInputs DrawInputs(const Config& c, int device, int round) {
  std::mt19937 rng(c.seed * 7919u + static_cast<uint32_t>(device) * 104729u + static_cast<uint32_t>(round));
  std::uniform_real_distribution<float> value(-2.0f, 2.0f);
  std::uniform_real_distribution<float> weight(0.1f, 1.0f);
  RankInputs in;
  in.x.resize(static_cast<size_t>(c.bs) * c.h);
  for (auto& bits : in.x) bits = FromFloat(value(rng), c.dtype);
  std::vector<int32_t> experts(static_cast<size_t>(c.moe_experts));
  for (int e = 0; e < c.moe_experts; ++e) experts[e] = e;
  for (int t = 0; t < c.bs; ++t) {
    std::shuffle(experts.begin(), experts.end(), rng);  // K distinct experts per token
    for (int k = 0; k < c.k; ++k) {
      in.expert_ids.push_back(experts[k]);
      in.expert_scales.push_back(weight(rng));
    }
    in.active.push_back(c.mask ? static_cast<uint8_t>(rng() % 4 != 0) : 1);
  }
  if (c.smooth) {
    std::uniform_real_distribution<float> smooth(0.5f, 2.0f);
    in.smooth.resize(static_cast<size_t>(c.SharedCopies() + c.moe_experts) * c.h);
    for (float& value : in.smooth) value = smooth(rng);
  }
  return in;
}

// The host reference for token t of one rank, from x, expertIds and expertScales alone,
// with a bound on the error that BF16/FP16 rounding (and int8 quantization) may add.
inline void Reference(const Config& c, const RankInputs& in, int token, std::vector<double>* value,
                      std::vector<double>* bound) {
  value->assign(static_cast<size_t>(c.h), 0.0);
  bound->assign(static_cast<size_t>(c.h), 0.0);
  if (!in.active[token]) return;
  // One term per row the token sends: factor, and its smooth-scale row (-1: none).
  std::vector<std::pair<double, int>> terms;
  for (int k = 0; k < c.k; ++k) {
    const int expert = in.expert_ids[token * c.k + k];
    terms.emplace_back(double{in.expert_scales[token * c.k + k]} * ExpertFactor(expert),
                       c.smooth ? c.SharedCopies() + expert : -1);
  }
  for (int s = 0; s < c.SharedCopies(); ++s) terms.emplace_back(SharedFactor(s), c.smooth ? s : -1);
  const double u = Roundoff(c.dtype);
  auto input = [&](int e, int smooth_row) {
    const double x = ToFloat(in.x[token * c.h + e], c.dtype);
    return smooth_row < 0 ? x : x * double{in.smooth[static_cast<size_t>(smooth_row) * c.h + e]};
  };
  for (const auto& [factor, smooth_row] : terms) {
    // Each row is quantized on its own (quantMode 2): it errs by half a step of its max / 127.
    double row_max = 0;
    for (int e = 0; e < c.h; ++e) row_max = std::max(row_max, std::fabs(input(e, smooth_row)));
    const double quant = c.quant_mode == 2 ? row_max / 127 * 0.5001 : 0.0;
    for (int e = 0; e < c.h; ++e) {
      const double v = input(e, smooth_row);
      (*value)[e] += factor * v;
      // Each partial result is rounded once to the dtype.
      (*bound)[e] += std::fabs(factor) * (std::fabs(v) + quant) * u * 1.01 + std::fabs(factor) * quant;
    }
  }
  for (int e = 0; e < c.h; ++e) (*bound)[e] += (std::fabs((*value)[e]) + (*bound)[e]) * u * 1.01 + 1e-6;
}

// Device memory holding a host vector, as an aclTensor.
struct Buffer {
  void* data = nullptr;
  aclTensor* tensor = nullptr;
  size_t bytes = 0;

  template <typename T>
  static Buffer Of(const std::vector<T>& host, std::vector<int64_t> shape, aclDataType dtype) {
    Buffer b;
    b.bytes = std::max<size_t>(host.size() * sizeof(T), 1);
    aclrtMalloc(&b.data, b.bytes, ACL_MEM_MALLOC_HUGE_FIRST);
    if (!host.empty()) aclrtMemcpy(b.data, b.bytes, host.data(), host.size() * sizeof(T), ACL_MEMCPY_HOST_TO_DEVICE);
    std::vector<int64_t> strides(shape.size(), 1);
    for (int i = static_cast<int>(shape.size()) - 2; i >= 0; --i) strides[i] = strides[i + 1] * shape[i + 1];
    b.tensor = aclCreateTensor(shape.data(), shape.size(), dtype, strides.data(), 0, ACL_FORMAT_ND, shape.data(),
                               shape.size(), b.data);
    return b;
  }
  template <typename T>
  std::vector<T> Read() const {
    std::vector<T> host(bytes / sizeof(T));
    aclrtMemcpy(host.data(), host.size() * sizeof(T), data, host.size() * sizeof(T), ACL_MEMCPY_DEVICE_TO_HOST);
    return host;
  }
  void Release() {
    aclDestroyTensor(tensor);
    aclrtFree(data);
  }
};

// The communicators of the sample: ep_groups[tp][ep] and tp_groups[ep][tp] (TP 2 only).
struct World {
  std::vector<std::vector<HcclComm>> ep_groups;
  std::vector<std::vector<HcclComm>> tp_groups;
  std::vector<std::vector<HcclComm>> barrier_groups;  // a second EP group per TP index, for the barrier

  static World Make(const Config& c, bool with_barrier_groups = false) {
    World w;
    for (int tp = 0; tp < c.tp; ++tp) {
      std::vector<int32_t> devices;
      for (int ep = 0; ep < c.ep; ++ep) devices.push_back(ep * c.tp + tp);
      w.ep_groups.emplace_back(c.ep);
      HcclCommInitAll(static_cast<uint32_t>(c.ep), devices.data(), w.ep_groups.back().data());
      if (with_barrier_groups) {
        w.barrier_groups.emplace_back(c.ep);
        HcclCommInitAll(static_cast<uint32_t>(c.ep), devices.data(), w.barrier_groups.back().data());
      }
    }
    if (c.tp == 2) {
      for (int ep = 0; ep < c.ep; ++ep) {
        std::vector<int32_t> devices{ep * 2, ep * 2 + 1};
        w.tp_groups.emplace_back(2);
        HcclCommInitAll(2, devices.data(), w.tp_groups.back().data());
      }
    }
    return w;
  }
  std::string EpName(int tp, int ep) const { return Name(ep_groups[tp][ep]); }
  std::string TpName(int tp, int ep) const { return tp_groups.empty() ? "" : Name(tp_groups[ep][tp]); }
  std::string BarrierName(int tp, int ep) const { return Name(barrier_groups[tp][ep]); }
  static std::string Name(HcclComm comm) {
    char name[COMM_NAME_MAX_LENGTH] = {0};
    HcclGetCommName(comm, name);
    return name;
  }
};

// One rank's dispatch outputs and combine input, sized as the sample sizes them.
struct RankTensors {
  Buffer x, expert_ids, expert_scales, mask, smooth, expand_x, dynamic_scales, assist, token_nums, ep_counts, tp_counts,
      expand_scales, expert_out, x_out;

  RankTensors(const Config& c, const RankInputs& in, int ep_rank) {
    const int64_t a = c.A(ep_rank);
    const int64_t local = c.LocalExperts(ep_rank);
    x = Buffer::Of(in.x, {c.bs, c.h}, c.dtype);
    expert_ids = Buffer::Of(in.expert_ids, {c.bs, c.k}, ACL_INT32);
    expert_scales = Buffer::Of(in.expert_scales, {c.bs, c.k}, ACL_FLOAT);
    mask = Buffer::Of(in.active, {c.bs}, ACL_BOOL);
    smooth = Buffer::Of(in.smooth, {c.SharedCopies() + c.moe_experts, c.h}, ACL_FLOAT);
    expand_x = c.quant_mode == 2
                   ? Buffer::Of(std::vector<int8_t>(static_cast<size_t>(c.tp * a * c.h)), {c.tp * a, c.h}, ACL_INT8)
                   : Buffer::Of(std::vector<uint16_t>(static_cast<size_t>(c.tp * a * c.h)), {c.tp * a, c.h}, c.dtype);
    dynamic_scales = Buffer::Of(std::vector<float>(static_cast<size_t>(c.tp * a)), {c.tp * a}, ACL_FLOAT);
    assist = Buffer::Of(std::vector<int32_t>(static_cast<size_t>(a * 128)), {a * 128}, ACL_INT32);
    token_nums = Buffer::Of(std::vector<int64_t>(static_cast<size_t>(local)), {local}, ACL_INT64);
    ep_counts =
        Buffer::Of(std::vector<int32_t>(static_cast<size_t>(c.tp * local * c.ep)), {c.tp * local * c.ep}, ACL_INT32);
    tp_counts = Buffer::Of(std::vector<int32_t>(static_cast<size_t>(c.tp * local)), {c.tp * local}, ACL_INT32);
    expand_scales = Buffer::Of(std::vector<float>(static_cast<size_t>(a)), {a}, ACL_FLOAT);
    expert_out = Buffer::Of(std::vector<uint16_t>(static_cast<size_t>(c.tp * a * c.h)), {c.tp * a, c.h}, c.dtype);
    x_out = Buffer::Of(std::vector<uint16_t>(static_cast<size_t>(c.bs * c.h)), {c.bs, c.h}, c.dtype);
  }
  void Release() {
    for (Buffer* b : {&x, &expert_ids, &expert_scales, &mask, &smooth, &expand_x, &dynamic_scales, &assist, &token_nums,
                      &ep_counts, &tp_counts, &expand_scales, &expert_out, &x_out}) {
      b->Release();
    }
  }
};

struct RankId {
  int device, ep_rank, tp_rank;
};

// Stage 1 and 2 of dispatch on `stream` for rank r of groups `ep` and `tp` (names).
inline int EnqueueDispatch(const Config& c, const std::string& ep, const std::string& tp, const RankId& r,
                           RankTensors& t, aclrtStream stream) {
  uint64_t workspace_size = 0;
  aclOpExecutor* executor = nullptr;
  int status = aclnnMoeDistributeDispatchV2GetWorkspaceSize(
      t.x.tensor, t.expert_ids.tensor, c.smooth ? t.smooth.tensor : nullptr, c.mask ? t.mask.tensor : nullptr,
      t.expert_scales.tensor, ep.c_str(), c.ep, r.ep_rank, c.moe_experts, tp.c_str(), c.tp, r.tp_rank, 0,
      c.shared_experts, c.shared_ranks, c.quant_mode, c.GlobalBs(), c.token_nums_type, nullptr, t.expand_x.tensor,
      t.dynamic_scales.tensor, t.assist.tensor, t.token_nums.tensor, t.ep_counts.tensor, t.tp_counts.tensor,
      t.expand_scales.tensor, &workspace_size, &executor);
  if (status != 0) return status;
  return aclnnMoeDistributeDispatchV2(nullptr, workspace_size, executor, stream);
}

inline int EnqueueCombine(const Config& c, const std::string& ep, const std::string& tp, const RankId& r,
                          RankTensors& t, aclrtStream stream) {
  uint64_t workspace_size = 0;
  aclOpExecutor* executor = nullptr;
  int status = aclnnMoeDistributeCombineV2GetWorkspaceSize(
      t.expert_out.tensor, t.expert_ids.tensor, t.assist.tensor, t.ep_counts.tensor, t.expert_scales.tensor,
      t.tp_counts.tensor, c.mask ? t.mask.tensor : nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, ep.c_str(),
      c.ep, r.ep_rank, c.moe_experts, tp.c_str(), c.tp, r.tp_rank, 0, c.shared_experts, c.shared_ranks, c.GlobalBs(), 0,
      0, 1, nullptr, t.x_out.tensor, &workspace_size, &executor);
  if (status != 0) return status;
  return aclnnMoeDistributeCombineV2(nullptr, workspace_size, executor, stream);
}

inline int EnqueueDispatch(const Config& c, const World& w, const RankId& r, RankTensors& t, aclrtStream stream) {
  return EnqueueDispatch(c, w.EpName(r.tp_rank, r.ep_rank), w.TpName(r.tp_rank, r.ep_rank), r, t, stream);
}

inline int EnqueueCombine(const Config& c, const World& w, const RankId& r, RankTensors& t, aclrtStream stream) {
  return EnqueueCombine(c, w.EpName(r.tp_rank, r.ep_rank), w.TpName(r.tp_rank, r.ep_rank), r, t, stream);
}

// The expert step of one rank, on the host: rows of local expert j are located by
// expertTokenNums, dequantized if needed, multiplied by the expert's factor (this TP rank's
// share of it), rounded to x's dtype into expert_out. Returns the number of rows.
inline int64_t ApplyExperts(const Config& c, const RankId& r, RankTensors& t) {
  const int local = c.LocalExperts(r.ep_rank);
  const auto token_nums = t.token_nums.Read<int64_t>();
  const auto scales = t.dynamic_scales.Read<float>();
  std::vector<uint16_t> out(t.expert_out.bytes / 2, 0);
  std::vector<uint16_t> half_in;
  std::vector<int8_t> int8_in;
  if (c.quant_mode == 2)
    int8_in = t.expand_x.Read<int8_t>();
  else
    half_in = t.expand_x.Read<uint16_t>();
  int64_t begin = 0;
  for (int j = 0; j < local; ++j) {
    const int64_t end = c.token_nums_type == 0 ? token_nums[j] : begin + token_nums[j];
    float factor;
    if (r.ep_rank < c.shared_ranks) {
      factor = SharedFactor(r.ep_rank / (c.shared_ranks / std::max(c.shared_experts, 1)));
    } else {
      factor = ExpertFactor((r.ep_rank - c.shared_ranks) * local + j);
    }
    factor *= TpShare(c.tp, r.tp_rank);
    for (int64_t row = begin; row < end; ++row) {
      for (int e = 0; e < c.h; ++e) {
        const size_t i = static_cast<size_t>(row * c.h + e);
        const float in =
            c.quant_mode == 2 ? static_cast<float>(int8_in[i]) * scales[row] : ToFloat(half_in[i], c.dtype);
        out[i] = FromFloat(in * factor, c.dtype);
      }
    }
    begin = end;
  }
  aclrtMemcpy(t.expert_out.data, t.expert_out.bytes, out.data(), out.size() * 2, ACL_MEMCPY_HOST_TO_DEVICE);
  return begin;
}

// Compares one rank's xOut with the reference; returns the number of wrong elements and the
// largest error seen, and describes the first wrong one.
struct Comparison {
  int64_t wrong = 0;
  double largest_error = 0;
  std::string first;
};

inline Comparison Compare(const Config& c, const RankInputs& in, RankTensors& t, int device) {
  Comparison result;
  const auto out = t.x_out.Read<uint16_t>();
  std::vector<double> value, bound;
  for (int token = 0; token < c.bs; ++token) {
    Reference(c, in, token, &value, &bound);
    for (int e = 0; e < c.h; ++e) {
      const double got = ToFloat(out[static_cast<size_t>(token * c.h + e)], c.dtype);
      const double error = std::fabs(got - value[e]);
      result.largest_error = std::max(result.largest_error, error);
      if (!(error <= bound[e])) {
        if (result.wrong++ == 0) {
          result.first = "device " + std::to_string(device) + " token " + std::to_string(token) + " element " +
                         std::to_string(e) + ": got " + std::to_string(got) + ", expected " + std::to_string(value[e]) +
                         " +- " + std::to_string(bound[e]);
        }
      }
    }
  }
  return result;
}

}  // namespace distbarrier::testing::moe
