#include "op/collective_call.h"

#include "common/env.h"

namespace distbarrier::op {

comm::collectives::CallOptions CallOptionsFromEnvironment(const char* api) {
  comm::collectives::CallOptions options;
  options.api = api;
  const auto timeout = EnvDuration("HCCL_EXEC_TIMEOUT", std::chrono::seconds(1));
  if (timeout && timeout->count() > 0) options.timeout = *timeout;
  const auto warn = EnvDuration("DISTBARRIER_WARN_S", std::chrono::seconds(1));
  options.warn_after = warn && warn->count() > 0 ? *warn : std::chrono::seconds(30);
  return options;
}

runtime::TaskStatus ToTaskStatus(const comm::collectives::CallResult& result) {
  using Kind = comm::collectives::CallResult::Kind;
  switch (result.kind) {
    case Kind::kOk: return runtime::TaskStatus::Ok();
    case Kind::kTimedOut: return {ACL_ERROR_RT_VECTOR_CORE_TIMEOUT, result.message};
    case Kind::kStopped: return {ACL_ERROR_RT_STREAM_ABORT, result.message};
    case Kind::kBroken:
    case Kind::kPeerFailed:
    case Kind::kPeerDied: break;
  }
  return {ACL_ERROR_RT_SUSPECT_REMOTE_ERROR, result.message};
}

}  // namespace distbarrier::op
