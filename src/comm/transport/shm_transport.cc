#include "comm/transport/shm_transport.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sched.h>

#include <algorithm>
#include <cstring>
#include <stop_token>

#include "common/env.h"
#include "common/futex.h"

namespace distbarrier::comm::transport {
namespace {

constexpr size_t kLine = 64;
constexpr int64_t kDefaultSlotMb = 200;
// A waiter re-checks at least this often: a stop request from this process wakes it at
// once, but a peer that dies bumps nothing (the peer watch marks it dead in the window).
constexpr auto kLongestSleep = std::chrono::milliseconds(100);

size_t RoundUp(size_t bytes) {
  return (bytes + kLine - 1) / kLine * kLine;
}

static_assert(std::atomic<uint64_t>::is_always_lock_free && std::atomic<uint32_t>::is_always_lock_free,
              "the transport's state must be usable in memory shared between processes");

}  // namespace

size_t ShmTransport::SlotBytesFromEnvironment() {
  const int64_t megabytes = EnvInt("HCCL_BUFFSIZE", kDefaultSlotMb);
  return static_cast<size_t>(megabytes > 0 ? megabytes : kDefaultSlotMb) << 20;
}

size_t ShmTransport::RegionBytes(int ranks, size_t slot_bytes) {
  return sizeof(Header) + sizeof(RankState) * static_cast<size_t>(ranks) +
         sizeof(Mailbox) * static_cast<size_t>(ranks) * static_cast<size_t>(ranks) +
         RoundUp(slot_bytes) * static_cast<size_t>(ranks);
}

ShmTransport::ShmTransport(int ranks, void* region, size_t slot_bytes, std::function<bool(int rank)> dead,
                           std::function<void()> on_local_change)
    : ranks_count_(ranks),
      slot_bytes_(RoundUp(slot_bytes)),
      dead_(std::move(dead)),
      on_local_change_(std::move(on_local_change)),
      header_(static_cast<Header*>(region)),
      ranks_(reinterpret_cast<RankState*>(header_ + 1)),
      mailboxes_(reinterpret_cast<Mailbox*>(ranks_ + ranks)),
      slots_(reinterpret_cast<std::byte*>(mailboxes_ + static_cast<size_t>(ranks) * static_cast<size_t>(ranks))) {}

std::byte* ShmTransport::PostBuffer(int rank, size_t) {
  return slots_ + slot_bytes_ * static_cast<size_t>(rank);
}

void ShmTransport::Changed() {
  header_->changes.fetch_add(1, std::memory_order_seq_cst);
  FutexWakeAll(header_->changes);
}

void ShmTransport::LocalChange() {
  if (!on_local_change_) return;
  // seq_cst after the change's own store: an agent that reads the count and then the state
  // either sees this bump (and the change), or reads the count again after its wake-up.
  header_->local_changes.fetch_add(1, std::memory_order_seq_cst);
  on_local_change_();
}

// The first reason stays: state 1 while it is written, 2 once it can be read (BrokenReason).
void ShmTransport::RecordBroken(const std::string& reason) {
  uint32_t fine = 0;
  if (header_->broken.compare_exchange_strong(fine, 1, std::memory_order_acq_rel)) {
    std::snprintf(header_->reason, sizeof(header_->reason), "%s", reason.c_str());
    header_->broken.store(2, std::memory_order_release);
  }
  Changed();
}

void ShmTransport::MarkBroken(const std::string& reason) {
  RecordBroken(reason);
  LocalChange();
}

std::vector<int> ShmTransport::Missing(uint64_t seq) const {
  std::vector<int> missing;
  for (int rank = 0; rank < ranks_count_; ++rank) {
    if (ranks_[rank].posted_seq.load(std::memory_order_acquire) < seq) missing.push_back(rank);
  }
  return missing;
}

bool ShmTransport::AllReached(std::atomic<uint64_t> RankState::*counter, uint64_t seq) const {
  for (int rank = 0; rank < ranks_count_; ++rank) {
    if ((ranks_[rank].*counter).load(std::memory_order_seq_cst) < seq) return false;
  }
  return true;
}

PostResult ShmTransport::Post(int rank, uint64_t seq, size_t bytes, const PostWait& wait, std::vector<int>* missing) {
  if (header_->broken.load(std::memory_order_acquire) != 0) {
    *missing = Missing(seq);
    return PostResult::kBroken;
  }
  ranks_[rank].posted_bytes.store(bytes, std::memory_order_relaxed);
  ranks_[rank].posted_seq.store(seq, std::memory_order_seq_cst);  // publishes the slot's bytes
  LocalChange();
  // Waiters wait for the last post (failures and stops bump the word too): waking them at
  // every post would only put them back to sleep, N - 1 wake-ups per post.
  if (AllReached(&RankState::posted_seq, seq)) Changed();
  std::stop_callback on_stop(wait.stop, [this] { Changed(); });
  bool warned = false;
  for (;;) {
    // Read the word before the state, so a change after the check wakes the sleep below.
    const uint32_t seen = header_->changes.load(std::memory_order_seq_cst);
    *missing = Missing(seq);
    if (missing->empty()) return PostResult::kPosted;
    const auto now = Clock::now();
    PostResult failure = PostResult::kPosted;
    std::vector<int> dead;
    for (int peer : *missing) {
      if (dead_ && dead_(peer)) dead.push_back(peer);
    }
    if (header_->broken.load(std::memory_order_acquire) != 0) {
      failure = PostResult::kBroken;
    } else if (!dead.empty()) {
      failure = PostResult::kPeerDied;
      *missing = dead;
    } else if (wait.stop.stop_requested()) {
      failure = PostResult::kStopped;
    } else if (wait.deadline && now >= *wait.deadline) {
      failure = PostResult::kTimedOut;
    }
    if (failure != PostResult::kPosted) {
      // A peer may have seen our post and be reading: breaking the transport makes its
      // Finish fail, so nobody keeps what this call moved.
      MarkBroken(fmt::format("call #{} of rank {} {} waiting for ranks [{}]", seq, rank,
                             failure == PostResult::kTimedOut   ? "timed out"
                             : failure == PostResult::kStopped  ? "was aborted"
                             : failure == PostResult::kPeerDied ? "found dead"
                                                                : "saw a failure",
                             fmt::join(*missing, ", ")));
      return failure;
    }
    if (!warned && now >= wait.warn_at) {
      warned = true;
      if (wait.on_warn) wait.on_warn(*missing);
      continue;
    }
    auto wake = now + kLongestSleep;
    if (!warned) wake = std::min(wake, wait.warn_at);
    if (wait.deadline) wake = std::min(wake, *wait.deadline);
    FutexWait(header_->changes, seen, std::max<Clock::duration>(wake - now, std::chrono::microseconds(1)));
  }
}

size_t ShmTransport::PostedBytes(int peer) const {
  return ranks_[peer].posted_bytes.load(std::memory_order_relaxed);
}

void ShmTransport::Read(int peer, size_t offset, void* destination, size_t bytes) const {
  if (bytes == 0) return;
  // Bounded by the slot: a peer's table is not trusted to stay inside it.
  const size_t end = std::min(offset + bytes, slot_bytes_);
  const size_t start = std::min(offset, end);
  std::memcpy(destination, slots_ + slot_bytes_ * static_cast<size_t>(peer) + start, end - start);
  if (end - start < bytes) std::memset(static_cast<std::byte*>(destination) + (end - start), 0, bytes - (end - start));
}

const std::byte* ShmTransport::View(int peer, size_t offset, size_t bytes) const {
  // Bounded by the slot, as Read: a peer's table is not trusted to stay inside it.
  if (offset > slot_bytes_ || bytes > slot_bytes_ - offset) return nullptr;
  return slots_ + slot_bytes_ * static_cast<size_t>(peer) + offset;
}

bool ShmTransport::Finish(int rank, uint64_t seq, const PostWait& wait) {
  ranks_[rank].finished_seq.store(seq, std::memory_order_seq_cst);
  LocalChange();
  if (AllReached(&RankState::finished_seq, seq)) Changed();  // as in Post: only the last wakes anyone
  for (;;) {
    const uint32_t seen = header_->changes.load(std::memory_order_seq_cst);
    bool all = true;
    for (int peer = 0; peer < ranks_count_ && all; ++peer) {
      all = ranks_[peer].finished_seq.load(std::memory_order_acquire) >= seq;
    }
    if (all) return true;
    if (header_->broken.load(std::memory_order_acquire) != 0) return false;
    for (int peer = 0; peer < ranks_count_; ++peer) {
      if (ranks_[peer].finished_seq.load(std::memory_order_acquire) < seq && dead_ && dead_(peer)) {
        MarkBroken(fmt::format("rank {} died during call #{}", peer, seq));
        return false;
      }
    }
    const auto now = Clock::now();
    if (wait.deadline && now >= *wait.deadline) {
      MarkBroken(fmt::format("call #{} of rank {} timed out waiting for its peers to finish reading", seq, rank));
      return false;
    }
    auto wake = now + kLongestSleep;
    if (wait.deadline) wake = std::min(wake, *wait.deadline);
    FutexWait(header_->changes, seen, std::max<Clock::duration>(wake - now, std::chrono::microseconds(1)));
  }
}

std::string ShmTransport::BrokenReason() const {
  uint32_t state = header_->broken.load(std::memory_order_acquire);
  // Whoever marks it writes the reason between states 1 and 2, a few instructions: a reader
  // that saw the mark waits for them (bounded: that process may have died there).
  for (int tries = 0; state == 1 && tries < 10000; ++tries) {
    sched_yield();
    state = header_->broken.load(std::memory_order_acquire);
  }
  if (state != 2) return "";
  return std::string(header_->reason, strnlen(header_->reason, sizeof(header_->reason)));
}

bool ShmTransport::TrySend(int from, int to, const Chunk& chunk) {
  if (!Box(from, to).TryPost(chunk)) return false;
  Changed();
  LocalChange();
  return true;
}

std::optional<Chunk> ShmTransport::Peek(int from, int to) const {
  return Box(from, to).Peek();
}

void ShmTransport::Take(int from, int to) {
  Box(from, to).Take();
  Changed();
  LocalChange();
}

bool ShmTransport::Idle(int from, int to) const {
  return Box(from, to).Idle();
}

void ShmTransport::Reject(int from, int to, uint64_t message, uint64_t expected_bytes) {
  Box(from, to).Reject(message, expected_bytes);
  Changed();
  LocalChange();
}

std::pair<uint64_t, uint64_t> ShmTransport::Rejected(int from, int to) const {
  return Box(from, to).Rejected();
}

uint64_t ShmTransport::ChangeStamp() const {
  return header_->changes.load(std::memory_order_seq_cst);
}

PostResult ShmTransport::WaitForChange(int rank, uint64_t seen, const std::vector<int>& peers, const PostWait& wait,
                                       std::vector<int>* missing) {
  std::stop_callback on_stop(wait.stop, [this] { Changed(); });
  bool warned = false;
  for (;;) {
    if (header_->changes.load(std::memory_order_seq_cst) != static_cast<uint32_t>(seen)) return PostResult::kPosted;
    *missing = peers;
    const auto now = Clock::now();
    PostResult failure = PostResult::kPosted;
    std::vector<int> dead;
    for (int peer : peers) {
      if (dead_ && dead_(peer)) dead.push_back(peer);
    }
    if (header_->broken.load(std::memory_order_acquire) != 0) {
      failure = PostResult::kBroken;
    } else if (!dead.empty()) {
      failure = PostResult::kPeerDied;
      *missing = dead;
    } else if (wait.stop.stop_requested()) {
      failure = PostResult::kStopped;
    } else if (wait.deadline && now >= *wait.deadline) {
      failure = PostResult::kTimedOut;
    }
    if (failure != PostResult::kPosted) {
      MarkBroken(fmt::format("a send/receive of rank {} {} waiting for ranks [{}]", rank,
                             failure == PostResult::kTimedOut   ? "timed out"
                             : failure == PostResult::kStopped  ? "was aborted"
                             : failure == PostResult::kPeerDied ? "found dead"
                                                                : "saw a failure",
                             fmt::join(*missing, ", ")));
      return failure;
    }
    if (!warned && now >= wait.warn_at) {
      warned = true;
      if (wait.on_warn) wait.on_warn(peers);
      continue;
    }
    auto wake = now + kLongestSleep;
    if (!warned) wake = std::min(wake, wait.warn_at);
    if (wait.deadline) wake = std::min(wake, *wait.deadline);
    FutexWait(header_->changes, static_cast<uint32_t>(seen),
              std::max<Clock::duration>(wake - now, std::chrono::microseconds(1)));
  }
}

uint32_t ShmTransport::LocalChanges() const {
  return header_->local_changes.load(std::memory_order_seq_cst);
}

ShmTransport::Progress ShmTransport::RankProgress(int rank) const {
  Progress progress{};
  progress.finished_seq = ranks_[rank].finished_seq.load(std::memory_order_acquire);
  progress.posted_seq = ranks_[rank].posted_seq.load(std::memory_order_acquire);
  progress.posted_bytes = ranks_[rank].posted_bytes.load(std::memory_order_relaxed);
  return progress;
}

bool ShmTransport::ApplyPost(int rank, uint64_t seq, uint64_t bytes, const std::byte* data, const std::string& where) {
  if (bytes > slot_bytes_) {
    MarkBroken(
        fmt::format("rank {} ({}) posted {} bytes, more than this host's buffer of {} bytes (HCCL_BUFFSIZE "
                    "differs between hosts)",
                    rank, where, bytes, slot_bytes_));
    return false;
  }
  if (bytes > 0) std::memcpy(slots_ + slot_bytes_ * static_cast<size_t>(rank), data, bytes);
  ranks_[rank].posted_bytes.store(bytes, std::memory_order_relaxed);
  ranks_[rank].posted_seq.store(seq, std::memory_order_seq_cst);  // publishes the bytes, as a local post
  Changed();
  return true;
}

void ShmTransport::ApplyFinish(int rank, uint64_t seq) {
  ranks_[rank].finished_seq.store(seq, std::memory_order_seq_cst);
  Changed();
}

bool ShmTransport::ApplyChunk(int from, int to, uint64_t posted, const Chunk& chunk, const std::byte* data,
                              const std::string& where) {
  if (chunk.offset > slot_bytes_ || chunk.bytes > slot_bytes_ - chunk.offset) {
    MarkBroken(
        fmt::format("rank {} ({}) sent a chunk of {} bytes at {}, outside this host's buffer of {} bytes "
                    "(HCCL_BUFFSIZE differs between hosts)",
                    from, where, chunk.bytes, chunk.offset, slot_bytes_));
    return false;
  }
  if (chunk.bytes > 0) std::memcpy(slots_ + slot_bytes_ * static_cast<size_t>(from) + chunk.offset, data, chunk.bytes);
  Mailbox& box = Box(from, to);
  box.offset.store(chunk.offset, std::memory_order_relaxed);
  box.bytes.store(chunk.bytes, std::memory_order_relaxed);
  box.message.store(chunk.message, std::memory_order_relaxed);
  box.message_bytes.store(chunk.message_bytes, std::memory_order_relaxed);
  box.posted.store(posted, std::memory_order_release);  // publishes the chunk and its bytes, as TryPost
  Changed();
  return true;
}

void ShmTransport::ApplyTaken(int from, int to, uint64_t taken, uint64_t rejected, uint64_t rejected_expected) {
  Mailbox& box = Box(from, to);
  // The refusal before the take that frees the sender, as the receiver made them.
  if (rejected != box.rejected.load(std::memory_order_relaxed)) box.Reject(rejected, rejected_expected);
  box.taken.store(taken, std::memory_order_release);
  Changed();
}

void ShmTransport::ApplyBroken(const std::string& reason) {
  RecordBroken(reason);  // another host's: no local change to ship back
}

}  // namespace distbarrier::comm::transport
