// The ACL runtime entry points: argument checks and translation into the runtime layer.
#include <chrono>
#include <cstring>

#include "acl/acl.h"
#include "api/guard.h"
#include "common/dtype.h"
#include "common/error.h"
#include "runtime/runtime.h"
#include "shutdown.h"

using distbarrier::Fail;
using distbarrier::runtime::Event;
using distbarrier::runtime::MemoryKind;
using distbarrier::runtime::Runtime;
using distbarrier::runtime::Stream;
using distbarrier::runtime::Task;
using distbarrier::runtime::TaskStatus;

namespace {

int64_t SteadyNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::shared_ptr<Event> FindEvent(const char* api, aclrtEvent handle, aclError* error) {
  // An event's pending record in a forked child would complete on a stream that is not there.
  if (aclError forked = Runtime::Instance().CheckNotForked(api); forked != ACL_SUCCESS) {
    *error = forked;
    return nullptr;
  }
  std::shared_ptr<Event> event = Runtime::Instance().Events().Find(handle);
  if (!event) *error = Fail(ACL_ERROR_RT_INVALID_HANDLE, "{}: event {} is not live", api, handle);
  return event;
}

// The allocations a copy touches, for an asynchronous copy to hold until it ran; null for a
// side in plain host memory (malloc, the stack), which the caller keeps valid, as in CANN.
struct CopyMemory {
  distbarrier::runtime::MemoryRef dst;
  distbarrier::runtime::MemoryRef src;
};

aclError CheckCopy(const char* api, void* dst, size_t dest_max, const void* src, size_t count, aclrtMemcpyKind kind,
                   CopyMemory* memory_out) {
  if (dst == nullptr || src == nullptr) return Fail(ACL_ERROR_INVALID_PARAM, "{}: dst or src is null", api);
  if (count > dest_max) {
    return Fail(ACL_ERROR_INVALID_PARAM, "{}: count {} exceeds destMax {}", api, count, dest_max);
  }
  bool dst_on_device = false;
  bool src_on_device = false;
  switch (kind) {
    case ACL_MEMCPY_HOST_TO_HOST: break;
    case ACL_MEMCPY_HOST_TO_DEVICE: dst_on_device = true; break;
    case ACL_MEMCPY_DEVICE_TO_HOST: src_on_device = true; break;
    case ACL_MEMCPY_DEVICE_TO_DEVICE: dst_on_device = src_on_device = true; break;
    default: return Fail(ACL_ERROR_INVALID_PARAM, "{}: kind {} is not a valid aclrtMemcpyKind", api, static_cast<int>(kind));
  }
  auto& memory = Runtime::Instance().Memory();
  auto check_side = [&](const char* name, const void* pointer, bool on_device,
                        distbarrier::runtime::MemoryRef* block) -> aclError {
    if (on_device) {
      *block = memory.Find(pointer, count, MemoryKind::kDevice);
      if (!*block) {
        return Fail(ACL_ERROR_INVALID_PARAM,
                    "{}: {} {} (+{} bytes) is not inside device memory from aclrtMalloc, as kind {} requires", api, name,
                    pointer, count, static_cast<int>(kind));
      }
      return ACL_SUCCESS;
    }
    if (memory.Overlaps(pointer, MemoryKind::kDevice)) {
      return Fail(ACL_ERROR_INVALID_PARAM, "{}: {} {} is device memory, but kind {} says host", api, name, pointer,
                  static_cast<int>(kind));
    }
    if (memory.Overlaps(pointer, MemoryKind::kHost)) {  // from aclrtMallocHost: the copy must fit in it
      *block = memory.Find(pointer, count, MemoryKind::kHost);
      if (!*block) {
        return Fail(ACL_ERROR_INVALID_PARAM, "{}: {} {} (+{} bytes) runs past the end of its aclrtMallocHost block",
                    api, name, pointer, count);
      }
    }
    return ACL_SUCCESS;
  };
  if (aclError error = check_side("dst", dst, dst_on_device, &memory_out->dst); error != ACL_SUCCESS) return error;
  return check_side("src", src, src_on_device, &memory_out->src);
}

}  // namespace

extern "C" {

size_t aclDataTypeSize(aclDataType dataType) { return distbarrier::DataTypeSize(dataType); }

const char* aclGetRecentErrMsg(void) { return distbarrier::RecentError(); }

// As in CANN: once per process until aclFinalize (then again); the file must be JSON if named.
aclError aclInit(const char* configPath) try {
  if (aclError error = distbarrier::api::ReadAclConfig(configPath); error != ACL_SUCCESS) return error;
  if (!distbarrier::api::MarkInitialized()) {
    return Fail(ACL_ERROR_REPEAT_INITIALIZE, "aclInit: already initialized (call aclFinalize first)");
  }
  return ACL_SUCCESS;
} DISTBARRIER_ACL_GUARD

aclError aclFinalize(void) try { return distbarrier::api::ReleaseEverything(); } DISTBARRIER_ACL_GUARD

aclError aclrtSetDevice(int32_t deviceId) try { return Runtime::Instance().SetDevice(deviceId); } DISTBARRIER_ACL_GUARD
aclError aclrtResetDevice(int32_t deviceId) try { return Runtime::Instance().ResetDevice(deviceId); } DISTBARRIER_ACL_GUARD

aclError aclrtGetDevice(int32_t* deviceId) try {
  if (deviceId == nullptr) return Fail(ACL_ERROR_INVALID_PARAM, "aclrtGetDevice: deviceId is null");
  aclError error = ACL_SUCCESS;
  auto context = Runtime::Instance().CurrentContext(&error);
  if (!context) return error;
  *deviceId = context->device;
  return ACL_SUCCESS;
} DISTBARRIER_ACL_GUARD

aclError aclrtGetDeviceCount(uint32_t* count) try {
  if (count == nullptr) return Fail(ACL_ERROR_INVALID_PARAM, "aclrtGetDeviceCount: count is null");
  *count = static_cast<uint32_t>(Runtime::Instance().DeviceCount());
  if (*count == 0) return Fail(ACL_ERROR_RT_NO_DEVICE, "aclrtGetDeviceCount: DISTBARRIER_DEVICE_COUNT is 0");
  return ACL_SUCCESS;
} DISTBARRIER_ACL_GUARD

aclError aclrtSynchronizeDevice(void) try {
  aclError error = ACL_SUCCESS;
  auto context = Runtime::Instance().CurrentContext(&error);
  if (!context) return error;
  auto streams = Runtime::Instance().StreamsOfDevice(context->device);
  for (auto& stream : streams) {
    if (stream.get() == Stream::CurrentWorker()) {  // checked first: nothing is waited for in vain
      return Fail(ACL_ERROR_RT_PARAM_INVALID,
                  "aclrtSynchronizeDevice: called from a host function running on a stream of device {}; it would "
                  "wait for itself forever",
                  context->device);
    }
  }
  aclError first_failure = ACL_SUCCESS;
  for (auto& stream : streams) {
    aclError result = stream->Synchronize();
    if (first_failure == ACL_SUCCESS) first_failure = result;
  }
  return first_failure;
} DISTBARRIER_ACL_GUARD

aclError aclrtCreateContext(aclrtContext* context, int32_t deviceId) try {
  return Runtime::Instance().CreateContext(deviceId, context);
} DISTBARRIER_ACL_GUARD
aclError aclrtDestroyContext(aclrtContext context) try { return Runtime::Instance().DestroyContext(context); } DISTBARRIER_ACL_GUARD
aclError aclrtSetCurrentContext(aclrtContext context) try { return Runtime::Instance().SetCurrentContext(context); } DISTBARRIER_ACL_GUARD

aclError aclrtGetCurrentContext(aclrtContext* context) try {
  if (context == nullptr) return Fail(ACL_ERROR_INVALID_PARAM, "aclrtGetCurrentContext: context is null");
  aclError error = ACL_SUCCESS;
  if (!Runtime::Instance().CurrentContext(&error)) return error;
  *context = Runtime::Instance().CurrentContextHandle();
  return ACL_SUCCESS;
} DISTBARRIER_ACL_GUARD

aclError aclrtCreateStream(aclrtStream* stream) try { return Runtime::Instance().CreateStream(stream); } DISTBARRIER_ACL_GUARD
aclError aclrtDestroyStream(aclrtStream stream) try { return Runtime::Instance().DestroyStream(stream); } DISTBARRIER_ACL_GUARD

aclError aclrtSynchronizeStream(aclrtStream stream) try {
  aclError error = ACL_SUCCESS;
  auto resolved = Runtime::Instance().ResolveStream(stream, &error);
  return resolved ? resolved->Synchronize() : error;
} DISTBARRIER_ACL_GUARD

aclError aclrtSynchronizeStreamWithTimeout(aclrtStream stream, int32_t timeout) try {
  if (timeout < -1) {
    return Fail(ACL_ERROR_INVALID_PARAM, "aclrtSynchronizeStreamWithTimeout: timeout {} ms is invalid (-1 waits forever)",
                timeout);
  }
  aclError error = ACL_SUCCESS;
  auto resolved = Runtime::Instance().ResolveStream(stream, &error);
  if (!resolved) return error;
  if (timeout == -1) return resolved->Synchronize();
  return resolved->Synchronize(std::chrono::milliseconds(timeout));
} DISTBARRIER_ACL_GUARD

aclError aclrtStreamQuery(aclrtStream stream, aclrtStreamStatus* status) try {
  if (status == nullptr) return Fail(ACL_ERROR_INVALID_PARAM, "aclrtStreamQuery: status is null");
  aclError error = ACL_SUCCESS;
  auto resolved = Runtime::Instance().ResolveStream(stream, &error);
  if (!resolved) return error;
  *status = resolved->Idle() ? ACL_STREAM_STATUS_COMPLETE : ACL_STREAM_STATUS_NOT_READY;
  return ACL_SUCCESS;
} DISTBARRIER_ACL_GUARD

aclError aclrtLaunchHostFunc(aclrtStream stream, aclrtHostFunc fn, void* args) try {
  if (fn == nullptr) return Fail(ACL_ERROR_INVALID_PARAM, "aclrtLaunchHostFunc: fn is null");
  aclError error = ACL_SUCCESS;
  auto resolved = Runtime::Instance().ResolveStream(stream, &error);
  if (!resolved) return error;
  resolved->Enqueue(Task{.run = [fn, args](const std::stop_token&) {
    fn(args);
    return TaskStatus::Ok();
  }});
  return ACL_SUCCESS;
} DISTBARRIER_ACL_GUARD

aclError aclrtCreateEvent(aclrtEvent* event) try {
  if (event == nullptr) return Fail(ACL_ERROR_INVALID_PARAM, "aclrtCreateEvent: event is null");
  *event = Runtime::Instance().Events().Add(std::make_shared<Event>());
  return ACL_SUCCESS;
} DISTBARRIER_ACL_GUARD

aclError aclrtDestroyEvent(aclrtEvent event) try {
  if (!Runtime::Instance().Events().Take(event)) {
    return Fail(ACL_ERROR_RT_INVALID_HANDLE, "aclrtDestroyEvent: event {} is not live", event);
  }
  return ACL_SUCCESS;
} DISTBARRIER_ACL_GUARD

aclError aclrtRecordEvent(aclrtEvent event, aclrtStream stream) try {
  aclError error = ACL_SUCCESS;
  auto found = FindEvent("aclrtRecordEvent", event, &error);
  if (!found) return error;
  auto resolved = Runtime::Instance().ResolveStream(stream, &error);
  if (!resolved) return error;
  const uint64_t record = found->NewRecord(resolved.get());
  resolved->Enqueue(Task{.run =
                             [found, record](const std::stop_token&) {
                               found->Complete(record, TaskStatus::Ok(), SteadyNowNs());
                               return TaskStatus::Ok();
                             },
                         .on_drop = [found, record](const TaskStatus& cause) { found->Complete(record, cause, SteadyNowNs()); },
                         .may_run_inline = true});
  return ACL_SUCCESS;
} DISTBARRIER_ACL_GUARD

aclError aclrtStreamWaitEvent(aclrtStream stream, aclrtEvent event) try {
  aclError error = ACL_SUCCESS;
  auto found = FindEvent("aclrtStreamWaitEvent", event, &error);
  if (!found) return error;
  auto resolved = Runtime::Instance().ResolveStream(stream, &error);
  if (!resolved) return error;
  const uint64_t record = found->LatestRecord();
  if (record == 0) return ACL_SUCCESS;  // never recorded: nothing to wait for
  resolved->Enqueue(Task{.run = [found, record](const std::stop_token& stop) { return found->WaitFor(record, stop); }});
  return ACL_SUCCESS;
} DISTBARRIER_ACL_GUARD

aclError aclrtSynchronizeEvent(aclrtEvent event) try {
  aclError error = ACL_SUCCESS;
  auto found = FindEvent("aclrtSynchronizeEvent", event, &error);
  if (!found) return error;
  const auto [record, recorded_on] = found->LatestRecordAndStream();
  // A host function waiting for a record queued behind it on its own stream would wait forever.
  if (recorded_on != nullptr && recorded_on == Stream::CurrentWorker() && !found->IsComplete(record)) {
    return Fail(ACL_ERROR_RT_PARAM_INVALID,
                "aclrtSynchronizeEvent: called from a host function on the stream where the event's latest record "
                "is queued behind it; it would wait for itself forever");
  }
  TaskStatus status = found->WaitFor(record, std::stop_token());
  if (status.ok()) return ACL_SUCCESS;
  distbarrier::SetRecentErrorQuiet(fmt::format("{} (error {})", status.message, status.code));
  return status.code;
} DISTBARRIER_ACL_GUARD

aclError aclrtQueryEventStatus(aclrtEvent event, aclrtEventRecordedStatus* status) try {
  if (status == nullptr) return Fail(ACL_ERROR_INVALID_PARAM, "aclrtQueryEventStatus: status is null");
  aclError error = ACL_SUCCESS;
  auto found = FindEvent("aclrtQueryEventStatus", event, &error);
  if (!found) return error;
  *status = found->IsComplete(found->LatestRecord()) ? ACL_EVENT_RECORDED_STATUS_COMPLETE
                                                     : ACL_EVENT_RECORDED_STATUS_NOT_READY;
  return ACL_SUCCESS;
} DISTBARRIER_ACL_GUARD

aclError aclrtEventElapsedTime(float* ms, aclrtEvent startEvent, aclrtEvent endEvent) try {
  if (ms == nullptr) return Fail(ACL_ERROR_INVALID_PARAM, "aclrtEventElapsedTime: ms is null");
  aclError error = ACL_SUCCESS;
  auto start = FindEvent("aclrtEventElapsedTime", startEvent, &error);
  if (!start) return error;
  auto end = FindEvent("aclrtEventElapsedTime", endEvent, &error);
  if (!end) return error;
  auto start_ns = start->CompletedTime();
  auto end_ns = end->CompletedTime();
  if (!start_ns || !end_ns) {
    return Fail(ACL_ERROR_RT_PARAM_INVALID,
                "aclrtEventElapsedTime: the {} event has not completed a successful record",
                !start_ns ? "start" : "end");
  }
  *ms = static_cast<float>(static_cast<double>(*end_ns - *start_ns) / 1e6);
  return ACL_SUCCESS;
} DISTBARRIER_ACL_GUARD

aclError aclrtMalloc(void** devPtr, size_t size, aclrtMemMallocPolicy policy) try {
  if (devPtr == nullptr) return Fail(ACL_ERROR_INVALID_PARAM, "aclrtMalloc: devPtr is null");
  if (size == 0) return Fail(ACL_ERROR_INVALID_PARAM, "aclrtMalloc: size is 0");
  // Every placement policy is the same host memory here; P2P memory is peer-accessible anyway.
  if (policy < ACL_MEM_MALLOC_HUGE_FIRST || policy > ACL_MEM_MALLOC_HUGE1G_ONLY_P2P) {
    return Fail(ACL_ERROR_INVALID_PARAM, "aclrtMalloc: policy {} is not a valid aclrtMemMallocPolicy",
                static_cast<int>(policy));
  }
  aclError error = ACL_SUCCESS;
  if (!Runtime::Instance().CurrentContext(&error)) return error;
  *devPtr = Runtime::Instance().Memory().Allocate(size, MemoryKind::kDevice);
  if (*devPtr == nullptr) return Fail(ACL_ERROR_RT_MEMORY_ALLOCATION, "aclrtMalloc: out of memory for {} bytes", size);
  return ACL_SUCCESS;
} DISTBARRIER_ACL_GUARD

aclError aclrtFree(void* devPtr) try {
  if (devPtr == nullptr) return Fail(ACL_ERROR_INVALID_PARAM, "aclrtFree: devPtr is null");
  if (!Runtime::Instance().Memory().Free(devPtr, MemoryKind::kDevice)) {
    return Fail(ACL_ERROR_INVALID_PARAM, "aclrtFree: {} is not device memory from aclrtMalloc (or was freed)", devPtr);
  }
  return ACL_SUCCESS;
} DISTBARRIER_ACL_GUARD

aclError aclrtMallocHost(void** hostPtr, size_t size) try {
  if (hostPtr == nullptr) return Fail(ACL_ERROR_INVALID_PARAM, "aclrtMallocHost: hostPtr is null");
  if (size == 0) return Fail(ACL_ERROR_INVALID_PARAM, "aclrtMallocHost: size is 0");
  *hostPtr = Runtime::Instance().Memory().Allocate(size, MemoryKind::kHost);
  if (*hostPtr == nullptr) {
    return Fail(ACL_ERROR_RT_MEMORY_ALLOCATION, "aclrtMallocHost: out of memory for {} bytes", size);
  }
  return ACL_SUCCESS;
} DISTBARRIER_ACL_GUARD

aclError aclrtFreeHost(void* hostPtr) try {
  if (hostPtr == nullptr) return Fail(ACL_ERROR_INVALID_PARAM, "aclrtFreeHost: hostPtr is null");
  if (!Runtime::Instance().Memory().Free(hostPtr, MemoryKind::kHost)) {
    return Fail(ACL_ERROR_INVALID_PARAM, "aclrtFreeHost: {} is not memory from aclrtMallocHost (or was freed)",
                hostPtr);
  }
  return ACL_SUCCESS;
} DISTBARRIER_ACL_GUARD

aclError aclrtMemcpy(void* dst, size_t destMax, const void* src, size_t count, aclrtMemcpyKind kind) try {
  CopyMemory memory;
  if (aclError error = CheckCopy("aclrtMemcpy", dst, destMax, src, count, kind, &memory); error != ACL_SUCCESS) {
    return error;
  }
  std::memmove(dst, src, count);
  return ACL_SUCCESS;
} DISTBARRIER_ACL_GUARD

aclError aclrtMemcpyAsync(void* dst, size_t destMax, const void* src, size_t count, aclrtMemcpyKind kind,
                          aclrtStream stream) try {
  CopyMemory memory;
  if (aclError error = CheckCopy("aclrtMemcpyAsync", dst, destMax, src, count, kind, &memory); error != ACL_SUCCESS) {
    return error;
  }
  aclError error = ACL_SUCCESS;
  auto resolved = Runtime::Instance().ResolveStream(stream, &error);
  if (!resolved) return error;
  // The task holds the blocks it copies between: an aclrtFree before it ran leaves them alive.
  resolved->Enqueue(Task{.run = [dst, src, count, keep_alive = std::move(memory)](const std::stop_token&) {
    std::memmove(dst, src, count);
    return TaskStatus::Ok();
  }});
  return ACL_SUCCESS;
} DISTBARRIER_ACL_GUARD

aclError aclrtMemset(void* devPtr, size_t maxCount, int32_t value, size_t count) try {
  if (devPtr == nullptr) return Fail(ACL_ERROR_INVALID_PARAM, "aclrtMemset: devPtr is null");
  if (count > maxCount) return Fail(ACL_ERROR_INVALID_PARAM, "aclrtMemset: count {} exceeds maxCount {}", count, maxCount);
  // As in CANN, the address says whether the memory is a device's or the host's.
  auto& memory = Runtime::Instance().Memory();
  if (!memory.Contains(devPtr, count, MemoryKind::kDevice) && !memory.Contains(devPtr, count, MemoryKind::kHost)) {
    return Fail(ACL_ERROR_INVALID_PARAM,
                "aclrtMemset: {} (+{} bytes) is not inside memory from aclrtMalloc or aclrtMallocHost", devPtr, count);
  }
  std::memset(devPtr, value, count);
  return ACL_SUCCESS;
} DISTBARRIER_ACL_GUARD

}  // extern "C"
