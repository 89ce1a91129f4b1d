#include "op/moe_common/rows.h"

#include <algorithm>
#include <cmath>

namespace distbarrier::op::moe {

float QuantizeRow(const std::byte* row, aclDataType dtype, const float* smooth, int64_t h, std::byte* out) {
  float max_abs = 0.0f;
  for (int64_t i = 0; i < h; ++i) {
    const float value = LoadHalf(row, i, dtype) * (smooth != nullptr ? smooth[i] : 1.0f);
    max_abs = std::max(max_abs, std::fabs(value));
  }
  const float scale = max_abs / 127.0f;
  const float inverse = max_abs > 0.0f ? 127.0f / max_abs : 0.0f;
  for (int64_t i = 0; i < h; ++i) {
    const float value = LoadHalf(row, i, dtype) * (smooth != nullptr ? smooth[i] : 1.0f);
    const float q = std::clamp(std::nearbyint(value * inverse), -127.0f, 127.0f);
    out[i] = static_cast<std::byte>(static_cast<int8_t>(q));
  }
  return scale;
}

}  // namespace distbarrier::op::moe
