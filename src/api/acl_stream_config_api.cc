// Streams made with a configuration and the getters that report it (aclrtCreateStreamV2,
// aclrtStreamGetId/Priority/Flags, ...), and the device queries of CANN's runtime examples
// (aclrtGetErrorVerbose, aclrtGetDeviceCapability, aclrtCheckArchCompatibility,
// aclrtGetResInCurrentThread, aclGetCannAttribute), and the built-in aclrtReduceAsync. docs/DESIGN.md says what a
// simulated device reports and why.
#include <cstdlib>
#include <cstring>

#include "acl/acl.h"
#include "api/guard.h"
#include "comm/collectives/reduce.h"
#include "common/error.h"
#include "runtime/runtime.h"

using distbarrier::Fail;
using distbarrier::runtime::MemoryKind;
using distbarrier::runtime::Runtime;
using distbarrier::runtime::Stream;

namespace {

constexpr uint32_t kLowestPriority = 7;  // CANN's range: 0 (highest) to 7
constexpr uint32_t kKnownStreamFlags = ACL_STREAM_FAST_LAUNCH | ACL_STREAM_FAST_SYNC | ACL_STREAM_PERSISTENT |
                                       ACL_STREAM_HUGE | ACL_STREAM_CPU_SCHEDULE | ACL_STREAM_DEVICE_USE_ONLY;
// One die of the Ascend910_9391 that aclrtGetSocName names.
constexpr uint32_t kCubeCores = 24;
constexpr uint32_t kVectorCores = 48;

aclError CreateConfigured(const char* api, aclrtStream* stream, uint32_t priority, uint64_t flags) {
  if (stream == nullptr) return Fail(ACL_ERROR_INVALID_PARAM, "{}: stream is null", api);
  if (priority > kLowestPriority) {
    return Fail(ACL_ERROR_INVALID_PARAM, "{}: priority {} is outside [0, {}]", api, priority, kLowestPriority);
  }
  // As CANN, unknown flag bits are dropped, the known ones recorded.
  return Runtime::Instance().CreateStream(
      stream, Stream::Config{.priority = priority, .flags = static_cast<uint32_t>(flags & kKnownStreamFlags)});
}

aclError CheckDevice(const char* api, int32_t device) {
  auto& runtime = Runtime::Instance();
  if (!runtime.ValidDevice(device)) {
    return Fail(ACL_ERROR_RT_INVALID_DEVICEID, "{}: device {} is out of range [0, {})", api, device,
                runtime.DeviceCount());
  }
  return ACL_SUCCESS;
}

}  // namespace

aclError aclrtCreateStreamWithConfig(aclrtStream* stream, uint32_t priority, uint32_t flag) try {
  return CreateConfigured("aclrtCreateStreamWithConfig", stream, priority, flag);
}
DISTBARRIER_ACL_GUARD

aclrtStreamConfigHandle* aclrtCreateStreamConfigHandle(void) try { return new aclrtStreamConfigHandle{}; }
DISTBARRIER_NULL_GUARD(kAcl)

aclError aclrtDestroyStreamConfigHandle(aclrtStreamConfigHandle* handle) try {
  if (handle == nullptr) return Fail(ACL_ERROR_INVALID_PARAM, "aclrtDestroyStreamConfigHandle: handle is null");
  delete handle;
  return ACL_SUCCESS;
}
DISTBARRIER_ACL_GUARD

// Each attribute's value has its C type's size, as CANN checks: a pointer, a size_t, a uint32_t
// priority. The flag is a size_t in the handle; a uint32_t is accepted too, since CANN's own
// example (3_stream_config_query) passes one.
aclError aclrtSetStreamConfigOpt(aclrtStreamConfigHandle* handle, aclrtStreamConfigAttr attr, const void* attrValue,
                                 size_t valueSize) try {
  if (handle == nullptr || attrValue == nullptr) {
    return Fail(ACL_ERROR_INVALID_PARAM, "aclrtSetStreamConfigOpt: handle or attrValue is null");
  }
  auto wrong_size = [&](size_t expected) {
    return Fail(ACL_ERROR_INVALID_PARAM, "aclrtSetStreamConfigOpt: valueSize {} for attribute {} is not {}", valueSize,
                static_cast<int>(attr), expected);
  };
  switch (attr) {
    case ACL_RT_STREAM_WORK_ADDR_PTR:
      if (valueSize != sizeof(void*)) return wrong_size(sizeof(void*));
      std::memcpy(&handle->workptr, attrValue, sizeof(void*));
      return ACL_SUCCESS;
    case ACL_RT_STREAM_WORK_SIZE:
      if (valueSize != sizeof(size_t)) return wrong_size(sizeof(size_t));
      std::memcpy(&handle->workSize, attrValue, sizeof(size_t));
      return ACL_SUCCESS;
    case ACL_RT_STREAM_FLAG:
      if (valueSize == sizeof(size_t)) {
        std::memcpy(&handle->flag, attrValue, sizeof(size_t));
      } else if (valueSize == sizeof(uint32_t)) {
        uint32_t flag = 0;
        std::memcpy(&flag, attrValue, sizeof(flag));
        handle->flag = flag;
      } else {
        return wrong_size(sizeof(size_t));
      }
      return ACL_SUCCESS;
    case ACL_RT_STREAM_PRIORITY: {
      if (valueSize != sizeof(uint32_t)) return wrong_size(sizeof(uint32_t));
      uint32_t priority = 0;
      std::memcpy(&priority, attrValue, sizeof(priority));
      if (priority > kLowestPriority) {
        return Fail(ACL_ERROR_INVALID_PARAM, "aclrtSetStreamConfigOpt: priority {} is outside [0, {}]", priority,
                    kLowestPriority);
      }
      handle->priority = priority;
      return ACL_SUCCESS;
    }
    default:
      return Fail(ACL_ERROR_INVALID_PARAM, "aclrtSetStreamConfigOpt: attribute {} is not an aclrtStreamConfigAttr",
                  static_cast<int>(attr));
  }
}
DISTBARRIER_ACL_GUARD

// A null handle makes a stream as aclrtCreateStream does. The work area (a model's memory) is
// accepted and unused: simulated streams need none.
aclError aclrtCreateStreamV2(aclrtStream* stream, const aclrtStreamConfigHandle* handle) try {
  const uint32_t priority = handle != nullptr ? handle->priority : 0;
  const uint64_t flags = handle != nullptr ? handle->flag : 0;
  return CreateConfigured("aclrtCreateStreamV2", stream, priority, flags);
}
DISTBARRIER_ACL_GUARD

aclError aclrtStreamGetId(aclrtStream stream, int32_t* streamId) try {
  if (streamId == nullptr) return Fail(ACL_ERROR_INVALID_PARAM, "aclrtStreamGetId: streamId is null");
  aclError error = ACL_SUCCESS;
  auto resolved = Runtime::Instance().ResolveStream(stream, &error);
  if (!resolved) return error;
  *streamId = resolved->Id();
  return ACL_SUCCESS;
}
DISTBARRIER_ACL_GUARD

aclError aclrtStreamGetPriority(aclrtStream stream, uint32_t* priority) try {
  if (priority == nullptr) return Fail(ACL_ERROR_INVALID_PARAM, "aclrtStreamGetPriority: priority is null");
  aclError error = ACL_SUCCESS;
  auto resolved = Runtime::Instance().ResolveStream(stream, &error);
  if (!resolved) return error;
  *priority = resolved->Configuration().priority;
  return ACL_SUCCESS;
}
DISTBARRIER_ACL_GUARD

aclError aclrtStreamGetFlags(aclrtStream stream, uint32_t* flags) try {
  if (flags == nullptr) return Fail(ACL_ERROR_INVALID_PARAM, "aclrtStreamGetFlags: flags is null");
  aclError error = ACL_SUCCESS;
  auto resolved = Runtime::Instance().ResolveStream(stream, &error);
  if (!resolved) return error;
  *flags = resolved->Configuration().flags;
  return ACL_SUCCESS;
}
DISTBARRIER_ACL_GUARD

// --- device queries ---

aclError aclrtGetErrorVerbose(int32_t deviceId, aclrtErrorInfo* errorInfo) try {
  if (errorInfo == nullptr) return Fail(ACL_ERROR_INVALID_PARAM, "aclrtGetErrorVerbose: errorInfo is null");
  if (aclError error = CheckDevice("aclrtGetErrorVerbose", deviceId); error != ACL_SUCCESS) return error;
  *errorInfo = aclrtErrorInfo{};  // ACL_RT_NO_ERROR: nothing to repair, no detail
  return ACL_SUCCESS;
}
DISTBARRIER_ACL_GUARD

aclError aclrtGetDeviceCapability(int32_t deviceId, aclrtDevFeatureType devFeatureType, int32_t* value) try {
  if (value == nullptr) return Fail(ACL_ERROR_INVALID_PARAM, "aclrtGetDeviceCapability: value is null");
  if (aclError error = CheckDevice("aclrtGetDeviceCapability", deviceId); error != ACL_SUCCESS) return error;
  switch (devFeatureType) {
    case ACL_FEATURE_TSCPU_TASK_UPDATE_SUPPORT_AIC_AIV:  // no AI core tasks to update
    case ACL_FEATURE_SYSTEM_MEMQ_EVENT_CROSS_DEV:        // no memory queues
      *value = 0;
      return ACL_SUCCESS;
    default:
      return Fail(ACL_ERROR_INVALID_PARAM, "aclrtGetDeviceCapability: feature {} is not an aclrtDevFeatureType",
                  static_cast<int>(devFeatureType));
  }
}
DISTBARRIER_ACL_GUARD

aclError aclrtCheckArchCompatibility(const char* socVersion, int32_t* canCompatible) try {
  if (socVersion == nullptr || canCompatible == nullptr) {
    return Fail(ACL_ERROR_INVALID_PARAM, "aclrtCheckArchCompatibility: socVersion or canCompatible is null");
  }
  *canCompatible = std::strcmp(socVersion, aclrtGetSocName()) == 0 ? 1 : 0;
  return ACL_SUCCESS;
}
DISTBARRIER_ACL_GUARD

// The current context's device limits: no limit was set (aclrtSetDeviceResLimit is not
// provided), so all cores of the device.
aclError aclrtGetResInCurrentThread(aclrtDevResLimitType type, uint32_t* value) try {
  if (value == nullptr) return Fail(ACL_ERROR_INVALID_PARAM, "aclrtGetResInCurrentThread: value is null");
  if (type != ACL_RT_DEV_RES_CUBE_CORE && type != ACL_RT_DEV_RES_VECTOR_CORE) {
    return Fail(ACL_ERROR_INVALID_PARAM, "aclrtGetResInCurrentThread: type {} is not CUBE_CORE (0) or VECTOR_CORE (1)",
                static_cast<int>(type));
  }
  aclError error = ACL_SUCCESS;
  if (!Runtime::Instance().CurrentContext(&error)) return error;
  *value = type == ACL_RT_DEV_RES_CUBE_CORE ? kCubeCores : kVectorCores;
  return ACL_SUCCESS;
}
DISTBARRIER_ACL_GUARD

aclError aclGetCannAttributeList(const aclCannAttr** cannAttrList, size_t* num) try {
  if (cannAttrList == nullptr || num == nullptr) {
    return Fail(ACL_ERROR_INVALID_PARAM, "aclGetCannAttributeList: cannAttrList or num is null");
  }
  static const aclCannAttr kSupported[] = {ACL_CANN_ATTR_INF_NAN, ACL_CANN_ATTR_BF16};
  *cannAttrList = kSupported;
  *num = sizeof(kSupported) / sizeof(kSupported[0]);
  return ACL_SUCCESS;
}
DISTBARRIER_ACL_GUARD

aclError aclGetCannAttribute(aclCannAttr cannAttr, int32_t* value) try {
  if (value == nullptr) return Fail(ACL_ERROR_INVALID_PARAM, "aclGetCannAttribute: value is null");
  switch (cannAttr) {
    case ACL_CANN_ATTR_INF_NAN:
    case ACL_CANN_ATTR_BF16: *value = 1; return ACL_SUCCESS;
    case ACL_CANN_ATTR_JIT_COMPILE: *value = 0; return ACL_SUCCESS;
    default:
      return Fail(ACL_ERROR_INVALID_PARAM, "aclGetCannAttribute: {} is not an aclCannAttr", static_cast<int>(cannAttr));
  }
}
DISTBARRIER_ACL_GUARD

// --- built-in tasks ---

aclError aclrtReduceAsync(void* dst, const void* src, uint64_t count, aclrtReduceKind kind, aclDataType type,
                          aclrtStream stream, void* reserve) try {
  constexpr const char* kApi = "aclrtReduceAsync";
  if (dst == nullptr || src == nullptr) return Fail(ACL_ERROR_INVALID_PARAM, "{}: dst or src is null", kApi);
  if (reserve != nullptr) return Fail(ACL_ERROR_INVALID_PARAM, "{}: reserve must be null", kApi);
  HcclReduceOp op = HCCL_REDUCE_SUM;
  switch (kind) {
    case ACL_RT_MEMCPY_SDMA_AUTOMATIC_SUM: op = HCCL_REDUCE_SUM; break;
    case ACL_RT_MEMCPY_SDMA_AUTOMATIC_MAX: op = HCCL_REDUCE_MAX; break;
    case ACL_RT_MEMCPY_SDMA_AUTOMATIC_MIN: op = HCCL_REDUCE_MIN; break;
    case ACL_RT_MEMCPY_SDMA_AUTOMATIC_EQUAL:
      return Fail(ACL_ERROR_RT_FEATURE_NOT_SUPPORT, "{}: ACL_RT_MEMCPY_SDMA_AUTOMATIC_EQUAL is not supported", kApi);
    default:
      return Fail(ACL_ERROR_INVALID_PARAM, "{}: kind {} is not an aclrtReduceKind", kApi, static_cast<int>(kind));
  }
  HcclDataType hccl_type = HCCL_DATA_TYPE_FP32;
  switch (type) {
    case ACL_INT8: hccl_type = HCCL_DATA_TYPE_INT8; break;
    case ACL_INT16: hccl_type = HCCL_DATA_TYPE_INT16; break;
    case ACL_INT32: hccl_type = HCCL_DATA_TYPE_INT32; break;
    case ACL_FLOAT16: hccl_type = HCCL_DATA_TYPE_FP16; break;
    case ACL_BF16: hccl_type = HCCL_DATA_TYPE_BFP16; break;
    case ACL_FLOAT: hccl_type = HCCL_DATA_TYPE_FP32; break;
    default:
      return Fail(ACL_ERROR_INVALID_PARAM, "{}: type {} is not int8, int16, int32, fp16, bf16 or fp32", kApi,
                  static_cast<int>(type));
  }
  const size_t element = distbarrier::comm::collectives::ElementBytes(hccl_type);
  if (count % element != 0) {
    return Fail(ACL_ERROR_INVALID_PARAM, "{}: count {} bytes is not a whole number of {}-byte elements", kApi, count,
                element);
  }
  auto& memory = Runtime::Instance().Memory();
  auto dst_block = memory.Find(dst, count, MemoryKind::kDevice);
  auto src_block = memory.Find(src, count, MemoryKind::kDevice);
  if (!dst_block || !src_block) {
    return Fail(ACL_ERROR_INVALID_PARAM, "{}: {} (+{} bytes) is not inside device memory from aclrtMalloc", kApi,
                dst_block ? src : dst, count);
  }
  aclError error = ACL_SUCCESS;
  auto resolved = Runtime::Instance().ResolveStream(stream, &error);
  if (!resolved) return error;
  // The task holds both blocks: an aclrtFree before it ran leaves them alive (as aclrtMemcpyAsync).
  resolved->Enqueue(distbarrier::runtime::Task{
      .run = [dst, src, count, element, hccl_type, op,
              keep = std::pair{std::move(dst_block), std::move(src_block)}](const std::stop_token&) {
        auto* out = static_cast<std::byte*>(dst);
        const auto* in = static_cast<const std::byte*>(src);
        // dst is read and written chunk by chunk: ReduceSources reads a chunk of each source
        // before it writes that chunk of the output.
        distbarrier::comm::collectives::ReduceSources(
            hccl_type, op, 2, count / element,
            [&](int source, size_t first, size_t n, std::byte* into) {
              std::memcpy(into, (source == 0 ? out : in) + first * element, n * element);
            },
            out);
        return distbarrier::runtime::TaskStatus::Ok();
      }});
  return ACL_SUCCESS;
}
DISTBARRIER_ACL_GUARD
