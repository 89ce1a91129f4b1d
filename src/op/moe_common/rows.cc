#include "op/moe_common/rows.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

namespace distbarrier::op::moe {
namespace {

// Rows are converted in blocks of a fixed size through aligned local arrays: fixed trip counts
// let the compiler vectorize the loops at -O2, and the wire's alignment does not matter.
constexpr int64_t kBlock = 64;

template <typename Kernel>
void ForBlocks(int64_t h, Kernel kernel) {
  int64_t e = 0;
  for (; e + kBlock <= h; e += kBlock) kernel(e, std::integral_constant<int64_t, kBlock>{});
  for (; e < h; ++e) kernel(e, std::integral_constant<int64_t, 1>{});
}

template <int64_t N>
void LoadFloats(const std::byte* row, int64_t first, aclDataType dtype, float (&out)[kBlock]) {
  uint16_t bits[N];
  std::memcpy(bits, row + first * 2, sizeof bits);
  if (dtype == ACL_BF16) {
    for (int64_t i = 0; i < N; ++i) out[i] = Bf16ToFloat(bits[i]);
  } else {
    for (int64_t i = 0; i < N; ++i) out[i] = Fp16ToFloat(bits[i]);
  }
}

// sum[i] += weight * x[i]. Plain values, not a lambda's captures: a store through `sum` could
// otherwise alias them, which keeps the loop scalar.
template <int64_t N>
void AddScaled(const float (&x)[kBlock], float weight, float* sum) {
  for (int64_t i = 0; i < N; ++i) sum[i] += weight * x[i];
}

}  // namespace

void AddHalfRows(const std::byte* a, const std::byte* b, aclDataType dtype, int64_t h, std::byte* out) {
  ForBlocks(h, [&](int64_t first, auto n) {
    alignas(64) float x[kBlock], y[kBlock];
    LoadFloats<n()>(a, first, dtype, x);
    LoadFloats<n()>(b, first, dtype, y);
    for (int64_t i = 0; i < n(); ++i) x[i] += y[i];
    std::memcpy(out + first * sizeof(float), x, n() * sizeof(float));
  });
}

void AccumulateFloatRow(const std::byte* values, float weight, int64_t h, float* sum) {
  ForBlocks(h, [&](int64_t first, auto n) {
    alignas(64) float x[kBlock];
    std::memcpy(x, values + first * sizeof(float), n() * sizeof(float));
    AddScaled<n()>(x, weight, sum + first);
  });
}

void AccumulateHalfRow(const std::byte* values, aclDataType dtype, float weight, int64_t h, float* sum) {
  ForBlocks(h, [&](int64_t first, auto n) {
    alignas(64) float x[kBlock];
    LoadFloats<n()>(values, first, dtype, x);
    AddScaled<n()>(x, weight, sum + first);
  });
}

void StoreHalfRow(const float* sum, const std::byte* shared, aclDataType dtype, int64_t h, std::byte* out) {
  ForBlocks(h, [&](int64_t first, auto n) {
    alignas(64) float x[kBlock];
    if (shared != nullptr) {
      LoadFloats<n()>(shared, first, dtype, x);
      for (int64_t i = 0; i < n(); ++i) x[i] += sum[first + i];
    } else {
      for (int64_t i = 0; i < n(); ++i) x[i] = sum[first + i];
    }
    uint16_t bits[kBlock];
    if (dtype == ACL_BF16) {
      for (int64_t i = 0; i < n(); ++i) bits[i] = FloatToBf16(x[i]);
    } else {
      for (int64_t i = 0; i < n(); ++i) bits[i] = FloatToFp16(x[i]);
    }
    std::memcpy(out + first * 2, bits, n() * 2);
  });
}

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
