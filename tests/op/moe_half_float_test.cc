// The BF16/FP16 conversions of the MoE operators: exact round trips, round-to-nearest-even
// on ties, overflow to infinity, subnormals, NaN.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "common/half_float.h"

namespace distbarrier::op {
namespace {

TEST(HalfFloatTest, EveryFp16AndBf16ValueRoundTripsExactly) {
  for (uint32_t bits = 0; bits <= 0xffff; ++bits) {
    const auto half = static_cast<uint16_t>(bits);
    const float fp16 = Fp16ToFloat(half);
    if (!std::isnan(fp16)) {
      EXPECT_EQ(FloatToFp16(fp16), half) << std::hex << bits;
    }
    const float bf16 = Bf16ToFloat(half);
    if (!std::isnan(bf16)) {
      EXPECT_EQ(FloatToBf16(bf16), half) << std::hex << bits;
    }
  }
}

TEST(HalfFloatTest, TiesRoundToEven) {
  // BF16 keeps 8 significant bits: 1 + 2^-8 lies halfway between 1 and 1 + 2^-7.
  EXPECT_EQ(Bf16ToFloat(FloatToBf16(1.0f + 0x1p-8f)), 1.0f);
  EXPECT_EQ(Bf16ToFloat(FloatToBf16(1.0f + 3 * 0x1p-8f)), 1.0f + 0x1p-6f);
  EXPECT_EQ(Bf16ToFloat(FloatToBf16(1.0f + 0x1p-8f + 0x1p-20f)), 1.0f + 0x1p-7f);  // above the tie
  // FP16 keeps 11: 2049 lies halfway between 2048 and 2050.
  EXPECT_EQ(Fp16ToFloat(FloatToFp16(2049.0f)), 2048.0f);
  EXPECT_EQ(Fp16ToFloat(FloatToFp16(2051.0f)), 2052.0f);
  EXPECT_EQ(Fp16ToFloat(FloatToFp16(-2051.0f)), -2052.0f);
}

TEST(HalfFloatTest, Fp16OverflowSubnormalsAndNan) {
  EXPECT_EQ(Fp16ToFloat(FloatToFp16(65519.0f)), 65504.0f);
  EXPECT_TRUE(std::isinf(Fp16ToFloat(FloatToFp16(65520.0f))));
  EXPECT_TRUE(std::isinf(Fp16ToFloat(FloatToFp16(1e10f))));
  EXPECT_EQ(Fp16ToFloat(FloatToFp16(0x1p-24f)), 0x1p-24f);                    // the smallest subnormal
  EXPECT_EQ(Fp16ToFloat(FloatToFp16(0x1p-25f)), 0.0f);                        // a tie: to even (zero)
  EXPECT_EQ(Fp16ToFloat(FloatToFp16(3 * 0x1p-25f)), 0x1p-23f);                // a tie: to even (2 units)
  EXPECT_EQ(Fp16ToFloat(FloatToFp16(1023 * 0x1p-24f + 0x1p-25f)), 0x1p-14f);  // up to the smallest normal
  EXPECT_TRUE(std::isnan(Fp16ToFloat(FloatToFp16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_TRUE(std::isnan(Bf16ToFloat(FloatToBf16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_TRUE(std::isinf(Bf16ToFloat(FloatToBf16(std::numeric_limits<float>::max()))));
}

}  // namespace
}  // namespace distbarrier::op
