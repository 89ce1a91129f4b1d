// Watches the processes of a group's other ranks and marks a rank dead in the barrier window
// the moment its process exits, which wakes every waiter (they fail with 507057 naming it).
// One thread per group, sleeping in poll() on a pidfd per peer, so watching costs nothing
// until a peer dies; pidfds also rule out a recycled pid being mistaken for the peer.
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "comm/barrier_window.h"

namespace distbarrier::comm {

class PeerWatch {
 public:
  // Watches every rank of `window` whose pid is recorded there and is not this process's;
  // null and *error set when it cannot (no eventfd, no thread).
  static std::unique_ptr<PeerWatch> Start(BarrierWindow& window, std::string* error);
  ~PeerWatch();  // stops and joins the thread
  PeerWatch(const PeerWatch&) = delete;
  PeerWatch& operator=(const PeerWatch&) = delete;

 private:
  explicit PeerWatch(BarrierWindow& window) : window_(window) {}
  void Run();

  BarrierWindow& window_;
  std::vector<int> ranks_;    // watched ranks
  std::vector<int> pidfds_;   // one per watched rank
  int stop_fd_ = -1;          // eventfd: written to stop the thread
  std::thread thread_;
};

}  // namespace distbarrier::comm
