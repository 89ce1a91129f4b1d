// The runtime layer's face: simulated devices, contexts, the calling thread's current
// context, and the live streams, events and memory. Everything the ACL entry points and the
// operator need from the runtime goes through here.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/handle_table.h"
#include "runtime/event.h"
#include "runtime/memory.h"
#include "runtime/stream.h"
#include "runtime/virtual_memory.h"

namespace distbarrier::runtime {

struct Context {
  explicit Context(int device_id) : device(device_id) {}
  const int device;
  std::mutex mutex;
  struct OwnedStream {
    void* handle;  // null for the default stream, which has none
    std::shared_ptr<Stream> stream;
  };
  std::vector<OwnedStream> streams;        // created in this context, incl. the default one
  std::shared_ptr<Stream> default_stream;  // made on first use of the null stream
};

class Runtime {
 public:
  static Runtime& Instance();

  int DeviceCount() const { return device_count_; }
  bool ValidDevice(int device) const { return device >= 0 && device < device_count_; }

  aclError SetDevice(int device);
  aclError ResetDevice(int device);
  // Resets the device however many SetDevice calls it had (aclrtResetDeviceForce).
  aclError ResetDeviceForce(int device);
  aclError CreateContext(int device, void** handle);
  aclError DestroyContext(void* handle);
  aclError SetCurrentContext(void* handle);
  void* CurrentContextHandle() const;
  // Moves whenever a context is destroyed (see HandleTable::Removals).
  uint64_t ContextRemovals() const { return contexts_.Removals(); }

  // The calling thread's current context; on failure records why and sets *error.
  std::shared_ptr<Context> CurrentContext(aclError* error) const;
  // A stream handle, or the current context's default stream for null; on failure records
  // why and sets *error.
  std::shared_ptr<Stream> ResolveStream(void* handle, aclError* error);

  aclError CreateStream(void** handle, Stream::Config config = {});
  aclError DestroyStream(void* handle);
  // Every stream of `device`.
  std::vector<std::shared_ptr<Stream>> StreamsOfDevice(int device);

  HandleTable<Event>& Events() { return events_; }
  MemoryRegistry& Memory() { return memory_; }
  VirtualMemory& Virtual() { return virtual_memory_; }

  // After fork(): true in a child of a process whose runtime was in use (it had a context).
  // The parent's stream workers do not exist in the child, so nothing inherited may be used,
  // joined or destroyed: every call that would use a device, context, stream or event fails
  // with ACL_ERROR_UNINITIALIZE until aclFinalize forgets the inherited state.
  bool InheritedAcrossFork() const { return inherited_.load(std::memory_order_relaxed); }
  // ACL_SUCCESS, or that error (recorded, naming `api`) in such a child.
  aclError CheckNotForked(const char* api) const;
  // What such a child is told, for layers above that fail with their own codes.
  static std::string ForkedChildMessage(const char* api);

  // Aborts all streams, joins their workers, frees all memory and forgets all handles. In a
  // forked child (InheritedAcrossFork) it forgets the inherited state without touching it: the
  // runtime starts afresh.
  // Refused (ACL_ERROR_FAILURE) from a host function: its stream's worker would have to
  // join itself.
  aclError Finalize();

 private:
  Runtime();
  static void OnForkChild();
  std::shared_ptr<Context> DefaultContext(int device);  // made by the first SetDevice
  // Empties the context's stream list and forgets the handles of those streams.
  std::vector<std::shared_ptr<Stream>> TakeStreams(Context& context);
  void Retire(std::vector<std::shared_ptr<Stream>> streams);
  void ReapRetired();

  const int device_count_;
  std::mutex mutex_;                              // guards the per-device state and retired_
  std::vector<int> device_users_;                 // SetDevice count per device
  std::vector<void*> default_context_;            // handle per device, null until SetDevice
  std::vector<std::shared_ptr<Stream>> retired_;  // destroyed, finishing their queue
  HandleTable<Context> contexts_{HandleKind::kContext};
  HandleTable<Stream> streams_{HandleKind::kStream};
  HandleTable<Event> events_{HandleKind::kEvent};
  MemoryRegistry memory_;
  VirtualMemory virtual_memory_{memory_};  // after memory_: it unregisters its mappings there
  std::atomic<bool> in_use_{false};        // a context was made since the start or aclFinalize
  std::atomic<bool> inherited_{false};     // forked while in use: see InheritedAcrossFork
};

}  // namespace distbarrier::runtime
