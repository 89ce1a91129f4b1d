#include "comm/collectives/reduce.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <type_traits>

#include "common/half_float.h"

namespace distbarrier::comm::collectives {
namespace {

// Elements combined per pass: the accumulator and one source's elements stay in cache.
constexpr size_t kStage = 2048;

template <typename Storage, typename Accumulator>
struct Plain {
  using S = Storage;
  using A = Accumulator;
  static A Load(S value) { return static_cast<A>(value); }
  static S Store(A value) { return static_cast<S>(value); }
};
struct Half {
  using S = uint16_t;
  using A = float;
  static A Load(S value) { return Fp16ToFloat(value); }
  static S Store(A value) { return FloatToFp16(value); }
};
struct BFloat {
  using S = uint16_t;
  using A = float;
  static A Load(S value) { return Bf16ToFloat(value); }
  static S Store(A value) { return FloatToBf16(value); }
};

template <typename A>
A Combine(HcclReduceOp op, A a, A b) {
  switch (op) {
    case HCCL_REDUCE_SUM:
      if constexpr (std::is_integral_v<A>) {  // wraps around instead of overflowing
        return static_cast<A>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
      } else {
        return a + b;
      }
    case HCCL_REDUCE_PROD:
      if constexpr (std::is_integral_v<A>) {
        return static_cast<A>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));
      } else {
        return a * b;
      }
    case HCCL_REDUCE_MAX: return b > a ? b : a;
    default: return b < a ? b : a;  // HCCL_REDUCE_MIN
  }
}

template <typename Traits>
void Reduce(HcclReduceOp op, int sources, size_t count, const ReadSource& read, std::byte* out) {
  using S = typename Traits::S;
  using A = typename Traits::A;
  std::array<A, kStage> accumulator;
  std::array<S, kStage> stage;
  for (size_t first = 0; first < count; first += kStage) {
    const size_t n = std::min(kStage, count - first);
    read(0, first, n, reinterpret_cast<std::byte*>(stage.data()));
    for (size_t i = 0; i < n; ++i) accumulator[i] = Traits::Load(stage[i]);
    for (int source = 1; source < sources; ++source) {
      read(source, first, n, reinterpret_cast<std::byte*>(stage.data()));
      for (size_t i = 0; i < n; ++i) accumulator[i] = Combine(op, accumulator[i], Traits::Load(stage[i]));
    }
    for (size_t i = 0; i < n; ++i) stage[i] = Traits::Store(accumulator[i]);
    std::memcpy(out + first * sizeof(S), stage.data(), n * sizeof(S));
  }
}

}  // namespace

size_t ElementBytes(HcclDataType type) {
  switch (type) {
    case HCCL_DATA_TYPE_INT8:
    case HCCL_DATA_TYPE_UINT8:
    case HCCL_DATA_TYPE_HIF8:
    case HCCL_DATA_TYPE_FP8E4M3:
    case HCCL_DATA_TYPE_FP8E5M2:
    case HCCL_DATA_TYPE_FP8E8M0: return 1;
    case HCCL_DATA_TYPE_INT16:
    case HCCL_DATA_TYPE_UINT16:
    case HCCL_DATA_TYPE_FP16:
    case HCCL_DATA_TYPE_BFP16: return 2;
    case HCCL_DATA_TYPE_INT32:
    case HCCL_DATA_TYPE_UINT32:
    case HCCL_DATA_TYPE_FP32: return 4;
    case HCCL_DATA_TYPE_INT64:
    case HCCL_DATA_TYPE_UINT64:
    case HCCL_DATA_TYPE_FP64: return 8;
    case HCCL_DATA_TYPE_INT128: return 16;
    default: return 0;
  }
}

bool Reducible(HcclDataType type) {
  switch (type) {
    case HCCL_DATA_TYPE_INT128:
    case HCCL_DATA_TYPE_HIF8:
    case HCCL_DATA_TYPE_FP8E4M3:
    case HCCL_DATA_TYPE_FP8E5M2:
    case HCCL_DATA_TYPE_FP8E8M0: return false;
    default: return ElementBytes(type) > 0;
  }
}

const char* DataTypeName(HcclDataType type) {
  switch (type) {
    case HCCL_DATA_TYPE_INT8: return "int8";
    case HCCL_DATA_TYPE_INT16: return "int16";
    case HCCL_DATA_TYPE_INT32: return "int32";
    case HCCL_DATA_TYPE_FP16: return "fp16";
    case HCCL_DATA_TYPE_FP32: return "fp32";
    case HCCL_DATA_TYPE_INT64: return "int64";
    case HCCL_DATA_TYPE_UINT64: return "uint64";
    case HCCL_DATA_TYPE_UINT8: return "uint8";
    case HCCL_DATA_TYPE_UINT16: return "uint16";
    case HCCL_DATA_TYPE_UINT32: return "uint32";
    case HCCL_DATA_TYPE_FP64: return "fp64";
    case HCCL_DATA_TYPE_BFP16: return "bfp16";
    case HCCL_DATA_TYPE_INT128: return "int128";
    case HCCL_DATA_TYPE_HIF8: return "hif8";
    case HCCL_DATA_TYPE_FP8E4M3: return "fp8e4m3";
    case HCCL_DATA_TYPE_FP8E5M2: return "fp8e5m2";
    case HCCL_DATA_TYPE_FP8E8M0: return "fp8e8m0";
    default: return "unknown";
  }
}

const char* ReduceOpName(HcclReduceOp op) {
  switch (op) {
    case HCCL_REDUCE_SUM: return "sum";
    case HCCL_REDUCE_PROD: return "prod";
    case HCCL_REDUCE_MAX: return "max";
    case HCCL_REDUCE_MIN: return "min";
    default: return "unknown";
  }
}

void ReduceSources(HcclDataType type, HcclReduceOp op, int sources, size_t count, const ReadSource& read,
                   std::byte* out) {
  switch (type) {
    case HCCL_DATA_TYPE_INT8: return Reduce<Plain<int8_t, int8_t>>(op, sources, count, read, out);
    case HCCL_DATA_TYPE_INT16: return Reduce<Plain<int16_t, int16_t>>(op, sources, count, read, out);
    case HCCL_DATA_TYPE_INT32: return Reduce<Plain<int32_t, int32_t>>(op, sources, count, read, out);
    case HCCL_DATA_TYPE_INT64: return Reduce<Plain<int64_t, int64_t>>(op, sources, count, read, out);
    case HCCL_DATA_TYPE_UINT8: return Reduce<Plain<uint8_t, uint8_t>>(op, sources, count, read, out);
    case HCCL_DATA_TYPE_UINT16: return Reduce<Plain<uint16_t, uint16_t>>(op, sources, count, read, out);
    case HCCL_DATA_TYPE_UINT32: return Reduce<Plain<uint32_t, uint32_t>>(op, sources, count, read, out);
    case HCCL_DATA_TYPE_UINT64: return Reduce<Plain<uint64_t, uint64_t>>(op, sources, count, read, out);
    case HCCL_DATA_TYPE_FP32: return Reduce<Plain<float, float>>(op, sources, count, read, out);
    case HCCL_DATA_TYPE_FP64: return Reduce<Plain<double, double>>(op, sources, count, read, out);
    case HCCL_DATA_TYPE_FP16: return Reduce<Half>(op, sources, count, read, out);
    case HCCL_DATA_TYPE_BFP16: return Reduce<BFloat>(op, sources, count, read, out);
    default: return;  // not Reducible: refused before
  }
}

}  // namespace distbarrier::comm::collectives
