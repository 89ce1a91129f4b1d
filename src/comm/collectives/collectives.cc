#include "comm/collectives/collectives.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstring>

#include "common/deadline.h"
#include "common/log.h"

namespace distbarrier::comm::collectives {
namespace {

using transport::Clock;

// A post: [error length][block count][count x (offset, size)][error text][payload].
// Offsets are from the start of the post.
struct PostHeader {
  uint64_t error_bytes;
  uint64_t blocks;
};
struct BlockEntry {
  uint64_t offset;
  uint64_t size;
};

// A failing rank's message travels with its post; longer ones are cut.
constexpr size_t kMaxErrorBytes = 1024;

double Milliseconds(Clock::duration duration) {
  return std::chrono::duration<double, std::milli>(duration).count();
}

}  // namespace

GroupCollectives::GroupCollectives(std::string group_name, std::unique_ptr<transport::Transport> transport)
    : group_name_(std::move(group_name)),
      transport_(std::move(transport)),
      ranks_(std::make_unique<RankCalls[]>(static_cast<size_t>(transport_->Size()))) {}

GroupCollectives::~GroupCollectives() = default;

size_t GroupCollectives::PostBytes(int ranks, size_t payload_bytes, size_t error_bytes) {
  return sizeof(PostHeader) + static_cast<size_t>(ranks) * sizeof(BlockEntry) + error_bytes + payload_bytes;
}

bool GroupCollectives::ClaimWarning(uint64_t seq) {
  uint64_t warned = warned_through_.load(std::memory_order_relaxed);
  while (warned < seq) {
    if (warned_through_.compare_exchange_weak(warned, seq, std::memory_order_relaxed)) return true;
  }
  return false;
}

bool Posted::Read(int from, size_t offset, void* destination, size_t bytes) const {
  const auto [start, size] = blocks_[from];
  if (offset > size || bytes > size - offset) return false;
  if (bytes > 0) transport_.Read(from, start + offset, destination, bytes);
  return true;
}

std::span<const std::byte> Posted::Block(int from) const {
  const auto [offset, bytes] = blocks_[from];
  if (bytes == 0) return {};
  return {transport_.View(from, offset, bytes), bytes};
}

int Call::Size() const {
  return owner_.transport_->Size();
}

size_t Call::PayloadCapacity() const {
  const size_t table = GroupCollectives::PostBytes(Size(), 0);
  const size_t capacity = owner_.transport_->Capacity();
  return capacity > table ? capacity - table : 0;
}

CallResult Call::Exchange(const std::vector<size_t>& send_bytes, bool same_block_for_all, const PackFn& pack,
                          const UnpackFn& unpack) {
  return owner_.Exchange(rank_, what_, send_bytes, same_block_for_all, pack, unpack, options_);
}

CallResult Call::SendReceive(const std::vector<PairItem>& items, uint64_t budget) {
  return owner_.SendReceive(rank_, what_, items, budget, options_);
}

uint64_t GroupCollectives::ReserveMessage(int rank, int peer, bool send) {
  RankCalls& calls = ranks_[rank];
  std::lock_guard lock(calls.mutex);
  std::vector<uint64_t>& counts = send ? calls.sent : calls.received;
  if (counts.empty()) counts.assign(static_cast<size_t>(transport_->Size()), 0);
  return ++counts[peer];
}

CallResult GroupCollectives::RunUnordered(int rank, const char* what, const CallOptions& options,
                                          const std::function<CallResult(Call& call)>& body) {
  Call call(*this, rank, what, options);
  return body(call);
}

CallResult GroupCollectives::SendReceive(int rank, const char* what, const std::vector<PairItem>& items,
                                         uint64_t budget, const CallOptions& options) {
  const Clock::time_point start = Clock::now();
  const std::string where = fmt::format("group '{}', rank {} ({})", group_name_, rank, what);
  if (!options.local_error.empty()) {
    return {CallResult::Kind::kPeerFailed, fmt::format("{}: {}: {}", options.api, where, options.local_error)};
  }
  size_t sends = 0;
  uint64_t largest = 0;
  for (const PairItem& item : items) {
    sends += item.send ? 1 : 0;
    if (item.send) largest = std::max(largest, item.bytes);
  }
  // Each send has its own region of the post buffer, so all sends are in flight together: a
  // share of HCCL_BUFFSIZE, or less when the largest message is smaller (a buffer of threads'
  // ranks is heap memory that is zeroed when it grows: 200 MB per rank for a few bytes cost
  // seconds at 16 ranks, and a minute under ThreadSanitizer).
  const uint64_t share = sends == 0 ? 0 : std::min<uint64_t>(budget, transport_->Capacity()) / sends / 64 * 64;
  const uint64_t region = std::min<uint64_t>(share, (std::max<uint64_t>(largest, 1) + 63) / 64 * 64);
  std::byte* buffer = sends == 0 ? nullptr : transport_->PostBuffer(rank, region * sends);
  if (sends > 0 && share == 0) {
    return {CallResult::Kind::kPeerFailed,
            fmt::format("{}: {}: a buffer of {} bytes (HCCL_BUFFSIZE) cannot hold a piece of each of {} sends",
                        options.api, where, std::min<uint64_t>(budget, transport_->Capacity()), sends)};
  }
  struct State {
    uint64_t done = 0;        // bytes posted (send) or taken (receive)
    uint64_t drained = 0;     // a refused receive: bytes of the sender's message taken
    bool posted_all = false;  // send: the last piece is in the mailbox
    bool finished = false;
  };
  std::vector<State> states(items.size());
  std::vector<uint64_t> regions(items.size(), 0);
  for (size_t i = 0, next = 0; i < items.size(); ++i) {
    if (items[i].send) regions[i] = region * next++;
  }
  CallResult result;
  auto fail_once = [&](std::string message) {
    if (result.ok()) result = {CallResult::Kind::kPeerFailed, std::move(message)};
  };
  // Only the first unfinished item per peer and direction moves: messages keep their order.
  auto active = [&](size_t i) {
    for (size_t j = 0; j < i; ++j) {
      if (!states[j].finished && items[j].send == items[i].send && items[j].peer == items[i].peer) return false;
    }
    return !states[i].finished;
  };
  for (;;) {
    const uint64_t stamp = transport_->ChangeStamp();
    bool pending = false;
    std::vector<int> peers;
    for (size_t i = 0; i < items.size(); ++i) {
      const PairItem& item = items[i];
      State& state = states[i];
      if (!active(i)) {
        if (!state.finished) pending = true;
        continue;
      }
      if (item.send) {
        while (!state.posted_all && transport_->Idle(rank, item.peer)) {
          const uint64_t piece = std::min(region, item.bytes - state.done);
          if (piece > 0) std::memcpy(buffer + regions[i], item.buffer + state.done, piece);
          transport_->TrySend(rank, item.peer, {regions[i], piece, item.message, item.bytes});
          state.done += piece;
          state.posted_all = state.done == item.bytes;
        }
        if (state.posted_all && transport_->Idle(rank, item.peer)) {
          state.finished = true;
          const auto [refused, expected] = transport_->Rejected(rank, item.peer);
          if (refused == item.message) {
            fail_once(fmt::format(
                "{}: {}: rank {} sends {} bytes to rank {}, but rank {} expects {} bytes (message "
                "#{} from {} to {})",
                options.api, where, rank, item.bytes, item.peer, item.peer, expected, item.message, rank, item.peer));
          }
        }
      } else {
        while (!state.finished) {
          std::optional<transport::Chunk> chunk = transport_->Peek(item.peer, rank);
          if (!chunk || chunk->message < item.message) break;  // not sent yet, or an earlier receive's
          if (chunk->message > item.message || chunk->message_bytes != item.bytes) {
            // Refused: say so to the sender, and take its pieces so that it is not left waiting.
            if (state.drained == 0 && chunk->message == item.message) {
              transport_->Reject(item.peer, rank, item.message, item.bytes);
              fail_once(
                  fmt::format("{}: {}: rank {} receives {} bytes from rank {}, but rank {} sends {} bytes "
                              "(message #{} from {} to {})",
                              options.api, where, rank, item.bytes, item.peer, item.peer, chunk->message_bytes,
                              item.message, item.peer, rank));
            } else if (chunk->message != item.message) {
              fail_once(fmt::format("{}: {}: message #{} from rank {} came where #{} was expected", options.api, where,
                                    chunk->message, item.peer, item.message));
              state.finished = true;
              break;
            }
            state.drained += chunk->bytes;
            transport_->Take(item.peer, rank);
            state.finished = state.drained >= chunk->message_bytes;
            continue;
          }
          const uint64_t piece = std::min(chunk->bytes, item.bytes - state.done);
          if (piece > 0) transport_->Read(item.peer, chunk->offset, item.buffer + state.done, piece);
          state.done += piece;
          transport_->Take(item.peer, rank);
          state.finished = state.done >= item.bytes;
        }
      }
      if (!state.finished) {
        pending = true;
        peers.push_back(item.peer);
      }
    }
    if (!pending) return result;
    if (peers.empty()) continue;  // only items queued behind finished ones: go round again
    transport::PostWait wait;
    if (options.timeout) {
      wait.deadline = DeadlineAfter(start, *options.timeout);
    } else {
      wait.warn_at = DeadlineAfter(start, options.warn_after);
      wait.on_warn = [&](const std::vector<int>& missing) {
        Log(LogLevel::kWarning,
            "{}: {} has waited {:.1f} s for ranks [{}] to send or receive (HCCL_EXEC_TIMEOUT not set; still waiting)",
            options.api, where, Milliseconds(Clock::now() - start) / 1000.0, fmt::join(missing, ", "));
      };
    }
    wait.stop = options.stop;
    std::vector<int> missing;
    switch (transport_->WaitForChange(rank, stamp, peers, wait, &missing)) {
      case transport::PostResult::kPosted: break;
      case transport::PostResult::kTimedOut:
        return {CallResult::Kind::kTimedOut,
                fmt::format("{} timed out: {} waited {:.3f} ms (HCCL_EXEC_TIMEOUT {:.3f} s) for ranks [{}] to send "
                            "or receive",
                            options.api, where, Milliseconds(Clock::now() - start),
                            std::chrono::duration<double>(*options.timeout).count(), fmt::join(missing, ", "))};
      case transport::PostResult::kStopped:
        return {CallResult::Kind::kStopped,
                fmt::format("{}: {} aborted (stream destroyed or aclFinalize) waiting for ranks [{}]", options.api,
                            where, fmt::join(missing, ", "))};
      case transport::PostResult::kPeerDied:
        return {CallResult::Kind::kPeerDied, fmt::format("{}: {}: rank(s) [{}] died before sending or receiving",
                                                         options.api, where, fmt::join(missing, ", "))};
      case transport::PostResult::kBroken:
        return {CallResult::Kind::kBroken, fmt::format("{}: {} cannot go on: an earlier call of this group failed ({})",
                                                       options.api, where, transport_->BrokenReason())};
    }
  }
}

uint64_t GroupCollectives::Reserve(int rank) {
  std::lock_guard lock(ranks_[rank].mutex);
  return ++ranks_[rank].reserved;
}

void GroupCollectives::CompleteLocked(RankCalls& calls, uint64_t ticket) {
  if (ticket != calls.done + 1) {
    calls.abandoned.insert(ticket);
    return;
  }
  calls.done = ticket;
  while (!calls.abandoned.empty() && *calls.abandoned.begin() == calls.done + 1) {
    calls.done = *calls.abandoned.begin();
    calls.abandoned.erase(calls.abandoned.begin());
  }
  calls.turn_changed.notify_all();
}

void GroupCollectives::Abandon(int rank, uint64_t ticket) {
  RankCalls& calls = ranks_[rank];
  std::lock_guard lock(calls.mutex);
  if (calls.out_of_step.empty()) {
    calls.out_of_step = fmt::format(
        "group '{}', rank {}: its call #{} was dropped before it ran (its stream failed "
        "or was aborted), so its later calls cannot pair with its peers'",
        group_name_, rank, ticket);
  }
  CompleteLocked(calls, ticket);
}

CallResult GroupCollectives::RunCall(int rank, uint64_t ticket, const char* what, const CallOptions& options,
                                     const std::function<CallResult(Call& call)>& body) {
  RankCalls& calls = ranks_[rank];
  const Clock::time_point start = Clock::now();
  {
    std::unique_lock lock(calls.mutex);
    auto my_turn = [&] { return calls.done + 1 == ticket; };
    bool turn = true;
    if (options.timeout) {
      turn = calls.turn_changed.wait_until(lock, options.stop, DeadlineAfter(start, *options.timeout), my_turn);
    } else {
      turn = calls.turn_changed.wait(lock, options.stop, my_turn);
    }
    if (!turn) {
      // The call never ran: later calls of this rank are out of step with its peers.
      if (calls.out_of_step.empty()) {
        calls.out_of_step = fmt::format(
            "group '{}', rank {}: its call #{} ({}) gave up waiting for the rank's "
            "earlier calls",
            group_name_, rank, ticket, what);
      }
      calls.abandoned.insert(ticket);
      const bool stopped = options.stop.stop_requested();
      return {stopped ? CallResult::Kind::kStopped : CallResult::Kind::kTimedOut,
              fmt::format("{}: group '{}', rank {}, call #{} ({}) {} after {:.3f} ms waiting for the rank's earlier "
                          "collective calls (on another stream) to finish",
                          options.api, group_name_, rank, ticket, what,
                          stopped ? "aborted (stream destroyed or aclFinalize)" : "timed out (HCCL_EXEC_TIMEOUT)",
                          Milliseconds(Clock::now() - start))};
    }
  }
  // The turn is held: nobody else touches this rank's exchanges until CompleteLocked.
  CallResult result;
  try {
    CallOptions own = options;
    {
      std::lock_guard lock(calls.mutex);
      if (own.local_error.empty()) own.local_error = calls.out_of_step;
    }
    Call call(*this, rank, what, own);
    result = body(call);
  } catch (...) {
    std::lock_guard lock(calls.mutex);
    CompleteLocked(calls, ticket);
    throw;
  }
  std::lock_guard lock(calls.mutex);
  CompleteLocked(calls, ticket);
  return result;
}

CallResult GroupCollectives::AllToAllV(int rank, const std::vector<size_t>& send_bytes, const PackFn& pack,
                                       const ConsumeFn& consume, const CallOptions& options) {
  return OneExchange(rank, "all-to-all-v", send_bytes, false, pack, consume, options);
}

CallResult GroupCollectives::AllGather(int rank, size_t bytes, const PackFn& pack, const ConsumeFn& consume,
                                       const CallOptions& options) {
  return OneExchange(rank, "all-gather", std::vector<size_t>(static_cast<size_t>(transport_->Size()), bytes), true,
                     pack, consume, options);
}

CallResult GroupCollectives::OneExchange(int rank, const char* what, const std::vector<size_t>& send_bytes,
                                         bool same_block_for_all, const PackFn& pack, const ConsumeFn& consume,
                                         const CallOptions& options) {
  const uint64_t ticket = Reserve(rank);
  return RunCall(rank, ticket, what, options, [&](Call& call) {
    return call.Exchange(send_bytes, same_block_for_all, pack, [&](const Posted& posted) {
      Blocks blocks(static_cast<size_t>(transport_->Size()));
      for (int from = 0; from < transport_->Size(); ++from) blocks[from] = posted.Block(from);
      consume(blocks);
    });
  });
}

CallResult GroupCollectives::Exchange(int rank, const char* what, const std::vector<size_t>& send_bytes,
                                      bool same_block_for_all, const PackFn& pack, const UnpackFn& unpack,
                                      const CallOptions& options) {
  const int size = transport_->Size();
  const uint64_t seq = ++ranks_[rank].exchanges;  // only the call holding the rank's turn gets here
  const Clock::time_point start = Clock::now();
  // Pack: header, table, error text, then each destination's block (one block for all).
  size_t payload = 0;
  if (same_block_for_all) {
    payload = send_bytes.empty() ? 0 : send_bytes[0];
  } else {
    for (size_t bytes : send_bytes) payload += bytes;
  }
  std::string local_error = options.local_error;
  if (local_error.empty() && PostBytes(size, payload) > transport_->Capacity()) {
    local_error = fmt::format(
        "{}: group '{}', rank {}: one call moves {} bytes, more than the transport's {} "
        "(HCCL_BUFFSIZE)",
        options.api, group_name_, rank, PostBytes(size, payload), transport_->Capacity());
  }
  if (local_error.size() > kMaxErrorBytes) local_error.resize(kMaxErrorBytes);
  const bool failed_before = !local_error.empty();
  if (failed_before) payload = 0;
  const size_t error_bytes = local_error.size();
  const size_t post_bytes = PostBytes(size, payload, error_bytes);
  std::byte* out = transport_->PostBuffer(rank, post_bytes);
  const PostHeader header{error_bytes, static_cast<uint64_t>(size)};
  std::memcpy(out, &header, sizeof header);
  auto* table = out + sizeof header;
  std::byte* text = table + static_cast<size_t>(size) * sizeof(BlockEntry);
  std::memcpy(text, local_error.data(), error_bytes);
  size_t offset = static_cast<size_t>(text + error_bytes - out);
  for (int to = 0; to < size; ++to) {
    BlockEntry entry{offset, failed_before ? 0 : send_bytes[same_block_for_all ? 0 : to]};
    if (entry.size > 0 && (!same_block_for_all || to == 0)) {
      pack(same_block_for_all ? -1 : to, out + offset);
    }
    if (!same_block_for_all) offset += entry.size;
    std::memcpy(table + static_cast<size_t>(to) * sizeof(BlockEntry), &entry, sizeof entry);
  }

  transport::PostWait wait;
  if (options.timeout) {
    wait.deadline = DeadlineAfter(start, *options.timeout);
  } else {
    wait.warn_at = DeadlineAfter(start, options.warn_after);
    wait.on_warn = [&](const std::vector<int>& missing) {
      if (!ClaimWarning(seq)) return;
      Log(LogLevel::kWarning,
          "{}: group '{}' collective #{} ({}) has waited {:.1f} s on rank {} for ranks [{}] (HCCL_EXEC_TIMEOUT "
          "not set; still waiting)",
          options.api, group_name_, seq, what, Milliseconds(Clock::now() - start) / 1000.0, rank,
          fmt::join(missing, ", "));
    };
  }
  wait.stop = options.stop;
  std::vector<int> missing;
  const transport::PostResult posted = transport_->Post(rank, seq, post_bytes, wait, &missing);
  const std::string where = fmt::format("group '{}', rank {}, collective #{} ({})", group_name_, rank, seq, what);
  switch (posted) {
    case transport::PostResult::kPosted: break;
    case transport::PostResult::kTimedOut:
      return {CallResult::Kind::kTimedOut,
              fmt::format("{} timed out: {} waited {:.3f} ms (HCCL_EXEC_TIMEOUT {:.3f} s); ranks that never came: "
                          "[{}]",
                          options.api, where, Milliseconds(Clock::now() - start),
                          std::chrono::duration<double>(*options.timeout).count(), fmt::join(missing, ", "))};
    case transport::PostResult::kStopped:
      return {CallResult::Kind::kStopped,
              fmt::format("{}: {} aborted after {:.3f} ms (stream destroyed or aclFinalize); ranks that had not "
                          "come: [{}]",
                          options.api, where, Milliseconds(Clock::now() - start), fmt::join(missing, ", "))};
    case transport::PostResult::kPeerDied:
      return {CallResult::Kind::kPeerDied, fmt::format("{}: {}: {} [{}] died after {:.3f} ms, before making this call",
                                                       options.api, where, missing.size() == 1 ? "rank" : "ranks",
                                                       fmt::join(missing, ", "), Milliseconds(Clock::now() - start))};
    case transport::PostResult::kBroken:
      return {CallResult::Kind::kBroken,
              fmt::format("{}: {} cannot run: an earlier collective of this group failed ({})", options.api, where,
                          transport_->BrokenReason())};
  }

  // Find what each peer sent us; note the first peer that reported a failure.
  CallResult result;
  std::vector<std::pair<size_t, size_t>> blocks(static_cast<size_t>(size), {0, 0});
  for (int from = 0; from < size; ++from) {
    PostHeader peer;
    transport_->Read(from, 0, &peer, sizeof peer);
    if (peer.error_bytes > 0) {
      if (result.ok() && from != rank) {
        std::string message(std::min<uint64_t>(peer.error_bytes, kMaxErrorBytes), '\0');
        transport_->Read(from, sizeof peer + peer.blocks * sizeof(BlockEntry), message.data(), message.size());
        result = {CallResult::Kind::kPeerFailed,
                  fmt::format("{}: {}: rank {} failed: {}", options.api, where, from, message)};
      }
      continue;
    }
    BlockEntry entry;
    transport_->Read(from, sizeof peer + static_cast<size_t>(rank) * sizeof(BlockEntry), &entry, sizeof entry);
    const size_t posted = transport_->PostedBytes(from);
    if (peer.blocks != static_cast<uint64_t>(size) || entry.offset > posted || entry.size > posted - entry.offset) {
      if (result.ok()) {
        result = {CallResult::Kind::kPeerFailed,
                  fmt::format("{}: {}: rank {} posted a malformed table ({} blocks, {} bytes at {} for rank {})",
                              options.api, where, from, peer.blocks, entry.size, entry.offset, rank)};
      }
      continue;
    }
    blocks[from] = {entry.offset, entry.size};
  }
  if (result.ok() && !failed_before) unpack(Posted(*transport_, blocks));
  if (!transport_->Finish(rank, seq, wait)) {
    return {CallResult::Kind::kBroken,
            fmt::format("{}: {} failed while its data moved: {}", options.api, where, transport_->BrokenReason())};
  }
  if (result.ok() && failed_before) {
    return {CallResult::Kind::kPeerFailed, local_error};
  }
  return result;
}

}  // namespace distbarrier::comm::collectives
