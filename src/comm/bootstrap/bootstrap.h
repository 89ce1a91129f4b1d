// Bringing the processes of a group together (HcclGetRootInfo / HcclCommInitRootInfo).
//
// Rank 0's process listens on an abstract Unix socket (no file anywhere; it vanishes with
// the process). Every other rank connects and says hello with its rank, the rank count, the
// job id and the secret from the root info. Rank 0 refuses, with a reason, a peer of another
// user, with a wrong secret or job, a rank out of range or already taken, or another rank
// count; the refused peer gets an error and the job goes on waiting for the right one. When
// all ranks are there, rank 0 makes the group's shared memory (an anonymous memfd), writes
// every rank's pid (from the kernel's SO_PEERCRED, not from the peer's word) and hands the
// memfd to each peer over its socket. Waiting is bounded by DISTBARRIER_CONNECT_TIMEOUT_S
// (default 120 s); rank 0 then fails naming the ranks that never came, and tells those that did.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "comm/shared_memory.h"
#include "hccl/hccl_types.h"

namespace distbarrier::comm {

struct BootstrapError {
  HcclResult code;
  std::string message;
};

struct JoinedGroup {
  std::string name;  // the same in every process of the job
  int rank_count = 0;
  std::unique_ptr<SharedMemory> memory;  // holds the initialized BarrierWindow state
};

// HcclGetRootInfo: starts listening in this process and describes how to reach it.
std::variant<HcclRootInfo, BootstrapError> CreateRootInfo();

// HcclCommInitRootInfo for one rank.
std::variant<JoinedGroup, BootstrapError> JoinGroup(const HcclRootInfo& root_info, uint32_t rank_count,
                                                    uint32_t rank, std::chrono::milliseconds timeout);

// Forgets listeners of root infos not used yet (aclFinalize).
void CloseUnusedRootInfos();

}  // namespace distbarrier::comm
