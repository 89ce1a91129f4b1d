// Joining a communicator from root info, for every entry point that makes one across processes
// or hosts: HcclCommInitRootInfo, and HcclCommInitClusterInfo with root info built from the
// rank table (comm::CreateRootInfoAt).
#pragma once

#include <cstdint>

#include "hccl/hccl_types.h"

namespace distbarrier::api {

// Makes `*comm` for `rank` of `nRanks` on the calling thread's current device (aclrtSetDevice
// first), joining the group `root` names; errors are recorded (aclGetRecentErrMsg) under `api`.
// Bounded by DISTBARRIER_CONNECT_TIMEOUT_S, else HCCL_CONNECT_TIMEOUT, else 120 s.
HcclResult JoinComm(const char* api, uint32_t nRanks, const HcclRootInfo& root, uint32_t rank, HcclComm* comm);

}  // namespace distbarrier::api
