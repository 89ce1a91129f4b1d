#include "shutdown.h"

#include <unistd.h>

#include <atomic>
#include <memory>
#include <vector>

#include "comm/bootstrap/bootstrap.h"
#include "comm/group.h"
#include "op/distribute_barrier/distribute_barrier.h"
#include "op/moe_common/moe_common.h"
#include "op/tensor.h"
#include "runtime/runtime.h"

namespace distbarrier::api {

namespace {

// The process that called aclInit, until aclFinalize; 0 when none. A process id, not a flag,
// so that a forked child (which starts its runtime afresh) may call aclInit again.
std::atomic<pid_t> initialized_by{0};

}  // namespace

bool MarkInitialized() {
  // Nothing to set up eagerly: every layer starts on first use, so programs that skip
  // aclInit work too. Only a repeated aclInit is refused, as in CANN.
  const pid_t self = getpid();
  pid_t before = initialized_by.load(std::memory_order_acquire);
  return before != self && initialized_by.compare_exchange_strong(before, self, std::memory_order_acq_rel);
}

namespace {

// A forked child's inherited executors, tensors and communicators: the parent's threads
// (stream workers, peer watches) do not exist here, so destroying them would join threads that
// are not there. Forgotten instead, and kept reachable.
void KeepInherited(std::vector<std::shared_ptr<const void>> objects) {
  static auto* kept = new std::vector<std::shared_ptr<const void>>;
  kept->insert(kept->end(), objects.begin(), objects.end());
}

template <typename T>
std::vector<std::shared_ptr<const void>> AsOpaque(std::vector<std::shared_ptr<T>> objects) {
  return {objects.begin(), objects.end()};
}

}  // namespace

aclError ReleaseEverything() {
  const bool forked_child = runtime::Runtime::Instance().InheritedAcrossFork();
  // First: no task may still use what follows.
  if (aclError error = runtime::Runtime::Instance().Finalize(); error != ACL_SUCCESS) return error;
  initialized_by.store(0, std::memory_order_release);
  if (forked_child) {
    KeepInherited(AsOpaque(op::Executors().TakeAll()));
    KeepInherited(AsOpaque(op::Tensors().TakeAll()));
    KeepInherited(AsOpaque(op::Arguments().TakeAll()));
    KeepInherited(AsOpaque(comm::Communicators().TakeAll()));
    return ACL_SUCCESS;  // the group registry and root infos keep the parent's (dead) entries
  }
  op::Executors().TakeAll();
  op::moe::MoeExecutors().TakeAll();
  op::Tensors().TakeAll();
  op::Arguments().TakeAll();
  comm::Communicators().TakeAll();
  comm::GroupRegistry::Instance().Clear();
  comm::CloseUnusedRootInfos();
  return ACL_SUCCESS;
}

}  // namespace distbarrier::api
