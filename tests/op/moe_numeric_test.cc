// combine(expert(dispatch(x))) equals the host reference computed from x, expertIds and
// expertScales alone, within BF16/FP16 rounding (and int8 quantization for quantMode 2),
// over the configurations of issue 11. Each configuration runs two rounds on the same
// communicators, so consecutive collectives must pair up by sequence number.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "moe_world.h"

namespace distbarrier::testing::moe {
namespace {

class MoeNumericTest : public ::testing::TestWithParam<Config> {
 protected:
  void TearDown() override { aclFinalize(); }
};

TEST_P(MoeNumericTest, CombineOfExpertOfDispatchMatchesHostReference) {
  const Config c = GetParam();
  SCOPED_TRACE(c.Describe());
  World world = World::Make(c);
  constexpr int kRounds = 2;
  std::mutex mutex;
  std::vector<std::string> failures;
  std::atomic<int64_t> checked{0};
  std::vector<std::thread> threads;
  for (int device = 0; device < c.Devices(); ++device) {
    threads.emplace_back([&, device] {
      const RankId r{device, device / c.tp, device % c.tp};
      auto fail = [&](const std::string& what) {
        std::lock_guard lock(mutex);
        failures.push_back("device " + std::to_string(device) + ": " + what);
      };
      if (aclrtSetDevice(device) != 0) return fail("aclrtSetDevice");
      aclrtStream stream = nullptr;
      if (aclrtCreateStream(&stream) != 0) return fail("aclrtCreateStream");
      for (int round = 0; round < kRounds; ++round) {
        const RankInputs in = DrawInputs(c, device, round);
        RankTensors t(c, in, r.ep_rank);
        // A failing rank still takes part in every call, so that its peers fail instead of waiting.
        int status = EnqueueDispatch(c, world, r, t, stream);
        if (status != 0) fail("dispatch stage 1/2: " + std::to_string(status) + " " + aclGetRecentErrMsg());
        status = aclrtSynchronizeStream(stream);
        if (status != 0) fail("dispatch: " + std::to_string(status) + " " + aclGetRecentErrMsg());
        ApplyExperts(c, r, t);
        status = EnqueueCombine(c, world, r, t, stream);
        if (status != 0) fail("combine stage 1/2: " + std::to_string(status) + " " + aclGetRecentErrMsg());
        status = aclrtSynchronizeStream(stream);
        if (status != 0) fail("combine: " + std::to_string(status) + " " + aclGetRecentErrMsg());
        const Comparison result = Compare(c, in, t, device);
        checked += static_cast<int64_t>(c.bs) * c.h;
        if (result.wrong > 0) {
          fail("round " + std::to_string(round) + ": " + std::to_string(result.wrong) +
               " wrong values; first: " + result.first);
        }
        t.Release();
      }
      aclrtDestroyStream(stream);
    });
  }
  for (auto& thread : threads) thread.join();
  for (const std::string& failure : failures) ADD_FAILURE() << failure;
  EXPECT_EQ(checked.load(), int64_t{kRounds} * c.Devices() * c.bs * c.h);
}

Config Make(int ep, int tp, int shared_ranks, int shared_experts, int moe_experts, int k, int bs, int quant,
            int token_nums_type, bool mask, aclDataType dtype, uint32_t seed) {
  Config c;
  c.ep = ep;
  c.tp = tp;
  c.shared_ranks = shared_ranks;
  c.shared_experts = shared_experts;
  c.moe_experts = moe_experts;
  c.k = k;
  c.bs = bs;
  c.quant_mode = quant;
  c.token_nums_type = token_nums_type;
  c.mask = mask;
  c.dtype = dtype;
  c.seed = seed;
  return c;
}

Config Smooth(Config c) {
  c.smooth = true;
  return c;
}

// ep, tp, sharedRanks, sharedExperts, moeExperts (localExpertNum = moeExperts / (ep - sharedRanks)),
// K, Bs, quantMode, expertTokenNumsType, mask, dtype, seed.
INSTANTIATE_TEST_SUITE_P(Configs, MoeNumericTest,
                         ::testing::Values(Make(2, 1, 0, 0, 2, 1, 4, 0, 1, false, ACL_BF16, 11),    // L 1
                                           Make(2, 1, 0, 0, 6, 4, 8, 2, 0, true, ACL_FLOAT16, 12),  // L 3, int8
                                           Make(2, 2, 0, 0, 2, 2, 4, 0, 0, true, ACL_BF16, 13),     // TP 2
                                           Make(4, 1, 1, 1, 6, 3, 8, 0, 0, true, ACL_BF16, 21),     // shared 1, L 2
                                           Make(4, 2, 0, 0, 4, 2, 6, 0, 1, false, ACL_FLOAT16, 22),
                                           Make(4, 2, 2, 1, 2, 2, 4, 2, 1, true, ACL_BF16, 23),  // shared 2, TP 2, int8
                                           Make(4, 1, 2, 2, 4, 2, 5, 2, 0, false, ACL_FLOAT16,
                                                24),                                              // two shared experts
                                           Make(8, 2, 1, 1, 7, 3, 8, 0, 1, false, ACL_BF16, 31),  // the sample's shape
                                           Make(8, 1, 2, 2, 12, 4, 6, 2, 0, true, ACL_FLOAT16, 32),
                                           Make(8, 2, 2, 2, 6, 2, 4, 2, 0, true, ACL_FLOAT16, 33),
                                           Make(16, 1, 0, 0, 32, 6, 4, 0, 0, true, ACL_BF16, 41),  // L 2
                                           Make(16, 1, 1, 1, 15, 3, 4, 2, 1, false, ACL_FLOAT16, 42),
                                           Make(16, 2, 2, 1, 14, 3, 2, 0, 1, true, ACL_BF16, 43),  // 32 devices
                                           Smooth(Make(4, 1, 1, 1, 6, 3, 4, 2, 1, true, ACL_BF16,
                                                       61)),  // smooth-quant scales
                                           Smooth(Make(8, 2, 2, 2, 6, 2, 4, 2, 0, false, ACL_FLOAT16, 62))),
                         [](const ::testing::TestParamInfo<Config>& info) {
                           const Config& c = info.param;
                           return "EP" + std::to_string(c.ep) + "_TP" + std::to_string(c.tp) + "_shared" +
                                  std::to_string(c.shared_ranks) + "x" + std::to_string(c.shared_experts) + "_L" +
                                  std::to_string(c.LocalExperts(c.ep - 1)) + "_quant" + std::to_string(c.quant_mode) +
                                  "_type" + std::to_string(c.token_nums_type) + (c.mask ? "_mask" : "") +
                                  (c.smooth ? "_smooth" : "") + (c.dtype == ACL_BF16 ? "_bf16" : "_fp16") + "_seed" +
                                  std::to_string(c.seed);
                         });

}  // namespace
}  // namespace distbarrier::testing::moe
