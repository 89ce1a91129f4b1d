// BF16 and FP16 <-> float, round-to-nearest-even, in one place. MoE rows and HCCL reductions
// are BF16 or FP16 on the wire and in memory; every sum is done in float and rounded once.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace distbarrier {

inline float Bf16ToFloat(uint16_t bits) {
  return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16);
}

inline uint16_t FloatToBf16(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  const uint32_t quiet_nan = (bits >> 16) | 0x40;                       // a NaN stays a (quiet) NaN
  const uint32_t rounded = (bits + 0x7fff + ((bits >> 16) & 1)) >> 16;  // ties to even
  // A select, not a branch, so that row loops vectorize.
  return static_cast<uint16_t>(std::isnan(value) ? quiet_nan : rounded);
}

inline float Fp16ToFloat(uint16_t half) {
  const uint32_t sign = static_cast<uint32_t>(half & 0x8000) << 16;
  const uint32_t exponent = (half >> 10) & 0x1f;
  const uint32_t mantissa = half & 0x3ff;
  if (exponent == 0x1f) return std::bit_cast<float>(sign | 0x7f800000 | (mantissa << 13));  // inf, NaN
  if (exponent == 0) {                                                                      // zero, subnormal
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign != 0 ? -magnitude : magnitude;
  }
  return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

inline uint16_t FloatToFp16(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000);
  const uint32_t abs_bits = bits & 0x7fffffff;
  if (abs_bits >= 0x7f800000) return static_cast<uint16_t>(sign | 0x7c00 | (abs_bits > 0x7f800000 ? 0x200 : 0));
  if (abs_bits >= 0x477ff000) return static_cast<uint16_t>(sign | 0x7c00);  // rounds to >= 65520: inf
  if (abs_bits < 0x38800000) {
    // Subnormal half (or zero): the value in units of 2^-24, rounded to nearest even.
    const float units = std::bit_cast<float>(abs_bits) * 16777216.0f;  // exact: a power-of-two scale
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(std::nearbyint(units)));
  }
  const uint32_t rounding = 0xfff + ((abs_bits >> 13) & 1);
  return static_cast<uint16_t>(sign | ((abs_bits - (112u << 23) + rounding) >> 13));
}

}  // namespace distbarrier
