#include "op/hccl/hccl_collectives.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>

#include "comm/collectives/collectives.h"
#include "comm/collectives/reduce.h"
#include "common/env.h"
#include "common/error.h"
#include "op/collective_call.h"
#include "runtime/runtime.h"

namespace distbarrier::op::hccl {
namespace {

using comm::collectives::Call;
using comm::collectives::CallResult;
using comm::collectives::ElementBytes;
using comm::collectives::Posted;

constexpr int64_t kDefaultBuffSizeMb = 200;  // HCCL_BUFFSIZE
// No buffer is this large; keeps every byte offset below from overflowing.
constexpr uint64_t kMaxBytes = uint64_t{1} << 48;

const char* KindName(uint32_t kind) {
  static constexpr const char* kNames[] = {"HcclAllReduce", "HcclBroadcast", "HcclAllGather", "HcclReduceScatter",
                                           "HcclReduce",    "HcclAlltoAll",  "HcclAlltoAllV", "HcclScatter"};
  return kind < std::size(kNames) ? kNames[kind] : "an unknown operation";
}

bool Reduces(CollectiveKind kind) {
  return kind == CollectiveKind::kAllReduce || kind == CollectiveKind::kReduce ||
         kind == CollectiveKind::kReduceScatter;
}
bool HasRoot(CollectiveKind kind) {
  return kind == CollectiveKind::kBroadcast || kind == CollectiveKind::kReduce || kind == CollectiveKind::kScatter;
}

// What every rank posts first: the call as it sees it. AlltoAllV adds its send counts and
// its receive counts (ranks entries each).
struct Descriptor {
  uint32_t kind;
  int32_t type;
  int32_t op;
  uint32_t root;
  uint64_t count;
  uint64_t budget;  // payload bytes this rank's transport takes per exchange
};

struct Plan {
  CollectiveArgs args;
  comm::Member member;
  comm::collectives::CallOptions call;
  uint64_t ticket = 0;
  size_t element = 0;   // bytes
  uint64_t budget = 0;  // HCCL_BUFFSIZE in bytes
};

// Elements [first, first + window) of a run of `total`, clipped: how many there are.
uint64_t Clip(uint64_t total, uint64_t first, uint64_t window) {
  return first >= total ? 0 : std::min(window, total - first);
}

class CollectiveRun {
 public:
  CollectiveRun(const Plan& plan, Call& call)
      : p_(plan), a_(plan.args), call_(call), me_(call.Rank()), ranks_(call.Size()), s_(plan.element) {}

  CallResult Run() {
    if (CallResult agreed = Agree(); !agreed.ok()) return agreed;
    StageOverlappingInput();
    CallResult result;
    switch (a_.kind) {
      case CollectiveKind::kAllReduce:
      case CollectiveKind::kReduce: result = AllReduce(); break;
      case CollectiveKind::kBroadcast: result = Broadcast(); break;
      case CollectiveKind::kAllGather: result = AllGather(); break;
      case CollectiveKind::kReduceScatter: result = ReduceScatter(); break;
      case CollectiveKind::kAlltoAll:
      case CollectiveKind::kScatter: result = AlltoAll(); break;
      case CollectiveKind::kAlltoAllV: result = AlltoAllV(); break;
    }
    if (result.ok() && !read_error_.empty()) return {CallResult::Kind::kPeerFailed, read_error_};
    return result;
  }

 private:
  // Exchanges the descriptors; every rank checks all of them the same way, so all fail alike.
  CallResult Agree() {
    const bool vectors = a_.kind == CollectiveKind::kAlltoAllV;
    const size_t bytes = sizeof(Descriptor) + (vectors ? 2 * static_cast<size_t>(ranks_) * sizeof(uint64_t) : 0);
    const uint64_t own_budget = std::min<uint64_t>(p_.budget, call_.PayloadCapacity());
    std::vector<Descriptor> all(static_cast<size_t>(ranks_));
    std::vector<uint64_t> sends, receives;  // [from * ranks + to]
    if (vectors) {
      sends.resize(static_cast<size_t>(ranks_) * ranks_);
      receives.resize(sends.size());
    }
    std::string error;
    CallResult result = call_.Exchange(
        {bytes}, true,
        [&](int, std::byte* out) {
          const Descriptor own{static_cast<uint32_t>(a_.kind), a_.type, a_.op, a_.root, a_.count, own_budget};
          std::memcpy(out, &own, sizeof own);
          if (vectors) {
            std::memcpy(out + sizeof own, a_.send_counts.data(), ranks_ * sizeof(uint64_t));
            std::memcpy(out + sizeof own + ranks_ * sizeof(uint64_t), a_.recv_counts.data(), ranks_ * sizeof(uint64_t));
          }
        },
        [&](const Posted& posted) {
          for (int from = 0; from < ranks_ && error.empty(); ++from) {
            if (posted.Bytes(from) != bytes || !posted.Read(from, 0, &all[from], sizeof(Descriptor)) ||
                all[from].kind != all[0].kind) {
              error = fmt::format("rank {} calls {}, but rank {} calls {}", 0, KindName(all[0].kind), from,
                                  posted.Bytes(from) == bytes ? KindName(all[from].kind) : "another operation");
              break;
            }
            if (vectors) {
              posted.Read(from, sizeof(Descriptor), &sends[from * ranks_], ranks_ * sizeof(uint64_t));
              posted.Read(from, sizeof(Descriptor) + ranks_ * sizeof(uint64_t), &receives[from * ranks_],
                          ranks_ * sizeof(uint64_t));
            }
          }
        });
    if (!result.ok()) return result;
    if (error.empty()) error = Disagreement(all, sends, receives);
    if (!error.empty()) {
      return {CallResult::Kind::kPeerFailed, fmt::format("{}: group '{}', rank {}: the ranks' calls do not match: {}",
                                                         a_.api, p_.member.group->Name(), me_, error)};
    }
    budget_ = all[0].budget;
    for (const Descriptor& d : all) budget_ = std::min(budget_, d.budget);
    if (vectors) {
      for (uint64_t count : sends) max_pair_count_ = std::max(max_pair_count_, count);
    }
    return {};
  }

  std::string Disagreement(const std::vector<Descriptor>& all, const std::vector<uint64_t>& sends,
                           const std::vector<uint64_t>& receives) const {
    const Descriptor& first = all[0];
    for (int r = 1; r < ranks_; ++r) {
      const Descriptor& d = all[r];
      if (d.type != first.type) {
        return fmt::format("rank 0 has dataType {}, rank {} has {}",
                           comm::collectives::DataTypeName(static_cast<HcclDataType>(first.type)), r,
                           comm::collectives::DataTypeName(static_cast<HcclDataType>(d.type)));
      }
      if (Reduces(a_.kind) && d.op != first.op) {
        return fmt::format("rank 0 has op {}, rank {} has {}",
                           comm::collectives::ReduceOpName(static_cast<HcclReduceOp>(first.op)), r,
                           comm::collectives::ReduceOpName(static_cast<HcclReduceOp>(d.op)));
      }
      if (HasRoot(a_.kind) && d.root != first.root) {
        return fmt::format("rank 0 has root {}, rank {} has root {}", first.root, r, d.root);
      }
      if (a_.kind != CollectiveKind::kAlltoAllV && d.count != first.count) {
        return fmt::format("rank 0 has count {}, rank {} has count {}", first.count, r, d.count);
      }
    }
    for (int from = 0; from < ranks_ && !sends.empty(); ++from) {
      for (int to = 0; to < ranks_; ++to) {
        const uint64_t sent = sends[from * ranks_ + to], expected = receives[to * ranks_ + from];
        if (sent != expected) {
          return fmt::format("rank {} sends {} elements to rank {}, but rank {} expects {} from rank {}", from, sent,
                             to, to, expected, from);
        }
      }
    }
    const uint64_t budget = std::min_element(all.begin(), all.end(), [](const Descriptor& x, const Descriptor& y) {
                              return x.budget < y.budget;
                            })->budget;
    const uint64_t factor = a_.kind == CollectiveKind::kAllReduce || a_.kind == CollectiveKind::kReduce ||
                                    a_.kind == CollectiveKind::kBroadcast || a_.kind == CollectiveKind::kAllGather
                                ? 1
                                : static_cast<uint64_t>(ranks_);
    if (budget < factor * s_) {
      return fmt::format(
          "a transport buffer (HCCL_BUFFSIZE) of {} payload bytes cannot hold one element for each "
          "of {} ranks",
          budget, ranks_);
    }
    return "";
  }

  // The input overlaps the output in a way that a later exchange would read what an earlier
  // one wrote: the call works on a copy of its input.
  void StageOverlappingInput() {
    const uint64_t n = a_.count;
    uint64_t send_bytes = 0, recv_bytes = 0;
    const auto* send = static_cast<const std::byte*>(a_.send);
    auto* recv = static_cast<std::byte*>(a_.recv);
    const uint64_t all = n * ranks_ * s_, one = n * s_;
    bool aligned = false;
    switch (a_.kind) {
      case CollectiveKind::kAllReduce:
      case CollectiveKind::kReduce:
        send_bytes = recv_bytes = one;
        aligned = send == recv;
        break;
      case CollectiveKind::kBroadcast: return;
      case CollectiveKind::kAllGather:
        send_bytes = one, recv_bytes = all;
        aligned = send == recv + me_ * one;
        break;
      case CollectiveKind::kReduceScatter:
        send_bytes = all, recv_bytes = one;
        aligned = recv == send + me_ * one;
        break;
      case CollectiveKind::kAlltoAll:
        send_bytes = recv_bytes = all;
        aligned = send == recv;
        break;
      case CollectiveKind::kScatter:
        if (static_cast<int>(a_.root) != me_) return;
        send_bytes = all, recv_bytes = one;
        aligned = recv == send + me_ * one;
        break;
      case CollectiveKind::kAlltoAllV:
        for (int r = 0; r < ranks_; ++r) {
          send_bytes = std::max(send_bytes, (a_.send_displs[r] + a_.send_counts[r]) * s_);
          recv_bytes = std::max(recv_bytes, (a_.recv_displs[r] + a_.recv_counts[r]) * s_);
        }
        break;
    }
    if (send == nullptr || recv == nullptr || send_bytes == 0 || recv_bytes == 0 || aligned) return;
    if (send + send_bytes <= recv || recv + recv_bytes <= send) return;
    staged_.assign(send, send + send_bytes);
    input_ = staged_.data();
  }

  // Copies a block a peer sent; notes the first block that is shorter than agreed.
  void ReadBlock(const Posted& posted, int from, uint64_t offset, std::byte* into, uint64_t bytes) {
    if (!posted.Read(from, offset, into, bytes) && read_error_.empty()) {
      read_error_ = fmt::format("{}: group '{}', rank {}: rank {} sent {} bytes, {} were agreed", a_.api,
                                p_.member.group->Name(), me_, from, posted.Bytes(from), offset + bytes);
    }
  }

  CallResult AllReduce() {
    const uint64_t window = budget_ / s_;
    const bool keep = a_.kind == CollectiveKind::kAllReduce || static_cast<int>(a_.root) == me_;
    auto* out = static_cast<std::byte*>(a_.recv);
    std::vector<std::byte> reduced;
    for (uint64_t first = 0; first < a_.count; first += window) {
      const uint64_t n = Clip(a_.count, first, window);
      const uint64_t segment = (n + ranks_ - 1) / ranks_;
      auto lo = [&](int r) { return std::min<uint64_t>(r * segment, n); };
      auto len = [&](int r) { return lo(r + 1) - lo(r); };
      // 1. Reduce-scatter: rank r combines segment r of every rank's window.
      std::vector<size_t> sizes(ranks_);
      for (int r = 0; r < ranks_; ++r) sizes[r] = len(r) * s_;
      reduced.resize(len(me_) * s_);
      CallResult result = call_.Exchange(
          sizes, false, [&](int to, std::byte* o) { std::memcpy(o, input_ + (first + lo(to)) * s_, len(to) * s_); },
          [&](const Posted& posted) {
            comm::collectives::ReduceSources(
                a_.type, a_.op, ranks_, len(me_),
                [&](int from, size_t at, size_t count, std::byte* into) {
                  ReadBlock(posted, from, at * s_, into, count * s_);
                },
                reduced.data());
          });
      if (!result.ok()) return result;
      // 2. All-gather (gather at the root): every segment to every rank that keeps the result.
      result = call_.Exchange(
          {reduced.size()}, true, [&](int, std::byte* o) { std::memcpy(o, reduced.data(), reduced.size()); },
          [&](const Posted& posted) {
            if (!keep) return;
            for (int r = 0; r < ranks_; ++r) ReadBlock(posted, r, 0, out + (first + lo(r)) * s_, len(r) * s_);
          });
      if (!result.ok()) return result;
    }
    return {};
  }

  CallResult Broadcast() {
    const uint64_t window = budget_ / s_;
    const int root = static_cast<int>(a_.root);
    auto* buffer = static_cast<std::byte*>(a_.recv);
    for (uint64_t first = 0; first < a_.count; first += window) {
      const uint64_t n = Clip(a_.count, first, window);
      CallResult result = call_.Exchange(
          {me_ == root ? n * s_ : 0}, true, [&](int, std::byte* o) { std::memcpy(o, buffer + first * s_, n * s_); },
          [&](const Posted& posted) {
            if (me_ != root) ReadBlock(posted, root, 0, buffer + first * s_, n * s_);
          });
      if (!result.ok()) return result;
    }
    return {};
  }

  CallResult AllGather() {
    const uint64_t window = budget_ / s_;
    auto* out = static_cast<std::byte*>(a_.recv);
    for (uint64_t first = 0; first < a_.count; first += window) {
      const uint64_t n = Clip(a_.count, first, window);
      CallResult result = call_.Exchange(
          {n * s_}, true, [&](int, std::byte* o) { std::memcpy(o, input_ + first * s_, n * s_); },
          [&](const Posted& posted) {
            for (int r = 0; r < ranks_; ++r) ReadBlock(posted, r, 0, out + (r * a_.count + first) * s_, n * s_);
          });
      if (!result.ok()) return result;
    }
    return {};
  }

  CallResult ReduceScatter() {
    const uint64_t window = budget_ / (ranks_ * s_);
    auto* out = static_cast<std::byte*>(a_.recv);
    for (uint64_t first = 0; first < a_.count; first += window) {
      const uint64_t n = Clip(a_.count, first, window);
      CallResult result = call_.Exchange(
          std::vector<size_t>(ranks_, n * s_), false,
          [&](int to, std::byte* o) { std::memcpy(o, input_ + (to * a_.count + first) * s_, n * s_); },
          [&](const Posted& posted) {
            comm::collectives::ReduceSources(
                a_.type, a_.op, ranks_, n,
                [&](int from, size_t at, size_t count, std::byte* into) {
                  ReadBlock(posted, from, at * s_, into, count * s_);
                },
                out + first * s_);
          });
      if (!result.ok()) return result;
    }
    return {};
  }

  // AlltoAll, and Scatter (where only the root sends).
  CallResult AlltoAll() {
    const bool scatter = a_.kind == CollectiveKind::kScatter;
    const int root = static_cast<int>(a_.root);
    const uint64_t window = budget_ / (ranks_ * s_);
    auto* out = static_cast<std::byte*>(a_.recv);
    for (uint64_t first = 0; first < a_.count; first += window) {
      const uint64_t n = Clip(a_.count, first, window);
      const bool sends = !scatter || me_ == root;
      CallResult result = call_.Exchange(
          std::vector<size_t>(ranks_, sends ? n * s_ : 0), false,
          [&](int to, std::byte* o) { std::memcpy(o, input_ + (to * a_.count + first) * s_, n * s_); },
          [&](const Posted& posted) {
            if (scatter) {
              ReadBlock(posted, root, 0, out + first * s_, n * s_);
              return;
            }
            for (int r = 0; r < ranks_; ++r) ReadBlock(posted, r, 0, out + (r * a_.count + first) * s_, n * s_);
          });
      if (!result.ok()) return result;
    }
    return {};
  }

  CallResult AlltoAllV() {
    const uint64_t window = budget_ / (ranks_ * s_);
    auto* out = static_cast<std::byte*>(a_.recv);
    for (uint64_t first = 0; first < max_pair_count_; first += window) {
      std::vector<size_t> sizes(ranks_);
      for (int r = 0; r < ranks_; ++r) sizes[r] = Clip(a_.send_counts[r], first, window) * s_;
      CallResult result = call_.Exchange(
          sizes, false,
          [&](int to, std::byte* o) { std::memcpy(o, input_ + (a_.send_displs[to] + first) * s_, sizes[to]); },
          [&](const Posted& posted) {
            for (int r = 0; r < ranks_; ++r) {
              ReadBlock(posted, r, 0, out + (a_.recv_displs[r] + first) * s_,
                        Clip(a_.recv_counts[r], first, window) * s_);
            }
          });
      if (!result.ok()) return result;
    }
    return {};
  }

  const Plan& p_;
  const CollectiveArgs& a_;
  Call& call_;
  const int me_;
  const int ranks_;
  const uint64_t s_;
  const std::byte* input_ = static_cast<const std::byte*>(a_.send);
  std::vector<std::byte> staged_;
  uint64_t budget_ = 0;
  uint64_t max_pair_count_ = 0;
  std::string read_error_;
};

// The reason the arguments cannot run, as (code, message); code HCCL_SUCCESS when they can.
std::pair<HcclResult, std::string> Check(const CollectiveArgs& a, int ranks, int rank) {
  auto para = [](std::string message) { return std::pair{HCCL_E_PARA, std::move(message)}; };
  const size_t element = ElementBytes(a.type);
  if (element == 0) return para(fmt::format("dataType {} is not an HCCL data type", static_cast<int>(a.type)));
  if (Reduces(a.kind)) {
    if (a.op < HCCL_REDUCE_SUM || a.op > HCCL_REDUCE_MIN) {
      return para(fmt::format("op {} is not an HcclReduceOp (SUM 0, PROD 1, MAX 2, MIN 3)", static_cast<int>(a.op)));
    }
    if (!comm::collectives::Reducible(a.type)) {
      return {HCCL_E_NOT_SUPPORT,
              fmt::format("dataType {} cannot be reduced (op {})", comm::collectives::DataTypeName(a.type),
                          comm::collectives::ReduceOpName(a.op))};
    }
  }
  if (HasRoot(a.kind) && a.root >= static_cast<uint32_t>(ranks)) {
    return para(fmt::format("root {} is out of range [0, {})", a.root, ranks));
  }
  const bool is_root = HasRoot(a.kind) && a.root == static_cast<uint32_t>(rank);
  const char* count_name = a.kind == CollectiveKind::kAllGather ? "sendCount"
                           : a.kind == CollectiveKind::kReduceScatter || a.kind == CollectiveKind::kScatter
                               ? "recvCount"
                               : "count";
  uint64_t bytes = 0;
  if (a.kind == CollectiveKind::kAlltoAllV) {
    for (int r = 0; r < ranks; ++r) {
      for (auto [count, displ, what] : {std::tuple{a.send_counts[r], a.send_displs[r], "send"},
                                        std::tuple{a.recv_counts[r], a.recv_displs[r], "recv"}}) {
        if (count > kMaxBytes / element || displ > kMaxBytes / element - count) {
          return para(fmt::format("{}Counts[{}] {} at {}Displs[{}] {} is too large", what, r, count, what, r, displ));
        }
        bytes = std::max(bytes, count);
      }
    }
  } else {
    const uint64_t factor = a.kind == CollectiveKind::kAllReduce || a.kind == CollectiveKind::kReduce ||
                                    a.kind == CollectiveKind::kBroadcast
                                ? 1
                                : static_cast<uint64_t>(ranks);
    if (a.count > kMaxBytes / element / factor) {
      return para(fmt::format("{} {} is too large: {} x {}-byte elements{} exceed 2^48 bytes", count_name, a.count,
                              a.count, element, factor > 1 ? fmt::format(" x {} ranks", ranks) : ""));
    }
    bytes = a.count;
  }
  (void)bytes;
  // Buffers: those this rank uses must not be null.
  const bool needs_send = a.kind != CollectiveKind::kBroadcast && (a.kind != CollectiveKind::kScatter || is_root);
  const bool needs_recv = a.kind != CollectiveKind::kReduce || is_root;
  const char* send_name = "sendBuf";
  const char* recv_name = a.kind == CollectiveKind::kBroadcast ? "buf" : "recvBuf";
  if (needs_send && a.send == nullptr) return {HCCL_E_PTR, fmt::format("{} is null", send_name)};
  if (needs_recv && a.recv == nullptr) return {HCCL_E_PTR, fmt::format("{} is null", recv_name)};
  return {HCCL_SUCCESS, ""};
}

// The stream checks every call makes: the stream is usable and on the rank's device.
std::shared_ptr<runtime::Stream> ResolveRankStream(const char* api, const comm::Member& member, void* stream_handle) {
  aclError stream_error = ACL_SUCCESS;
  std::shared_ptr<runtime::Stream> stream = runtime::Runtime::Instance().ResolveStream(stream_handle, &stream_error);
  if (!stream) {
    Fail(HCCL_E_PARA, "{}: stream {} is not usable: {}", api, stream_handle, RecentError());
    return nullptr;
  }
  const int device = member.group->DeviceOfRank(member.rank);
  if (stream->Device() != device) {
    Fail(HCCL_E_PARA, "{}: stream {} belongs to device {}, but rank {} of group '{}' is on device {}", api,
         stream_handle, stream->Device(), member.rank, member.group->Name(), device);
    return nullptr;
  }
  return stream;
}

uint64_t BudgetFromEnvironment() {
  const int64_t megabytes = EnvInt("HCCL_BUFFSIZE", kDefaultBuffSizeMb);
  return megabytes > 0 ? static_cast<uint64_t>(megabytes) << 20 : 0;
}

}  // namespace

HcclResult EnqueueSendReceive(const comm::Member& member, const char* api, const HcclSendRecvItem* items,
                              uint32_t count, const ItemNames* names, void* stream_handle) {
  const int ranks = member.group->Size();
  std::vector<comm::collectives::PairItem> pairs;
  for (uint32_t i = 0; i < count; ++i) {
    const HcclSendRecvItem& item = items[i];
    const std::string field = names != nullptr ? "" : fmt::format("sendRecvInfo[{}].", i);
    const char* buf_name = names != nullptr ? names->buf : "buf";
    const char* rank_name = names != nullptr ? names->rank : "remoteRank";
    if (item.sendRecvType != HCCL_SEND && item.sendRecvType != HCCL_RECV) {
      return Fail(HCCL_E_PARA, "{}: {}sendRecvType {} is neither HCCL_SEND (0) nor HCCL_RECV (1)", api, field,
                  static_cast<int>(item.sendRecvType));
    }
    const size_t element = ElementBytes(item.dataType);
    if (element == 0) {
      return Fail(HCCL_E_PARA, "{}: {}dataType {} is not an HCCL data type", api, field,
                  static_cast<int>(item.dataType));
    }
    if (item.remoteRank >= static_cast<uint32_t>(ranks)) {
      return Fail(HCCL_E_PARA, "{}: {}{} {} is out of range [0, {})", api, field, rank_name, item.remoteRank, ranks);
    }
    if (item.remoteRank == static_cast<uint32_t>(member.rank)) {
      return Fail(HCCL_E_PARA, "{}: {}{} {} is the calling rank itself", api, field, rank_name, item.remoteRank);
    }
    if (item.count > kMaxBytes / element) {
      return Fail(HCCL_E_PARA, "{}: {}count {} is too large: {} x {}-byte elements exceed 2^48 bytes", api, field,
                  item.count, item.count, element);
    }
    if (item.buf == nullptr) return Fail(HCCL_E_PTR, "{}: {}{} is null", api, field, buf_name);
    pairs.push_back({.send = item.sendRecvType == HCCL_SEND,
                     .peer = static_cast<int>(item.remoteRank),
                     .buffer = static_cast<std::byte*>(item.buf),
                     .bytes = item.count * element,
                     .message = 0});
  }
  std::shared_ptr<runtime::Stream> stream = ResolveRankStream(api, member, stream_handle);
  if (!stream) return HCCL_E_PARA;
  comm::collectives::GroupCollectives* collectives = member.group->Collectives();
  if (collectives == nullptr) {
    return Fail(HCCL_E_PARA,
                "{}: group '{}' has no data region: its processes were started with different HCCL_BUFFSIZE values",
                api, member.group->Name());
  }
  if (pairs.empty()) return HCCL_SUCCESS;  // nothing to move
  bool sends = false;
  for (auto& pair : pairs) {
    pair.message = collectives->ReserveMessage(member.rank, pair.peer, pair.send);
    sends = sends || pair.send;
  }
  // Sends go through the rank's post buffer: they take a turn among its calls.
  const uint64_t ticket = sends ? collectives->Reserve(member.rank) : 0;
  struct PairPlan {
    comm::Member member;
    const char* api;
    std::vector<comm::collectives::PairItem> pairs;
    comm::collectives::CallOptions call;
    uint64_t budget;
    uint64_t ticket;
  };
  auto plan = std::make_shared<PairPlan>(
      PairPlan{member, api, std::move(pairs), CallOptionsFromEnvironment(api), BudgetFromEnvironment(), ticket});
  runtime::Task task;
  task.run = [plan, collectives](const std::stop_token& stop) {
    comm::collectives::CallOptions options = plan->call;
    options.stop = stop;
    auto body = [&](Call& call) { return call.SendReceive(plan->pairs, plan->budget); };
    const CallResult result = plan->ticket != 0
                                  ? collectives->RunCall(plan->member.rank, plan->ticket, plan->api, options, body)
                                  : collectives->RunUnordered(plan->member.rank, plan->api, options, body);
    return ToTaskStatus(result);
  };
  task.on_drop = [plan, collectives](const runtime::TaskStatus&) {
    if (plan->ticket != 0) collectives->Abandon(plan->member.rank, plan->ticket);
  };
  stream->Enqueue(std::move(task));
  return HCCL_SUCCESS;
}

HcclResult EnqueueCollective(const comm::Member& member, CollectiveArgs args, void* stream_handle) {
  const char* api = args.api;
  const int ranks = member.group->Size();
  if (auto [code, why] = Check(args, ranks, member.rank); code != HCCL_SUCCESS) {
    return Fail(code, "{}: {}", api, why);
  }
  std::shared_ptr<runtime::Stream> stream = ResolveRankStream(api, member, stream_handle);
  if (!stream) return HCCL_E_PARA;
  comm::collectives::GroupCollectives* collectives = member.group->Collectives();
  if (collectives == nullptr) {
    return Fail(HCCL_E_PARA,
                "{}: group '{}' has no data region: its processes were started with different HCCL_BUFFSIZE values",
                api, member.group->Name());
  }
  auto plan = std::make_shared<Plan>();
  plan->args = std::move(args);
  plan->member = member;
  plan->call = CallOptionsFromEnvironment(api);
  plan->element = ElementBytes(plan->args.type);
  plan->budget = BudgetFromEnvironment();
  plan->ticket = collectives->Reserve(member.rank);

  runtime::Task task;
  task.run = [plan, collectives](const std::stop_token& stop) {
    comm::collectives::CallOptions options = plan->call;
    options.stop = stop;
    const CallResult result = collectives->RunCall(plan->member.rank, plan->ticket, plan->args.api, options,
                                                   [&](Call& call) { return CollectiveRun(*plan, call).Run(); });
    return ToTaskStatus(result);
  };
  task.on_drop = [plan, collectives](const runtime::TaskStatus&) {
    collectives->Abandon(plan->member.rank, plan->ticket);
  };
  stream->Enqueue(std::move(task));
  return HCCL_SUCCESS;
}

}  // namespace distbarrier::op::hccl
