#include "comm/collectives/collectives.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstring>

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

int Call::Size() const { return owner_.transport_->Size(); }

size_t Call::PayloadCapacity() const {
  const size_t table = GroupCollectives::PostBytes(Size(), 0);
  const size_t capacity = owner_.transport_->Capacity();
  return capacity > table ? capacity - table : 0;
}

CallResult Call::Exchange(const std::vector<size_t>& send_bytes, bool same_block_for_all, const PackFn& pack,
                          const UnpackFn& unpack) {
  return owner_.Exchange(rank_, what_, send_bytes, same_block_for_all, pack, unpack, options_);
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
    calls.out_of_step = fmt::format("group '{}', rank {}: its call #{} was dropped before it ran (its stream failed "
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
      turn = calls.turn_changed.wait_until(lock, options.stop, start + *options.timeout, my_turn);
    } else {
      turn = calls.turn_changed.wait(lock, options.stop, my_turn);
    }
    if (!turn) {
      // The call never ran: later calls of this rank are out of step with its peers.
      if (calls.out_of_step.empty()) {
        calls.out_of_step = fmt::format("group '{}', rank {}: its call #{} ({}) gave up waiting for the rank's "
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
                                       Received* received, const CallOptions& options) {
  return OneExchange(rank, "all-to-all-v", send_bytes, false, pack, received, options);
}

CallResult GroupCollectives::AllGather(int rank, size_t bytes, const PackFn& pack, Received* received,
                                       const CallOptions& options) {
  return OneExchange(rank, "all-gather", std::vector<size_t>(static_cast<size_t>(transport_->Size()), bytes), true,
                     pack, received, options);
}

CallResult GroupCollectives::OneExchange(int rank, const char* what, const std::vector<size_t>& send_bytes,
                                         bool same_block_for_all, const PackFn& pack, Received* received,
                                         const CallOptions& options) {
  const uint64_t ticket = Reserve(rank);
  return RunCall(rank, ticket, what, options, [&](Call& call) {
    return call.Exchange(send_bytes, same_block_for_all, pack, [&](const Posted& posted) {
      received->assign(static_cast<size_t>(transport_->Size()), {});
      for (int from = 0; from < transport_->Size(); ++from) {
        (*received)[from].resize(posted.Bytes(from));
        posted.Read(from, 0, (*received)[from].data(), posted.Bytes(from));
      }
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
    wait.deadline = start + *options.timeout;
  } else {
    wait.warn_at = start + options.warn_after;
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
                  fmt::format("{}: {}: rank {} posted a malformed table ({} blocks, {} bytes for rank {})", options.api,
                              where, from, peer.blocks, entry.size, rank)};
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
