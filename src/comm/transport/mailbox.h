// One ordered pair's mailbox (see transport.h), the same for every transport that keeps it in
// memory both ranks reach: the heap for threads, the group's shared region for processes.
// Only the sender writes the chunk fields and `posted`; only the receiver writes `taken` and
// the rejection. The chunk fields are written before `posted` is published (release) and read
// after it is seen (acquire). All zero is the empty state, so a zero-filled region is one.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <utility>

#include "comm/transport/transport.h"

namespace distbarrier::comm::transport {

struct alignas(64) Mailbox {
  std::atomic<uint64_t> posted{0}, taken{0};
  std::atomic<uint64_t> offset{0}, bytes{0}, message{0}, message_bytes{0};
  std::atomic<uint64_t> rejected{0}, rejected_expected{0};

  // Sender: false while the receiver has not taken the previous chunk.
  bool TryPost(const Chunk& chunk) {
    const uint64_t count = posted.load(std::memory_order_relaxed);  // only the sender writes it
    if (taken.load(std::memory_order_acquire) != count) return false;
    offset.store(chunk.offset, std::memory_order_relaxed);
    bytes.store(chunk.bytes, std::memory_order_relaxed);
    message.store(chunk.message, std::memory_order_relaxed);
    message_bytes.store(chunk.message_bytes, std::memory_order_relaxed);
    posted.store(count + 1, std::memory_order_release);  // publishes the chunk and its bytes
    return true;
  }
  std::optional<Chunk> Peek() const {
    if (posted.load(std::memory_order_acquire) == taken.load(std::memory_order_relaxed)) return std::nullopt;
    return Chunk{offset.load(std::memory_order_relaxed), bytes.load(std::memory_order_relaxed),
                 message.load(std::memory_order_relaxed), message_bytes.load(std::memory_order_relaxed)};
  }
  // Receiver: the sender may now rewrite the bytes.
  void Take() { taken.fetch_add(1, std::memory_order_release); }
  bool Idle() const { return taken.load(std::memory_order_acquire) == posted.load(std::memory_order_relaxed); }
  void Reject(uint64_t refused_message, uint64_t expected_bytes) {
    rejected_expected.store(expected_bytes, std::memory_order_relaxed);
    rejected.store(refused_message, std::memory_order_release);
  }
  std::pair<uint64_t, uint64_t> Rejected() const {
    const uint64_t refused = rejected.load(std::memory_order_acquire);
    return {refused, rejected_expected.load(std::memory_order_relaxed)};
  }
};

}  // namespace distbarrier::comm::transport
