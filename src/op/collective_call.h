// What every operator built on the collectives layer (the MoE operators, HCCL's collectives)
// needs from it in the same way: how its calls wait, and a failed call as a stream error.
#pragma once

#include "comm/collectives/collectives.h"
#include "runtime/task.h"

namespace distbarrier::op {

// How collectives wait: HCCL_EXEC_TIMEOUT (s; unset or <= 0: no deadline) and
// DISTBARRIER_WARN_S (the hang warning without a deadline), read when the call is made;
// huge values saturate (common/env.h).
comm::collectives::CallOptions CallOptionsFromEnvironment(const char* api);

// A collective's failure as the stream error its task returns: a timeout 507034, an abort
// 107023, anything a peer caused 507057.
runtime::TaskStatus ToTaskStatus(const comm::collectives::CallResult& result);

}  // namespace distbarrier::op
