// The ACL runtime calls that public CANN programs use beyond the core slice (issue 17): forced
// reset and destroy, run mode, memory info, failure mode, asynchronous memset, callbacks with
// report threads, last errors, versions, fp16 conversion, default stream and peer access.
// Where a simulated device forces a choice, docs/DESIGN.md says which and why.
#include <pthread.h>
#include <sys/sysinfo.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stop_token>
#include <string>

#include "acl/acl.h"
#include "api/guard.h"
#include "common/error.h"
#include "common/half_float.h"
#include "distbarrier/distbarrier.h"
#include "runtime/runtime.h"

using distbarrier::Fail;
using distbarrier::runtime::MemoryKind;
using distbarrier::runtime::Runtime;
using distbarrier::runtime::Stream;
using distbarrier::runtime::Task;
using distbarrier::runtime::TaskStatus;

namespace distbarrier::api {

// aclInit's configuration file: null or "" needs none; otherwise it must exist and hold a JSON
// object. No key changes behaviour yet (CANN's "dump", "profiler", ... are accepted and ignored).
aclError ReadAclConfig(const char* path) {
  if (path == nullptr || path[0] == '\0') return ACL_SUCCESS;
  std::ifstream file(path);
  if (!file) return Fail(ACL_ERROR_INVALID_FILE, "aclInit: cannot read the configuration file '{}'", path);
  nlohmann::json config = nlohmann::json::parse(file, nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded() || !config.is_object()) {
    return Fail(ACL_ERROR_PARSE_FILE, "aclInit: the configuration file '{}' is not a JSON object", path);
  }
  return ACL_SUCCESS;
}

}  // namespace distbarrier::api

namespace {

// --- callbacks: each subscribed host thread has a queue of reports its aclrtProcessReport runs ---

struct Report {
  aclrtCallback fn;
  void* user_data;
  bool blocking;
  bool finished = false;  // under ReportQueue::mutex; a blocking launch waits for it
};

struct ReportQueue {
  std::mutex mutex;
  std::condition_variable_any changed;  // a report came or finished, or the queue closed
  std::deque<std::shared_ptr<Report>> pending;
  bool closed = false;  // its thread unsubscribed from its last stream

  // Drops what is pending; a blocking launch waiting on it fails instead of hanging.
  void Close() {
    std::lock_guard lock(mutex);
    closed = true;
    pending.clear();
    changed.notify_all();
  }
};

class Subscriptions {
 public:
  static Subscriptions& Instance() {
    static auto* instance = new Subscriptions;  // never destroyed: threads may report at exit
    return *instance;
  }

  aclError Subscribe(uint64_t thread, const std::shared_ptr<Stream>& stream) {
    std::lock_guard lock(mutex_);
    auto found = thread_of_stream_.find(stream);
    if (found != thread_of_stream_.end()) {
      return Fail(ACL_ERROR_RT_STREAM_SUBSCRIBE, "aclrtSubscribeReport: the stream is already subscribed by thread {}",
                  found->second);
    }
    thread_of_stream_[stream] = thread;
    auto& queue = queue_of_thread_[thread];
    if (!queue) queue = std::make_shared<ReportQueue>();
    return ACL_SUCCESS;
  }

  aclError Unsubscribe(uint64_t thread, const std::shared_ptr<Stream>& stream) {
    std::shared_ptr<ReportQueue> to_close;
    {
      std::lock_guard lock(mutex_);
      auto found = thread_of_stream_.find(stream);
      if (found == thread_of_stream_.end() || found->second != thread) {
        return Fail(ACL_ERROR_RT_STREAM_NO_CB_REG, "aclrtUnSubscribeReport: thread {} is not subscribed to the stream",
                    thread);
      }
      thread_of_stream_.erase(found);
      bool thread_has_more = false;
      for (const auto& [other, owner] : thread_of_stream_) thread_has_more |= (owner == thread && !other.expired());
      if (!thread_has_more) {
        to_close = std::move(queue_of_thread_[thread]);
        queue_of_thread_.erase(thread);
      }
    }
    if (to_close) to_close->Close();
    return ACL_SUCCESS;
  }

  std::shared_ptr<ReportQueue> QueueOfStream(const std::shared_ptr<Stream>& stream) {
    std::lock_guard lock(mutex_);
    auto found = thread_of_stream_.find(stream);
    if (found == thread_of_stream_.end()) return nullptr;
    return queue_of_thread_[found->second];
  }

  std::shared_ptr<ReportQueue> QueueOfThread(uint64_t thread) {
    std::lock_guard lock(mutex_);
    auto found = queue_of_thread_.find(thread);
    return found == queue_of_thread_.end() ? nullptr : found->second;
  }

 private:
  std::mutex mutex_;
  // Weak: a destroyed stream's entry stays harmless, and its address is never confused with a
  // later stream's.
  std::map<std::weak_ptr<Stream>, uint64_t, std::owner_less<std::weak_ptr<Stream>>> thread_of_stream_;
  std::map<uint64_t, std::shared_ptr<ReportQueue>> queue_of_thread_;
};

uint64_t CurrentThreadId() {
  return static_cast<uint64_t>(pthread_self());
}

std::shared_ptr<Stream> ResolveNamedStream(const char* api, aclrtStream stream, aclError* error) {
  if (stream == nullptr) {
    *error = Fail(ACL_ERROR_INVALID_PARAM, "{}: stream is null (the default stream cannot be used here)", api);
    return nullptr;
  }
  return Runtime::Instance().ResolveStream(stream, error);
}

aclError CheckLevel(const char* api, aclrtLastErrLevel level) {
  if (level != ACL_RT_THREAD_LEVEL) {
    return Fail(ACL_ERROR_INVALID_PARAM, "{}: level {} is not ACL_RT_THREAD_LEVEL", api, static_cast<int>(level));
  }
  return ACL_SUCCESS;
}

aclError CheckPeer(const char* api, int32_t peerDeviceId) {
  aclError error = ACL_SUCCESS;
  auto context = Runtime::Instance().CurrentContext(&error);
  if (!context) return error;
  if (!Runtime::Instance().ValidDevice(peerDeviceId)) {
    return Fail(ACL_ERROR_RT_INVALID_DEVICEID, "{}: peer device {} is out of range [0, {})", api, peerDeviceId,
                Runtime::Instance().DeviceCount());
  }
  if (peerDeviceId == context->device) {
    return Fail(ACL_ERROR_INVALID_PARAM, "{}: peer device {} is the current device", api, peerDeviceId);
  }
  return ACL_SUCCESS;
}

}  // namespace

extern "C" {

// --- devices and streams ---

aclError aclrtResetDeviceForce(int32_t deviceId) try { return Runtime::Instance().ResetDeviceForce(deviceId); }
DISTBARRIER_ACL_GUARD

// ACL_HOST: the program runs on the host and device memory is separate from its own, so it
// copies through aclrtMemcpy, which checks every copy against aclrtMalloc's blocks.
aclError aclrtGetRunMode(aclrtRunMode* runMode) try {
  if (runMode == nullptr) return Fail(ACL_ERROR_INVALID_PARAM, "aclrtGetRunMode: runMode is null");
  *runMode = ACL_HOST;
  return ACL_SUCCESS;
}
DISTBARRIER_ACL_GUARD

// Drops the stream's pending tasks (the running one is asked to stop), then destroys it.
aclError aclrtDestroyStreamForce(aclrtStream stream) try {
  aclError error = ACL_SUCCESS;
  auto resolved = ResolveNamedStream("aclrtDestroyStreamForce", stream, &error);
  if (!resolved) return error;
  resolved->Abort(
      TaskStatus{.code = ACL_ERROR_RT_STREAM_ABORT, .message = "the stream was destroyed by aclrtDestroyStreamForce"});
  return Runtime::Instance().DestroyStream(stream);
}
DISTBARRIER_ACL_GUARD

// Device memory is host memory: every attribute reports the host's RAM (sysinfo).
aclError aclrtGetMemInfo(aclrtMemAttr attr, size_t* free, size_t* total) try {
  if (free == nullptr || total == nullptr)
    return Fail(ACL_ERROR_INVALID_PARAM, "aclrtGetMemInfo: free or total is null");
  if (attr < ACL_DDR_MEM || attr > ACL_HBM_MEM_P2P_NORMAL) {
    return Fail(ACL_ERROR_INVALID_PARAM, "aclrtGetMemInfo: attr {} is not a valid aclrtMemAttr",
                static_cast<int>(attr));
  }
  aclError error = ACL_SUCCESS;
  if (!Runtime::Instance().CurrentContext(&error)) return error;
  struct sysinfo info {};
  if (sysinfo(&info) != 0) return Fail(ACL_ERROR_RT_INTERNAL_ERROR, "aclrtGetMemInfo: sysinfo failed: {}", errno);
  *free = static_cast<size_t>(info.freeram) * info.mem_unit;
  *total = static_cast<size_t>(info.totalram) * info.mem_unit;
  return ACL_SUCCESS;
}
DISTBARRIER_ACL_GUARD

// Both modes are accepted; our streams always stop on failure (CONTRACT.md section 5).
aclError aclrtSetStreamFailureMode(aclrtStream stream, uint64_t mode) try {
  if (mode != ACL_CONTINUE_ON_FAILURE && mode != ACL_STOP_ON_FAILURE) {
    return Fail(ACL_ERROR_INVALID_PARAM,
                "aclrtSetStreamFailureMode: mode {} is not ACL_CONTINUE_ON_FAILURE (0) or "
                "ACL_STOP_ON_FAILURE (1)",
                mode);
  }
  aclError error = ACL_SUCCESS;
  return Runtime::Instance().ResolveStream(stream, &error) ? ACL_SUCCESS : error;
}
DISTBARRIER_ACL_GUARD

aclError aclrtMemsetAsync(void* devPtr, size_t maxCount, int32_t value, size_t count, aclrtStream stream) try {
  if (devPtr == nullptr) return Fail(ACL_ERROR_INVALID_PARAM, "aclrtMemsetAsync: devPtr is null");
  if (count > maxCount) {
    return Fail(ACL_ERROR_INVALID_PARAM, "aclrtMemsetAsync: count {} exceeds maxCount {}", count, maxCount);
  }
  // As in CANN, the address says whether the memory is a device's or the host's.
  auto& memory = Runtime::Instance().Memory();
  auto block = memory.Find(devPtr, count, MemoryKind::kDevice);
  if (!block) block = memory.Find(devPtr, count, MemoryKind::kHost);
  if (!block) {
    return Fail(ACL_ERROR_INVALID_PARAM,
                "aclrtMemsetAsync: {} (+{} bytes) is not inside memory from aclrtMalloc or aclrtMallocHost", devPtr,
                count);
  }
  aclError error = ACL_SUCCESS;
  auto resolved = Runtime::Instance().ResolveStream(stream, &error);
  if (!resolved) return error;
  // The task holds the block: an aclrtFree before it ran leaves it alive (as aclrtMemcpyAsync).
  resolved->Enqueue(Task{.run = [devPtr, value, count, keep_alive = std::move(block)](const std::stop_token&) {
    std::memset(devPtr, value, count);
    return TaskStatus::Ok();
  }});
  return ACL_SUCCESS;
}
DISTBARRIER_ACL_GUARD

// The default stream has no handle here: null names it in every call, as in CANN.
aclError aclrtCtxGetCurrentDefaultStream(aclrtStream* stream) try {
  if (stream == nullptr) return Fail(ACL_ERROR_INVALID_PARAM, "aclrtCtxGetCurrentDefaultStream: stream is null");
  aclError error = ACL_SUCCESS;
  if (!Runtime::Instance().ResolveStream(nullptr, &error)) return error;
  *stream = nullptr;
  return ACL_SUCCESS;
}
DISTBARRIER_ACL_GUARD

// --- callbacks ---

aclError aclrtSubscribeReport(uint64_t threadId, aclrtStream stream) try {
  aclError error = ACL_SUCCESS;
  auto resolved = Runtime::Instance().ResolveStream(stream, &error);
  if (!resolved) return error;
  return Subscriptions::Instance().Subscribe(threadId, resolved);
}
DISTBARRIER_ACL_GUARD

aclError aclrtUnSubscribeReport(uint64_t threadId, aclrtStream stream) try {
  aclError error = ACL_SUCCESS;
  auto resolved = Runtime::Instance().ResolveStream(stream, &error);
  if (!resolved) return error;
  return Subscriptions::Instance().Unsubscribe(threadId, resolved);
}
DISTBARRIER_ACL_GUARD

// When the stream reaches the callback it hands it to the subscribed thread; a blocking one
// holds the stream until that thread ran it.
aclError aclrtLaunchCallback(aclrtCallback fn, void* userData, aclrtCallbackBlockType blockType,
                             aclrtStream stream) try {
  if (fn == nullptr) return Fail(ACL_ERROR_INVALID_PARAM, "aclrtLaunchCallback: fn is null");
  if (blockType != ACL_CALLBACK_NO_BLOCK && blockType != ACL_CALLBACK_BLOCK) {
    return Fail(ACL_ERROR_INVALID_PARAM, "aclrtLaunchCallback: blockType {} is not a valid aclrtCallbackBlockType",
                static_cast<int>(blockType));
  }
  aclError error = ACL_SUCCESS;
  auto resolved = Runtime::Instance().ResolveStream(stream, &error);
  if (!resolved) return error;
  auto queue = Subscriptions::Instance().QueueOfStream(resolved);
  if (!queue) {
    return Fail(ACL_ERROR_RT_STREAM_NO_CB_REG,
                "aclrtLaunchCallback: no thread subscribed to the stream "
                "(aclrtSubscribeReport)");
  }
  auto report =
      std::make_shared<Report>(Report{.fn = fn, .user_data = userData, .blocking = blockType == ACL_CALLBACK_BLOCK});
  resolved->Enqueue(Task{.run = [queue, report](const std::stop_token& stop) {
    std::unique_lock lock(queue->mutex);
    if (queue->closed) {
      return TaskStatus{ACL_ERROR_RT_STREAM_NO_CB_REG, "aclrtLaunchCallback: the callback's thread unsubscribed"};
    }
    queue->pending.push_back(report);
    queue->changed.notify_all();
    if (!report->blocking) return TaskStatus::Ok();
    queue->changed.wait(lock, stop, [&] { return report->finished || queue->closed; });
    if (report->finished) return TaskStatus::Ok();
    return TaskStatus{
        ACL_ERROR_RT_STREAM_ABORT,
        "aclrtLaunchCallback: the stream was aborted, or the thread unsubscribed, before the callback ran"};
  }});
  return ACL_SUCCESS;
}
DISTBARRIER_ACL_GUARD

aclError aclrtProcessReport(int32_t timeout) try {
  if (timeout < -1) return Fail(ACL_ERROR_INVALID_PARAM, "aclrtProcessReport: timeout {} ms is invalid", timeout);
  auto queue = Subscriptions::Instance().QueueOfThread(CurrentThreadId());
  if (!queue) {
    return Fail(ACL_ERROR_RT_THREAD_SUBSCRIBE, "aclrtProcessReport: the calling thread subscribed to no stream");
  }
  std::shared_ptr<Report> report;
  {
    std::unique_lock lock(queue->mutex);
    auto ready = [&] { return !queue->pending.empty() || queue->closed; };
    if (timeout == -1) {
      queue->changed.wait(lock, ready);
    } else if (!queue->changed.wait_for(lock, std::chrono::milliseconds(timeout), ready)) {
      // Polling loops call this every few ms: a timeout is routine, so it is not logged.
      distbarrier::SetRecentErrorQuiet(
          fmt::format("aclrtProcessReport: no callback within {} ms (error {})", timeout, ACL_ERROR_RT_REPORT_TIMEOUT));
      distbarrier::NoteErrorCode(ACL_ERROR_RT_REPORT_TIMEOUT);
      return ACL_ERROR_RT_REPORT_TIMEOUT;
    }
    if (queue->pending.empty()) {
      return Fail(ACL_ERROR_RT_THREAD_SUBSCRIBE, "aclrtProcessReport: the calling thread unsubscribed");
    }
    report = std::move(queue->pending.front());
    queue->pending.pop_front();
  }
  report->fn(report->user_data);
  std::lock_guard lock(queue->mutex);
  report->finished = true;
  queue->changed.notify_all();
  return ACL_SUCCESS;
}
DISTBARRIER_ACL_GUARD

// --- errors, versions, conversions ---

aclError aclrtGetLastError(aclrtLastErrLevel level) try {
  if (aclError error = CheckLevel("aclrtGetLastError", level); error != ACL_SUCCESS) return error;
  return distbarrier::TakeLastErrorCode();
}
DISTBARRIER_ACL_GUARD

aclError aclrtPeekAtLastError(aclrtLastErrLevel level) try {
  if (aclError error = CheckLevel("aclrtPeekAtLastError", level); error != ACL_SUCCESS) return error;
  return distbarrier::PeekLastErrorCode();
}
DISTBARRIER_ACL_GUARD

aclError aclsysGetVersionStr(char* pkgName, char* versionStr) try {
  if (pkgName == nullptr || versionStr == nullptr) {
    return Fail(ACL_ERROR_INVALID_PARAM, "aclsysGetVersionStr: pkgName or versionStr is null");
  }
  if (pkgName[0] == '\0') return Fail(ACL_ERROR_INVALID_PARAM, "aclsysGetVersionStr: pkgName is empty");
  std::strncpy(versionStr, distbarrierVersion(), ACL_PKG_VERSION_MAX_SIZE - 1);
  versionStr[ACL_PKG_VERSION_MAX_SIZE - 1] = '\0';
  return ACL_SUCCESS;
}
DISTBARRIER_ACL_GUARD

aclError aclsysGetVersionNum(char* pkgName, int32_t* versionNum) try {
  if (pkgName == nullptr || versionNum == nullptr) {
    return Fail(ACL_ERROR_INVALID_PARAM, "aclsysGetVersionNum: pkgName or versionNum is null");
  }
  if (pkgName[0] == '\0') return Fail(ACL_ERROR_INVALID_PARAM, "aclsysGetVersionNum: pkgName is empty");
  *versionNum = DISTBARRIER_VERSION_MAJOR * 10000000 + DISTBARRIER_VERSION_MINOR * 100000 + DISTBARRIER_VERSION_PATCH * 1000;
  return ACL_SUCCESS;
}
DISTBARRIER_ACL_GUARD

const char* aclrtGetSocName(void) { return "Ascend910_9391"; }

aclError aclrtQueryDeviceStatus(int32_t deviceId, aclrtDeviceStatus* deviceStatus) try {
  if (deviceStatus == nullptr) return Fail(ACL_ERROR_INVALID_PARAM, "aclrtQueryDeviceStatus: deviceStatus is null");
  auto& runtime = Runtime::Instance();
  if (!runtime.ValidDevice(deviceId)) {
    return Fail(ACL_ERROR_RT_INVALID_DEVICEID, "aclrtQueryDeviceStatus: device {} is out of range [0, {})", deviceId,
                runtime.DeviceCount());
  }
  *deviceStatus = ACL_RT_DEVICE_STATUS_NORMAL;
  return ACL_SUCCESS;
}
DISTBARRIER_ACL_GUARD

float aclFloat16ToFloat(aclFloat16 value) {
  return distbarrier::Fp16ToFloat(value);
}
aclFloat16 aclFloatToFloat16(float value) {
  return distbarrier::FloatToFp16(value);
}

// --- peer access: simulated devices share host memory ---

aclError aclrtDeviceCanAccessPeer(int32_t* canAccessPeer, int32_t deviceId, int32_t peerDeviceId) try {
  if (canAccessPeer == nullptr) return Fail(ACL_ERROR_INVALID_PARAM, "aclrtDeviceCanAccessPeer: canAccessPeer is null");
  auto& runtime = Runtime::Instance();
  if (!runtime.ValidDevice(deviceId) || !runtime.ValidDevice(peerDeviceId)) {
    return Fail(ACL_ERROR_RT_INVALID_DEVICEID, "aclrtDeviceCanAccessPeer: device {} or peer {} is out of range [0, {})",
                deviceId, peerDeviceId, runtime.DeviceCount());
  }
  *canAccessPeer = deviceId != peerDeviceId ? 1 : 0;
  return ACL_SUCCESS;
}
DISTBARRIER_ACL_GUARD

aclError aclrtDeviceEnablePeerAccess(int32_t peerDeviceId, uint32_t flags) try {
  if (flags != 0) return Fail(ACL_ERROR_INVALID_PARAM, "aclrtDeviceEnablePeerAccess: flags {} must be 0", flags);
  return CheckPeer("aclrtDeviceEnablePeerAccess", peerDeviceId);
}
DISTBARRIER_ACL_GUARD

aclError aclrtDeviceDisablePeerAccess(int32_t peerDeviceId) try {
  return CheckPeer("aclrtDeviceDisablePeerAccess", peerDeviceId);
}
DISTBARRIER_ACL_GUARD

}  // extern "C"
