// One host's part in the barriers of a group across hosts, in the process of the host's
// leader rank: a thread with a UCX worker that talks to the other hosts' agents with active
// messages (endpoints in UCP_ERR_HANDLING_MODE_PEER, so a broken connection is an error, not a
// hang).
//
// Barrier k: once every required rank of this host arrived at k in the host's window, the
// agent runs a dissemination barrier over the H hosts (ceil(log2 H) rounds; in round r it sends
// what it knows to host h + 2^r and waits for host h - 2^r): each message carries the required
// set and the arrival times (on host 0's clock) of the ranks it covers, so after the last
// round every host knows every required rank's arrival. It writes the other hosts' ranks into
// its window and reaches k (BarrierWindow::AgentReached); the window releases its local ranks,
// and waits, statistics and traces work as on one host. Once a host is known dead the others
// switch for good to sending straight to every live host (no path may run through the dead
// one). Barrier k with a dead required rank is given up once anything moves past it.
//
// Heartbeats (every DISTBARRIER_HEARTBEAT_MS, default 250) carry each local rank's last
// barrier and whether it died, and the hosts this agent believes dead; a host silent for six
// heartbeats or whose endpoint fails is dead: its ranks are marked dead in the window, so
// waiters fail with 507057 naming them. At start, each agent measures its clock against host
// 0's (ping-pong, the sample with the smallest round trip; error <= round trip / 2).
//
// Waiters help (BarrierWindow::WaitHelper): a rank of this process that spins for a release
// runs the agent's loop itself (under the agent's lock), so a barrier whose answer comes while
// it spins never wakes the agent's thread. Meanwhile, and for kHelpedGrace (1 ms) after the
// last turn, that thread sleeps on its own eventfd alone: on UCX's fd it would be woken for
// each message a helper takes, and fight the helper for the lock and the core. Its eventfd
// still wakes it for a local arrival or a collective's post made while nobody helps, and for
// a helper that will sleep; such a wake-up ends the grace (the thread then serves UCX's
// messages too, so a collective after a barrier does not wait the grace out).
//
// Collectives: the group's transport (comm/transport/shm_transport.h) keeps lines for every
// rank in each host's memory; the agent copies what its local ranks post, finish, send and
// take to the hosts that read it (posts and finishes to every host, a chunk to its receiver's
// host, a take back to its sender's), and writes what other hosts copy here.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "comm/barrier_window.h"
#include "comm/hosts/host_layout.h"

namespace distbarrier::comm {

class HostAgent final : public WaitHelper {
 public:
  // An agent for `layout.my_host` over the window at `window_memory` (which must outlive it);
  // its UCX worker exists (WorkerAddress), no thread runs yet. Null and *error on failure.
  static std::unique_ptr<HostAgent> Create(const HostLayout& layout, void* window_memory, int rank_count,
                                           std::string* error);
  ~HostAgent() override;  // stops the thread, flushes what it sent, closes UCX
  HostAgent(const HostAgent&) = delete;
  HostAgent& operator=(const HostAgent&) = delete;

  const std::vector<uint8_t>& WorkerAddress() const;
  // Called on the agent's thread for each barrier its arrival released (statistics, flight
  // recorder); set before Start.
  using ReleaseCallback = std::function<void(uint64_t seq, std::span<const int> required)>;
  void OnRelease(ReleaseCallback callback);
  // Connects to every other host's agent (addresses[h]: host h's worker address) and starts
  // the thread; an error message when it cannot.
  std::optional<std::string> Start(const std::vector<std::vector<uint8_t>>& addresses);

  // WaitHelper: once started, from any thread of this process.
  void BeginHelping() override;
  bool Help() override;
  void EndHelping() override;
  void StopHelping() override;

  class Impl;

 private:
  explicit HostAgent(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace distbarrier::comm
