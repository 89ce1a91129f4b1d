// HcclCommInitClusterInfo: a group started from a rank table, with no root info shipped
// between processes. Every rank derives the same root info from the same inputs:
//   - where rank 0 listens: the host_ip of rank 0's server, port HCCL_IF_BASE_PORT (default
//     60000, as in CANN);
//   - the job id: the hash of the rank table's bytes (every host must hold the same file) and of
//     the port (two jobs of one table on one host use other ports, and must not share sockets);
//   - the secret: from DISTBARRIER_JOB_SECRET / DISTBARRIER_JOB_SECRET_FILE (job_secret.h).
//     A rank table carries no secret, so every table needs one: its ranks meet rank 0 over
//     TCP, also on one host, and TCP does not tell rank 0 who connects.
// Rank 0 listens, every rank joins as with HcclCommInitRootInfo (bootstrap.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

#include "comm/bootstrap/bootstrap.h"
#include "comm/bootstrap/rank_table.h"

namespace distbarrier::comm {

inline constexpr uint16_t kDefaultBasePort = 60000;  // HCCL_IF_BASE_PORT's default

// Joins rank `rank` (a rank id of `table`) to the table's group; nullopt once every rank is
// attached. Fails with HCCL_E_PARA when the rank, the port, the secret or this host does not
// fit the table (the message says which).
std::optional<BootstrapError> JoinClusterGroup(const RankTable& table, uint32_t rank, std::chrono::milliseconds timeout,
                                               const RankAttach& attach);

// True when `ip` is the address of an interface of this host (of this network namespace).
bool IsLocalAddress(const std::string& ip);

}  // namespace distbarrier::comm
