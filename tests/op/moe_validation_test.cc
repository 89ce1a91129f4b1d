// Every check of aclnnMoeDistributeDispatchV2GetWorkspaceSize and
// aclnnMoeDistributeCombineV2GetWorkspaceSize (contract section 9), table-driven: each row
// changes one argument of a valid call and names the code and the words the message must
// hold (the parameter and its value). Then the second stage's checks.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>
#include <string>

#include "aclnnop/aclnn_distribute_barrier.h"
#include "moe_world.h"

namespace distbarrier::testing::moe {
namespace {

using ::testing::HasSubstr;

constexpr int kNull = ACLNN_ERR_PARAM_NULLPTR;
constexpr int kInvalid = ACLNN_ERR_PARAM_INVALID;
constexpr int kRange = ACLNN_ERR_INNER_TILING_ERROR;

// The valid world: EP 2 x TP 2 on devices 0..3, this thread on device 0 (EP rank 0, TP rank 0),
// Bs 4, H 1024, K 2, moeExpertNum 2 (localExpertNum 1), A = 8.
Config ValidConfig() {
  Config c;
  c.ep = 2;
  c.tp = 2;
  c.moe_experts = 2;
  c.k = 2;
  c.bs = 4;
  return c;
}

Buffer Tensor(aclDataType dtype, std::vector<int64_t> shape, aclFormat format = ACL_FORMAT_ND) {
  int64_t elements = 1;
  for (int64_t dim : shape) elements *= dim;
  Buffer b = Buffer::Of(std::vector<uint64_t>(static_cast<size_t>(std::max<int64_t>(elements, 1))), shape, dtype);
  if (format != ACL_FORMAT_ND) {
    aclDestroyTensor(b.tensor);
    std::vector<int64_t> strides(shape.size(), 1);
    for (int i = static_cast<int>(shape.size()) - 2; i >= 0; --i) strides[i] = strides[i + 1] * shape[i + 1];
    b.tensor = aclCreateTensor(shape.data(), shape.size(), dtype, strides.data(), 0, format, shape.data(), shape.size(),
                               b.data);
  }
  return b;
}

class MoeValidationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(aclrtSetDevice(0), 0);
    world_ = World::Make(ValidConfig());
    ep_name_ = world_.EpName(0, 0);
    tp_name_ = world_.TpName(0, 0);
  }
  void TearDown() override { aclFinalize(); }

  World world_;
  std::string ep_name_, tp_name_;
};

// All arguments of one dispatch stage-1 call; starts valid.
struct DispatchCall {
  const aclTensor *x, *expert_ids, *scales = nullptr, *mask = nullptr, *expert_scales;
  const char* group_ep;
  int64_t ep_world_size = 2, ep_rank_id = 0, moe_expert_num = 2;
  const char* group_tp;
  int64_t tp_world_size = 2, tp_rank_id = 0, expert_shard_type = 0, shared_expert_num = 0, shared_expert_rank_num = 0,
          quant_mode = 0, global_bs = 0, expert_token_nums_type = 1;
  const char* comm_alg = nullptr;
  aclTensor *expand_x, *dynamic_scales, *assist, *token_nums, *ep_counts, *tp_counts, *expand_scales;
  uint64_t workspace_size = 0;
  uint64_t* workspace_size_out = &workspace_size;
  aclOpExecutor* executor = nullptr;
  aclOpExecutor** executor_out = &executor;

  int Call() {
    return aclnnMoeDistributeDispatchV2GetWorkspaceSize(
        x, expert_ids, scales, mask, expert_scales, group_ep, ep_world_size, ep_rank_id, moe_expert_num, group_tp,
        tp_world_size, tp_rank_id, expert_shard_type, shared_expert_num, shared_expert_rank_num, quant_mode, global_bs,
        expert_token_nums_type, comm_alg, expand_x, dynamic_scales, assist, token_nums, ep_counts, tp_counts,
        expand_scales, workspace_size_out, executor_out);
  }
};

// Tensors for the valid call (and wrong ones the rows swap in).
struct DispatchTensors {
  Buffer x = Tensor(ACL_BF16, {4, 1024});
  Buffer ids = Tensor(ACL_INT32, {4, 2});
  Buffer weights = Tensor(ACL_FLOAT, {4, 2});
  Buffer expand_x = Tensor(ACL_BF16, {16, 1024});
  Buffer dynamic_scales = Tensor(ACL_FLOAT, {16});
  Buffer assist = Tensor(ACL_INT32, {8 * 128});
  Buffer token_nums = Tensor(ACL_INT64, {1});
  Buffer ep_counts = Tensor(ACL_INT32, {4});
  Buffer tp_counts = Tensor(ACL_INT32, {2});
  Buffer expand_scales = Tensor(ACL_FLOAT, {8});

  DispatchCall Valid(const std::string& ep, const std::string& tp) const {
    DispatchCall call;
    call.x = x.tensor;
    call.expert_ids = ids.tensor;
    call.expert_scales = weights.tensor;
    call.group_ep = ep.c_str();
    call.group_tp = tp.c_str();
    call.expand_x = expand_x.tensor;
    call.dynamic_scales = dynamic_scales.tensor;
    call.assist = assist.tensor;
    call.token_nums = token_nums.tensor;
    call.ep_counts = ep_counts.tensor;
    call.tp_counts = tp_counts.tensor;
    call.expand_scales = expand_scales.tensor;
    return call;
  }
};

struct DispatchCase {
  const char* name;
  std::function<void(DispatchCall&)> change;
  int code;
  std::vector<std::string> message;  // words the message must hold
};

aclTensor* T(aclDataType dtype, std::vector<int64_t> shape, aclFormat format = ACL_FORMAT_ND) {
  return Tensor(dtype, std::move(shape), format).tensor;  // freed by aclFinalize
}

const std::string kLongName(130, 'g');

std::vector<DispatchCase> DispatchCases() {
  return {
      // Null required arguments: 161001.
      {"x null", [](DispatchCall& c) { c.x = nullptr; }, kNull, {"x is null"}},
      {"expertIds null", [](DispatchCall& c) { c.expert_ids = nullptr; }, kNull, {"expertIds is null"}},
      {"groupEp null", [](DispatchCall& c) { c.group_ep = nullptr; }, kNull, {"groupEp is null"}},
      {"expandXOut null", [](DispatchCall& c) { c.expand_x = nullptr; }, kNull, {"expandXOut is null"}},
      {"assistInfo null", [](DispatchCall& c) { c.assist = nullptr; }, kNull, {"assistInfoForCombineOut is null"}},
      {"expertTokenNums null", [](DispatchCall& c) { c.token_nums = nullptr; }, kNull, {"expertTokenNumsOut is null"}},
      {"epRecvCounts null", [](DispatchCall& c) { c.ep_counts = nullptr; }, kNull, {"epRecvCountsOut is null"}},
      {"workspaceSize null", [](DispatchCall& c) { c.workspace_size_out = nullptr; }, kNull, {"workspaceSize is null"}},
      {"executor null", [](DispatchCall& c) { c.executor_out = nullptr; }, kNull, {"executor is null"}},
      {"groupTp null with TP 2", [](DispatchCall& c) { c.group_tp = nullptr; }, kNull, {"groupTp is null"}},
      {"tpRecvCounts null with TP 2",
       [](DispatchCall& c) { c.tp_counts = nullptr; },
       kNull,
       {"tpRecvCountsOut is null"}},
      {"dynamicScales null with quantMode 2",
       [](DispatchCall& c) {
         c.quant_mode = 2;
         c.dynamic_scales = nullptr;
       },
       kNull,
       {"dynamicScalesOut is null"}},
      // Values out of range: 561002.
      {"epWorldSize 1", [](DispatchCall& c) { c.ep_world_size = 1; }, kRange, {"epWorldSize 1", "[2, 768]"}},
      {"epWorldSize 769", [](DispatchCall& c) { c.ep_world_size = 769; }, kRange, {"epWorldSize 769"}},
      {"epRankId 2", [](DispatchCall& c) { c.ep_rank_id = 2; }, kRange, {"epRankId 2"}},
      {"epRankId -1", [](DispatchCall& c) { c.ep_rank_id = -1; }, kRange, {"epRankId -1"}},
      {"tpWorldSize 3", [](DispatchCall& c) { c.tp_world_size = 3; }, kRange, {"tpWorldSize 3"}},
      {"tpRankId 2", [](DispatchCall& c) { c.tp_rank_id = 2; }, kRange, {"tpRankId 2"}},
      {"expertShardType 1", [](DispatchCall& c) { c.expert_shard_type = 1; }, kRange, {"expertShardType 1"}},
      {"sharedExpertNum 5", [](DispatchCall& c) { c.shared_expert_num = 5; }, kRange, {"sharedExpertNum 5", "[0, 4]"}},
      {"sharedExpertRankNum 2",
       [](DispatchCall& c) { c.shared_expert_rank_num = 2; },
       kRange,
       {"sharedExpertRankNum 2"}},
      {"sharedExpertRankNum not a multiple",
       [](DispatchCall& c) {
         c.shared_expert_rank_num = 1;
         c.shared_expert_num = 2;
         c.moe_expert_num = 1;
       },
       kRange,
       {"sharedExpertRankNum 1 is not a multiple of sharedExpertNum 2"}},
      {"moeExpertNum 0", [](DispatchCall& c) { c.moe_expert_num = 0; }, kRange, {"moeExpertNum 0"}},
      {"moeExpertNum 1025", [](DispatchCall& c) { c.moe_expert_num = 1025; }, kRange, {"moeExpertNum 1025"}},
      {"moeExpertNum not divisible",
       [](DispatchCall& c) { c.moe_expert_num = 3; },
       kRange,
       {"moeExpertNum 3 is not divisible"}},
      {"TP 2 with localExpertNum 2",
       [](DispatchCall& c) { c.moe_expert_num = 4; },
       kRange,
       {"tpWorldSize 2 needs localExpertNum 1"}},
      {"groupEp empty", [](DispatchCall& c) { c.group_ep = ""; }, kRange, {"groupEp is an empty string"}},
      {"groupEp 130 bytes", [](DispatchCall& c) { c.group_ep = kLongName.c_str(); }, kRange, {"groupEp", "128"}},
      {"groupTp empty", [](DispatchCall& c) { c.group_tp = ""; }, kRange, {"groupTp is an empty string"}},
      {"groupTp equals groupEp",
       [](DispatchCall& c) { c.group_tp = c.group_ep; },
       kRange,
       {"groupEp and groupTp are both"}},
      {"commAlg set", [](DispatchCall& c) { c.comm_alg = "fullmesh"; }, kRange, {"commAlg 'fullmesh'"}},
      {"quantMode 1", [](DispatchCall& c) { c.quant_mode = 1; }, kRange, {"quantMode 1"}},
      {"expertTokenNumsType 2",
       [](DispatchCall& c) { c.expert_token_nums_type = 2; },
       kRange,
       {"expertTokenNumsType 2"}},
      // Wrong dtype or format: 161002.
      {"x FLOAT",
       [](DispatchCall& c) {
         c.x = T(ACL_FLOAT, {4, 1024});
       },
       kInvalid,
       {"x dtype is FLOAT"}},
      {"x NCHW",
       [](DispatchCall& c) {
         c.x = T(ACL_BF16, {4, 1024}, ACL_FORMAT_NCHW);
       },
       kInvalid,
       {"x format is NCHW"}},
      {"expertIds INT64",
       [](DispatchCall& c) {
         c.expert_ids = T(ACL_INT64, {4, 2});
       },
       kInvalid,
       {"expertIds dtype is INT64"}},
      {"scales INT32",
       [](DispatchCall& c) {
         c.scales = T(ACL_INT32, {2, 1024});
       },
       kInvalid,
       {"scalesOptional dtype is INT32"}},
      {"xActiveMask INT32",
       [](DispatchCall& c) { c.mask = T(ACL_INT32, {4}); },
       kInvalid,
       {"xActiveMaskOptional dtype is INT32"}},
      {"expertScales FLOAT16",
       [](DispatchCall& c) {
         c.expert_scales = T(ACL_FLOAT16, {4, 2});
       },
       kInvalid,
       {"expertScalesOptional dtype is FLOAT16"}},
      {"expandX FLOAT16 for BF16 x",
       [](DispatchCall& c) {
         c.expand_x = T(ACL_FLOAT16, {16, 1024});
       },
       kInvalid,
       {"expandXOut dtype is FLOAT16", "expected BF16"}},
      {"expandX BF16 with quantMode 2",
       [](DispatchCall& c) { c.quant_mode = 2; },
       kInvalid,
       {"expandXOut dtype is BF16", "expected INT8"}},
      {"dynamicScales FLOAT16",
       [](DispatchCall& c) { c.dynamic_scales = T(ACL_FLOAT16, {16}); },
       kInvalid,
       {"dynamicScalesOut dtype is FLOAT16"}},
      {"assistInfo INT64",
       [](DispatchCall& c) { c.assist = T(ACL_INT64, {1024}); },
       kInvalid,
       {"assistInfoForCombineOut dtype is INT64"}},
      {"expertTokenNums INT32",
       [](DispatchCall& c) { c.token_nums = T(ACL_INT32, {1}); },
       kInvalid,
       {"expertTokenNumsOut dtype is INT32"}},
      {"epRecvCounts INT64",
       [](DispatchCall& c) { c.ep_counts = T(ACL_INT64, {4}); },
       kInvalid,
       {"epRecvCountsOut dtype is INT64"}},
      {"tpRecvCounts INT64",
       [](DispatchCall& c) { c.tp_counts = T(ACL_INT64, {2}); },
       kInvalid,
       {"tpRecvCountsOut dtype is INT64"}},
      {"expandScales FLOAT16",
       [](DispatchCall& c) { c.expand_scales = T(ACL_FLOAT16, {8}); },
       kInvalid,
       {"expandScalesOut dtype is FLOAT16"}},
      // Shapes and sizes out of range: 561002.
      {"x 1-D", [](DispatchCall& c) { c.x = T(ACL_BF16, {4096}); }, kRange, {"x shape is (4096)"}},
      {"H 1000",
       [](DispatchCall& c) {
         c.x = T(ACL_BF16, {4, 1000});
       },
       kRange,
       {"H 1000", "[1024, 8192]"}},
      {"H 8200",
       [](DispatchCall& c) {
         c.x = T(ACL_BF16, {4, 8200});
       },
       kRange,
       {"H 8200"}},
      {"Bs 513",
       [](DispatchCall& c) {
         c.x = T(ACL_BF16, {513, 1024});
         c.expert_ids = T(ACL_INT32, {513, 2});
       },
       kRange,
       {"Bs 513"}},
      {"K 17",
       [](DispatchCall& c) {
         c.expert_ids = T(ACL_INT32, {4, 17});
       },
       kRange,
       {"K 17", "(0, 16]"}},
      {"K above moeExpertNum",
       [](DispatchCall& c) {
         c.expert_ids = T(ACL_INT32, {4, 3});
       },
       kRange,
       {"K 3 (expertIds dim 1) exceeds moeExpertNum 2"}},
      {"globalBs 7", [](DispatchCall& c) { c.global_bs = 7; }, kRange, {"globalBs 7"}},
      {"globalBs below Bs * ep", [](DispatchCall& c) { c.global_bs = 6; }, kRange, {"globalBs 6"}},
      {"expertIds rows",
       [](DispatchCall& c) {
         c.expert_ids = T(ACL_INT32, {5, 2});
       },
       kRange,
       {"expertIds shape is (5, 2)"}},
      {"scales shape",
       [](DispatchCall& c) {
         c.quant_mode = 2;
         c.expand_x = T(ACL_INT8, {16, 1024});
         c.scales = T(ACL_FLOAT, {3, 1024});
       },
       kRange,
       {"scalesOptional shape is (3, 1024)"}},
      {"xActiveMask shape",
       [](DispatchCall& c) { c.mask = T(ACL_BOOL, {5}); },
       kRange,
       {"xActiveMaskOptional shape is (5)"}},
      {"expertScales shape",
       [](DispatchCall& c) {
         c.expert_scales = T(ACL_FLOAT, {4, 3});
       },
       kRange,
       {"expertScalesOptional shape is (4, 3)"}},
      {"expandX too few rows",
       [](DispatchCall& c) {
         c.expand_x = T(ACL_BF16, {15, 1024});
       },
       kRange,
       {"expandXOut shape is (15, 1024)", ">= 16"}},
      {"dynamicScales too short",
       [](DispatchCall& c) {
         c.quant_mode = 2;
         c.expand_x = T(ACL_INT8, {16, 1024});
         c.dynamic_scales = T(ACL_FLOAT, {15});
       },
       kRange,
       {"dynamicScalesOut shape is (15)"}},
      {"assistInfo too short",
       [](DispatchCall& c) { c.assist = T(ACL_INT32, {63}); },
       kRange,
       {"assistInfoForCombineOut shape is (63)", "at least 64"}},
      {"expertTokenNums empty",
       [](DispatchCall& c) { c.token_nums = T(ACL_INT64, {0}); },
       kRange,
       {"expertTokenNumsOut shape is (0)"}},
      {"epRecvCounts too short",
       [](DispatchCall& c) { c.ep_counts = T(ACL_INT32, {3}); },
       kRange,
       {"epRecvCountsOut shape is (3)"}},
      {"tpRecvCounts too short",
       [](DispatchCall& c) { c.tp_counts = T(ACL_INT32, {1}); },
       kRange,
       {"tpRecvCountsOut shape is (1)"}},
      {"expandScales too short",
       [](DispatchCall& c) { c.expand_scales = T(ACL_FLOAT, {7}); },
       kRange,
       {"expandScalesOut shape is (7)"}},
      // The caller's ranks: 161002 for unknown groups, 561002 for disagreeing sizes and ids.
      {"groupEp unknown",
       [](DispatchCall& c) { c.group_ep = "no_such_group"; },
       kInvalid,
       {"groupEp", "'no_such_group' is not a communicator"}},
      {"groupTp unknown",
       [](DispatchCall& c) { c.group_tp = "no_such_group"; },
       kInvalid,
       {"groupTp", "'no_such_group' is not a communicator"}},
      {"epWorldSize differs from the group",
       [](DispatchCall& c) {
         c.ep_world_size = 4;
         c.moe_expert_num = 4;
         c.expand_x = T(ACL_BF16, {32, 1024});
         c.ep_counts = T(ACL_INT32, {8});
         c.expand_scales = T(ACL_FLOAT, {16});
       },
       kRange,
       {"epWorldSize 4 differs from groupEp"}},
      {"epRankId differs from the caller's rank",
       [](DispatchCall& c) { c.ep_rank_id = 1; },
       kRange,
       {"epRankId 1 differs from the calling device's rank 0"}},
      {"tpRankId differs from the caller's rank",
       [](DispatchCall& c) { c.tp_rank_id = 1; },
       kRange,
       {"tpRankId 1 differs from the calling device's rank 0"}},
  };
}

TEST_F(MoeValidationTest, DispatchValidCallSucceeds) {
  DispatchTensors t;
  DispatchCall call = t.Valid(ep_name_, tp_name_);
  EXPECT_EQ(call.Call(), ACLNN_SUCCESS) << aclGetRecentErrMsg();
  EXPECT_EQ(call.workspace_size, 0u);
  EXPECT_NE(call.executor, nullptr);
}

TEST_F(MoeValidationTest, DispatchEveryCheckReturnsItsCodeAndNamesTheParameter) {
  DispatchTensors t;
  for (const DispatchCase& row : DispatchCases()) {
    SCOPED_TRACE(row.name);
    DispatchCall call = t.Valid(ep_name_, tp_name_);
    row.change(call);
    EXPECT_EQ(call.Call(), row.code) << aclGetRecentErrMsg();
    for (const std::string& words : row.message) EXPECT_THAT(aclGetRecentErrMsg(), HasSubstr(words));
    EXPECT_EQ(call.executor, nullptr);
  }
}

// --- combine ---

struct CombineCall {
  const aclTensor *expand_x, *expert_ids, *assist, *ep_counts, *expert_scales,
      *tp_counts = nullptr, *mask = nullptr, *activation_scale = nullptr, *weight_scale = nullptr,
      *group_list = nullptr, *expand_scales = nullptr, *shared_x = nullptr;
  const char* group_ep;
  int64_t ep_world_size = 2, ep_rank_id = 0, moe_expert_num = 2;
  const char* group_tp;
  int64_t tp_world_size = 2, tp_rank_id = 0, expert_shard_type = 0, shared_expert_num = 0, shared_expert_rank_num = 0,
          global_bs = 0, out_dtype = 0, comm_quant_mode = 0, group_list_type = 1;
  const char* comm_alg = nullptr;
  aclTensor* x_out;
  uint64_t workspace_size = 0;
  uint64_t* workspace_size_out = &workspace_size;
  aclOpExecutor* executor = nullptr;
  aclOpExecutor** executor_out = &executor;

  int Call() {
    return aclnnMoeDistributeCombineV2GetWorkspaceSize(
        expand_x, expert_ids, assist, ep_counts, expert_scales, tp_counts, mask, activation_scale, weight_scale,
        group_list, expand_scales, shared_x, group_ep, ep_world_size, ep_rank_id, moe_expert_num, group_tp,
        tp_world_size, tp_rank_id, expert_shard_type, shared_expert_num, shared_expert_rank_num, global_bs, out_dtype,
        comm_quant_mode, group_list_type, comm_alg, x_out, workspace_size_out, executor_out);
  }
};

struct CombineTensors {
  Buffer expand_x = Tensor(ACL_BF16, {16, 1024});
  Buffer ids = Tensor(ACL_INT32, {4, 2});
  Buffer assist = Tensor(ACL_INT32, {8 * 128});
  Buffer ep_counts = Tensor(ACL_INT32, {4});
  Buffer weights = Tensor(ACL_FLOAT, {4, 2});
  Buffer x_out = Tensor(ACL_BF16, {4, 1024});

  CombineCall Valid(const std::string& ep, const std::string& tp) const {
    CombineCall call;
    call.expand_x = expand_x.tensor;
    call.expert_ids = ids.tensor;
    call.assist = assist.tensor;
    call.ep_counts = ep_counts.tensor;
    call.expert_scales = weights.tensor;
    call.group_ep = ep.c_str();
    call.group_tp = tp.c_str();
    call.x_out = x_out.tensor;
    return call;
  }
};

struct CombineCase {
  const char* name;
  std::function<void(CombineCall&)> change;
  int code;
  std::vector<std::string> message;
};

std::vector<CombineCase> CombineCases() {
  return {
      {"expandX null", [](CombineCall& c) { c.expand_x = nullptr; }, kNull, {"expandX is null"}},
      {"expertIds null", [](CombineCall& c) { c.expert_ids = nullptr; }, kNull, {"expertIds is null"}},
      {"assistInfo null", [](CombineCall& c) { c.assist = nullptr; }, kNull, {"assistInfoForCombine is null"}},
      {"epSendCounts null", [](CombineCall& c) { c.ep_counts = nullptr; }, kNull, {"epSendCounts is null"}},
      {"expertScales null", [](CombineCall& c) { c.expert_scales = nullptr; }, kNull, {"expertScales is null"}},
      {"groupEp null", [](CombineCall& c) { c.group_ep = nullptr; }, kNull, {"groupEp is null"}},
      {"xOut null", [](CombineCall& c) { c.x_out = nullptr; }, kNull, {"xOut is null"}},
      {"workspaceSize null", [](CombineCall& c) { c.workspace_size_out = nullptr; }, kNull, {"workspaceSize is null"}},
      {"executor null", [](CombineCall& c) { c.executor_out = nullptr; }, kNull, {"executor is null"}},
      {"groupTp null with TP 2", [](CombineCall& c) { c.group_tp = nullptr; }, kNull, {"groupTp is null"}},
      {"epWorldSize 769", [](CombineCall& c) { c.ep_world_size = 769; }, kRange, {"epWorldSize 769"}},
      {"tpWorldSize 4", [](CombineCall& c) { c.tp_world_size = 4; }, kRange, {"tpWorldSize 4"}},
      {"moeExpertNum 1025", [](CombineCall& c) { c.moe_expert_num = 1025; }, kRange, {"moeExpertNum 1025"}},
      {"sharedExpertRankNum -1",
       [](CombineCall& c) { c.shared_expert_rank_num = -1; },
       kRange,
       {"sharedExpertRankNum -1"}},
      {"outDtype 1", [](CombineCall& c) { c.out_dtype = 1; }, kRange, {"outDtype 1"}},
      {"commQuantMode 2", [](CombineCall& c) { c.comm_quant_mode = 2; }, kRange, {"commQuantMode 2"}},
      {"groupListType 2", [](CombineCall& c) { c.group_list_type = 2; }, kRange, {"groupListType 2"}},
      {"activationScale given",
       [](CombineCall& c) { c.activation_scale = T(ACL_FLOAT, {16}); },
       kRange,
       {"activationScaleOptional is reserved"}},
      {"weightScale given",
       [](CombineCall& c) { c.weight_scale = T(ACL_FLOAT, {16}); },
       kRange,
       {"weightScaleOptional is reserved"}},
      {"groupList given",
       [](CombineCall& c) { c.group_list = T(ACL_INT64, {1}); },
       kRange,
       {"groupListOptional is reserved"}},
      {"commAlg set", [](CombineCall& c) { c.comm_alg = "x"; }, kRange, {"commAlg 'x'"}},
      {"expandX FLOAT",
       [](CombineCall& c) {
         c.expand_x = T(ACL_FLOAT, {16, 1024});
       },
       kInvalid,
       {"expandX dtype is FLOAT"}},
      {"expandX FRACTAL_NZ",
       [](CombineCall& c) {
         c.expand_x = T(ACL_BF16, {16, 1024}, ACL_FORMAT_FRACTAL_NZ);
       },
       kInvalid,
       {"expandX format is FRACTAL_NZ"}},
      {"xOut FLOAT16 for BF16 expandX",
       [](CombineCall& c) {
         c.x_out = T(ACL_FLOAT16, {4, 1024});
       },
       kInvalid,
       {"xOut dtype is FLOAT16", "expected BF16"}},
      {"expertScales INT32",
       [](CombineCall& c) {
         c.expert_scales = T(ACL_INT32, {4, 2});
       },
       kInvalid,
       {"expertScales dtype is INT32"}},
      {"epSendCounts INT64",
       [](CombineCall& c) { c.ep_counts = T(ACL_INT64, {4}); },
       kInvalid,
       {"epSendCounts dtype is INT64"}},
      {"tpSendCounts FLOAT",
       [](CombineCall& c) { c.tp_counts = T(ACL_FLOAT, {2}); },
       kInvalid,
       {"tpSendCountsOptional dtype is FLOAT"}},
      {"xActiveMask INT8",
       [](CombineCall& c) { c.mask = T(ACL_INT8, {4}); },
       kInvalid,
       {"xActiveMaskOptional dtype is INT8"}},
      {"sharedExpertX FLOAT16",
       [](CombineCall& c) {
         c.shared_x = T(ACL_FLOAT16, {4, 1024});
       },
       kInvalid,
       {"sharedExpertXOptional dtype is FLOAT16"}},
      {"H 512",
       [](CombineCall& c) {
         c.x_out = T(ACL_BF16, {4, 512});
       },
       kRange,
       {"H 512"}},
      {"expertScales shape",
       [](CombineCall& c) {
         c.expert_scales = T(ACL_FLOAT, {4, 1});
       },
       kRange,
       {"expertScales shape is (4, 1)"}},
      {"expandX too few rows",
       [](CombineCall& c) {
         c.expand_x = T(ACL_BF16, {8, 1024});
       },
       kRange,
       {"expandX shape is (8, 1024)"}},
      {"assistInfo too short",
       [](CombineCall& c) { c.assist = T(ACL_INT32, {10}); },
       kRange,
       {"assistInfoForCombine shape is (10)"}},
      {"epSendCounts too short",
       [](CombineCall& c) { c.ep_counts = T(ACL_INT32, {2}); },
       kRange,
       {"epSendCounts shape is (2)"}},
      {"tpSendCounts too short",
       [](CombineCall& c) { c.tp_counts = T(ACL_INT32, {1}); },
       kRange,
       {"tpSendCountsOptional shape is (1)"}},
      {"xActiveMask shape",
       [](CombineCall& c) { c.mask = T(ACL_BOOL, {3}); },
       kRange,
       {"xActiveMaskOptional shape is (3)"}},
      {"sharedExpertX shape",
       [](CombineCall& c) {
         c.shared_x = T(ACL_BF16, {4, 1025});
       },
       kRange,
       {"sharedExpertXOptional shape is (4, 1025)"}},
      {"groupEp unknown", [](CombineCall& c) { c.group_ep = "nope"; }, kInvalid, {"groupEp", "'nope'"}},
      {"epRankId differs", [](CombineCall& c) { c.ep_rank_id = 1; }, kRange, {"epRankId 1 differs"}},
  };
}

TEST_F(MoeValidationTest, CombineValidCallSucceeds) {
  CombineTensors t;
  CombineCall call = t.Valid(ep_name_, tp_name_);
  EXPECT_EQ(call.Call(), ACLNN_SUCCESS) << aclGetRecentErrMsg();
  EXPECT_NE(call.executor, nullptr);
}

TEST_F(MoeValidationTest, CombineEveryCheckReturnsItsCodeAndNamesTheParameter) {
  CombineTensors t;
  for (const CombineCase& row : CombineCases()) {
    SCOPED_TRACE(row.name);
    CombineCall call = t.Valid(ep_name_, tp_name_);
    row.change(call);
    EXPECT_EQ(call.Call(), row.code) << aclGetRecentErrMsg();
    for (const std::string& words : row.message) EXPECT_THAT(aclGetRecentErrMsg(), HasSubstr(words));
    EXPECT_EQ(call.executor, nullptr);
  }
}

// --- HCCL_BUFFSIZE ---

TEST_F(MoeValidationTest, TooSmallBuffSizeIs561002NamingTheNeed) {
  setenv("HCCL_BUFFSIZE", "1", 1);
  // Bs 64 x K 2 rows of 8 KiB go out of one rank: about 1.1 MB.
  Buffer x = Tensor(ACL_BF16, {64, 4096});
  Buffer ids = Tensor(ACL_INT32, {64, 2});
  Buffer expand_x = Tensor(ACL_BF16, {256, 4096});
  Buffer assist = Tensor(ACL_INT32, {128 * 128});
  DispatchTensors t;
  DispatchCall call = t.Valid(ep_name_, tp_name_);
  call.x = x.tensor;
  call.expert_ids = ids.tensor;
  call.expert_scales = nullptr;
  call.expand_x = expand_x.tensor;
  call.assist = assist.tensor;
  call.dynamic_scales = nullptr;
  call.expand_scales = nullptr;
  EXPECT_EQ(call.Call(), kRange);
  EXPECT_THAT(aclGetRecentErrMsg(), HasSubstr("HCCL_BUFFSIZE is 1 MB"));
  EXPECT_THAT(aclGetRecentErrMsg(), HasSubstr("set HCCL_BUFFSIZE to at least 2 (MB)"));
  setenv("HCCL_BUFFSIZE", "2", 1);
  EXPECT_EQ(call.Call(), ACLNN_SUCCESS) << aclGetRecentErrMsg();
}

// --- stage 2 ---

TEST_F(MoeValidationTest, SecondStageChecksExecutorAndStream) {
  aclrtStream stream = nullptr;
  ASSERT_EQ(aclrtCreateStream(&stream), 0);
  EXPECT_EQ(aclnnMoeDistributeDispatchV2(nullptr, 0, nullptr, stream), kNull);
  EXPECT_THAT(aclGetRecentErrMsg(), HasSubstr("executor is null"));

  // A barrier's executor is not a MoE executor.
  Buffer x_ref = Tensor(ACL_BF16, {4});
  uint64_t size = 0;
  aclOpExecutor* barrier = nullptr;
  ASSERT_EQ(aclnnDistributeBarrierGetWorkspaceSize(x_ref.tensor, ep_name_.c_str(), 2, &size, &barrier), 0);
  EXPECT_EQ(aclnnMoeDistributeCombineV2(nullptr, 0, barrier, stream), kInvalid);
  EXPECT_THAT(aclGetRecentErrMsg(), HasSubstr("not an executor of a MoE operator"));

  // A dispatch executor run by combine.
  DispatchTensors t;
  DispatchCall call = t.Valid(ep_name_, tp_name_);
  ASSERT_EQ(call.Call(), 0) << aclGetRecentErrMsg();
  EXPECT_EQ(aclnnMoeDistributeCombineV2(nullptr, 0, call.executor, stream), kInvalid);
  EXPECT_THAT(aclGetRecentErrMsg(), HasSubstr("was made by aclnnMoeDistributeDispatchV2GetWorkspaceSize"));

  // A stream of another device.
  ASSERT_EQ(aclrtSetDevice(1), 0);
  aclrtStream other = nullptr;
  ASSERT_EQ(aclrtCreateStream(&other), 0);
  ASSERT_EQ(aclrtSetDevice(0), 0);
  EXPECT_EQ(aclnnMoeDistributeDispatchV2(nullptr, 0, call.executor, other), kInvalid);
  EXPECT_THAT(aclGetRecentErrMsg(), HasSubstr("belongs to device 1"));

  // Destroyed: not live any more.
  EXPECT_EQ(aclDestroyAclOpExecutor(call.executor), 0);
  EXPECT_EQ(aclnnMoeDistributeDispatchV2(nullptr, 0, call.executor, stream), kInvalid);
  EXPECT_THAT(aclGetRecentErrMsg(), HasSubstr("no longer live"));
}

}  // namespace
}  // namespace distbarrier::testing::moe
