#include "comm/transport/in_process_transport.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstring>
#include <stop_token>

namespace distbarrier::comm::transport {

InProcessTransport::InProcessTransport(int size)
    : ranks_(static_cast<size_t>(size)), mailboxes_(std::make_unique<Mailbox[]>(static_cast<size_t>(size) * size)) {}

std::byte* InProcessTransport::PostBuffer(int rank, size_t bytes) {
  std::vector<std::byte>& buffer = ranks_[rank].buffer;
  if (buffer.size() < bytes) buffer.resize(bytes);
  return buffer.data();
}

std::vector<int> InProcessTransport::MissingLocked(uint64_t seq) const {
  std::vector<int> missing;
  for (int rank = 0; rank < Size(); ++rank) {
    if (ranks_[rank].posted_seq < seq) missing.push_back(rank);
  }
  return missing;
}

PostResult InProcessTransport::Post(int rank, uint64_t seq, size_t bytes, const PostWait& wait,
                                    std::vector<int>* missing) {
  // Wakes this waiter when the stream is aborted; taking the mutex orders the notify after
  // the waiter's check of the token. Registered before the lock is taken: a stop requested
  // already (between the exchanges of one call) runs the callback right here.
  std::stop_callback on_stop(wait.stop, [this] {
    std::lock_guard stop_lock(mutex_);
    changed_.notify_all();
  });
  std::unique_lock lock(mutex_);
  if (!broken_.empty()) {
    *missing = MissingLocked(seq);
    return PostResult::kBroken;
  }
  ranks_[rank].posted_bytes = bytes;
  ranks_[rank].posted_seq = seq;
  // Waiters wait for the last post (or a failure, which notifies too): waking them at every
  // post would only put them back to sleep, N - 1 wake-ups per post.
  if (MissingLocked(seq).empty()) changed_.notify_all();
  bool warned = false;
  for (;;) {
    // Every rank posted: peers' buffers are ours to read, even if another rank has given up
    // on a later call meanwhile (nobody gives up on a call everyone reached).
    *missing = MissingLocked(seq);
    if (missing->empty()) return PostResult::kPosted;
    PostResult failure = PostResult::kPosted;
    const Clock::time_point now = Clock::now();
    if (!broken_.empty()) {
      failure = PostResult::kBroken;
    } else if (wait.stop.stop_requested()) {
      failure = PostResult::kStopped;
    } else if (wait.deadline && now >= *wait.deadline) {
      failure = PostResult::kTimedOut;
    }
    if (failure != PostResult::kPosted) {
      // Withdraw, so that nobody reads our buffer for this call, and stop the group: its
      // ranks are out of step from here on.
      ranks_[rank].posted_seq = seq - 1;
      if (broken_.empty()) {
        broken_ =
            fmt::format("call #{} of rank {} {} waiting for ranks [{}]", seq, rank,
                        failure == PostResult::kTimedOut ? "timed out" : "was aborted", fmt::join(*missing, ", "));
      }
      changed_.notify_all();
      return failure;
    }
    if (!warned && now >= wait.warn_at) {
      warned = true;
      if (wait.on_warn) {
        std::vector<int> waiting_for = *missing;
        lock.unlock();
        wait.on_warn(waiting_for);
        lock.lock();
        continue;
      }
    }
    Clock::time_point wake = warned ? Clock::time_point::max() : wait.warn_at;
    if (wait.deadline) wake = std::min(wake, *wait.deadline);
    if (wake == Clock::time_point::max()) {
      changed_.wait(lock);
    } else {
      changed_.wait_until(lock, wake);
    }
  }
}

size_t InProcessTransport::PostedBytes(int peer) const {
  std::lock_guard lock(mutex_);
  return ranks_[peer].posted_bytes;
}

void InProcessTransport::Read(int peer, size_t offset, void* destination, size_t bytes) const {
  // The peer's post (under mutex_) happened before our Post saw it; the buffer is not
  // written again until we have finished.
  if (bytes > 0) std::memcpy(destination, ranks_[peer].buffer.data() + offset, bytes);
}

const std::byte* InProcessTransport::View(int peer, size_t offset, size_t bytes) const {
  // As Read: the buffer was sized and written before the peer's post, and stays until we finish.
  const std::vector<std::byte>& buffer = ranks_[peer].buffer;
  if (offset > buffer.size() || bytes > buffer.size() - offset) return nullptr;
  return buffer.data() + offset;
}

bool InProcessTransport::Finish(int rank, uint64_t seq, const PostWait&) {
  std::unique_lock lock(mutex_);
  ranks_[rank].finished_seq = seq;
  const auto all_finished = [&] {
    for (const RankSlot& slot : ranks_) {
      if (slot.finished_seq < seq) return false;
    }
    return true;
  };
  if (all_finished()) changed_.notify_all();  // as in Post: only the last finish wakes anyone
  // Every rank posted this call (a withdrawal and the check that all posted are one step
  // under the mutex), and nothing blocks between a post and its finish, so this wait is
  // short and needs no deadline.
  changed_.wait(lock, all_finished);
  return true;
}

std::string InProcessTransport::BrokenReason() const {
  std::lock_guard lock(mutex_);
  return broken_;
}

void InProcessTransport::Changed() {
  std::lock_guard lock(mutex_);
  ++changes_;
  changed_.notify_all();
}

bool InProcessTransport::TrySend(int from, int to, const Chunk& chunk) {
  if (!Box(from, to).TryPost(chunk)) return false;
  Changed();
  return true;
}

std::optional<Chunk> InProcessTransport::Peek(int from, int to) const {
  return Box(from, to).Peek();
}

void InProcessTransport::Take(int from, int to) {
  Box(from, to).Take();
  Changed();
}

bool InProcessTransport::Idle(int from, int to) const {
  return Box(from, to).Idle();
}

void InProcessTransport::Reject(int from, int to, uint64_t message, uint64_t expected_bytes) {
  Box(from, to).Reject(message, expected_bytes);
  Changed();
}

std::pair<uint64_t, uint64_t> InProcessTransport::Rejected(int from, int to) const {
  return Box(from, to).Rejected();
}

uint64_t InProcessTransport::ChangeStamp() const {
  std::lock_guard lock(mutex_);
  return changes_;
}

PostResult InProcessTransport::WaitForChange(int rank, uint64_t seen, const std::vector<int>& peers,
                                             const PostWait& wait, std::vector<int>* missing) {
  // Registered before the lock is taken: a stop already requested runs the callback here.
  std::stop_callback on_stop(wait.stop, [this] {
    std::lock_guard stop_lock(mutex_);
    changed_.notify_all();
  });
  std::unique_lock lock(mutex_);
  bool warned = false;
  for (;;) {
    if (changes_ != seen) return PostResult::kPosted;
    *missing = peers;
    PostResult failure = PostResult::kPosted;
    const Clock::time_point now = Clock::now();
    if (!broken_.empty()) {
      failure = PostResult::kBroken;
    } else if (wait.stop.stop_requested()) {
      failure = PostResult::kStopped;
    } else if (wait.deadline && now >= *wait.deadline) {
      failure = PostResult::kTimedOut;
    }
    if (failure != PostResult::kPosted) {
      if (broken_.empty()) {
        broken_ = fmt::format("a send/receive of rank {} {} waiting for ranks [{}]", rank,
                              failure == PostResult::kTimedOut ? "timed out" : "was aborted", fmt::join(peers, ", "));
      }
      ++changes_;
      changed_.notify_all();
      return failure;
    }
    if (!warned && now >= wait.warn_at) {
      warned = true;
      if (wait.on_warn) {
        lock.unlock();
        wait.on_warn(peers);
        lock.lock();
        continue;
      }
    }
    Clock::time_point wake = warned ? Clock::time_point::max() : wait.warn_at;
    if (wait.deadline) wake = std::min(wake, *wait.deadline);
    if (wake == Clock::time_point::max()) {
      changed_.wait(lock);
    } else {
      changed_.wait_until(lock, wake);
    }
  }
}

}  // namespace distbarrier::comm::transport
