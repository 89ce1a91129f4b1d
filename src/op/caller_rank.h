// Which rank the caller is: the group name plus the calling thread's current device, as HCCL
// resolves it for aclnn operators. Shared by the operator and the statistics API.
#pragma once

#include <string>
#include <variant>

#include "comm/group.h"

namespace distbarrier::op {

// The caller's member of `group`, or a message saying why there is none (for the caller to
// return with its own error code).
std::variant<comm::Member, std::string> ResolveCallerRank(const std::string& group);

}  // namespace distbarrier::op
