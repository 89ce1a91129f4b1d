// HCCL communicators through hccl/hccl.h: HcclCommInitAll, ranks, names, misuse, error strings
// and HcclBarrier with one thread per rank.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "hccl/hccl.h"
#include "test_support.h"

namespace distbarrier::testing {
namespace {

using HcclTest = RuntimeTest;

TEST_F(HcclTest, InitAllGivesRanksInDeviceOrder) {
  std::vector<HcclComm> comms = MakeGroup(FirstDevices(8));
  ASSERT_EQ(comms.size(), 8u);
  for (uint32_t i = 0; i < comms.size(); ++i) {
    ASSERT_NE(comms[i], nullptr);
    uint32_t rank = 99;
    uint32_t size = 0;
    ASSERT_EQ(HcclGetRankId(comms[i], &rank), HCCL_SUCCESS);
    ASSERT_EQ(HcclGetRankSize(comms[i], &size), HCCL_SUCCESS);
    EXPECT_EQ(rank, i);
    EXPECT_EQ(size, 8u);
  }
  std::set<HcclComm> distinct(comms.begin(), comms.end());
  EXPECT_EQ(distinct.size(), comms.size());
  for (HcclComm comm : comms) EXPECT_EQ(HcclCommDestroy(comm), HCCL_SUCCESS);
}

TEST_F(HcclTest, RanksFollowTheDevicesArrayNotTheDeviceIds) {
  std::vector<int32_t> devices = {5, 2, 9};
  std::vector<HcclComm> comms = MakeGroup(devices);
  ASSERT_EQ(comms.size(), 3u);
  for (uint32_t i = 0; i < comms.size(); ++i) {
    uint32_t rank = 99;
    ASSERT_EQ(HcclGetRankId(comms[i], &rank), HCCL_SUCCESS);
    EXPECT_EQ(rank, i);
  }
}

TEST_F(HcclTest, AllRanksShareOneNameAndGroupsHaveDistinctNames) {
  std::vector<HcclComm> first = MakeGroup(FirstDevices(8));
  std::vector<HcclComm> second = MakeGroup(FirstDevices(8));
  ASSERT_EQ(first.size(), 8u);
  ASSERT_EQ(second.size(), 8u);
  const std::string first_name = CommName(first[0]);
  const std::string second_name = CommName(second[0]);
  EXPECT_FALSE(first_name.empty());
  EXPECT_FALSE(second_name.empty());
  EXPECT_LT(first_name.size(), static_cast<size_t>(COMM_NAME_MAX_LENGTH));
  EXPECT_LT(second_name.size(), static_cast<size_t>(COMM_NAME_MAX_LENGTH));
  for (HcclComm comm : first) EXPECT_EQ(CommName(comm), first_name);
  for (HcclComm comm : second) EXPECT_EQ(CommName(comm), second_name);
  EXPECT_NE(first_name, second_name);
}

TEST_F(HcclTest, CommNameFitsTheBuffer) {
  std::vector<HcclComm> comms = MakeGroup(FirstDevices(2));
  ASSERT_EQ(comms.size(), 2u);
  std::array<char, COMM_NAME_MAX_LENGTH + 16> name;
  name.fill('\x7f');
  ASSERT_EQ(HcclGetCommName(comms[0], name.data()), HCCL_SUCCESS);
  const size_t length = strnlen(name.data(), name.size());
  EXPECT_GT(length, 0u);
  EXPECT_LT(length, static_cast<size_t>(COMM_NAME_MAX_LENGTH));
  for (size_t i = COMM_NAME_MAX_LENGTH; i < name.size(); ++i) EXPECT_EQ(name[i], '\x7f') << "wrote past the buffer";
}

TEST_F(HcclTest, NullPointersArePtrErrors) {
  std::vector<int32_t> devices = FirstDevices(2);
  std::vector<HcclComm> comms(2, nullptr);
  EXPECT_EQ(HcclCommInitAll(2, nullptr, comms.data()), HCCL_E_PTR);
  EXPECT_EQ(HcclCommInitAll(2, devices.data(), nullptr), HCCL_E_PTR);

  comms = MakeGroup(devices);
  ASSERT_EQ(comms.size(), 2u);
  uint32_t value = 0;
  char name[COMM_NAME_MAX_LENGTH] = {0};
  EXPECT_EQ(HcclGetRankId(comms[0], nullptr), HCCL_E_PTR);
  EXPECT_EQ(HcclGetRankSize(comms[0], nullptr), HCCL_E_PTR);
  EXPECT_EQ(HcclGetCommName(comms[0], nullptr), HCCL_E_PTR);
  EXPECT_EQ(HcclGetRankId(nullptr, &value), HCCL_E_PTR);
  EXPECT_EQ(HcclGetRankSize(nullptr, &value), HCCL_E_PTR);
  EXPECT_EQ(HcclGetCommName(nullptr, name), HCCL_E_PTR);
  EXPECT_EQ(HcclCommDestroy(nullptr), HCCL_E_PTR);
  EXPECT_EQ(HcclBarrier(nullptr, nullptr), HCCL_E_PTR);
  EXPECT_NE(std::string(aclGetRecentErrMsg()), "");
}

TEST_F(HcclTest, DuplicateDevicesAreParaErrors) {
  std::vector<int32_t> devices = {0, 1, 0};
  std::vector<HcclComm> comms(devices.size(), nullptr);
  EXPECT_EQ(HcclCommInitAll(static_cast<uint32_t>(devices.size()), devices.data(), comms.data()), HCCL_E_PARA);
  for (HcclComm comm : comms) EXPECT_EQ(comm, nullptr);
}

TEST_F(HcclTest, OutOfRangeDevicesAreParaErrors) {
  std::vector<HcclComm> comms(2, nullptr);
  std::vector<int32_t> too_high = {0, 16};
  EXPECT_EQ(HcclCommInitAll(2, too_high.data(), comms.data()), HCCL_E_PARA);
  std::vector<int32_t> negative = {-1, 0};
  EXPECT_EQ(HcclCommInitAll(2, negative.data(), comms.data()), HCCL_E_PARA);
  // More ranks than devices.
  std::vector<int32_t> many = FirstDevices(17);
  std::vector<HcclComm> many_comms(17, nullptr);
  EXPECT_EQ(HcclCommInitAll(17, many.data(), many_comms.data()), HCCL_E_PARA);
}

TEST_F(HcclTest, ZeroDevicesIsParaError) {
  std::vector<int32_t> devices = {0};
  std::vector<HcclComm> comms(1, nullptr);
  EXPECT_EQ(HcclCommInitAll(0, devices.data(), comms.data()), HCCL_E_PARA);
  EXPECT_EQ(comms[0], nullptr);
}

TEST_F(HcclTest, SixteenDevicesIsTheMaximum) {
  std::vector<HcclComm> comms = MakeGroup(FirstDevices(16));
  ASSERT_EQ(comms.size(), 16u);
  uint32_t size = 0;
  ASSERT_EQ(HcclGetRankSize(comms[15], &size), HCCL_SUCCESS);
  EXPECT_EQ(size, 16u);
}

TEST_F(HcclTest, DestroyTwiceIsParaError) {
  std::vector<HcclComm> comms = MakeGroup(FirstDevices(2));
  ASSERT_EQ(comms.size(), 2u);
  EXPECT_EQ(HcclCommDestroy(comms[0]), HCCL_SUCCESS);
  EXPECT_EQ(HcclCommDestroy(comms[0]), HCCL_E_PARA);
  EXPECT_EQ(HcclCommDestroy(reinterpret_cast<HcclComm>(0x1234)), HCCL_E_PARA);
  // The other rank is untouched.
  uint32_t rank = 99;
  ASSERT_EQ(HcclGetRankId(comms[1], &rank), HCCL_SUCCESS);
  EXPECT_EQ(rank, 1u);
  EXPECT_EQ(HcclCommDestroy(comms[1]), HCCL_SUCCESS);
}

TEST_F(HcclTest, UsingADestroyedCommIsParaError) {
  std::vector<HcclComm> comms = MakeGroup(FirstDevices(2));
  ASSERT_EQ(comms.size(), 2u);
  ASSERT_EQ(HcclCommDestroy(comms[0]), HCCL_SUCCESS);
  uint32_t value = 0;
  char name[COMM_NAME_MAX_LENGTH] = {0};
  EXPECT_EQ(HcclGetRankId(comms[0], &value), HCCL_E_PARA);
  EXPECT_EQ(HcclGetRankSize(comms[0], &value), HCCL_E_PARA);
  EXPECT_EQ(HcclGetCommName(comms[0], name), HCCL_E_PARA);
  ASSERT_EQ(aclrtSetDevice(0), ACL_SUCCESS);
  aclrtStream stream = nullptr;
  ASSERT_EQ(aclrtCreateStream(&stream), ACL_SUCCESS);
  EXPECT_EQ(HcclBarrier(comms[0], stream), HCCL_E_PARA);
  EXPECT_EQ(aclrtSynchronizeStream(stream), ACL_SUCCESS);  // nothing was enqueued
}

TEST_F(HcclTest, GarbageCommIsParaError) {
  uint32_t value = 0;
  EXPECT_EQ(HcclGetRankId(reinterpret_cast<HcclComm>(0x1234), &value), HCCL_E_PARA);
  // A stream handle is not a communicator.
  ASSERT_EQ(aclrtSetDevice(0), ACL_SUCCESS);
  aclrtStream stream = nullptr;
  ASSERT_EQ(aclrtCreateStream(&stream), ACL_SUCCESS);
  EXPECT_EQ(HcclGetRankId(static_cast<HcclComm>(stream), &value), HCCL_E_PARA);
}

TEST_F(HcclTest, ErrorStringsAreNonEmpty) {
  std::set<std::string> strings;
  for (int code = 0; code <= 21; ++code) {
    const char* text = HcclGetErrorString(static_cast<HcclResult>(code));
    ASSERT_NE(text, nullptr) << "code " << code;
    EXPECT_GT(std::strlen(text), 0u) << "code " << code;
    strings.insert(text);
  }
  EXPECT_EQ(strings.size(), 22u) << "two codes share a message";
  for (int code : {22, 100, -1, 12345}) {
    const char* text = HcclGetErrorString(static_cast<HcclResult>(code));
    ASSERT_NE(text, nullptr) << "code " << code;
    EXPECT_GT(std::strlen(text), 0u) << "code " << code;
  }
  EXPECT_EQ(std::string(HcclGetErrorString(HCCL_SUCCESS)), "success");
}

TEST_F(HcclTest, BarrierOnAllRanksSucceeds) {
  constexpr int kRanks = 8;
  std::vector<HcclComm> comms = MakeGroup(FirstDevices(kRanks));
  ASSERT_EQ(comms.size(), static_cast<size_t>(kRanks));
  std::vector<int> barrier_results(kRanks, -1);
  std::vector<int> sync_results(kRanks, -1);
  RunRanks(kRanks, [&](int rank) {
    aclrtStream stream = nullptr;
    ASSERT_EQ(aclrtCreateStream(&stream), ACL_SUCCESS) << aclGetRecentErrMsg();
    barrier_results[rank] = HcclBarrier(comms[rank], stream);
    sync_results[rank] = aclrtSynchronizeStream(stream);
    EXPECT_EQ(aclrtDestroyStream(stream), ACL_SUCCESS);
  });
  for (int rank = 0; rank < kRanks; ++rank) {
    EXPECT_EQ(barrier_results[rank], HCCL_SUCCESS) << "rank " << rank;
    EXPECT_EQ(sync_results[rank], ACL_SUCCESS) << "rank " << rank;
  }
}

TEST_F(HcclTest, RepeatedBarriersAreOrderedPerRank) {
  // Every rank enqueues several barriers and a counter after each; when a rank's stream has
  // passed barrier k, every rank has at least reached barrier k, so each rank has counted at
  // least k before it (its own counter runs after barrier k-1 has released everyone).
  constexpr int kRanks = 4;
  constexpr int kRounds = 5;
  std::vector<HcclComm> comms = MakeGroup(FirstDevices(kRanks));
  ASSERT_EQ(comms.size(), static_cast<size_t>(kRanks));
  static std::array<std::atomic<int>, kRanks> arrived;
  for (auto& counter : arrived) counter.store(0);
  struct Check {
    int round;
    std::atomic<bool>* ok;
  };
  static std::atomic<bool> ordered;
  ordered.store(true);
  std::vector<int> failures(kRanks, 0);
  RunRanks(kRanks, [&](int rank) {
    aclrtStream stream = nullptr;
    ASSERT_EQ(aclrtCreateStream(&stream), ACL_SUCCESS);
    std::vector<Check> checks;
    checks.reserve(kRounds);
    for (int round = 0; round < kRounds; ++round) checks.push_back({round, &ordered});
    for (int round = 0; round < kRounds; ++round) {
      // Count this rank's arrival at round `round`, then barrier.
      ASSERT_EQ(aclrtLaunchHostFunc(
                    stream, [](void* arg) { arrived[static_cast<size_t>(reinterpret_cast<intptr_t>(arg))]++; },
                    reinterpret_cast<void*>(static_cast<intptr_t>(rank))),
                ACL_SUCCESS);
      if (HcclBarrier(comms[rank], stream) != HCCL_SUCCESS) ++failures[rank];
      // After barrier `round` every rank has counted round+1 arrivals.
      ASSERT_EQ(aclrtLaunchHostFunc(
                    stream,
                    [](void* arg) {
                      auto* check = static_cast<Check*>(arg);
                      for (auto& counter : arrived) {
                        if (counter.load() < check->round + 1) check->ok->store(false);
                      }
                    },
                    &checks[round]),
                ACL_SUCCESS);
    }
    if (aclrtSynchronizeStream(stream) != ACL_SUCCESS) ++failures[rank];
  });
  for (int rank = 0; rank < kRanks; ++rank) EXPECT_EQ(failures[rank], 0) << "rank " << rank;
  EXPECT_TRUE(ordered.load()) << "a rank left a barrier before every rank had arrived";
  for (auto& counter : arrived) EXPECT_EQ(counter.load(), kRounds);
}

TEST_F(HcclTest, BarrierOnDefaultStream) {
  constexpr int kRanks = 2;
  std::vector<HcclComm> comms = MakeGroup(FirstDevices(kRanks));
  ASSERT_EQ(comms.size(), static_cast<size_t>(kRanks));
  std::vector<int> results(kRanks, -1);
  std::vector<int> syncs(kRanks, -1);
  RunRanks(kRanks, [&](int rank) {
    results[rank] = HcclBarrier(comms[rank], nullptr);
    syncs[rank] = aclrtSynchronizeStream(nullptr);
  });
  for (int rank = 0; rank < kRanks; ++rank) {
    EXPECT_EQ(results[rank], HCCL_SUCCESS);
    EXPECT_EQ(syncs[rank], ACL_SUCCESS);
  }
}

TEST_F(HcclTest, BarrierWithStreamOfAnotherDeviceIsParaError) {
  std::vector<HcclComm> comms = MakeGroup(FirstDevices(2));
  ASSERT_EQ(comms.size(), 2u);
  ASSERT_EQ(aclrtSetDevice(1), ACL_SUCCESS);
  aclrtStream device1_stream = nullptr;
  ASSERT_EQ(aclrtCreateStream(&device1_stream), ACL_SUCCESS);
  ASSERT_EQ(aclrtSetDevice(0), ACL_SUCCESS);
  // Rank 0 lives on device 0; the stream is device 1's.
  EXPECT_EQ(HcclBarrier(comms[0], device1_stream), HCCL_E_PARA);
  EXPECT_NE(std::string(aclGetRecentErrMsg()), "");
  // The null stream of the current device (0) is also wrong for rank 1 (device 1).
  EXPECT_EQ(HcclBarrier(comms[1], nullptr), HCCL_E_PARA);
  EXPECT_EQ(aclrtSynchronizeStream(device1_stream), ACL_SUCCESS);  // nothing was enqueued
}

TEST_F(HcclTest, BarrierWithBadStreamIsParaError) {
  std::vector<HcclComm> comms = MakeGroup(FirstDevices(2));
  ASSERT_EQ(comms.size(), 2u);
  ASSERT_EQ(aclrtSetDevice(0), ACL_SUCCESS);
  aclrtStream stream = nullptr;
  ASSERT_EQ(aclrtCreateStream(&stream), ACL_SUCCESS);
  ASSERT_EQ(aclrtDestroyStream(stream), ACL_SUCCESS);
  EXPECT_EQ(HcclBarrier(comms[0], stream), HCCL_E_PARA);
  EXPECT_EQ(HcclBarrier(comms[0], reinterpret_cast<aclrtStream>(0x1234)), HCCL_E_PARA);
}

TEST_F(HcclTest, BarrierWithNullStreamAndNoContextIsParaError) {
  std::vector<HcclComm> comms = MakeGroup(FirstDevices(2));
  ASSERT_EQ(comms.size(), 2u);
  EXPECT_EQ(HcclBarrier(comms[0], nullptr), HCCL_E_PARA);
}

TEST_F(HcclTest, RootInfoArgumentChecks) {
  HcclRootInfo info;
  EXPECT_EQ(sizeof(info), static_cast<size_t>(HCCL_ROOT_INFO_BYTES));
  EXPECT_EQ(HcclGetRootInfo(nullptr), HCCL_E_PTR);
  HcclComm comm = nullptr;
  EXPECT_EQ(HcclCommInitRootInfo(1, nullptr, 0, &comm), HCCL_E_PTR);
  ASSERT_EQ(HcclGetRootInfo(&info), HCCL_SUCCESS) << aclGetRecentErrMsg();
  EXPECT_EQ(HcclCommInitRootInfo(1, &info, 0, nullptr), HCCL_E_PTR);
  // No current device: the communicator would belong to none.
  EXPECT_EQ(HcclCommInitRootInfo(1, &info, 0, &comm), HCCL_E_PARA);
  ASSERT_EQ(aclrtSetDevice(0), ACL_SUCCESS);
  // A single-rank group needs nobody else.
  EXPECT_EQ(HcclCommInitRootInfo(1, &info, 0, &comm), HCCL_SUCCESS) << aclGetRecentErrMsg();
  uint32_t size = 0;
  EXPECT_EQ(HcclGetRankSize(comm, &size), HCCL_SUCCESS);
  EXPECT_EQ(size, 1u);
  // The listener of a root info serves one group only.
  HcclComm again = nullptr;
  EXPECT_EQ(HcclCommInitRootInfo(1, &info, 0, &again), HCCL_E_PARA);
  EXPECT_EQ(HcclCommDestroy(comm), HCCL_SUCCESS);
}

TEST_F(HcclTest, FinalizeForgetsCommunicators) {
  std::vector<HcclComm> comms = MakeGroup(FirstDevices(2));
  ASSERT_EQ(comms.size(), 2u);
  ASSERT_EQ(aclFinalize(), ACL_SUCCESS);
  uint32_t rank = 99;
  EXPECT_EQ(HcclGetRankId(comms[0], &rank), HCCL_E_PARA);
  EXPECT_EQ(HcclCommDestroy(comms[1]), HCCL_E_PARA);
  // A new group works after aclFinalize.
  std::vector<HcclComm> again = MakeGroup(FirstDevices(2));
  ASSERT_EQ(again.size(), 2u);
  ASSERT_EQ(HcclGetRankId(again[1], &rank), HCCL_SUCCESS);
  EXPECT_EQ(rank, 1u);
}

}  // namespace
}  // namespace distbarrier::testing
