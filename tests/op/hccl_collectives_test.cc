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
        cases.push_back({.kind = Kind::kAllReduce,
                         .type = type,
                         .op = op,
                         .count = count,
                         .in_place = salt % 2 == 1,
                         .salt = ++salt});
      }
    }
  }
  EXPECT_THAT(RunOnThreads(4, cases), ::testing::IsEmpty());
}

// A huge HCCL_EXEC_TIMEOUT (about 292 years in seconds) means "practically never": it
// saturates instead of overflowing the deadline into the past, which failed every call at once.
TEST_F(HcclCollectivesTest, AHugeExecTimeoutSaturatesInsteadOfTimingOutAtOnce) {
  ASSERT_EQ(setenv("HCCL_EXEC_TIMEOUT", "9223372036854", 1), 0);
  std::vector<Case> cases;
  for (uint64_t salt = 1; salt <= 3; ++salt) {
    cases.push_back({.kind = Kind::kAllReduce, .type = HCCL_DATA_TYPE_FP32, .op = HCCL_REDUCE_SUM, .count = 257,
                     .in_place = false, .salt = salt});
  }
  EXPECT_THAT(RunOnThreads(4, cases), ::testing::IsEmpty());
  unsetenv("HCCL_EXEC_TIMEOUT");
}

TEST_F(HcclCollectivesTest, ReductionsOnTwoToSixteenRanks) {
  for (int ranks : {2, 3, 8, 16}) {
    std::vector<Case> cases;
    uint64_t salt = 100;
    for (uint64_t count : {1, 777}) {
      const uint32_t last = static_cast<uint32_t>(ranks - 1);
      cases.push_back({.kind = Kind::kAllReduce, .type = HCCL_DATA_TYPE_FP32, .count = count, .salt = ++salt});
      cases.push_back(
          {.kind = Kind::kAllReduce, .type = HCCL_DATA_TYPE_BFP16, .count = count, .in_place = true, .salt = ++salt});
      cases.push_back({.kind = Kind::kAllReduce,
                       .type = HCCL_DATA_TYPE_FP16,
                       .op = HCCL_REDUCE_MAX,
                       .count = count,
                       .salt = ++salt});
      cases.push_back({.kind = Kind::kReduce,
                       .type = HCCL_DATA_TYPE_INT32,
                       .op = HCCL_REDUCE_PROD,
                       .count = count,
                       .root = last,
                       .salt = ++salt});
      cases.push_back({.kind = Kind::kReduce,
                       .type = HCCL_DATA_TYPE_FP64,
                       .count = count,
                       .root = 0,
                       .in_place = true,
                       .salt = ++salt});
      cases.push_back({.kind = Kind::kReduceScatter, .type = HCCL_DATA_TYPE_FP16, .count = count, .salt = ++salt});
      cases.push_back({.kind = Kind::kReduceScatter,
                       .type = HCCL_DATA_TYPE_INT8,
                       .op = HCCL_REDUCE_MIN,
                       .count = count,
                       .in_place = true,
                       .salt = ++salt});
      cases.push_back({.kind = Kind::kReduceScatter,
                       .type = HCCL_DATA_TYPE_UINT64,
                       .op = HCCL_REDUCE_PROD,
                       .count = count,
                       .salt = ++salt});
    }
    EXPECT_THAT(RunOnThreads(ranks, cases), ::testing::IsEmpty()) << ranks << " ranks";
  }
}

TEST_F(HcclCollectivesTest, DataMovementOnTwoToSixteenRanks) {
  const std::vector<HcclDataType> types = {HCCL_DATA_TYPE_INT8,   HCCL_DATA_TYPE_BFP16,   HCCL_DATA_TYPE_FP64,
                                           HCCL_DATA_TYPE_INT128, HCCL_DATA_TYPE_FP8E4M3, HCCL_DATA_TYPE_HIF8};
  for (int ranks : {2, 5, 16}) {
    std::vector<Case> cases;
    uint64_t salt = 200;
    for (Kind kind :
         {Kind::kBroadcast, Kind::kAllGather, Kind::kAlltoAll, Kind::kAlltoAllV, Kind::kAlltoAllVC, Kind::kScatter}) {
      for (HcclDataType type : types) {
        for (uint64_t count : {0, 1, 333}) {
          ++salt;
          const bool in_place = salt % 2 == 0 && kind != Kind::kAlltoAllV && kind != Kind::kAlltoAllVC;
          cases.push_back({.kind = kind,
                           .type = type,
                           .count = count,
                           .root = static_cast<uint32_t>(salt % ranks),
                           .in_place = in_place,
                           .salt = salt});
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
      // In place, for the layouts that keep their input in the output (chunk by chunk).
      if (in_place && kind != Kind::kAllReduce && kind != Kind::kAllGather && kind != Kind::kReduceScatter) continue;
      cases.push_back({.kind = kind,
                       .type = HCCL_DATA_TYPE_FP32,
                       .count = kCount,
                       .root = 1,
                       .in_place = in_place,
                       .salt = ++salt});
    }
  }
  cases.push_back({.kind = Kind::kAllReduce, .type = HCCL_DATA_TYPE_BFP16, .count = 2 * kCount, .salt = ++salt});
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

std::vector<std::string> PointToPointOnThreads(int ranks, const std::vector<std::pair<HcclDataType, uint64_t>>& runs) {
  std::vector<HcclComm> comms = MakeGroup(FirstDevices(ranks));
  std::mutex mutex;
  std::vector<std::string> failures;
  RunRanks(ranks, [&](int rank) {
    aclrtStream stream = NewStream();
    uint64_t salt = 0;
    for (auto [type, count] : runs) {
      if (std::string error = hccl::RunPointToPoint(comms[rank], stream, type, count, ++salt); !error.empty()) {
        std::lock_guard lock(mutex);
        failures.push_back(error);
        break;
      }
    }
    aclrtDestroyStream(stream);
  });
  for (HcclComm comm : comms) HcclCommDestroy(comm);
  return failures;
}

TEST_F(HcclCollectivesTest, SendReceiveAndBatchesOnTwoToSixteenRanks) {
  for (int ranks : {2, 5, 16}) {
    EXPECT_THAT(PointToPointOnThreads(ranks, {{HCCL_DATA_TYPE_BFP16, 0},
                                              {HCCL_DATA_TYPE_INT128, 1},
                                              {HCCL_DATA_TYPE_FP32, 1031},
                                              {HCCL_DATA_TYPE_FP8E5M2, 77}}),
                ::testing::IsEmpty())
        << ranks << " ranks";
  }
}

TEST_F(HcclCollectivesTest, MessagesLargerThanTheBufferMoveInPieces) {
  ASSERT_EQ(setenv("HCCL_BUFFSIZE", "1", 1), 0);
  EXPECT_THAT(PointToPointOnThreads(4, {{HCCL_DATA_TYPE_FP32, 300007}}), ::testing::IsEmpty());
}

TEST_F(HcclCollectivesTest, MismatchedSendAndReceiveFailOnBothNamingTheRanks) {
  std::vector<float> buffer(64 * 2);
  std::vector<std::string> errors(2);
  std::vector<HcclComm> comms = MakeGroup(FirstDevices(2));
  RunRanks(2, [&](int rank) {
    aclrtStream stream = NewStream();
    float* mine = buffer.data() + rank * 64;
    const HcclResult issued = rank == 0 ? HcclSend(mine, 10, HCCL_DATA_TYPE_FP32, 1, comms[0], stream)
                                        : HcclRecv(mine, 12, HCCL_DATA_TYPE_FP32, 0, comms[1], stream);
    ASSERT_EQ(issued, HCCL_SUCCESS) << aclGetRecentErrMsg();
    EXPECT_NE(aclrtSynchronizeStream(stream), 0);
    errors[rank] = aclGetRecentErrMsg();
  });
  EXPECT_THAT(errors[0], ::testing::HasSubstr("rank 0 sends 40 bytes to rank 1, but rank 1 expects 48 bytes"));
  EXPECT_THAT(errors[1], ::testing::HasSubstr("rank 1 receives 48 bytes from rank 0, but rank 0 sends 40 bytes"));
}

TEST_F(HcclCollectivesTest, ASendNobodyReceivesTimesOutNamingThePeer) {
  ASSERT_EQ(setenv("HCCL_EXEC_TIMEOUT", "1", 1), 0);
  std::vector<HcclComm> comms = MakeGroup(FirstDevices(3));
  ASSERT_EQ(aclrtSetDevice(0), 0);
  aclrtStream stream = NewStream();
  std::vector<float> data(16);
  ASSERT_EQ(HcclSend(data.data(), 16, HCCL_DATA_TYPE_FP32, 2, comms[0], stream), HCCL_SUCCESS);
  EXPECT_NE(aclrtSynchronizeStream(stream), 0);
  EXPECT_THAT(aclGetRecentErrMsg(), ::testing::HasSubstr("for ranks [2] to send or receive"));
}

// A bad call, the code it must return and a part of the message it must leave.
struct Expectation {
  const char* what;
  std::function<HcclResult()> call;
  HcclResult code;
  const char* message;
};

void CheckRefusals(const std::vector<Expectation>& expectations) {
  for (const Expectation& e : expectations) {
    EXPECT_EQ(e.call(), e.code) << e.what;
    EXPECT_THAT(aclGetRecentErrMsg(), ::testing::HasSubstr(e.message)) << e.what;
  }
}

TEST_F(HcclCollectivesTest, BadSendReceiveArgumentsAreRefusedWithAMessage) {
  std::vector<HcclComm> comms = MakeGroup(FirstDevices(4));
  ASSERT_EQ(aclrtSetDevice(1), 0);
  aclrtStream stream = NewStream();
  HcclComm comm = comms[1];
  std::vector<float> a(16);
  HcclSendRecvItem bad_type{static_cast<HcclSendRecvType>(7), a.data(), 1, HCCL_DATA_TYPE_FP32, 0};
  HcclSendRecvItem good{HCCL_SEND, a.data(), 1, HCCL_DATA_TYPE_FP32, 0};
  HcclSendRecvItem far{HCCL_RECV, a.data(), 1, HCCL_DATA_TYPE_FP32, 4};
  const std::vector<Expectation> expectations = {
      {"null comm", [&] { return HcclSend(a.data(), 1, HCCL_DATA_TYPE_FP32, 0, nullptr, stream); }, HCCL_E_PTR,
       "HcclSend: comm is null"},
      {"null sendBuf", [&] { return HcclSend(nullptr, 1, HCCL_DATA_TYPE_FP32, 0, comm, stream); }, HCCL_E_PTR,
       "HcclSend: sendBuf is null"},
      {"null recvBuf", [&] { return HcclRecv(nullptr, 1, HCCL_DATA_TYPE_FP32, 0, comm, stream); }, HCCL_E_PTR,
       "HcclRecv: recvBuf is null"},
      {"destRank 4", [&] { return HcclSend(a.data(), 1, HCCL_DATA_TYPE_FP32, 4, comm, stream); }, HCCL_E_PARA,
       "HcclSend: destRank 4 is out of range [0, 4)"},
      {"srcRank self", [&] { return HcclRecv(a.data(), 1, HCCL_DATA_TYPE_FP32, 1, comm, stream); }, HCCL_E_PARA,
       "HcclRecv: srcRank 1 is the calling rank itself"},
      {"data type 99", [&] { return HcclSend(a.data(), 1, static_cast<HcclDataType>(99), 0, comm, stream); },
       HCCL_E_PARA, "HcclSend: dataType 99 is not an HCCL data type"},
      {"null items", [&] { return HcclBatchSendRecv(nullptr, 2, comm, stream); }, HCCL_E_PTR,
       "HcclBatchSendRecv: sendRecvInfo is null"},
      {"bad kind",
       [&] {
         HcclSendRecvItem items[] = {good, bad_type};
         return HcclBatchSendRecv(items, 2, comm, stream);
       },
       HCCL_E_PARA, "HcclBatchSendRecv: sendRecvInfo[1].sendRecvType 7 is neither"},
      {"far rank",
       [&] {
         HcclSendRecvItem items[] = {far};
         return HcclBatchSendRecv(items, 1, comm, stream);
       },
       HCCL_E_PARA, "HcclBatchSendRecv: sendRecvInfo[0].remoteRank 4 is out of range [0, 4)"},
  };
  CheckRefusals(expectations);
  for (HcclComm c : comms) HcclCommDestroy(c);
}

// Runs one call per rank (made by `issue`) and returns each rank's stream error message.
std::vector<std::string> StreamErrors(int ranks,
                                      const std::function<HcclResult(int rank, HcclComm, aclrtStream)>& issue) {
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
                         recv.data() + rank * 64, recv_counts.data(), displs.data(), HCCL_DATA_TYPE_FP32, comm, stream);
  });
  for (const std::string& error : errors) {
    EXPECT_THAT(error, ::testing::HasSubstr("rank 0 sends 4 elements to rank 1, but rank 1 expects 5 from rank 0"));
  }
}

TEST_F(HcclCollectivesTest, DifferentCollectivesFailNamingTheRanks) {
  std::vector<float> buffer(64 * 2), out(64 * 4);
  std::vector<std::string> errors = StreamErrors(2, [&](int rank, HcclComm comm, aclrtStream stream) {
    if (rank == 0)
      return HcclAllReduce(buffer.data(), buffer.data(), 8, HCCL_DATA_TYPE_FP32, HCCL_REDUCE_SUM, comm, stream);
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
  HcclComm comm = comms[0];
  const std::vector<Expectation> expectations = {
      {"null comm",
       [&] { return HcclAllReduce(a.data(), b.data(), 4, HCCL_DATA_TYPE_FP32, HCCL_REDUCE_SUM, nullptr, stream); },
       HCCL_E_PTR, "HcclAllReduce: comm is null"},
      {"null sendBuf",
       [&] { return HcclAllReduce(nullptr, b.data(), 4, HCCL_DATA_TYPE_FP32, HCCL_REDUCE_SUM, comm, stream); },
       HCCL_E_PTR, "HcclAllReduce: sendBuf is null"},
      {"null recvBuf", [&] { return HcclAllGather(a.data(), nullptr, 4, HCCL_DATA_TYPE_FP32, comm, stream); },
       HCCL_E_PTR, "HcclAllGather: recvBuf is null"},
      {"null buf", [&] { return HcclBroadcast(nullptr, 4, HCCL_DATA_TYPE_FP32, 0, comm, stream); }, HCCL_E_PTR,
       "HcclBroadcast: buf is null"},
      {"null counts",
       [&] {
         return HcclAlltoAllV(a.data(), nullptr, displs.data(), HCCL_DATA_TYPE_FP32, b.data(), counts.data(),
                              displs.data(), HCCL_DATA_TYPE_FP32, comm, stream);
       },
       HCCL_E_PTR, "HcclAlltoAllV: sendCounts is null"},
      {"null matrix",
       [&] {
         return HcclAlltoAllVC(a.data(), nullptr, HCCL_DATA_TYPE_FP32, b.data(), HCCL_DATA_TYPE_FP32, comm, stream);
       },
       HCCL_E_PTR, "HcclAlltoAllVC: sendCountMatrix is null"},
      {"data type 13",
       [&] {
         return HcclAllReduce(a.data(), b.data(), 4, static_cast<HcclDataType>(13), HCCL_REDUCE_SUM, comm, stream);
       },
       HCCL_E_PARA, "HcclAllReduce: dataType 13 is not an HCCL data type"},
      {"data type -1",
       [&] { return HcclAllGather(a.data(), b.data(), 4, static_cast<HcclDataType>(-1), comm, stream); }, HCCL_E_PARA,
       "HcclAllGather: dataType -1 is not an HCCL data type"},
      {"op 4",
       [&] {
         return HcclReduce(a.data(), b.data(), 4, HCCL_DATA_TYPE_FP32, static_cast<HcclReduceOp>(4), 0, comm, stream);
       },
       HCCL_E_PARA, "HcclReduce: op 4 is not an HcclReduceOp"},
      {"int128 sum",
       [&] { return HcclAllReduce(a.data(), b.data(), 1, HCCL_DATA_TYPE_INT128, HCCL_REDUCE_SUM, comm, stream); },
       HCCL_E_NOT_SUPPORT, "HcclAllReduce: dataType int128 cannot be reduced"},
      {"fp8 max",
       [&] { return HcclReduceScatter(a.data(), b.data(), 1, HCCL_DATA_TYPE_FP8E5M2, HCCL_REDUCE_MAX, comm, stream); },
       HCCL_E_NOT_SUPPORT, "HcclReduceScatter: dataType fp8e5m2 cannot be reduced"},
      {"root 4", [&] { return HcclBroadcast(a.data(), 4, HCCL_DATA_TYPE_FP32, 4, comm, stream); }, HCCL_E_PARA,
       "HcclBroadcast: root 4 is out of range [0, 4)"},
      {"scatter root", [&] { return HcclScatter(a.data(), b.data(), 1, HCCL_DATA_TYPE_FP32, 9, comm, stream); },
       HCCL_E_PARA, "HcclScatter: root 9 is out of range [0, 4)"},
      {"huge count",
       [&] { return HcclAllGather(a.data(), b.data(), uint64_t{1} << 62, HCCL_DATA_TYPE_FP32, comm, stream); },
       HCCL_E_PARA, "HcclAllGather: sendCount 4611686018427387904 is too large"},
      {"types differ",
       [&] { return HcclAlltoAll(a.data(), 1, HCCL_DATA_TYPE_FP32, b.data(), 1, HCCL_DATA_TYPE_INT32, comm, stream); },
       HCCL_E_PARA, "HcclAlltoAll: sendType 4 and recvType 2 differ"},
      {"counts differ",
       [&] { return HcclAlltoAll(a.data(), 1, HCCL_DATA_TYPE_FP32, b.data(), 2, HCCL_DATA_TYPE_FP32, comm, stream); },
       HCCL_E_PARA, "HcclAlltoAll: sendCount 1 and recvCount 2 differ"},
      {"other device",
       [&] {
         return HcclAllReduce(a.data(), b.data(), 4, HCCL_DATA_TYPE_FP32, HCCL_REDUCE_SUM, comm, other_device_stream);
       },
       HCCL_E_PARA, "belongs to device 1, but rank 0 of group"},
  };
  CheckRefusals(expectations);
  for (HcclComm c : comms) HcclCommDestroy(c);
}

}  // namespace
}  // namespace distbarrier::testing

namespace distbarrier::testing {
namespace {

// HcclAllGatherV and HcclReduceScatterV: ranks contribute different counts (some zero), blocks
// lie one element apart; every reducible type and reduction; 2 to 16 ranks.
TEST_F(HcclCollectivesTest, VectorVariantsOnTwoToSixteenRanks) {
  for (int ranks : {2, 5, 16}) {
    std::vector<Case> cases;
    uint64_t salt = 500;
    for (HcclDataType type : {HCCL_DATA_TYPE_INT8, HCCL_DATA_TYPE_BFP16, HCCL_DATA_TYPE_INT128, HCCL_DATA_TYPE_FP64}) {
      for (uint64_t count : {0, 1, 333}) {
        cases.push_back({.kind = Kind::kAllGatherV, .type = type, .count = count, .salt = ++salt});
      }
    }
    for (HcclDataType type : hccl::ReducibleTypes()) {
      for (HcclReduceOp op : {HCCL_REDUCE_SUM, HCCL_REDUCE_PROD, HCCL_REDUCE_MAX, HCCL_REDUCE_MIN}) {
        for (uint64_t count : {0, 1, 333}) {
          if (ranks == 16 && count != 333) continue;
          cases.push_back({.kind = Kind::kReduceScatterV, .type = type, .op = op, .count = count, .salt = ++salt});
        }
      }
    }
    EXPECT_THAT(RunOnThreads(ranks, cases), ::testing::IsEmpty()) << ranks << " ranks";
  }
}

TEST_F(HcclCollectivesTest, VectorVariantsLargerThanTheBufferMoveInPieces) {
  ASSERT_EQ(setenv("HCCL_BUFFSIZE", "1", 1), 0);
  std::vector<Case> cases = {
      {.kind = Kind::kAllGatherV, .type = HCCL_DATA_TYPE_FP32, .count = 600001, .salt = 1},
      {.kind = Kind::kReduceScatterV, .type = HCCL_DATA_TYPE_FP32, .count = 600001, .salt = 2},
      {.kind = Kind::kReduceScatterV, .type = HCCL_DATA_TYPE_FP16, .op = HCCL_REDUCE_MAX, .count = 900001, .salt = 3}};
  EXPECT_THAT(RunOnThreads(3, cases), ::testing::IsEmpty());
}

TEST_F(HcclCollectivesTest, MismatchedVectorVariantCountsFailNamingTheRanks) {
  std::vector<float> send(3 * 64), recv(3 * 64);
  std::vector<std::string> errors = StreamErrors(3, [&](int rank, HcclComm comm, aclrtStream stream) {
    std::vector<uint64_t> counts = {4, 4, 4}, displs = {0, 8, 16};
    if (rank == 1) counts[0] = 5;  // expects 5 from rank 0, which sends 4
    return HcclAllGatherV(send.data() + rank * 64, 4, recv.data() + rank * 64, counts.data(), displs.data(),
                          HCCL_DATA_TYPE_FP32, comm, stream);
  });
  for (const std::string& error : errors) {
    EXPECT_THAT(error, ::testing::HasSubstr("HcclAllGatherV"));
    EXPECT_THAT(error, ::testing::HasSubstr("rank 0 sends 4 elements to rank 1, but rank 1 expects 5 from rank 0"));
  }
  errors = StreamErrors(3, [&](int rank, HcclComm comm, aclrtStream stream) {
    std::vector<uint64_t> counts = {4, 4, 4}, displs = {0, 8, 16};
    return HcclReduceScatterV(send.data() + rank * 64, counts.data(), displs.data(), recv.data() + rank * 64,
                              rank == 2 ? 3 : 4, HCCL_DATA_TYPE_FP32, HCCL_REDUCE_SUM, comm, stream);
  });
  for (const std::string& error : errors) {
    EXPECT_THAT(error, ::testing::HasSubstr("HcclReduceScatterV"));
    EXPECT_THAT(error, ::testing::HasSubstr("rank 0 sends 4 elements to rank 2, but rank 2 expects 3 from rank 0"));
  }
}

TEST_F(HcclCollectivesTest, BadVectorVariantArgumentsAreRefusedWithAMessage) {
  std::vector<HcclComm> comms = MakeGroup(FirstDevices(2));
  ASSERT_EQ(aclrtSetDevice(0), 0);
  aclrtStream stream = NewStream();
  std::vector<float> a(16), b(16);
  std::vector<uint64_t> counts(2, 1), displs = {0, 1};
  HcclComm comm = comms[0];
  const std::vector<Expectation> expectations = {
      {"null comm",
       [&] {
         return HcclAllGatherV(a.data(), 1, b.data(), counts.data(), displs.data(), HCCL_DATA_TYPE_FP32, nullptr,
                               stream);
       },
       HCCL_E_PTR, "HcclAllGatherV: comm is null"},
      {"null recvCounts",
       [&] { return HcclAllGatherV(a.data(), 1, b.data(), nullptr, displs.data(), HCCL_DATA_TYPE_FP32, comm, stream); },
       HCCL_E_PTR, "HcclAllGatherV: recvCounts is null"},
      {"null recvBuf",
       [&] {
         return HcclAllGatherV(a.data(), 1, nullptr, counts.data(), displs.data(), HCCL_DATA_TYPE_FP32, comm, stream);
       },
       HCCL_E_PTR, "HcclAllGatherV: recvBuf is null"},
      {"null sendDispls",
       [&] {
         return HcclReduceScatterV(a.data(), counts.data(), nullptr, b.data(), 1, HCCL_DATA_TYPE_FP32, HCCL_REDUCE_SUM,
                                   comm, stream);
       },
       HCCL_E_PTR, "HcclReduceScatterV: sendDispls is null"},
      {"same buffers",
       [&] {
         return HcclReduceScatterV(a.data(), counts.data(), displs.data(), a.data(), 1, HCCL_DATA_TYPE_FP32,
                                   HCCL_REDUCE_SUM, comm, stream);
       },
       HCCL_E_PARA, "HcclReduceScatterV: recvBuf and sendBuf are the same address"},
      {"int128",
       [&] {
         return HcclReduceScatterV(a.data(), counts.data(), displs.data(), b.data(), 1, HCCL_DATA_TYPE_INT128,
                                   HCCL_REDUCE_SUM, comm, stream);
       },
       HCCL_E_NOT_SUPPORT, "HcclReduceScatterV: dataType int128 cannot be reduced"},
      {"op 7",
       [&] {
         return HcclReduceScatterV(a.data(), counts.data(), displs.data(), b.data(), 1, HCCL_DATA_TYPE_FP32,
                                   static_cast<HcclReduceOp>(7), comm, stream);
       },
       HCCL_E_PARA, "HcclReduceScatterV: op 7 is not an HcclReduceOp"},
  };
  CheckRefusals(expectations);
  for (HcclComm c : comms) HcclCommDestroy(c);
}

}  // namespace
}  // namespace distbarrier::testing
