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

// Per-row dynamic int8 quantization (quantMode 2): scale = max|v| / 127, q = round(v / scale).
// `smooth` (may be null) multiplies the row first (the smooth-quant scales of the expert).
// Returns the scale; q * scale restores the value.
float QuantizeRow(const std::byte* row, aclDataType dtype, const float* smooth, int64_t h, std::byte* out);

}  // namespace distbarrier::op::moe
