#include "runtime/runtime.h"

#include <fmt/format.h>
#include <pthread.h>

#include <algorithm>
#include <string>

#include "common/env.h"
#include "common/error.h"

namespace distbarrier::runtime {
namespace {
thread_local void* current_context = nullptr;
constexpr int kDefaultDeviceCount = 16;
constexpr int kMaxDeviceCount = 4096;
}  // namespace

// Never destroyed: worker threads may still be blocked in a barrier at exit, and joining
// them from a static destructor would hang the program's exit. Replaced (and the old one
// kept, untouched) only by aclFinalize in a forked child.
namespace {
std::atomic<Runtime*> g_runtime{nullptr};
std::vector<Runtime*>* g_inherited = nullptr;  // what forked children forgot: kept reachable
}  // namespace

Runtime& Runtime::Instance() {
  if (Runtime* runtime = g_runtime.load(std::memory_order_acquire)) return *runtime;
  static Runtime* first = [] {
    auto* runtime = new Runtime;
    g_runtime.store(runtime, std::memory_order_release);
    pthread_atfork(nullptr, nullptr, OnForkChild);
    return runtime;
  }();
  return *first;
}

void Runtime::OnForkChild() {
  // Only the forking thread exists in the child: no locks, just a flag read at entry points.
  Runtime* runtime = g_runtime.load(std::memory_order_relaxed);
  if (runtime != nullptr && runtime->in_use_.load(std::memory_order_relaxed)) {
    runtime->inherited_.store(true, std::memory_order_relaxed);
  }
}

std::string Runtime::ForkedChildMessage(const char* api) {
  return fmt::format(
      "{}: this process was forked after the runtime was initialized; the parent's devices, streams and their "
      "threads do not exist here. Call aclFinalize() in the child to forget them and start again, or fork before "
      "the first aclrtSetDevice",
      api);
}

aclError Runtime::CheckNotForked(const char* api) const {
  if (!InheritedAcrossFork()) return ACL_SUCCESS;
  return Fail(ACL_ERROR_UNINITIALIZE, "{}", ForkedChildMessage(api));
}

Runtime::Runtime()
    : device_count_(static_cast<int>(
          std::clamp<int64_t>(EnvInt("DISTBARRIER_DEVICE_COUNT", kDefaultDeviceCount), 0, kMaxDeviceCount))),
      device_users_(static_cast<size_t>(device_count_), 0),
      default_context_(static_cast<size_t>(device_count_), nullptr) {}

std::shared_ptr<Context> Runtime::DefaultContext(int device) {
  std::lock_guard lock(mutex_);
  if (default_context_[device] == nullptr) {
    in_use_.store(true, std::memory_order_relaxed);
    default_context_[device] = contexts_.Add(std::make_shared<Context>(device));
  }
  return contexts_.Find(default_context_[device]);
}

aclError Runtime::SetDevice(int device) {
  if (aclError error = CheckNotForked("aclrtSetDevice"); error != ACL_SUCCESS) return error;
  if (!ValidDevice(device)) {
    return Fail(ACL_ERROR_RT_INVALID_DEVICEID, "aclrtSetDevice: device id {} is out of range [0, {})", device,
                device_count_);
  }
  DefaultContext(device);
  std::lock_guard lock(mutex_);
  ++device_users_[device];
  current_context = default_context_[device];
  return ACL_SUCCESS;
}

aclError Runtime::ResetDevice(int device) {
  if (aclError error = CheckNotForked("aclrtResetDevice"); error != ACL_SUCCESS) return error;
  if (!ValidDevice(device)) {
    return Fail(ACL_ERROR_RT_INVALID_DEVICEID, "aclrtResetDevice: device id {} is out of range [0, {})", device,
                device_count_);
  }
  void* to_destroy = nullptr;
  {
    std::lock_guard lock(mutex_);
    if (device_users_[device] > 0 && --device_users_[device] == 0) {
      to_destroy = default_context_[device];
      default_context_[device] = nullptr;
    }
  }
  if (to_destroy != nullptr) DestroyContext(to_destroy);
  return ACL_SUCCESS;
}

aclError Runtime::ResetDeviceForce(int device) {
  if (ValidDevice(device)) {
    std::lock_guard lock(mutex_);
    if (device_users_[device] > 1) device_users_[device] = 1;  // ResetDevice takes the last one
  }
  return ResetDevice(device);
}

aclError Runtime::CreateContext(int device, void** handle) {
  if (handle == nullptr) return Fail(ACL_ERROR_INVALID_PARAM, "aclrtCreateContext: context is null");
  if (aclError error = CheckNotForked("aclrtCreateContext"); error != ACL_SUCCESS) return error;
  if (!ValidDevice(device)) {
    return Fail(ACL_ERROR_RT_INVALID_DEVICEID, "aclrtCreateContext: device id {} is out of range [0, {})",
                device, device_count_);
  }
  in_use_.store(true, std::memory_order_relaxed);
  *handle = contexts_.Add(std::make_shared<Context>(device));
  current_context = *handle;  // as in CANN, the new context becomes current
  return ACL_SUCCESS;
}

aclError Runtime::DestroyContext(void* handle) {
  if (aclError error = CheckNotForked("aclrtDestroyContext"); error != ACL_SUCCESS) return error;
  std::shared_ptr<Context> context = contexts_.Take(handle);
  if (!context) {
    return Fail(ACL_ERROR_RT_INVALID_HANDLE, "aclrtDestroyContext: context {} is not live", handle);
  }
  std::vector<std::shared_ptr<Stream>> streams = TakeStreams(*context);
  {
    std::lock_guard lock(mutex_);
    for (void*& default_handle : default_context_) {
      if (default_handle == handle) default_handle = nullptr;
    }
  }
  if (current_context == handle) current_context = nullptr;
  Retire(std::move(streams));
  return ACL_SUCCESS;
}

aclError Runtime::SetCurrentContext(void* handle) {
  if (aclError error = CheckNotForked("aclrtSetCurrentContext"); error != ACL_SUCCESS) return error;
  if (!contexts_.Find(handle)) {
    return Fail(ACL_ERROR_RT_INVALID_HANDLE, "aclrtSetCurrentContext: context {} is not live", handle);
  }
  current_context = handle;
  return ACL_SUCCESS;
}

void* Runtime::CurrentContextHandle() const { return current_context; }

std::shared_ptr<Context> Runtime::CurrentContext(aclError* error) const {
  if (aclError forked = CheckNotForked("the current context"); forked != ACL_SUCCESS) {
    *error = forked;
    return nullptr;
  }
  std::shared_ptr<Context> context = contexts_.Find(current_context);
  if (!context) {
    *error = Fail(ACL_ERROR_RT_CONTEXT_NULL,
                  "the calling thread has no current context: call aclrtSetDevice or aclrtSetCurrentContext first");
  }
  return context;
}

std::shared_ptr<Stream> Runtime::ResolveStream(void* handle, aclError* error) {
  if (aclError forked = CheckNotForked("stream use"); forked != ACL_SUCCESS) {
    *error = forked;
    return nullptr;
  }
  if (handle != nullptr) {
    std::shared_ptr<Stream> stream = streams_.FindCached(handle);
    if (!stream) *error = Fail(ACL_ERROR_RT_INVALID_HANDLE, "stream {} is not live (destroyed or never created)", handle);
    return stream;
  }
  std::shared_ptr<Context> context = CurrentContext(error);
  if (!context) return nullptr;
  std::lock_guard lock(context->mutex);
  if (!context->default_stream) {
    context->default_stream = Stream::Create(context->device);
    context->streams.push_back({nullptr, context->default_stream});
  }
  return context->default_stream;
}

aclError Runtime::CreateStream(void** handle, Stream::Config config) {
  if (handle == nullptr) return Fail(ACL_ERROR_INVALID_PARAM, "aclrtCreateStream: stream is null");
  aclError error = ACL_SUCCESS;
  std::shared_ptr<Context> context = CurrentContext(&error);
  if (!context) return error;
  ReapRetired();
  auto stream = Stream::Create(context->device, config);
  void* new_handle = streams_.Add(stream);
  {
    std::lock_guard lock(context->mutex);
    context->streams.push_back({new_handle, stream});
  }
  *handle = new_handle;
  return ACL_SUCCESS;
}

aclError Runtime::DestroyStream(void* handle) {
  if (aclError error = CheckNotForked("aclrtDestroyStream"); error != ACL_SUCCESS) return error;
  std::shared_ptr<Stream> stream = streams_.Take(handle);
  if (!stream) return Fail(ACL_ERROR_RT_INVALID_HANDLE, "aclrtDestroyStream: stream {} is not live", handle);
  for (auto& context : contexts_.Snapshot()) {
    std::lock_guard lock(context->mutex);
    std::erase_if(context->streams, [&](const Context::OwnedStream& owned) { return owned.handle == handle; });
  }
  Retire({stream});
  return ACL_SUCCESS;
}

std::vector<std::shared_ptr<Stream>> Runtime::StreamsOfDevice(int device) {
  std::vector<std::shared_ptr<Stream>> result;
  for (auto& context : contexts_.Snapshot()) {
    if (context->device != device) continue;
    std::lock_guard lock(context->mutex);
    for (const auto& owned : context->streams) result.push_back(owned.stream);
  }
  return result;
}

std::vector<std::shared_ptr<Stream>> Runtime::TakeStreams(Context& context) {
  std::vector<Context::OwnedStream> owned;
  {
    std::lock_guard lock(context.mutex);
    owned.swap(context.streams);
    context.default_stream.reset();
  }
  std::vector<std::shared_ptr<Stream>> streams;
  for (auto& entry : owned) {
    if (entry.handle != nullptr) streams_.Take(entry.handle);  // later uses of the handle: 107017
    streams.push_back(std::move(entry.stream));
  }
  return streams;
}

void Runtime::Retire(std::vector<std::shared_ptr<Stream>> streams) {
  for (auto& stream : streams) stream->Close();
  std::lock_guard lock(mutex_);
  retired_.insert(retired_.end(), streams.begin(), streams.end());
}

void Runtime::ReapRetired() {
  std::vector<std::shared_ptr<Stream>> finished;
  {
    std::lock_guard lock(mutex_);
    auto split = std::partition(retired_.begin(), retired_.end(),
                                [](const std::shared_ptr<Stream>& stream) { return !stream->WorkerExited(); });
    finished.assign(split, retired_.end());
    retired_.erase(split, retired_.end());
  }
  for (auto& stream : finished) stream->Join();
}

aclError Runtime::Finalize() {
  if (InheritedAcrossFork()) {  // a forked child: start afresh, leaving the parent's state untouched
    if (g_inherited == nullptr) g_inherited = new std::vector<Runtime*>;
    g_inherited->push_back(this);
    g_runtime.store(new Runtime, std::memory_order_release);
    current_context = nullptr;
    return ACL_SUCCESS;
  }
  if (Stream::CurrentWorker() != nullptr) {
    return Fail(ACL_ERROR_FAILURE,
                "aclFinalize: called from a host function; it would tear down the stream that runs it. Call it "
                "from a host thread once the streams are synchronized; nothing was released");
  }
  std::vector<std::shared_ptr<Stream>> streams;
  for (auto& context : contexts_.TakeAll()) {
    auto owned = TakeStreams(*context);
    streams.insert(streams.end(), owned.begin(), owned.end());
  }
  for (auto& orphan : streams_.TakeAll()) streams.push_back(std::move(orphan));  // none expected
  {
    std::lock_guard lock(mutex_);
    streams.insert(streams.end(), retired_.begin(), retired_.end());
    retired_.clear();
    std::fill(device_users_.begin(), device_users_.end(), 0);
    std::fill(default_context_.begin(), default_context_.end(), nullptr);
  }
  for (auto& stream : streams) stream->Abort({ACL_ERROR_RT_STREAM_ABORT, "aclFinalize aborted the stream"});
  for (auto& stream : streams) stream->Join();
  events_.TakeAll();
  memory_.FreeAll();
  virtual_memory_.ReleaseAll();
  current_context = nullptr;
  in_use_.store(false, std::memory_order_relaxed);
  return ACL_SUCCESS;
}

}  // namespace distbarrier::runtime
