// HCCL collective cases checked against a host reference, shared by the thread test
// (hccl_collectives_test) and the process test (hccl_process_test): every rank can draw every
// rank's input, so each computes its own expected output without talking to the others.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "acl/acl.h"
#include "common/half_float.h"
#include "hccl/hccl.h"

namespace distbarrier::testing::hccl {

enum class Kind {
  kAllReduce,
  kBroadcast,
  kAllGather,
  kReduceScatter,
  kReduce,
  kAlltoAll,
  kAlltoAllV,
  kAlltoAllVC,
  kScatter,
  kAllGatherV,
  kReduceScatterV
};

inline const char* KindName(Kind kind) {
  static constexpr const char* kNames[] = {"AllReduce", "Broadcast",  "AllGather",     "ReduceScatter",
                                           "Reduce",    "AlltoAll",   "AlltoAllV",     "AlltoAllVC",
                                           "Scatter",   "AllGatherV", "ReduceScatterV"};
  return kNames[static_cast<int>(kind)];
}

struct Case {
  Kind kind = Kind::kAllReduce;
  HcclDataType type = HCCL_DATA_TYPE_FP32;
  HcclReduceOp op = HCCL_REDUCE_SUM;
  uint64_t count = 0;
  uint32_t root = 0;
  bool in_place = false;
  uint64_t salt = 0;  // varies the inputs between calls

  std::string Describe() const {
    return fmt::format("{} type {} op {} count {} root {} {}", KindName(kind), static_cast<int>(type),
                       static_cast<int>(op), count, root, in_place ? "in-place" : "out-of-place");
  }
};

inline size_t Bytes(HcclDataType type) {
  switch (type) {
    case HCCL_DATA_TYPE_INT8:
    case HCCL_DATA_TYPE_UINT8:
    case HCCL_DATA_TYPE_HIF8:
    case HCCL_DATA_TYPE_FP8E4M3:
    case HCCL_DATA_TYPE_FP8E5M2:
    case HCCL_DATA_TYPE_FP8E8M0: return 1;
    case HCCL_DATA_TYPE_INT16:
    case HCCL_DATA_TYPE_UINT16:
    case HCCL_DATA_TYPE_FP16:
    case HCCL_DATA_TYPE_BFP16: return 2;
    case HCCL_DATA_TYPE_INT32:
    case HCCL_DATA_TYPE_UINT32:
    case HCCL_DATA_TYPE_FP32: return 4;
    case HCCL_DATA_TYPE_INT64:
    case HCCL_DATA_TYPE_UINT64:
    case HCCL_DATA_TYPE_FP64: return 8;
    case HCCL_DATA_TYPE_INT128: return 16;
    default: return 0;
  }
}

inline const std::vector<HcclDataType>& ReducibleTypes() {
  static const std::vector<HcclDataType> types = {HCCL_DATA_TYPE_INT8,   HCCL_DATA_TYPE_INT16,  HCCL_DATA_TYPE_INT32,
                                                  HCCL_DATA_TYPE_INT64,  HCCL_DATA_TYPE_UINT8,  HCCL_DATA_TYPE_UINT16,
                                                  HCCL_DATA_TYPE_UINT32, HCCL_DATA_TYPE_UINT64, HCCL_DATA_TYPE_FP16,
                                                  HCCL_DATA_TYPE_BFP16,  HCCL_DATA_TYPE_FP32,   HCCL_DATA_TYPE_FP64};
  return types;
}

inline uint64_t Mix(uint64_t x) {  // splitmix64
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Element i of rank's input: small values (exact in every type) for the reducible types,
// any bits for the others.
inline void Draw(HcclDataType type, int rank, uint64_t i, uint64_t salt, std::byte* out) {
  const uint64_t h = Mix((static_cast<uint64_t>(rank) << 40) ^ (i * 0x1000193) ^ (salt << 20));
  const int k = static_cast<int>(h % 9) - 4;  // [-4, 4]
  const double real = k * 0.375;
  auto put = [&](auto value) { std::memcpy(out, &value, sizeof value); };
  switch (type) {
    case HCCL_DATA_TYPE_INT8: return put(static_cast<int8_t>(k * 29));
    case HCCL_DATA_TYPE_INT16: return put(static_cast<int16_t>(k * 7001));
    case HCCL_DATA_TYPE_INT32: return put(static_cast<int32_t>(k * 100000007));
    case HCCL_DATA_TYPE_INT64: return put(static_cast<int64_t>(k) * 1000000000007ll);
    case HCCL_DATA_TYPE_UINT8: return put(static_cast<uint8_t>(h >> 56));
    case HCCL_DATA_TYPE_UINT16: return put(static_cast<uint16_t>(h >> 48));
    case HCCL_DATA_TYPE_UINT32: return put(static_cast<uint32_t>(h >> 32));
    case HCCL_DATA_TYPE_UINT64: return put(h);
    case HCCL_DATA_TYPE_FP16: return put(FloatToFp16(static_cast<float>(real)));
    case HCCL_DATA_TYPE_BFP16: return put(FloatToBf16(static_cast<float>(real)));
    case HCCL_DATA_TYPE_FP32: return put(static_cast<float>(real));
    case HCCL_DATA_TYPE_FP64: return put(real);
    default:
      for (size_t b = 0; b < Bytes(type); ++b) out[b] = static_cast<std::byte>(Mix(h + b) >> 56);
  }
}

// memcpy that takes empty ranges (whose pointers may be null).
inline void CopyBytes(std::byte* to, const std::byte* from, size_t bytes) {
  if (bytes > 0) std::memcpy(to, from, bytes);
}

inline std::vector<std::byte> DrawMany(HcclDataType type, int rank, uint64_t count, uint64_t salt) {
  std::vector<std::byte> data(count * Bytes(type));
  for (uint64_t i = 0; i < count; ++i) Draw(type, rank, i, salt, data.data() + i * Bytes(type));
  return data;
}

template <typename T>
T CombineReference(HcclReduceOp op, T a, T b) {
  if (op == HCCL_REDUCE_MAX) return a < b ? b : a;
  if (op == HCCL_REDUCE_MIN) return b < a ? b : a;
  if constexpr (std::is_integral_v<T>) {  // two's complement wrap-around
    using U = std::make_unsigned_t<T>;
    const uint64_t x = static_cast<U>(a), y = static_cast<U>(b);
    return static_cast<T>(static_cast<U>(op == HCCL_REDUCE_SUM ? x + y : x * y));
  } else {
    return op == HCCL_REDUCE_SUM ? a + b : a * b;
  }
}

// out = op over sources[0..n) of element i, in rank order; FP16/BF16 in float, rounded once.
inline void ReduceReference(HcclDataType type, HcclReduceOp op, const std::vector<const std::byte*>& sources,
                            uint64_t count, std::byte* out) {
  auto run = [&](auto storage, auto load, auto store) {
    using S = decltype(storage);
    for (uint64_t i = 0; i < count; ++i) {
      S value;
      std::memcpy(&value, sources[0] + i * sizeof(S), sizeof(S));
      auto accumulator = load(value);
      for (size_t s = 1; s < sources.size(); ++s) {
        std::memcpy(&value, sources[s] + i * sizeof(S), sizeof(S));
        accumulator = CombineReference(op, accumulator, load(value));
      }
      const S result = store(accumulator);
      std::memcpy(out + i * sizeof(S), &result, sizeof(S));
    }
  };
  auto same = [](auto v) { return v; };
  switch (type) {
    case HCCL_DATA_TYPE_INT8: return run(int8_t{}, same, same);
    case HCCL_DATA_TYPE_INT16: return run(int16_t{}, same, same);
    case HCCL_DATA_TYPE_INT32: return run(int32_t{}, same, same);
    case HCCL_DATA_TYPE_INT64: return run(int64_t{}, same, same);
    case HCCL_DATA_TYPE_UINT8: return run(uint8_t{}, same, same);
    case HCCL_DATA_TYPE_UINT16: return run(uint16_t{}, same, same);
    case HCCL_DATA_TYPE_UINT32: return run(uint32_t{}, same, same);
    case HCCL_DATA_TYPE_UINT64: return run(uint64_t{}, same, same);
    case HCCL_DATA_TYPE_FP32: return run(float{}, same, same);
    case HCCL_DATA_TYPE_FP64: return run(double{}, same, same);
    case HCCL_DATA_TYPE_FP16:
      return run(
          uint16_t{}, [](uint16_t v) { return Fp16ToFloat(v); }, [](float v) { return FloatToFp16(v); });
    case HCCL_DATA_TYPE_BFP16:
      return run(
          uint16_t{}, [](uint16_t v) { return Bf16ToFloat(v); }, [](float v) { return FloatToBf16(v); });
    default: return;
  }
}

// AlltoAllV: elements rank i sends to rank j (some zero, some not).
inline uint64_t PairCount(const Case& c, int i, int j) {
  return (static_cast<uint64_t>(i * 7 + j * 3) % 4) * c.count / 3;
}

// AllGatherV: elements rank r sends; ReduceScatterV: elements rank r receives (some zero).
inline uint64_t VCount(const Case& c, int r) {
  return (static_cast<uint64_t>(r * 5 + 1) % 4) * c.count / 3;
}

// Runs `c` on this rank (comm, stream) and compares its output with the host reference.
// Returns "" or what went wrong.
inline std::string RunCase(const Case& c, HcclComm comm, aclrtStream stream) {
  uint32_t rank_u = 0, ranks_u = 0;
  if (HcclGetRankId(comm, &rank_u) != HCCL_SUCCESS || HcclGetRankSize(comm, &ranks_u) != HCCL_SUCCESS) {
    return "HcclGetRankId/HcclGetRankSize failed";
  }
  const int me = static_cast<int>(rank_u), ranks = static_cast<int>(ranks_u);
  const size_t s = Bytes(c.type);
  const uint64_t n = c.count;
  const bool is_root = me == static_cast<int>(c.root);
  std::vector<std::vector<std::byte>> inputs(ranks);
  // Send and receive layouts, in elements.
  uint64_t send_elements = 0, recv_elements = 0;
  std::vector<uint64_t> send_counts(ranks), sdispls(ranks), recv_counts(ranks), rdispls(ranks), matrix;
  switch (c.kind) {
    case Kind::kAllReduce:
    case Kind::kReduce:
    case Kind::kBroadcast: send_elements = recv_elements = n; break;
    case Kind::kAllGather: send_elements = n, recv_elements = n * ranks; break;
    case Kind::kReduceScatter:
    case Kind::kScatter: send_elements = n * ranks, recv_elements = n; break;
    case Kind::kAlltoAll: send_elements = recv_elements = n * ranks; break;
    case Kind::kAlltoAllV:
    case Kind::kAlltoAllVC: {
      const uint64_t gap = c.kind == Kind::kAlltoAllV ? 1 : 0;  // AlltoAllV leaves an element between blocks
      for (int j = 0; j < ranks; ++j) {
        send_counts[j] = PairCount(c, me, j);
        sdispls[j] = send_elements;
        send_elements += send_counts[j] + gap;
        recv_counts[j] = PairCount(c, j, me);
        rdispls[j] = recv_elements;
        recv_elements += recv_counts[j] + gap;
      }
      for (int i = 0; i < ranks; ++i) {
        for (int j = 0; j < ranks; ++j) matrix.push_back(PairCount(c, i, j));
      }
      break;
    }
    case Kind::kAllGatherV:  // blocks at rdispls, one element apart
      send_elements = VCount(c, me);
      for (int r = 0; r < ranks; ++r) {
        recv_counts[r] = VCount(c, r);
        rdispls[r] = recv_elements;
        recv_elements += recv_counts[r] + 1;
      }
      break;
    case Kind::kReduceScatterV:  // every rank's input has the same layout: rank j's part at sdispls[j]
      for (int j = 0; j < ranks; ++j) {
        send_counts[j] = VCount(c, j);
        sdispls[j] = send_elements;
        send_elements += send_counts[j] + 1;
      }
      recv_elements = VCount(c, me);
      break;
  }
  for (int r = 0; r < ranks; ++r) {
    const uint64_t elements = c.kind == Kind::kAlltoAllV || c.kind == Kind::kAlltoAllVC
                                  ? [&] {
                                      uint64_t total = 0;
                                      for (int j = 0; j < ranks; ++j) total += PairCount(c, r, j) + (c.kind == Kind::kAlltoAllV);
                                      return total;
                                    }()
                                  : c.kind == Kind::kAllGatherV ? VCount(c, r)
                                                                : send_elements;
    inputs[r] = DrawMany(c.type, r, elements, c.salt);
  }

  // Expected output of this rank (and the part of the buffer it covers).
  std::vector<std::byte> expected(recv_elements * s, std::byte{0x5a});  // the poison below, where nothing lands
  std::vector<const std::byte*> sources;
  for (auto& in : inputs) sources.push_back(in.data());
  bool check = true;
  switch (c.kind) {
    case Kind::kAllReduce: ReduceReference(c.type, c.op, sources, n, expected.data()); break;
    case Kind::kReduce:
      check = is_root;
      ReduceReference(c.type, c.op, sources, n, expected.data());
      break;
    case Kind::kBroadcast: expected = inputs[c.root]; break;
    case Kind::kAllGather:
      for (int r = 0; r < ranks; ++r) CopyBytes(expected.data() + r * n * s, inputs[r].data(), n * s);
      break;
    case Kind::kReduceScatter: {
      std::vector<const std::byte*> mine;
      for (auto& in : inputs) mine.push_back(in.data() + me * n * s);
      ReduceReference(c.type, c.op, mine, n, expected.data());
      break;
    }
    case Kind::kScatter: CopyBytes(expected.data(), inputs[c.root].data() + me * n * s, n * s); break;
    case Kind::kAlltoAll:
      for (int r = 0; r < ranks; ++r) CopyBytes(expected.data() + r * n * s, inputs[r].data() + me * n * s, n * s);
      break;
    case Kind::kAlltoAllV:
    case Kind::kAlltoAllVC:
      for (int r = 0; r < ranks; ++r) {
        uint64_t offset = 0;  // where r's block for me starts in r's input
        for (int j = 0; j < me; ++j) offset += PairCount(c, r, j) + (c.kind == Kind::kAlltoAllV);
        CopyBytes(expected.data() + rdispls[r] * s, inputs[r].data() + offset * s, recv_counts[r] * s);
      }
      break;
    case Kind::kAllGatherV:
      for (int r = 0; r < ranks; ++r) CopyBytes(expected.data() + rdispls[r] * s, inputs[r].data(), recv_counts[r] * s);
      break;
    case Kind::kReduceScatterV: {
      std::vector<const std::byte*> mine;
      for (auto& in : inputs) mine.push_back(in.data() + sdispls[me] * s);
      ReduceReference(c.type, c.op, mine, recv_elements, expected.data());
      break;
    }
  }

  // Device buffers: one for both in place (laid out as CANN expects), else two.
  const uint64_t total = std::max(send_elements, recv_elements);
  void* a = nullptr;
  void* b = nullptr;
  if (aclrtMalloc(&a, std::max<uint64_t>(total * s, 1), ACL_MEM_MALLOC_HUGE_FIRST) != 0 ||
      aclrtMalloc(&b, std::max<uint64_t>(total * s, 1), ACL_MEM_MALLOC_HUGE_FIRST) != 0) {
    return "aclrtMalloc failed";
  }
  auto* send = static_cast<std::byte*>(a);
  auto* recv = static_cast<std::byte*>(c.in_place ? a : b);
  if (c.in_place) {
    if (c.kind == Kind::kAllGather) send = recv + me * n * s;
    if (c.kind == Kind::kReduceScatter || (c.kind == Kind::kScatter && is_root)) recv = send + me * n * s;
  }
  // Marks the receive area so that unwritten elements show.
  std::vector<std::byte> poison(recv_elements * s, std::byte{0x5a});
  if (!poison.empty() &&
      !(c.in_place && (c.kind == Kind::kAllGather || c.kind == Kind::kReduceScatter || c.kind == Kind::kScatter))) {
    aclrtMemcpy(recv, poison.size(), poison.data(), poison.size(), ACL_MEMCPY_HOST_TO_DEVICE);
  }
  const std::vector<std::byte>& own = inputs[me];
  if (!own.empty() && (c.kind != Kind::kScatter || is_root)) {
    aclrtMemcpy(send, own.size(), own.data(), own.size(), ACL_MEMCPY_HOST_TO_DEVICE);
  }
  HcclResult result = HCCL_SUCCESS;
  switch (c.kind) {
    case Kind::kAllReduce: result = HcclAllReduce(send, recv, n, c.type, c.op, comm, stream); break;
    case Kind::kReduce: result = HcclReduce(send, recv, n, c.type, c.op, c.root, comm, stream); break;
    case Kind::kBroadcast: {
      // The root's buffer holds its input; the others' are overwritten.
      void* buffer = is_root ? static_cast<void*>(send) : static_cast<void*>(recv);
      recv = static_cast<std::byte*>(buffer);
      result = HcclBroadcast(buffer, n, c.type, c.root, comm, stream);
      break;
    }
    case Kind::kAllGather: result = HcclAllGather(send, recv, n, c.type, comm, stream); break;
    case Kind::kReduceScatter: result = HcclReduceScatter(send, recv, n, c.type, c.op, comm, stream); break;
    case Kind::kScatter: result = HcclScatter(send, recv, n, c.type, c.root, comm, stream); break;
    case Kind::kAlltoAll: result = HcclAlltoAll(send, n, c.type, recv, n, c.type, comm, stream); break;
    case Kind::kAlltoAllV:
      result = HcclAlltoAllV(send, send_counts.data(), sdispls.data(), c.type, recv, recv_counts.data(), rdispls.data(),
                             c.type, comm, stream);
      break;
    case Kind::kAlltoAllVC: result = HcclAlltoAllVC(send, matrix.data(), c.type, recv, c.type, comm, stream); break;
    case Kind::kAllGatherV:
      result = HcclAllGatherV(send, send_elements, recv, recv_counts.data(), rdispls.data(), c.type, comm, stream);
      break;
    case Kind::kReduceScatterV:
      result =
          HcclReduceScatterV(send, send_counts.data(), sdispls.data(), recv, recv_elements, c.type, c.op, comm, stream);
      break;
  }
  std::string error;
  if (result != HCCL_SUCCESS) {
    error = fmt::format("{}: rank {}: enqueue returned {}: {}", c.Describe(), me, static_cast<int>(result),
                        aclGetRecentErrMsg());
  } else if (aclError synced = aclrtSynchronizeStream(stream); synced != 0) {
    error = fmt::format("{}: rank {}: aclrtSynchronizeStream returned {}: {}", c.Describe(), me, synced,
                        aclGetRecentErrMsg());
  } else if (check && !expected.empty()) {
    std::vector<std::byte> got(expected.size());
    aclrtMemcpy(got.data(), got.size(), recv, got.size(), ACL_MEMCPY_DEVICE_TO_HOST);
    for (size_t i = 0; i < got.size(); ++i) {
      if (got[i] != expected[i]) {
        error = fmt::format("{}: rank {} of {}: byte {} (element {}) is {:#x}, expected {:#x}", c.Describe(), me, ranks,
                            i, i / s, static_cast<int>(got[i]), static_cast<int>(expected[i]));
        break;
      }
    }
  }
  aclrtFree(a);
  aclrtFree(b);
  return error;
}

// Point to point on this rank: one HcclBatchSendRecv that sends to both neighbours in the ring
// and receives from both (`count` elements to the next rank, count + 1 to the previous), then
// HcclSend/HcclRecv pairs (even ranks send first) of three messages of different sizes each
// way between ranks 2k and 2k+1. Returns "" or what went wrong.
inline std::string RunPointToPoint(HcclComm comm, aclrtStream stream, HcclDataType type, uint64_t count,
                                   uint64_t salt) {
  uint32_t rank_u = 0, ranks_u = 0;
  HcclGetRankId(comm, &rank_u);
  HcclGetRankSize(comm, &ranks_u);
  const int me = static_cast<int>(rank_u), ranks = static_cast<int>(ranks_u);
  const int next = (me + 1) % ranks, previous = (me + ranks - 1) % ranks;
  const size_t s = Bytes(type);
  // What rank `from` sends to rank `to` as its message `k`: count_for elements.
  auto message = [&](int from, int to, uint64_t elements, uint64_t k) {
    return DrawMany(type, from * 1000 + to, elements, salt * 10 + k);
  };
  auto device_copy = [](const std::vector<std::byte>& host) {
    void* device = nullptr;
    aclrtMalloc(&device, std::max<size_t>(host.size(), 1), ACL_MEM_MALLOC_HUGE_FIRST);
    if (!host.empty()) aclrtMemcpy(device, host.size(), host.data(), host.size(), ACL_MEMCPY_HOST_TO_DEVICE);
    return device;
  };
  auto compare = [&](const char* what, void* device, const std::vector<std::byte>& expected) -> std::string {
    std::vector<std::byte> got(expected.size());
    if (!got.empty()) aclrtMemcpy(got.data(), got.size(), device, got.size(), ACL_MEMCPY_DEVICE_TO_HOST);
    aclrtFree(device);
    if (got != expected)
      return fmt::format("rank {} of {}: {} differs (type {}, count {})", me, ranks, what, static_cast<int>(type),
                         count);
    return "";
  };
  std::string error;
  auto synchronize = [&](const char* what) {
    if (aclError status = aclrtSynchronizeStream(stream); status != 0 && error.empty()) {
      error = fmt::format("rank {}: {}: aclrtSynchronizeStream {}: {}", me, what, status, aclGetRecentErrMsg());
    }
  };

  // 1. The ring, as one batch (with two ranks both neighbours are the same rank).
  std::vector<std::byte> zeros_next(count * s), zeros_previous((count + 1) * s);
  void* to_next = device_copy(message(me, next, count, 0));
  void* to_previous = device_copy(message(me, previous, count + 1, 1));
  void* from_previous = device_copy(zeros_next);
  void* from_next = device_copy(zeros_previous);
  // Receives in the order of the sends they meet (with two ranks next and previous are one).
  HcclSendRecvItem items[] = {{HCCL_SEND, to_next, count, type, static_cast<uint32_t>(next)},
                              {HCCL_SEND, to_previous, count + 1, type, static_cast<uint32_t>(previous)},
                              {HCCL_RECV, from_previous, count, type, static_cast<uint32_t>(previous)},
                              {HCCL_RECV, from_next, count + 1, type, static_cast<uint32_t>(next)}};
  if (HcclBatchSendRecv(items, 4, comm, stream) != HCCL_SUCCESS) {
    return fmt::format("rank {}: HcclBatchSendRecv: {}", me, aclGetRecentErrMsg());
  }
  synchronize("HcclBatchSendRecv");
  aclrtFree(to_next);
  aclrtFree(to_previous);
  if (std::string e = compare("what came from the previous rank", from_previous, message(previous, me, count, 0));
      error.empty()) {
    error = e;
  }
  if (std::string e = compare("what came from the next rank", from_next, message(next, me, count + 1, 1));
      error.empty()) {
    error = e;
  }
  if (!error.empty()) return error;

  // 2. Pairs: three messages each way, sizes count, 2 * count + 1, 0, matched in order.
  const int partner = me ^ 1;
  if (partner >= ranks) return "";
  const uint64_t sizes[] = {count, 2 * count + 1, 0};
  std::vector<void*> received;
  auto send_all = [&] {
    for (uint64_t k = 0; k < 3; ++k) {
      void* buffer = device_copy(message(me, partner, sizes[k], 10 + k));
      if (HcclSend(buffer, sizes[k], type, static_cast<uint32_t>(partner), comm, stream) != HCCL_SUCCESS) {
        error = fmt::format("rank {}: HcclSend: {}", me, aclGetRecentErrMsg());
      }
      synchronize("HcclSend");
      aclrtFree(buffer);
    }
  };
  auto receive_all = [&] {
    for (uint64_t k = 0; k < 3; ++k) {
      void* buffer = device_copy(std::vector<std::byte>(sizes[k] * s));
      if (HcclRecv(buffer, sizes[k], type, static_cast<uint32_t>(partner), comm, stream) != HCCL_SUCCESS) {
        error = fmt::format("rank {}: HcclRecv: {}", me, aclGetRecentErrMsg());
      }
      received.push_back(buffer);
    }
    synchronize("HcclRecv");
  };
  if (me % 2 == 0) {
    send_all();
    receive_all();
  } else {
    receive_all();
    send_all();
  }
  for (uint64_t k = 0; k < 3; ++k) {
    std::string e = compare("a received message", received[k], message(partner, me, sizes[k], 10 + k));
    if (error.empty()) error = e;
  }
  return error;
}

}  // namespace distbarrier::testing::hccl
