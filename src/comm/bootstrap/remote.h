// The parts of the bootstrap for groups across hosts (see wire.h for the conversation): the
// plan rank 0 sends to ranks of other hosts, a host leader handing its host's memory to the
// other ranks there, and the whole join of a rank that reaches rank 0 over TCP.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "comm/bootstrap/bootstrap.h"
#include "comm/bootstrap/root_info.h"
#include "comm/bootstrap/wire.h"
#include "comm/hosts/host_layout.h"

namespace distbarrier::comm::remote {

using wire::Clock;

// This process's host, as the bootstrap tells hosts apart: "boot id/netns".
std::string HostKey();

// The plan for a rank on host `receiver_host`.
std::vector<uint8_t> EncodePlan(const HostLayout& layout, const std::vector<int32_t>& pids, int receiver_host);

// Initializes a host's window in fresh memory: every rank's pid and host, this host's index.
void InitHostWindow(void* memory, int rank_count, const HostLayout& layout, const std::vector<int32_t>& pids);

// The host leader's side: serves `memory_fd` to `ranks` (the other ranks of host `host`, each
// the pid `pids[rank]`, of our uid, presenting the job's secret) over the host's abstract
// socket; nullopt once every one got it.
std::optional<BootstrapError> ServeHostMemory(const RootInfo& info, uint32_t rank_count, int host,
                                              const std::vector<int>& ranks, const std::vector<int32_t>& pids,
                                              int memory_fd, Clock::time_point deadline);

// uint32 length + bytes.
bool SendBlob(int fd, const std::vector<uint8_t>& bytes, Clock::time_point deadline);
std::optional<std::vector<uint8_t>> ReceiveBlob(int fd, Clock::time_point deadline);

// A rank that is not on rank 0's host (or holds root info from a rank table): joins over TCP.
std::optional<BootstrapError> RunRemotePeer(const RootInfo& info, uint32_t rank_count, uint32_t rank,
                                            Clock::time_point deadline, const RankAttach& attach);

}  // namespace distbarrier::comm::remote
