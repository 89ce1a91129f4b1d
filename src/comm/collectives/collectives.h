// Collectives over a group's transport: all-to-all-v and all-gather, used by the MoE
// operators (and later by HCCL's collectives). An operator asks for an exchange; how bytes
// move is the transport's business (comm/transport), so the operator never knows whether its
// peers are threads, processes or hosts.
//
// Calls are matched across ranks by a per-group collective sequence number: the k-th call
// of rank A pairs with the k-th call of rank B, as barriers do. A call blocks its caller (a
// stream task) until every rank has made it; its wait has a deadline (HCCL_EXEC_TIMEOUT)
// or, without one, warns once after a while naming the ranks that never came.
//
// What peers sent is read in place: `consume` sees every block while the call still holds
// the senders' buffers, so nothing is copied that the caller does not copy itself. Whatever
// must outlive the call is the caller's to copy, or to use in a further collective (of
// another group) made from inside `consume`: each rank's call then waits in its finish until
// the peers' nested calls are done, which needs nothing but that every rank makes both.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <vector>

#include "comm/transport/transport.h"

namespace distbarrier::comm::collectives {

struct CallOptions {
  std::string api;                                   // the operator, for messages
  std::optional<std::chrono::milliseconds> timeout;  // none: wait for ever, but warn
  std::chrono::milliseconds warn_after{30000};
  std::stop_token stop;
  // Not empty: this rank has failed already. It still takes part (so its peers are not left
  // waiting), sends nothing, and its peers' calls fail with this message.
  std::string local_error;
};

struct CallResult {
  enum class Kind { kOk, kTimedOut, kStopped, kBroken, kPeerFailed, kPeerDied };
  Kind kind = Kind::kOk;
  std::string message;
  bool ok() const { return kind == Kind::kOk; }
};

// What every rank sent to this one, by source rank, in place: valid only inside ConsumeFn.
using Blocks = std::vector<std::span<const std::byte>>;
// Writes the bytes for destination rank `to` at `out` (AllGather: `to` is -1).
using PackFn = std::function<void(int to, std::byte* out)>;
// Reads the blocks; called once, only when every rank's call succeeded so far.
using ConsumeFn = std::function<void(const Blocks& blocks)>;

// The collectives state of one group: its transport and each local rank's call count.
class GroupCollectives {
 public:
  GroupCollectives(std::string group_name, std::unique_ptr<transport::Transport> transport);
  ~GroupCollectives();

  // Rank sends send_bytes[d] bytes (written by pack(d, out)) to each rank d, itself included.
  CallResult AllToAllV(int rank, const std::vector<size_t>& send_bytes, const PackFn& pack, const ConsumeFn& consume,
                       const CallOptions& options);
  // Rank sends the same `bytes` (written by pack(-1, out)) to every rank, itself included.
  CallResult AllGather(int rank, size_t bytes, const PackFn& pack, const ConsumeFn& consume,
                       const CallOptions& options);

  // Bytes of the transport buffer one call needs for these payloads (what HCCL_BUFFSIZE must hold).
  static size_t PostBytes(int ranks, size_t payload_bytes, size_t error_bytes = 0);

 private:
  struct RankCalls {
    std::mutex mutex;  // one call of a rank at a time: the transport has one buffer per rank
    uint64_t calls = 0;
  };
  CallResult Run(int rank, const char* what, const std::vector<size_t>& send_bytes, bool same_block_for_all,
                 const PackFn& pack, const ConsumeFn& consume, const CallOptions& options);

  // True for the first rank of this process to warn about call `seq`: one line per stuck
  // call, not one per waiting rank.
  bool ClaimWarning(uint64_t seq);

  const std::string group_name_;
  const std::unique_ptr<transport::Transport> transport_;
  std::atomic<uint64_t> warned_through_{0};
  std::unique_ptr<RankCalls[]> ranks_;
};

}  // namespace distbarrier::comm::collectives
