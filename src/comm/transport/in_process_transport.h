// The transport of a group whose ranks are threads of this process: a peer's buffer is read
// where it lies. Posts and finishes are counted under one mutex; waiters sleep on a
// condition variable (a collective moves kilobytes to megabytes, so a wake-up per post is
// small next to the copy).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "comm/transport/mailbox.h"
#include "comm/transport/transport.h"

namespace distbarrier::comm::transport {

class InProcessTransport final : public Transport {
 public:
  explicit InProcessTransport(int size);

  int Size() const override { return static_cast<int>(ranks_.size()); }
  size_t Capacity() const override { return SIZE_MAX; }
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

 private:
  Mailbox& Box(int from, int to) const { return mailboxes_[static_cast<size_t>(from) * ranks_.size() + to]; }
  void Changed();
  struct RankSlot {
    std::vector<std::byte> buffer;  // written only by its rank, between two of its calls
    size_t posted_bytes = 0;        // under mutex_
    uint64_t posted_seq = 0;        // under mutex_
    uint64_t finished_seq = 0;      // under mutex_
  };
  // Lock held: the ranks that have not posted call `seq`.
  std::vector<int> MissingLocked(uint64_t seq) const;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<RankSlot> ranks_;
  std::string broken_;    // under mutex_
  uint64_t changes_ = 0;  // under mutex_: bumped by every mailbox change
  std::unique_ptr<Mailbox[]> mailboxes_;
};

}  // namespace distbarrier::comm::transport
