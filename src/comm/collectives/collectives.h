// Collectives over a group's transport: all-to-all-v and all-gather, used by the MoE
// operators (and later by HCCL's collectives). An operator asks for an exchange; how bytes
// move is the transport's business (comm/transport), so the operator never knows whether its
// peers are threads, processes or hosts.
//
// Calls are matched across ranks by a per-group call number: the k-th call of rank A pairs
// with the k-th call of rank B, as barriers do. A call may take its number when it is issued
// (Reserve, in the caller's program order, so that calls queued on two streams of one rank
// pair up as issued) and runs when the rank's earlier calls are done. One call is one or
// more exchanges (posts of the transport) which every rank makes in the same order. An
// exchange blocks its caller (a stream task) until every rank has made it; its wait has a
// deadline (HCCL_EXEC_TIMEOUT) or, without one, warns once after a while naming the ranks
// that never came.
//
// What peers sent is read in place (Posted::Block, or `consume` of AllToAllV/AllGather): the
// blocks stay valid while the exchange holds the senders' buffers, so nothing is copied that
// the caller does not copy itself. Whatever must outlive the exchange is the caller's to
// copy, or to use in a further collective (of another group) made from inside it: each rank's
// exchange then waits in its finish until the peers' nested calls are done, which needs
// nothing but that every rank makes both.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <set>
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

// What the peers posted in the current exchange, readable between its post and its finish.
class Posted {
 public:
  Posted(const transport::Transport& transport, const std::vector<std::pair<size_t, size_t>>& blocks)
      : transport_(transport), blocks_(blocks) {}
  // Bytes `from` sent to this rank.
  size_t Bytes(int from) const { return blocks_[from].second; }
  // Copies [offset, offset + bytes) of what `from` sent to this rank; false (nothing copied)
  // when that is more than it sent.
  bool Read(int from, size_t offset, void* destination, size_t bytes) const;
  // All that `from` sent to this rank, in place in the sender's buffer: valid until the
  // exchange finishes.
  std::span<const std::byte> Block(int from) const;

 private:
  const transport::Transport& transport_;
  const std::vector<std::pair<size_t, size_t>>& blocks_;  // (offset in post, bytes) by source
};
using UnpackFn = std::function<void(const Posted& posted)>;

// One send or receive of a pairwise call (HcclSend, HcclRecv, HcclBatchSendRecv): the
// message-th message between this rank and `peer` in that direction (ReserveMessage).
struct PairItem {
  bool send = true;
  int peer = 0;
  std::byte* buffer = nullptr;  // send: read from; receive: written to
  uint64_t bytes = 0;
  uint64_t message = 0;
};

class GroupCollectives;

// One call of one rank while it holds its turn: the exchanges it is made of.
class Call {
 public:
  int Rank() const { return rank_; }
  int Size() const;
  // The most payload bytes one exchange may post (the transport's buffer less the table).
  size_t PayloadCapacity() const;
  // Rank sends send_bytes[d] bytes (written by pack(d, out)) to each rank d, itself included
  // (same_block_for_all: one block of send_bytes[0] bytes, written by pack(-1, out), for every
  // rank); unpack reads what it was sent. Exchanges of a call are numbered in order.
  CallResult Exchange(const std::vector<size_t>& send_bytes, bool same_block_for_all, const PackFn& pack,
                      const UnpackFn& unpack);
  // Moves the items' messages, sends in pieces of at most budget / sends bytes, all at once
  // (a rank that sends to and receives from the same peer does not deadlock).
  CallResult SendReceive(const std::vector<PairItem>& items, uint64_t budget);

 private:
  friend class GroupCollectives;
  Call(GroupCollectives& owner, int rank, const char* what, const CallOptions& options)
      : owner_(owner), rank_(rank), what_(what), options_(options) {}
  GroupCollectives& owner_;
  const int rank_;
  const char* const what_;
  const CallOptions& options_;
};

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

  // Pairwise messages: the k-th send from A to B meets the k-th receive of B from A. Numbers
  // are taken when a call is issued. A call that sends holds the rank's turn (RunCall; its
  // chunks go through its post buffer); a call that only receives needs none (RunUnordered).
  uint64_t ReserveMessage(int rank, int peer, bool send);
  CallResult RunUnordered(int rank, const char* what, const CallOptions& options,
                          const std::function<CallResult(Call& call)>& body);

  // Bytes of the transport buffer one call needs for these payloads (what HCCL_BUFFSIZE must hold).
  static size_t PostBytes(int ranks, size_t payload_bytes, size_t error_bytes = 0);

  // This rank's next call number, taken when the call is issued (program order).
  uint64_t Reserve(int rank);
  // A reserved call that will never run (its stream dropped it): the rank's later calls
  // fail, and tell their peers why, since the rank is out of step with them from then on.
  void Abandon(int rank, uint64_t ticket);
  // Runs call `ticket` of `rank` once the rank's earlier calls are done: body makes its
  // exchanges. Waiting for the turn honours the options' deadline and stop token.
  CallResult RunCall(int rank, uint64_t ticket, const char* what, const CallOptions& options,
                     const std::function<CallResult(Call& call)>& body);

 private:
  friend class Call;
  struct RankCalls {
    std::mutex mutex;
    std::condition_variable_any turn_changed;
    uint64_t reserved = 0;                 // call numbers handed out
    uint64_t done = 0;                     // calls finished or abandoned, in order
    std::set<uint64_t> abandoned;          // abandoned calls after `done`
    uint64_t exchanges = 0;                // the transport's sequence numbers used; only by the running call
    std::string out_of_step;               // why the rank's calls cannot pair with its peers' any more
    std::vector<uint64_t> sent, received;  // messages reserved, by peer
  };
  // Lock held: marks `ticket` done and skips the abandoned calls after it.
  void CompleteLocked(RankCalls& calls, uint64_t ticket);
  CallResult Exchange(int rank, const char* what, const std::vector<size_t>& send_bytes, bool same_block_for_all,
                      const PackFn& pack, const UnpackFn& unpack, const CallOptions& options);
  CallResult SendReceive(int rank, const char* what, const std::vector<PairItem>& items, uint64_t budget,
                         const CallOptions& options);
  CallResult OneExchange(int rank, const char* what, const std::vector<size_t>& send_bytes, bool same_block_for_all,
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
