#include "op/caller_rank.h"

#include <fmt/format.h>

#include "runtime/runtime.h"

namespace distbarrier::op {

std::variant<comm::Member, std::string> ResolveCallerRank(const std::string& group) {
  aclError context_error = ACL_SUCCESS;
  std::shared_ptr<runtime::Context> context = runtime::Runtime::Instance().CurrentContext(&context_error);
  if (!context) {
    return fmt::format(
        "group '{}': the calling thread has no current device, so its rank cannot be resolved (call "
        "aclrtSetDevice or aclrtSetCurrentContext)",
        group);
  }
  auto found = comm::GroupRegistry::Instance().Find(group, context->device);
  if (auto* member = std::get_if<comm::Member>(&found)) return std::move(*member);
  switch (std::get<comm::GroupRegistry::LookupError>(found)) {
    case comm::GroupRegistry::LookupError::kUnknownGroup:
      return fmt::format("group '{}' is not a communicator known to this process", group);
    case comm::GroupRegistry::LookupError::kDeviceNotInGroup:
      return fmt::format("group '{}' holds no rank on the current device {}", group, context->device);
    case comm::GroupRegistry::LookupError::kRankDestroyed:
      break;
  }
  return fmt::format("group '{}': the communicator of device {} was destroyed (HcclCommDestroy)", group,
                     context->device);
}

}  // namespace distbarrier::op
