// Token rows as the MoE operators store and move them: BF16 or FP16 elements (INT8 after
// dynamic quantization), read and written through float.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "acl/acl_base.h"
#include "common/half_float.h"

namespace distbarrier::op::moe {

// Element i of a BF16/FP16 row (rows may sit at any byte offset on the wire).
inline float LoadHalf(const std::byte* row, int64_t i, aclDataType dtype) {
  uint16_t bits;
  std::memcpy(&bits, row + i * 2, sizeof bits);
  return dtype == ACL_BF16 ? Bf16ToFloat(bits) : Fp16ToFloat(bits);
}

inline void StoreHalf(std::byte* row, int64_t i, aclDataType dtype, float value) {
  const uint16_t bits = dtype == ACL_BF16 ? FloatToBf16(value) : FloatToFp16(value);
  std::memcpy(row + i * 2, &bits, sizeof bits);
}

// Whole-row kernels of combine, one loop per dtype (the hot path: a step runs them over every
// element it moves). Wire rows may sit at any byte offset; `sum` is aligned float storage.
// out[e] = float(a[e]) + float(b[e]), written as h floats at `out`.
void AddHalfRows(const std::byte* a, const std::byte* b, aclDataType dtype, int64_t h, std::byte* out);
// sum[e] += weight * float(values[e]): `values` are h floats, or h halves of `dtype`.
void AccumulateFloatRow(const std::byte* values, float weight, int64_t h, float* sum);
void AccumulateHalfRow(const std::byte* values, aclDataType dtype, float weight, int64_t h, float* sum);
// out[e] = half(sum[e] + float(shared[e])) (shared may be null).
void StoreHalfRow(const float* sum, const std::byte* shared, aclDataType dtype, int64_t h, std::byte* out);

// Per-row dynamic int8 quantization (quantMode 2): scale = max|v| / 127, q = round(v / scale).
// `smooth` (may be null) multiplies the row first (the smooth-quant scales of the expert).
// Returns the scale; q * scale restores the value.
float QuantizeRow(const std::byte* row, aclDataType dtype, const float* smooth, int64_t h, std::byte* out);

}  // namespace distbarrier::op::moe
