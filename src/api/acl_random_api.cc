// aclrtRandomNumAsync: the runtime's random-number built-in task, as a stream task on the host.
// Philox4x32-10 (the generator CANN names) keyed by the seed, one 128-bit counter block per
// element, starting at the counter stored in device memory and advanced past the blocks used,
// so that successive tasks sharing a counter draw new numbers. The distributions' formulas are
// this library's (Box-Muller, rejection for the truncated normal); values differ from a device's.
#include <array>
#include <cmath>
#include <cstring>
#include <string>

#include "acl/acl.h"
#include "api/guard.h"
#include "common/error.h"
#include "common/half_float.h"
#include "runtime/runtime.h"

using distbarrier::Fail;
using distbarrier::runtime::MemoryKind;
using distbarrier::runtime::Runtime;
using distbarrier::runtime::TaskStatus;

namespace {

constexpr int kTruncatedTries = 8;  // blocks a truncated-normal element may draw before clamping
constexpr size_t kCounterBytes = 16;

using Block = std::array<uint32_t, 4>;

Block Philox(Block counter, uint64_t seed) {
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = uint64_t{0xD2511F53u} * counter[0], p1 = uint64_t{0xCD9E8D57u} * counter[2];
    counter = {static_cast<uint32_t>(p1 >> 32) ^ counter[1] ^ k0, static_cast<uint32_t>(p1),
               static_cast<uint32_t>(p0 >> 32) ^ counter[3] ^ k1, static_cast<uint32_t>(p0)};
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return counter;
}

// The 128-bit counter plus `offset`.
Block Advance(Block counter, uint64_t offset) {
  uint64_t carry = offset;
  for (uint32_t& word : counter) {
    const uint64_t sum = uint64_t{word} + (carry & 0xFFFFFFFFu);
    word = static_cast<uint32_t>(sum);
    carry = (carry >> 32) + (sum >> 32);
  }
  return counter;
}

double Unit(uint32_t word) {  // [0, 1)
  return (word >> 8) * (1.0 / 16777216.0);
}

size_t ElementBytes(aclDataType type) {
  switch (type) {
    case ACL_FLOAT:
    case ACL_INT32:
    case ACL_UINT32: return 4;
    case ACL_FLOAT16:
    case ACL_BF16: return 2;
    case ACL_INT64:
    case ACL_UINT64: return 8;
    default: return 0;
  }
}

bool IsFloat(aclDataType type) {
  return type == ACL_FLOAT || type == ACL_FLOAT16 || type == ACL_BF16;
}

double LoadFloat(aclDataType type, const uint8_t* bytes) {
  uint16_t half = 0;
  float single = 0;
  switch (type) {
    case ACL_FLOAT: std::memcpy(&single, bytes, 4); return single;
    case ACL_FLOAT16: std::memcpy(&half, bytes, 2); return distbarrier::Fp16ToFloat(half);
    default: std::memcpy(&half, bytes, 2); return distbarrier::Bf16ToFloat(half);
  }
}

void StoreFloat(aclDataType type, double value, std::byte* out) {
  const auto single = static_cast<float>(value);
  uint16_t half = 0;
  switch (type) {
    case ACL_FLOAT: std::memcpy(out, &single, 4); return;
    case ACL_FLOAT16: half = distbarrier::FloatToFp16(single); break;
    default: half = distbarrier::FloatToBf16(single); break;
  }
  std::memcpy(out, &half, 2);
}

// A parameter as given: its bytes now (a value) or the device address to read when the task runs.
struct Param {
  uint8_t value[8] = {};
  const void* address = nullptr;
  size_t size = 0;

  void Read(uint8_t* out) const {
    std::memset(out, 0, 8);
    std::memcpy(out, address != nullptr ? address : value, size);
  }
  uint64_t Integer() const {
    uint8_t bytes[8];
    Read(bytes);
    uint64_t result = 0;
    std::memcpy(&result, bytes, 8);
    return result;
  }
};

aclError TakeParam(const char* name, const aclrtRandomParaInfo& info, size_t expected, Param* out) {
  constexpr const char* kApi = "aclrtRandomNumAsync";
  if (info.size == 0 || info.size > 8 || (expected != 0 && info.size != expected)) {
    return Fail(ACL_ERROR_INVALID_PARAM, "{}: {}.size {} is not {}", kApi, name, info.size,
                expected != 0 ? std::to_string(expected) : std::string("1 to 8"));
  }
  out->size = info.size;
  if (info.isAddr != 0) {
    std::memcpy(&out->address, info.valueOrAddr, sizeof(void*));
    if (!Runtime::Instance().Memory().Contains(out->address, info.size, MemoryKind::kDevice)) {
      return Fail(ACL_ERROR_INVALID_PARAM, "{}: {} is at {}, which is not device memory from aclrtMalloc", kApi, name,
                  out->address);
    }
  } else {
    std::memcpy(out->value, info.valueOrAddr, info.size);
  }
  return ACL_SUCCESS;
}

struct RandomTask {
  aclrtRandomNumFuncType kind;
  aclDataType type;
  Param first, second;  // min/max, mean/stddev, or the ratio
  Param seed, count;
  std::byte* result;
  void* counter;

  TaskStatus Run() const {
    const uint64_t n = count.Integer();
    const size_t element = ElementBytes(type);
    const uint64_t bytes = kind == ACL_RT_RANDOM_NUM_FUNC_TYPE_DROPOUT_BITMASK ? (n + 7) / 8 : n * element;
    if (n > (uint64_t{1} << 40) || !Runtime::Instance().Memory().Contains(result, bytes, MemoryKind::kDevice)) {
      return {ACL_ERROR_INVALID_PARAM, "aclrtRandomNumAsync: " + std::to_string(n) +
                                           " results do not fit the device memory at randomResultAddr"};
    }
    Block base{};
    std::memcpy(base.data(), counter, kCounterBytes);
    const uint64_t key = seed.Integer();
    uint8_t a[8], b[8];
    first.Read(a);
    second.Read(b);
    auto block = [&](uint64_t j) { return Philox(Advance(base, j), key); };
    if (kind == ACL_RT_RANDOM_NUM_FUNC_TYPE_DROPOUT_BITMASK) {
      const double ratio = LoadFloat(type, a);
      std::memset(result, 0, bytes);
      for (uint64_t i = 0; i < n; ++i) {
        if (Unit(block(i)[0]) >= ratio) result[i / 8] |= std::byte{static_cast<uint8_t>(1u << (i % 8))};
      }
    } else if (kind == ACL_RT_RANDOM_NUM_FUNC_TYPE_UNIFORM_DIS && IsFloat(type)) {
      const double low = LoadFloat(type, a), high = LoadFloat(type, b);
      for (uint64_t i = 0; i < n; ++i) StoreFloat(type, low + Unit(block(i)[0]) * (high - low), result + i * element);
    } else if (kind == ACL_RT_RANDOM_NUM_FUNC_TYPE_UNIFORM_DIS) {  // integers in [min, max)
      const bool is_signed = type == ACL_INT32 || type == ACL_INT64;
      auto load = [&](const uint8_t* bytes) -> int64_t {
        if (element == 8) {
          int64_t v = 0;
          std::memcpy(&v, bytes, 8);
          return v;
        }
        uint32_t v = 0;
        std::memcpy(&v, bytes, 4);
        return is_signed ? int64_t{static_cast<int32_t>(v)} : int64_t{v};
      };
      const int64_t low = load(a), high = load(b);
      const uint64_t range = static_cast<uint64_t>(high) - static_cast<uint64_t>(low);
      const bool wider = is_signed ? high <= low : static_cast<uint64_t>(high) <= static_cast<uint64_t>(low);
      if (wider) return {ACL_ERROR_INVALID_PARAM, "aclrtRandomNumAsync: uniform max is not above min"};
      for (uint64_t i = 0; i < n; ++i) {
        const Block w = block(i);
        const uint64_t draw = (uint64_t{w[1]} << 32 | w[0]) % range;
        const uint64_t value = static_cast<uint64_t>(low) + draw;
        std::memcpy(result + i * element, &value, element);  // little endian: the low bytes
      }
    } else {  // normal, truncated normal
      const double mean = LoadFloat(type, a), stddev = LoadFloat(type, b);
      const bool truncated = kind == ACL_RT_RANDOM_NUM_FUNC_TYPE_TRUNCATED_NORMAL_DIS;
      for (uint64_t i = 0; i < n; ++i) {
        double z = 0;
        for (int attempt = 0; attempt < (truncated ? kTruncatedTries : 1); ++attempt) {
          const Block w = block(i + static_cast<uint64_t>(attempt) * n);
          const double u1 = 1.0 - Unit(w[0]), u2 = Unit(w[1]);  // u1 in (0, 1]
          z = std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
          if (!truncated || std::fabs(z) <= 2.0) break;
        }
        if (truncated) z = std::fmax(-2.0, std::fmin(2.0, z));
        StoreFloat(type, mean + stddev * z, result + i * element);
      }
    }
    const uint64_t used = kind == ACL_RT_RANDOM_NUM_FUNC_TYPE_TRUNCATED_NORMAL_DIS ? n * kTruncatedTries : n;
    const Block next = Advance(base, used);
    std::memcpy(counter, next.data(), kCounterBytes);
    return TaskStatus::Ok();
  }
};

}  // namespace

aclError aclrtRandomNumAsync(const aclrtRandomNumTaskInfo* taskInfo, const aclrtStream stream, void* reserve) try {
  constexpr const char* kApi = "aclrtRandomNumAsync";
  if (taskInfo == nullptr) return Fail(ACL_ERROR_INVALID_PARAM, "{}: taskInfo is null", kApi);
  if (reserve != nullptr) return Fail(ACL_ERROR_INVALID_PARAM, "{}: reserve must be null", kApi);
  const aclrtRandomNumFuncType kind = taskInfo->randomNumFuncParaInfo.funcType;
  const aclDataType type = taskInfo->dataType;
  const size_t element = ElementBytes(type);
  switch (kind) {
    case ACL_RT_RANDOM_NUM_FUNC_TYPE_UNIFORM_DIS:
      if (element == 0) {
        return Fail(ACL_ERROR_INVALID_PARAM,
                    "{}: uniform numbers are float, fp16, bf16, int32, int64, uint32 or uint64, not type {}", kApi,
                    static_cast<int>(type));
      }
      break;
    case ACL_RT_RANDOM_NUM_FUNC_TYPE_DROPOUT_BITMASK:
    case ACL_RT_RANDOM_NUM_FUNC_TYPE_NORMAL_DIS:
    case ACL_RT_RANDOM_NUM_FUNC_TYPE_TRUNCATED_NORMAL_DIS:
      if (!IsFloat(type)) {
        return Fail(ACL_ERROR_INVALID_PARAM, "{}: function {} takes float, fp16 or bf16, not type {}", kApi,
                    static_cast<int>(kind), static_cast<int>(type));
      }
      break;
    default:
      return Fail(ACL_ERROR_INVALID_PARAM, "{}: funcType {} is not an aclrtRandomNumFuncType", kApi,
                  static_cast<int>(kind));
  }
  auto& memory = Runtime::Instance().Memory();
  if (!memory.Contains(taskInfo->randomCounterAddr, kCounterBytes, MemoryKind::kDevice)) {
    return Fail(ACL_ERROR_INVALID_PARAM, "{}: randomCounterAddr {} is not 16 bytes of device memory from aclrtMalloc",
                kApi, taskInfo->randomCounterAddr);
  }
  if (!memory.Overlaps(taskInfo->randomResultAddr, MemoryKind::kDevice)) {
    return Fail(ACL_ERROR_INVALID_PARAM, "{}: randomResultAddr {} is not device memory from aclrtMalloc", kApi,
                taskInfo->randomResultAddr);
  }
  RandomTask task{.kind = kind,
                  .type = type,
                  .first = {},
                  .second = {},
                  .seed = {},
                  .count = {},
                  .result = static_cast<std::byte*>(taskInfo->randomResultAddr),
                  .counter = taskInfo->randomCounterAddr};
  const auto& params = taskInfo->randomNumFuncParaInfo.paramInfo;
  aclError error = ACL_SUCCESS;
  if (kind == ACL_RT_RANDOM_NUM_FUNC_TYPE_DROPOUT_BITMASK) {
    error = TakeParam("dropoutRation", params.dropoutBitmaskInfo.dropoutRation, element, &task.first);
  } else if (kind == ACL_RT_RANDOM_NUM_FUNC_TYPE_UNIFORM_DIS) {
    error = TakeParam("min", params.uniformDisInfo.min, element, &task.first);
    if (error == ACL_SUCCESS) error = TakeParam("max", params.uniformDisInfo.max, element, &task.second);
  } else {
    error = TakeParam("mean", params.normalDisInfo.mean, element, &task.first);
    if (error == ACL_SUCCESS) error = TakeParam("stddev", params.normalDisInfo.stddev, element, &task.second);
  }
  if (error == ACL_SUCCESS) error = TakeParam("randomSeed", taskInfo->randomSeed, 0, &task.seed);
  if (error == ACL_SUCCESS) error = TakeParam("randomNum", taskInfo->randomNum, 0, &task.count);
  if (error != ACL_SUCCESS) return error;
  auto resolved = Runtime::Instance().ResolveStream(stream, &error);
  if (!resolved) return error;
  // The task holds the counter's and the result's blocks: an aclrtFree before it ran leaves
  // them alive (as aclrtMemcpyAsync).
  auto keep = std::pair{memory.Find(task.counter, kCounterBytes, MemoryKind::kDevice),
                        memory.Find(task.result, 1, MemoryKind::kDevice)};
  resolved->Enqueue(
      distbarrier::runtime::Task{.run = [task, keep = std::move(keep)](const std::stop_token&) { return task.Run(); }});
  return ACL_SUCCESS;
}
DISTBARRIER_ACL_GUARD
