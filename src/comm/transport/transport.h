// Moving bytes and flags between the ranks of one group: what the collectives layer
// (comm/collectives) builds its algorithms on. A transport knows nothing of operators or
// collectives; a call is a numbered "post" that every rank makes once.
//
// One call `seq` of one rank:
//   1. PostBuffer(): the rank writes what its peers may read into the transport's buffer,
//   2. Post(): publishes it and waits until every rank of the group has posted call `seq`,
//   3. Read() / View(): copies parts of peers' posted buffers, or reads them in place,
//   4. Finish(): says it has read all it needs and waits until every rank has, so that no
//      buffer is rewritten while a peer still reads it.
// A rank that gives up waiting (timeout, abort) breaks the transport: every call in flight
// and every later call fails, since the ranks are out of step from then on.
//
// Besides these group-wide posts, each ordered pair of ranks (from, to) has a mailbox that
// holds one chunk at a time: `from` writes the chunk into its own buffer and posts it, `to`
// reads it there and takes it, which frees the mailbox for the next chunk (HcclSend/HcclRecv).
// A rank only posts chunks while no group post of its own is in flight (its calls take turns).
// In-process (threads): buffers are ordinary memory that peers read directly. The same
// interface fits a shared-memory window (buffers in a mapped region) and a network transport
// (Read becomes a remote get).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

namespace distbarrier::comm::transport {

using Clock = std::chrono::steady_clock;

struct PostWait {
  std::optional<Clock::time_point> deadline;  // none: wait for ever
  Clock::time_point warn_at = Clock::time_point::max();
  // Called once at warn_at with the ranks that have not posted yet.
  std::function<void(const std::vector<int>& missing)> on_warn;
  std::stop_token stop;  // requested: the stream is being aborted
};

enum class PostResult {
  kPosted,    // every rank posted this call: peers' buffers may be read
  kTimedOut,  // the deadline passed first; *missing names who never came
  kStopped,   // the stop token fired first
  kBroken,    // an earlier call on this group failed; nothing more can be exchanged
  kPeerDied,  // a rank that had not posted died (its process exited); *missing names the dead
};

// A chunk in a pair's mailbox: bytes at `offset` of the sender's buffer, part of message
// `message` (1, 2, ... per pair) of `message_bytes` bytes.
struct Chunk {
  uint64_t offset = 0;
  uint64_t bytes = 0;
  uint64_t message = 0;
  uint64_t message_bytes = 0;
};

class Transport {
 public:
  virtual ~Transport() = default;

  virtual int Size() const = 0;
  // The most bytes one post may hold.
  virtual size_t Capacity() const = 0;
  // Where `rank` writes the `bytes` its peers will read in its next post.
  virtual std::byte* PostBuffer(int rank, size_t bytes) = 0;
  // Publishes the first `bytes` of rank's buffer as call `seq` and waits for every rank's
  // post of the same call. Any result but kPosted leaves the transport broken (its calls
  // out of step), and *missing lists the ranks that had not posted.
  virtual PostResult Post(int rank, uint64_t seq, size_t bytes, const PostWait& wait, std::vector<int>* missing) = 0;
  // Bytes peer posted in the current call (after kPosted).
  virtual size_t PostedBytes(int peer) const = 0;
  // Copies [offset, offset + bytes) of peer's posted buffer (after kPosted).
  virtual void Read(int peer, size_t offset, void* destination, size_t bytes) const = 0;
  // [offset, offset + bytes) of peer's posted buffer in place (after kPosted), valid until this
  // rank's Finish of the call; null when the range is not inside the buffer. (A network
  // transport would fetch the range into local memory here.)
  virtual const std::byte* View(int peer, size_t offset, size_t bytes) const = 0;
  // Rank has read everything it needs of call `seq`; waits until every rank has. False when
  // the call failed meanwhile (a rank gave up on it, so what was read may be stale): the
  // transport is broken then.
  virtual bool Finish(int rank, uint64_t seq, const PostWait& wait) = 0;
  // Why the transport is broken ("" when it is not).
  virtual std::string BrokenReason() const = 0;

  // The pair mailboxes. False when (from, to) still holds a chunk its receiver has not taken.
  virtual bool TrySend(int from, int to, const Chunk& chunk) = 0;
  // The chunk waiting in (from, to), if any; read it with Read(from, ...) and then Take it.
  virtual std::optional<Chunk> Peek(int from, int to) const = 0;
  virtual void Take(int from, int to) = 0;
  // Whether the receiver has taken every chunk posted to (from, to).
  virtual bool Idle(int from, int to) const = 0;
  // The receiver refused message `message` of (from, to): it expected `expected_bytes`.
  virtual void Reject(int from, int to, uint64_t message, uint64_t expected_bytes) = 0;
  // The last message the receiver refused (0: none) and the bytes it expected.
  virtual std::pair<uint64_t, uint64_t> Rejected(int from, int to) const = 0;
  // A number every mailbox change bumps; WaitForChange sleeps until it differs from `seen`.
  // Any result but kPosted (something changed) breaks the transport, as in Post; `peers`
  // are the ranks waited for (named in *missing, and watched for dying).
  virtual uint64_t ChangeStamp() const = 0;
  virtual PostResult WaitForChange(int rank, uint64_t seen, const std::vector<int>& peers, const PostWait& wait,
                                   std::vector<int>* missing) = 0;
};

}  // namespace distbarrier::comm::transport
