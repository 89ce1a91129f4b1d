// Arrival statistics (distbarrier/distbarrier.h): they name an injected slow rank, agree
// across ranks, and every bad argument gets a clear error.
//
// The slow rank is made slow by construction, not by luck: before each barrier a host
// function on its stream waits until every other rank has arrived at that barrier, then
// sleeps 2 ms. So it is last, and at least 2 ms late, in every barrier.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

#include "comm/group.h"
#include "distbarrier/distbarrier.h"
#include "test_support.h"

namespace distbarrier::testing {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kDelayNs = 2'000'000;

struct SlowRankGate {
  comm::Group* group;
  int slow_rank;
  uint64_t seq;  // the barrier about to be reached
};

void WaitForOthersThenDelay(void* arg) {
  auto* gate = static_cast<SlowRankGate*>(arg);
  for (int rank = 0; rank < gate->group->Size(); ++rank) {
    if (rank == gate->slow_rank) continue;
    while (gate->group->Window().ArrivedSequence(rank) < gate->seq) std::this_thread::yield();
  }
  std::this_thread::sleep_for(std::chrono::nanoseconds(kDelayNs));  // the injected slowness
}

class DiagnosisTest : public RuntimeTest {
 protected:
  void SetUp() override {
    comms_ = MakeGroup(FirstDevices(kRanks));
    group_ = CommName(comms_[0]);
    ASSERT_ACL_OK(aclrtSetDevice(0));
    auto found = comm::GroupRegistry::Instance().Find(group_, 0);
    group_object_ = std::get<comm::Member>(found).group.get();
  }

  static constexpr int kRanks = 16;
  std::vector<HcclComm> comms_;
  std::string group_;
  comm::Group* group_object_ = nullptr;
};

TEST_F(DiagnosisTest, StatsNameTheInjectedSlowRankInEveryOneOf200Barriers) {
  constexpr int kSlow = 11;
  constexpr int kBarriers = 200;
  // arrivals[k][viewer][rank]: what each rank was told about barrier k.
  std::vector<std::vector<std::vector<int64_t>>> arrivals(
      kBarriers, std::vector<std::vector<int64_t>>(kRanks, std::vector<int64_t>(kRanks, -2)));
  std::vector<SlowRankGate> gates(kBarriers);
  RunRanks(kRanks, [&](int rank) {
    aclrtStream stream = NewStream();
    DeviceTensor x_ref = MakeTensor(ACL_INT8, {8});
    for (int k = 0; k < kBarriers; ++k) {
      if (rank == kSlow) {
        gates[k] = {group_object_, kSlow, static_cast<uint64_t>(k + 1)};
        ASSERT_ACL_OK(aclrtLaunchHostFunc(stream, WaitForOthersThenDelay, &gates[k]));
      }
      ASSERT_EQ(EnqueueBarrier(x_ref.tensor, group_, kRanks, stream), ACLNN_SUCCESS) << aclGetRecentErrMsg();
      ASSERT_ACL_OK(aclrtSynchronizeStream(stream));
      distbarrierBarrierInfo info{};
      ASSERT_ACL_OK(distbarrierGetLastBarrier(group_.c_str(), &info, arrivals[k][rank].data(), kRanks));
      EXPECT_EQ(info.sequence, static_cast<uint64_t>(k + 1));
      EXPECT_EQ(info.rankCount, static_cast<uint32_t>(kRanks));
      EXPECT_EQ(info.lastRank, kSlow) << "barrier " << k + 1 << " seen from rank " << rank;
      EXPECT_GE(info.spreadNs, kDelayNs);
      EXPECT_EQ(info.spreadNs, arrivals[k][rank][kSlow]);
    }
  });
  for (int k = 0; k < kBarriers; ++k) {
    const std::vector<int64_t>& first_view = arrivals[k][0];
    EXPECT_EQ(*std::min_element(first_view.begin(), first_view.end()), 0) << "someone arrived first";
    EXPECT_EQ(std::max_element(first_view.begin(), first_view.end()) - first_view.begin(), kSlow);
    for (int viewer = 1; viewer < kRanks; ++viewer) {
      EXPECT_EQ(arrivals[k][viewer], first_view) << "ranks disagree about barrier " << k + 1;
    }
  }
  ASSERT_ACL_OK(aclrtSetDevice(3));
  distbarrierRankStats stats[kRanks];
  ASSERT_ACL_OK(distbarrierGetRankStats(group_.c_str(), stats, kRanks));
  for (int rank = 0; rank < kRanks; ++rank) {
    EXPECT_EQ(stats[rank].barriers, static_cast<uint64_t>(kBarriers));
    EXPECT_EQ(stats[rank].timesLast, rank == kSlow ? static_cast<uint64_t>(kBarriers) : 0u) << rank;
    EXPECT_LE(stats[rank].meanLatenessNs, static_cast<double>(stats[rank].maxLatenessNs));
  }
  EXPECT_GE(stats[kSlow].meanLatenessNs, static_cast<double>(kDelayNs));
  EXPECT_GE(stats[kSlow].maxLatenessNs, kDelayNs);
}

// A second, independent check of the last-rank statistic: one thread launches the ranks in a
// chosen order, so which rank completes each barrier is known without any timing; the
// statistics must name it, and count it in timesLast.
TEST_F(DiagnosisTest, TheRankLaunchedLastIsNamedLastWhateverItsNumber) {
  std::vector<aclrtStream> streams(kRanks);
  std::vector<DeviceTensor> x_refs(kRanks);
  for (int rank = 0; rank < kRanks; ++rank) {
    ASSERT_ACL_OK(aclrtSetDevice(rank));
    streams[rank] = NewStream();
    x_refs[rank] = MakeTensor(ACL_FLOAT16, {2});
  }
  const std::vector<int> last_ranks = {0, 15, 7, 7, 3};
  for (int last : last_ranks) {
    for (int rank = 0; rank < kRanks; ++rank) {
      if (rank == last) continue;
      ASSERT_ACL_OK(aclrtSetDevice(rank));
      ASSERT_EQ(EnqueueBarrier(x_refs[rank].tensor, group_, kRanks, streams[rank]), 0) << aclGetRecentErrMsg();
    }
    ASSERT_ACL_OK(aclrtSetDevice(last));
    ASSERT_EQ(EnqueueBarrier(x_refs[last].tensor, group_, kRanks, streams[last]), 0) << aclGetRecentErrMsg();
    for (aclrtStream stream : streams) ASSERT_ACL_OK(aclrtSynchronizeStream(stream));
    distbarrierBarrierInfo info{};
    std::vector<int64_t> arrival(kRanks);
    ASSERT_ACL_OK(distbarrierGetLastBarrier(group_.c_str(), &info, arrival.data(), kRanks));
    EXPECT_EQ(info.lastRank, last);
    EXPECT_EQ(arrival[last], info.spreadNs);  // the last arrival is the spread's end
  }
  std::vector<distbarrierRankStats> stats(kRanks);
  ASSERT_ACL_OK(distbarrierGetRankStats(group_.c_str(), stats.data(), kRanks));
  for (int rank = 0; rank < kRanks; ++rank) {
    const auto expected = static_cast<uint64_t>(std::count(last_ranks.begin(), last_ranks.end(), rank));
    EXPECT_EQ(stats[rank].timesLast, expected) << "rank " << rank;
    EXPECT_EQ(stats[rank].barriers, last_ranks.size()) << "rank " << rank;
  }
}

TEST_F(DiagnosisTest, ResetStartsTheRunningStatsAfresh) {
  RunRanks(kRanks, [&](int) {
    aclrtStream stream = NewStream();
    DeviceTensor x_ref = MakeTensor(ACL_INT8, {8});
    for (int k = 0; k < 3; ++k) ASSERT_EQ(EnqueueBarrier(x_ref.tensor, group_, kRanks, stream), ACLNN_SUCCESS);
    ASSERT_ACL_OK(aclrtSynchronizeStream(stream));
  });
  distbarrierRankStats stats[kRanks];
  ASSERT_ACL_OK(distbarrierGetRankStats(group_.c_str(), stats, kRanks));
  EXPECT_EQ(stats[0].barriers, 3u);
  ASSERT_ACL_OK(distbarrierResetStats(group_.c_str()));
  ASSERT_ACL_OK(distbarrierGetRankStats(group_.c_str(), stats, kRanks));
  for (const auto& one : stats) EXPECT_EQ(one.barriers, 0u);
  distbarrierBarrierInfo info{};
  ASSERT_ACL_OK(distbarrierGetLastBarrier(group_.c_str(), &info, nullptr, 0));
  EXPECT_EQ(info.sequence, 3u);  // the last barrier's record is not part of the running stats
}

TEST_F(DiagnosisTest, NothingPassedYetIsSequenceZero) {
  distbarrierBarrierInfo info{};
  std::vector<int64_t> arrivals(kRanks, 7);
  ASSERT_ACL_OK(distbarrierGetLastBarrier(group_.c_str(), &info, arrivals.data(), kRanks));
  EXPECT_EQ(info.sequence, 0u);
  EXPECT_EQ(info.lastRank, -1);
  EXPECT_EQ(arrivals, std::vector<int64_t>(kRanks, -1));
}

TEST_F(DiagnosisTest, DisabledStatsRecordNothing) {
  ASSERT_ACL_OK(distbarrierSetStatsEnabled(0));
  RunRanks(kRanks, [&](int) {
    aclrtStream stream = NewStream();
    DeviceTensor x_ref = MakeTensor(ACL_INT8, {8});
    ASSERT_EQ(EnqueueBarrier(x_ref.tensor, group_, kRanks, stream), ACLNN_SUCCESS);
    ASSERT_ACL_OK(aclrtSynchronizeStream(stream));
  });
  ASSERT_ACL_OK(distbarrierSetStatsEnabled(1));
  distbarrierBarrierInfo info{};
  ASSERT_ACL_OK(distbarrierGetLastBarrier(group_.c_str(), &info, nullptr, 0));
  EXPECT_EQ(info.sequence, 0u);
  distbarrierRankStats stats[kRanks];
  ASSERT_ACL_OK(distbarrierGetRankStats(group_.c_str(), stats, kRanks));
  EXPECT_EQ(stats[0].barriers, 0u);
}

TEST_F(DiagnosisTest, ElasticBarriersMarkExcludedRanks) {
  DeviceTensor elastic;
  {
    std::vector<int32_t> info = {1, kRanks - 1, 0, 0};
    for (int rank = 0; rank < kRanks; ++rank) info.push_back(rank == 7 ? -1 : (rank < 7 ? rank : rank - 1));
    for (int rank = 0; rank < kRanks; ++rank) info.push_back(rank < kRanks - 1 ? (rank < 7 ? rank : rank + 1) : -1);
    elastic = MakeInt32Tensor(info);
  }
  RunRanks(kRanks, [&](int rank) {
    if (rank == 7) return;
    aclrtStream stream = NewStream();
    DeviceTensor x_ref = MakeTensor(ACL_INT8, {8});
    ASSERT_EQ(EnqueueBarrierV2(x_ref.tensor, nullptr, elastic.tensor, group_, kRanks, stream), ACLNN_SUCCESS);
    ASSERT_ACL_OK(aclrtSynchronizeStream(stream));
    std::vector<int64_t> arrivals(kRanks);
    distbarrierBarrierInfo info{};
    ASSERT_ACL_OK(distbarrierGetLastBarrier(group_.c_str(), &info, arrivals.data(), kRanks));
    EXPECT_EQ(info.sequence, 1u);
    EXPECT_EQ(arrivals[7], -1);
    EXPECT_NE(info.lastRank, 7);
  });
}

TEST_F(DiagnosisTest, BadArgumentsAreRefusedWithAMessage) {
  distbarrierBarrierInfo info{};
  distbarrierRankStats stats[kRanks];
  int64_t arrivals[kRanks];
  EXPECT_EQ(distbarrierGetLastBarrier(nullptr, &info, nullptr, 0), ACL_ERROR_INVALID_PARAM);
  EXPECT_THAT(std::string(aclGetRecentErrMsg()), HasSubstr("group is null"));
  EXPECT_EQ(distbarrierGetLastBarrier(group_.c_str(), nullptr, nullptr, 0), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(distbarrierGetLastBarrier("nope", &info, nullptr, 0), ACL_ERROR_INVALID_PARAM);
  EXPECT_THAT(std::string(aclGetRecentErrMsg()), HasSubstr("'nope' is not a communicator known"));
  EXPECT_EQ(distbarrierGetLastBarrier(group_.c_str(), &info, arrivals, kRanks - 1), ACL_ERROR_INVALID_PARAM);
  EXPECT_THAT(std::string(aclGetRecentErrMsg()), HasSubstr("arrivalCapacity 15 is less than the group's 16 ranks"));
  EXPECT_EQ(distbarrierGetRankStats(group_.c_str(), nullptr, kRanks), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(distbarrierGetRankStats(group_.c_str(), stats, 2), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(distbarrierResetStats(nullptr), ACL_ERROR_INVALID_PARAM);
  EXPECT_EQ(distbarrierSetStatsEnabled(2), ACL_ERROR_INVALID_PARAM);
  std::vector<HcclComm> other = MakeGroup({8, 9});
  EXPECT_EQ(distbarrierResetStats(CommName(other[0]).c_str()), ACL_ERROR_INVALID_PARAM);  // device 0 not in it
  EXPECT_THAT(std::string(aclGetRecentErrMsg()), HasSubstr("holds no rank on the current device 0"));
  EXPECT_STREQ(distbarrierVersion(), "0.2.0");
}

}  // namespace
}  // namespace distbarrier::testing
