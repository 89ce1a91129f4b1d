// HCCL collectives on threads (HcclCommInitAll, one thread per device): every collective
// against the host reference of hccl_world.h for each data type and reduction, several rank
// counts, counts 0, 1, odd and larger than HCCL_BUFFSIZE, in place and out of place; calls on
// two streams of one rank; ranks that disagree; bad arguments.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "hccl_world.h"
#include "test_support.h"

namespace distbarrier::testing {
namespace {

using hccl::Case;
using hccl::Kind;
using HcclCollectivesTest = RuntimeTest;

// Runs `cases` in order on every rank of a new group of `ranks` threads; returns the failures.
std::vector<std::string> RunOnThreads(int ranks, const std::vector<Case>& cases) {
  std::vector<HcclComm> comms = MakeGroup(FirstDevices(ranks));
  std::mutex mutex;
  std::vector<std::string> failures;
  RunRanks(ranks, [&](int rank) {
    aclrtStream stream = NewStream();
    for (const Case& c : cases) {
      std::string error = hccl::RunCase(c, comms[rank], stream);
      if (!error.empty()) {
        std::lock_guard lock(mutex);
        failures.push_back(error);
        break;  // the ranks are out of step after a failure
      }
    }
    aclrtDestroyStream(stream);
  });
  for (HcclComm comm : comms) HcclCommDestroy(comm);
  return failures;
}

TEST_F(HcclCollectivesTest, AllReduceEveryTypeAndReduction) {
  std::vector<Case> cases;
  uint64_t salt = 0;
  for (HcclDataType type : hccl::ReducibleTypes()) {
    for (HcclReduceOp op : {HCCL_REDUCE_SUM, HCCL_REDUCE_PROD, HCCL_REDUCE_MAX, HCCL_REDUCE_MIN}) {
      for (uint64_t count : {0, 1, 1031}) {
        cases.push_back({.kind = Kind::kAllReduce, .type = type, .op = op, .count = count, .in_place = salt % 2 == 1,
                         .salt = ++salt});
      }
    }
  }
  EXPECT_THAT(RunOnThreads(4, cases), ::testing::IsEmpty());
}

TEST_F(HcclCollectivesTest, ReductionsOnTwoToSixteenRanks) {
  for (int ranks : {2, 3, 8, 16}) {
    std::vector<Case> cases;
    uint64_t salt = 100;
    for (uint64_t count : {1, 777}) {
      const uint32_t last = static_cast<uint32_t>(ranks - 1);
      cases.push_back({.kind = Kind::kAllReduce, .type = HCCL_DATA_TYPE_FP32, .count = count, .salt = ++salt});
      cases.push_back({.kind = Kind::kAllReduce, .type = HCCL_DATA_TYPE_BFP16, .count = count, .in_place = true,
                       .salt = ++salt});
      cases.push_back({.kind = Kind::kAllReduce, .type = HCCL_DATA_TYPE_FP16, .op = HCCL_REDUCE_MAX, .count = count,
                       .salt = ++salt});
      cases.push_back({.kind = Kind::kReduce, .type = HCCL_DATA_TYPE_INT32, .op = HCCL_REDUCE_PROD, .count = count,
                       .root = last, .salt = ++salt});
      cases.push_back({.kind = Kind::kReduce, .type = HCCL_DATA_TYPE_FP64, .count = count, .root = 0,
                       .in_place = true, .salt = ++salt});
      cases.push_back({.kind = Kind::kReduceScatter, .type = HCCL_DATA_TYPE_FP16, .count = count, .salt = ++salt});
      cases.push_back({.kind = Kind::kReduceScatter, .type = HCCL_DATA_TYPE_INT8, .op = HCCL_REDUCE_MIN,
                       .count = count, .in_place = true, .salt = ++salt});
      cases.push_back({.kind = Kind::kReduceScatter, .type = HCCL_DATA_TYPE_UINT64, .op = HCCL_REDUCE_PROD,
                       .count = count, .salt = ++salt});
    }
    EXPECT_THAT(RunOnThreads(ranks, cases), ::testing::IsEmpty()) << ranks << " ranks";
  }
}

TEST_F(HcclCollectivesTest, DataMovementOnTwoToSixteenRanks) {
  const std::vector<HcclDataType> types = {HCCL_DATA_TYPE_INT8, HCCL_DATA_TYPE_BFP16, HCCL_DATA_TYPE_FP64,
                                           HCCL_DATA_TYPE_INT128, HCCL_DATA_TYPE_FP8E4M3, HCCL_DATA_TYPE_HIF8};
  for (int ranks : {2, 5, 16}) {
    std::vector<Case> cases;
    uint64_t salt = 200;
    for (Kind kind : {Kind::kBroadcast, Kind::kAllGather, Kind::kAlltoAll, Kind::kAlltoAllV, Kind::kAlltoAllVC,
                      Kind::kScatter}) {
      for (HcclDataType type : types) {
        for (uint64_t count : {0, 1, 333}) {
          ++salt;
          const bool in_place = salt % 2 == 0 && kind != Kind::kAlltoAllV && kind != Kind::kAlltoAllVC;
          cases.push_back({.kind = kind, .type = type, .count = count,
                           .root = static_cast<uint32_t>(salt % ranks), .in_place = in_place, .salt = salt});
        }
      }
    }
    EXPECT_THAT(RunOnThreads(ranks, cases), ::testing::IsEmpty()) << ranks << " ranks";
  }
}

// HCCL_BUFFSIZE is 1 MB: every collective moves several times that per rank, in pieces.
TEST_F(HcclCollectivesTest, DataLargerThanTheBufferMovesInPieces) {
  ASSERT_EQ(setenv("HCCL_BUFFSIZE", "1", 1), 0);
  std::vector<Case> cases;
  uint64_t salt = 300;
  constexpr uint64_t kCount = 300001;  // 1.2 MB of fp32 per rank and block
  for (Kind kind : {Kind::kAllReduce, Kind::kReduce, Kind::kReduceScatter, Kind::kBroadcast, Kind::kAllGather,
                    Kind::kAlltoAll, Kind::kAlltoAllV, Kind::kAlltoAllVC, Kind::kScatter}) {
    for (bool in_place : {false, true}) {
      if (in_place && (kind == Kind::kAlltoAllV || kind == Kind::kAlltoAllVC)) continue;
      cases.push_back({.kind = kind, .type = HCCL_DATA_TYPE_FP32, .count = kCount, .root = 1, .in_place = in_place,
                       .salt = ++salt});
    }
  }
  cases.push_back({.kind = Kind::kAllReduce, .type = HCCL_DATA_TYPE_BFP16, .count = 3 * kCount, .salt = ++salt});
  EXPECT_THAT(RunOnThreads(3, cases), ::testing::IsEmpty());
}

// Collectives are paired in the order they are issued, not the order their streams reach
// them: on even ranks the first stream is held until both calls are issued, on odd ranks the
// second, so the streams of different ranks reach their calls in opposite orders.
TEST_F(HcclCollectivesTest, CallsOnTwoStreamsOfOneRankPairInIssueOrder) {
  constexpr int kRanks = 4;
  constexpr uint64_t kCount = 1000;
  std::vector<HcclComm> comms = MakeGroup(FirstDevices(kRanks));
  std::mutex mutex;
  std::vector<std::string> failures;
  RunRanks(kRanks, [&](int rank) {
    aclrtStream first = NewStream(), second = NewStream();
    std::atomic<bool> open{false};
    auto hold = [](void* flag) {
      auto* gate = static_cast<std::atomic<bool>*>(flag);
      while (!gate->load(std::memory_order_acquire)) gate->wait(false, std::memory_order_acquire);
    };
    ASSERT_ACL_OK(aclrtLaunchHostFunc(rank % 2 == 0 ? first : second, hold, &open));
    std::vector<float> ones(kCount, 1.0f), sum(kCount, 0.0f);
    std::vector<float> mine(kCount, static_cast<float>(rank)), gathered(kCount * kRanks, -1.0f);
    float *a = nullptr, *b = nullptr, *c = nullptr, *d = nullptr;
    ASSERT_ACL_OK(aclrtMalloc(reinterpret_cast<void**>(&a), kCount * 4, ACL_MEM_MALLOC_HUGE_FIRST));
    ASSERT_ACL_OK(aclrtMalloc(reinterpret_cast<void**>(&b), kCount * 4, ACL_MEM_MALLOC_HUGE_FIRST));
    ASSERT_ACL_OK(aclrtMalloc(reinterpret_cast<void**>(&c), kCount * 4, ACL_MEM_MALLOC_HUGE_FIRST));
    ASSERT_ACL_OK(aclrtMalloc(reinterpret_cast<void**>(&d), kCount * kRanks * 4, ACL_MEM_MALLOC_HUGE_FIRST));
    ASSERT_ACL_OK(aclrtMemcpy(a, kCount * 4, ones.data(), kCount * 4, ACL_MEMCPY_HOST_TO_DEVICE));
    ASSERT_ACL_OK(aclrtMemcpy(c, kCount * 4, mine.data(), kCount * 4, ACL_MEMCPY_HOST_TO_DEVICE));
    ASSERT_EQ(HcclAllReduce(a, b, kCount, HCCL_DATA_TYPE_FP32, HCCL_REDUCE_SUM, comms[rank], first), HCCL_SUCCESS);
    ASSERT_EQ(HcclAllGather(c, d, kCount, HCCL_DATA_TYPE_FP32, comms[rank], second), HCCL_SUCCESS);
    open.store(true, std::memory_order_release);
    open.notify_all();
    EXPECT_ACL_OK(aclrtSynchronizeStream(second));
    EXPECT_ACL_OK(aclrtSynchronizeStream(first));
    ASSERT_ACL_OK(aclrtMemcpy(sum.data(), kCount * 4, b, kCount * 4, ACL_MEMCPY_DEVICE_TO_HOST));
    ASSERT_ACL_OK(aclrtMemcpy(gathered.data(), kCount * kRanks * 4, d, kCount * kRanks * 4, ACL_MEMCPY_DEVICE_TO_HOST));
    std::lock_guard lock(mutex);
    for (uint64_t i = 0; i < kCount && failures.empty(); ++i) {
      if (sum[i] != kRanks) failures.push_back(fmt::format("rank {}: sum[{}] = {}", rank, i, sum[i]));
      for (int r = 0; r < kRanks; ++r) {
        if (gathered[r * kCount + i] != r) failures.push_back(fmt::format("rank {}: gathered from {}", rank, r));
      }
    }
    aclrtFree(a), aclrtFree(b), aclrtFree(c), aclrtFree(d);
  });
  EXPECT_THAT(failures, ::testing::IsEmpty());
}

// Runs one call per rank (made by `issue`) and returns each rank's stream error message.
std::vector<std::string> StreamErrors(int ranks, const std::function<HcclResult(int rank, HcclComm, aclrtStream)>& issue) {
  std::vector<HcclComm> comms = MakeGroup(FirstDevices(ranks));
  std::vector<std::string> errors(ranks);
  RunRanks(ranks, [&](int rank) {
    aclrtStream stream = NewStream();
    ASSERT_EQ(issue(rank, comms[rank], stream), HCCL_SUCCESS) << aclGetRecentErrMsg();
    if (aclrtSynchronizeStream(stream) != 0) errors[rank] = aclGetRecentErrMsg();
  });
  return errors;
}

TEST_F(HcclCollectivesTest, MismatchedCountsFailOnEveryRankNamingTheRanks) {
  std::vector<float> buffer(64 * 3);
  std::vector<std::string> errors = StreamErrors(3, [&](int rank, HcclComm comm, aclrtStream stream) {
    float* mine = buffer.data() + rank * 64;
    return HcclAllReduce(mine, mine, rank == 2 ? 10 : 12, HCCL_DATA_TYPE_FP32, HCCL_REDUCE_SUM, comm, stream);
  });
  for (const std::string& error : errors) {
    EXPECT_THAT(error, ::testing::HasSubstr("rank 0 has count 12, rank 2 has count 10"));
  }
}

TEST_F(HcclCollectivesTest, MismatchedAlltoAllVCountsFailNamingTheRanks) {
  std::vector<float> send(3 * 64), recv(3 * 64);
  std::vector<std::string> errors = StreamErrors(3, [&](int rank, HcclComm comm, aclrtStream stream) {
    std::vector<uint64_t> counts = {4, 4, 4}, displs = {0, 8, 16};
    std::vector<uint64_t> recv_counts = counts;
    if (rank == 1) recv_counts[0] = 5;  // expects 5 from rank 0, which sends 4
    return HcclAlltoAllV(send.data() + rank * 64, counts.data(), displs.data(), HCCL_DATA_TYPE_FP32,
                         recv.data() + rank * 64, recv_counts.data(), displs.data(), HCCL_DATA_TYPE_FP32, comm,
                         stream);
  });
  for (const std::string& error : errors) {
    EXPECT_THAT(error, ::testing::HasSubstr("rank 0 sends 4 elements to rank 1, but rank 1 expects 5 from rank 0"));
  }
}

TEST_F(HcclCollectivesTest, DifferentCollectivesFailNamingTheRanks) {
  std::vector<float> buffer(64 * 2), out(64 * 4);
  std::vector<std::string> errors = StreamErrors(2, [&](int rank, HcclComm comm, aclrtStream stream) {
    if (rank == 0) return HcclAllReduce(buffer.data(), buffer.data(), 8, HCCL_DATA_TYPE_FP32, HCCL_REDUCE_SUM, comm, stream);
    return HcclAllGather(buffer.data() + 64, out.data(), 8, HCCL_DATA_TYPE_FP32, comm, stream);
  });
  for (const std::string& error : errors) {
    EXPECT_THAT(error, ::testing::HasSubstr("rank 0 calls HcclAllReduce, but rank 1 calls HcclAllGather"));
  }
}

TEST_F(HcclCollectivesTest, AMissingRankTimesOutNamingIt) {
  ASSERT_EQ(setenv("HCCL_EXEC_TIMEOUT", "1", 1), 0);
  std::vector<float> buffer(64 * 3);
  std::vector<HcclComm> comms = MakeGroup(FirstDevices(3));
  std::vector<std::string> errors(3);
  RunRanks(2, [&](int rank) {  // rank 2 never calls
    aclrtStream stream = NewStream();
    float* mine = buffer.data() + rank * 64;
    ASSERT_EQ(HcclAllReduce(mine, mine, 8, HCCL_DATA_TYPE_FP32, HCCL_REDUCE_SUM, comms[rank], stream), HCCL_SUCCESS);
    EXPECT_NE(aclrtSynchronizeStream(stream), 0);
    errors[rank] = aclGetRecentErrMsg();
  });
  for (int rank = 0; rank < 2; ++rank) {
    EXPECT_THAT(errors[rank], ::testing::HasSubstr("timed out")) << rank;
    EXPECT_THAT(errors[rank], ::testing::HasSubstr("[2]")) << rank;
  }
}

TEST_F(HcclCollectivesTest, BadArgumentsAreRefusedWithAMessage) {
  std::vector<HcclComm> comms = MakeGroup(FirstDevices(4));
  ASSERT_EQ(aclrtSetDevice(0), 0);
  aclrtStream stream = NewStream();
  ASSERT_EQ(aclrtSetDevice(1), 0);
  aclrtStream other_device_stream = NewStream();
  ASSERT_EQ(aclrtSetDevice(0), 0);
  std::vector<float> a(16), b(64);
  std::vector<uint64_t> counts(4, 1), displs = {0, 1, 2, 3};
  struct Expectation {
    const char* what;
    std::function<HcclResult()> call;
    HcclResult code;
    const char* message;
  };
  HcclComm comm = comms[0];
  const std::vector<Expectation> expectations = {
      {"null comm", [&] { return HcclAllReduce(a.data(), b.data(), 4, HCCL_DATA_TYPE_FP32, HCCL_REDUCE_SUM, nullptr, stream); },
       HCCL_E_PTR, "HcclAllReduce: comm is null"},
      {"null sendBuf", [&] { return HcclAllReduce(nullptr, b.data(), 4, HCCL_DATA_TYPE_FP32, HCCL_REDUCE_SUM, comm, stream); },
       HCCL_E_PTR, "HcclAllReduce: sendBuf is null"},
      {"null recvBuf", [&] { return HcclAllGather(a.data(), nullptr, 4, HCCL_DATA_TYPE_FP32, comm, stream); }, HCCL_E_PTR,
       "HcclAllGather: recvBuf is null"},
      {"null buf", [&] { return HcclBroadcast(nullptr, 4, HCCL_DATA_TYPE_FP32, 0, comm, stream); }, HCCL_E_PTR,
       "HcclBroadcast: buf is null"},
      {"null counts", [&] { return HcclAlltoAllV(a.data(), nullptr, displs.data(), HCCL_DATA_TYPE_FP32, b.data(), counts.data(),
                                    displs.data(), HCCL_DATA_TYPE_FP32, comm, stream); },
       HCCL_E_PTR, "HcclAlltoAllV: sendCounts is null"},
      {"null matrix", [&] { return HcclAlltoAllVC(a.data(), nullptr, HCCL_DATA_TYPE_FP32, b.data(), HCCL_DATA_TYPE_FP32, comm, stream); },
       HCCL_E_PTR, "HcclAlltoAllVC: sendCountMatrix is null"},
      {"data type 13", [&] { return HcclAllReduce(a.data(), b.data(), 4, static_cast<HcclDataType>(13), HCCL_REDUCE_SUM, comm, stream); },
       HCCL_E_PARA, "HcclAllReduce: dataType 13 is not an HCCL data type"},
      {"data type -1", [&] { return HcclAllGather(a.data(), b.data(), 4, static_cast<HcclDataType>(-1), comm, stream); }, HCCL_E_PARA,
       "HcclAllGather: dataType -1 is not an HCCL data type"},
      {"op 4", [&] { return HcclReduce(a.data(), b.data(), 4, HCCL_DATA_TYPE_FP32, static_cast<HcclReduceOp>(4), 0, comm, stream); },
       HCCL_E_PARA, "HcclReduce: op 4 is not an HcclReduceOp"},
      {"int128 sum", [&] { return HcclAllReduce(a.data(), b.data(), 1, HCCL_DATA_TYPE_INT128, HCCL_REDUCE_SUM, comm, stream); },
       HCCL_E_NOT_SUPPORT, "HcclAllReduce: dataType int128 cannot be reduced"},
      {"fp8 max", [&] { return HcclReduceScatter(a.data(), b.data(), 1, HCCL_DATA_TYPE_FP8E5M2, HCCL_REDUCE_MAX, comm, stream); },
       HCCL_E_NOT_SUPPORT, "HcclReduceScatter: dataType fp8e5m2 cannot be reduced"},
      {"root 4", [&] { return HcclBroadcast(a.data(), 4, HCCL_DATA_TYPE_FP32, 4, comm, stream); }, HCCL_E_PARA,
       "HcclBroadcast: root 4 is out of range [0, 4)"},
      {"scatter root", [&] { return HcclScatter(a.data(), b.data(), 1, HCCL_DATA_TYPE_FP32, 9, comm, stream); }, HCCL_E_PARA,
       "HcclScatter: root 9 is out of range [0, 4)"},
      {"huge count", [&] { return HcclAllGather(a.data(), b.data(), uint64_t{1} << 62, HCCL_DATA_TYPE_FP32, comm, stream); },
       HCCL_E_PARA, "HcclAllGather: sendCount 4611686018427387904 is too large"},
      {"types differ", [&] { return HcclAlltoAll(a.data(), 1, HCCL_DATA_TYPE_FP32, b.data(), 1, HCCL_DATA_TYPE_INT32, comm, stream); },
       HCCL_E_PARA, "HcclAlltoAll: sendType 4 and recvType 2 differ"},
      {"counts differ", [&] { return HcclAlltoAll(a.data(), 1, HCCL_DATA_TYPE_FP32, b.data(), 2, HCCL_DATA_TYPE_FP32, comm, stream); },
       HCCL_E_PARA, "HcclAlltoAll: sendCount 1 and recvCount 2 differ"},
      {"other device", [&] { return HcclAllReduce(a.data(), b.data(), 4, HCCL_DATA_TYPE_FP32, HCCL_REDUCE_SUM, comm, other_device_stream); },
       HCCL_E_PARA, "belongs to device 1, but rank 0 of group"},
  };
  for (const Expectation& e : expectations) {
    EXPECT_EQ(e.call(), e.code) << e.what;
    EXPECT_THAT(aclGetRecentErrMsg(), ::testing::HasSubstr(e.message)) << e.what;
  }
  for (HcclComm c : comms) HcclCommDestroy(c);
}

}  // namespace
}  // namespace distbarrier::testing
