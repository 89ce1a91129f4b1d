// Bringing the processes of a group together (HcclGetRootInfo / HcclCommInitRootInfo).
//
// Rank 0's process listens on an abstract Unix socket (no file anywhere; it vanishes with
// the process). Every other rank connects, checks that the listener is rank 0's process (the
// pid the root info names, our uid), and says hello with its rank, the rank count, the job id
// and the secret from the root info. Rank 0 refuses, with a reason, a peer of another user at
// once, and one with a wrong secret or job, a rank out of range or already taken, or another
// rank count; the refused peer gets an error and the job goes on waiting for the right one.
// Connections without a hello are capped and dropped after a short while; a rank whose
// connection closes before the group is complete is no longer counted. When all ranks are
// there, rank 0 makes the group's shared memory (an anonymous sealed memfd), writes every
// rank's pid (from the kernel's SO_PEERCRED, not from the peer's word) and hands the memfd to
// each peer; each maps it, makes its communicator (`attach`) and says it is ready; only when
// all are ready does rank 0 declare success to all, otherwise it sends every rank the failure
// (see wire.h). Waiting is bounded by DISTBARRIER_CONNECT_TIMEOUT_S (default 120 s); rank 0
// then fails naming the ranks that never came, and tells those that did.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
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

// ---- SHIM(hosts-core) begin: take hosts-core's version of this declaration when merging. ---
// The rank-table path (HcclCommInitClusterInfo): root info for a group whose rank 0 listens at
// ip:port (IPv4, dotted). Every rank builds the same bytes from the table, with the same job id
// and secret, and calls JoinGroup with them: rank 0's JoinGroup listens itself. Nothing listens
// until then. HCCL_E_PARA for an ip that is not an IPv4 address or port 0.
// This stand-in serves one host only: rank 0 listens at the abstract Unix socket
// @distbarrier-at-<ip>-<port> (so a second job at the same ip:port fails to listen, as a TCP
// port would); as rank 0's pid is not known, its peers retry until it listens and check only
// its uid.
std::variant<HcclRootInfo, BootstrapError> CreateRootInfoAt(const std::string& ip, uint16_t port, uint64_t job_id,
                                                            const std::array<uint8_t, 32>& secret);
// ---- SHIM(hosts-core) end. -----------------------------------------------------------------

// What the caller does with the group once this rank holds its memory: `attach` makes the
// rank's communicator (an error fails the group for every rank); `detach` undoes a successful
// attach when the group fails after all.
struct RankAttach {
  std::function<std::optional<BootstrapError>(JoinedGroup&)> attach;
  std::function<void()> detach;
};

// HcclCommInitRootInfo for one rank: nullopt once every rank of the group is attached.
std::optional<BootstrapError> JoinGroup(const HcclRootInfo& root_info, uint32_t rank_count, uint32_t rank,
                                        std::chrono::milliseconds timeout, const RankAttach& attach);

// Forgets listeners of root infos not used yet (aclFinalize).
void CloseUnusedRootInfos();

}  // namespace distbarrier::comm
