#include "shutdown.h"

#include "comm/bootstrap/bootstrap.h"
#include "comm/group.h"
#include "op/distribute_barrier/distribute_barrier.h"
#include "op/moe_common/moe_common.h"
#include "op/tensor.h"
#include "runtime/runtime.h"

namespace distbarrier::api {

void MarkInitialized() {
  // Nothing to set up eagerly: every layer starts on first use, so programs that skip
  // aclInit work too.
}

aclError ReleaseEverything() {
  // First: no task may still use what follows.
  if (aclError error = runtime::Runtime::Instance().Finalize(); error != ACL_SUCCESS) return error;
  op::Executors().TakeAll();
  op::moe::MoeExecutors().TakeAll();
  op::Tensors().TakeAll();
  comm::Communicators().TakeAll();
  comm::GroupRegistry::Instance().Clear();
  comm::CloseUnusedRootInfos();
  return ACL_SUCCESS;
}

}  // namespace distbarrier::api
