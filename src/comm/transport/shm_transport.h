// The transport of a group whose ranks are processes of one host: a data region in the
// group's shared memory (after the barrier window state), one slot of HCCL_BUFFSIZE bytes
// per rank, which the rank writes and its peers read in place. Posts, finishes and a failure
// flag live in the region's header, then the pair mailboxes (ranks x ranks); waiters sleep
// on one futex word that every change bumps.
//
// Across hosts each host has its own region with lines for every rank, but only the host's
// own ranks write theirs: the host agent (comm/hosts/host_agent.cc) copies what they post,
// finish, send and take to the other hosts' regions (the Replica calls below), and a region
// says it changed locally (LocalChanges, and the on_local_change hook, which wakes the agent).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "comm/transport/mailbox.h"
#include "comm/transport/transport.h"

namespace distbarrier::comm::transport {

class ShmTransport final : public Transport {
 public:
  // Bytes of one rank's slot: HCCL_BUFFSIZE (MB, default 200). Every process of a group must
  // see the same value, as with HCCL.
  static size_t SlotBytesFromEnvironment();
  // Bytes of the region for `ranks` ranks.
  static size_t RegionBytes(int ranks, size_t slot_bytes);

  // A view of a region of RegionBytes(ranks, slot_bytes) bytes, 64-byte aligned, zero-filled
  // when the group was made (zero is the initial state), shared by the group's processes.
  // `dead(rank)` tells whether a peer's process has exited (the group's peer watch).
  // `on_local_change` (optional; across hosts): called after each change this view makes that
  // other hosts must see, once LocalChanges has moved.
  ShmTransport(int ranks, void* region, size_t slot_bytes, std::function<bool(int rank)> dead,
               std::function<void()> on_local_change = nullptr);

  int Size() const override { return ranks_count_; }
  size_t Capacity() const override { return slot_bytes_; }
  std::byte* PostBuffer(int rank, size_t bytes) override;
  PostResult Post(int rank, uint64_t seq, size_t bytes, const PostWait& wait, std::vector<int>* missing) override;
  size_t PostedBytes(int peer) const override;
  void Read(int peer, size_t offset, void* destination, size_t bytes) const override;
  const std::byte* View(int peer, size_t offset, size_t bytes) const override;
  bool Finish(int rank, uint64_t seq, const PostWait& wait) override;
  std::string BrokenReason() const override;

  bool TrySend(int from, int to, const Chunk& chunk) override;
  std::optional<Chunk> Peek(int from, int to) const override;
  void Take(int from, int to) override;
  bool Idle(int from, int to) const override;
  void Reject(int from, int to, uint64_t message, uint64_t expected_bytes) override;
  std::pair<uint64_t, uint64_t> Rejected(int from, int to) const override;
  uint64_t ChangeStamp() const override;
  PostResult WaitForChange(int rank, uint64_t seen, const std::vector<int>& peers, const PostWait& wait,
                           std::vector<int>* missing) override;

  // --- Replica: for the host agent, which copies local ranks' changes to other hosts ---
  // Moves with every change a rank of this host made (read it before reading what changed).
  uint32_t LocalChanges() const;
  struct Progress {
    uint64_t posted_seq, posted_bytes, finished_seq;
  };
  // Rank's counters: finished_seq first, then posted_seq (acquire), then posted_bytes.
  Progress RankProgress(int rank) const;
  const std::byte* Slot(int rank) const { return slots_ + slot_bytes_ * static_cast<size_t>(rank); }
  Mailbox& MailboxOf(int from, int to) const { return Box(from, to); }
  // A remote rank's post: its bytes into its slot, then its counters; wakes the waiters. False
  // (and the transport broken) when the bytes do not fit this host's slot (HCCL_BUFFSIZE differs).
  bool ApplyPost(int rank, uint64_t seq, uint64_t bytes, const std::byte* data, const std::string& where);
  void ApplyFinish(int rank, uint64_t seq);
  // A remote sender's chunk (its `posted` count and the chunk's bytes) for a local receiver.
  bool ApplyChunk(int from, int to, uint64_t posted, const Chunk& chunk, const std::byte* data,
                  const std::string& where);
  // What a remote receiver took and refused of a local sender's mailbox.
  void ApplyTaken(int from, int to, uint64_t taken, uint64_t rejected, uint64_t rejected_expected);
  // Another host's rank broke the transport.
  void ApplyBroken(const std::string& reason);

 private:
  Mailbox& Box(int from, int to) const {
    return mailboxes_[static_cast<size_t>(from) * static_cast<size_t>(ranks_count_) + static_cast<size_t>(to)];
  }
  struct alignas(64) RankState {
    std::atomic<uint64_t> posted_seq;
    std::atomic<uint64_t> posted_bytes;
    std::atomic<uint64_t> finished_seq;
  };
  struct alignas(64) Header {
    std::atomic<uint32_t> changes;        // the futex word: bumped by a call's last post and last
                                          // finish, by every failure and stop
    std::atomic<uint32_t> broken;         // 0 fine, 1 being marked, 2 marked (reason readable)
    std::atomic<uint32_t> local_changes;  // across hosts: what the host agent has to copy out
    char reason[256];
  };
  void Changed();
  // After a change by a rank of this host: tells the host agent (across hosts).
  void LocalChange();
  void RecordBroken(const std::string& reason);  // MarkBroken without LocalChange
  void MarkBroken(const std::string& reason);
  std::vector<int> Missing(uint64_t seq) const;
  // Whether every rank's `counter` has reached seq, read with seq_cst loads: after a seq_cst
  // store of its own counter, of two ranks arriving last at once at least one sees the other.
  bool AllReached(std::atomic<uint64_t> RankState::*counter, uint64_t seq) const;

  const int ranks_count_;
  const size_t slot_bytes_;
  const std::function<bool(int)> dead_;
  const std::function<void()> on_local_change_;
  Header* header_;
  RankState* ranks_;
  Mailbox* mailboxes_;  // ranks x ranks, by (from, to)
  std::byte* slots_;
};

}  // namespace distbarrier::comm::transport
