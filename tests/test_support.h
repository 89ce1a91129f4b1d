// Shared helpers for the tests: a clean runtime per test, device tensors, groups, and one
// thread per rank.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "acl/acl.h"
#include "aclnnop/aclnn_distribute_barrier.h"
#include "aclnnop/aclnn_distribute_barrier_v2.h"
#include "hccl/hccl.h"

namespace distbarrier::testing {

// Each test starts and ends with a runtime holding nothing.
class RuntimeTest : public ::testing::Test {
 protected:
  void TearDown() override { aclFinalize(); }
};

#define ASSERT_ACL_OK(call) ASSERT_EQ((call), 0) << #call << ": " << aclGetRecentErrMsg()
#define EXPECT_ACL_OK(call) EXPECT_EQ((call), 0) << #call << ": " << aclGetRecentErrMsg()

// A new stream of the calling thread's current context.
inline aclrtStream NewStream() {
  aclrtStream stream = nullptr;
  EXPECT_EQ(aclrtCreateStream(&stream), 0) << aclGetRecentErrMsg();
  return stream;
}

// A tensor over device memory of the current device (call aclrtSetDevice first).
struct DeviceTensor {
  void* data = nullptr;
  aclTensor* tensor = nullptr;
};

inline DeviceTensor MakeTensor(aclDataType dtype, std::vector<int64_t> shape, aclFormat format = ACL_FORMAT_ND,
                               const void* init = nullptr) {
  DeviceTensor result;
  int64_t elements = 1;
  for (int64_t dim : shape) elements *= dim;
  size_t bytes = static_cast<size_t>(elements > 0 ? elements : 1) * std::max<size_t>(aclDataTypeSize(dtype), 1);
  EXPECT_EQ(aclrtMalloc(&result.data, bytes, ACL_MEM_MALLOC_HUGE_FIRST), 0) << aclGetRecentErrMsg();
  if (init != nullptr) {
    EXPECT_EQ(aclrtMemcpy(result.data, bytes, init, bytes, ACL_MEMCPY_HOST_TO_DEVICE), 0);
  }
  std::vector<int64_t> strides(shape.size(), 1);
  for (int i = static_cast<int>(shape.size()) - 2; i >= 0; --i) strides[i] = strides[i + 1] * shape[i + 1];
  result.tensor = aclCreateTensor(shape.data(), shape.size(), dtype, strides.data(), 0, format, shape.data(),
                                  shape.size(), result.data);
  return result;
}

inline DeviceTensor MakeInt32Tensor(const std::vector<int32_t>& values) {
  return MakeTensor(ACL_INT32, {static_cast<int64_t>(values.size())}, ACL_FORMAT_ND, values.data());
}

// One communicator over devices; comms[i] is rank i.
inline std::vector<HcclComm> MakeGroup(std::vector<int32_t> devices) {
  std::vector<HcclComm> comms(devices.size());
  EXPECT_EQ(HcclCommInitAll(static_cast<uint32_t>(devices.size()), devices.data(), comms.data()), HCCL_SUCCESS)
      << aclGetRecentErrMsg();
  return comms;
}

inline std::vector<int32_t> FirstDevices(int n) {
  std::vector<int32_t> devices(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) devices[i] = i;
  return devices;
}

inline std::string CommName(HcclComm comm) {
  char name[COMM_NAME_MAX_LENGTH] = {0};
  EXPECT_EQ(HcclGetCommName(comm, name), HCCL_SUCCESS);
  return name;
}

// Runs body(rank) on one thread per rank, each with aclrtSetDevice(rank) done.
inline void RunRanks(int ranks, const std::function<void(int rank)>& body) {
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(ranks));
  for (int rank = 0; rank < ranks; ++rank) {
    threads.emplace_back([rank, &body] {
      ASSERT_EQ(aclrtSetDevice(rank), 0) << aclGetRecentErrMsg();
      body(rank);
    });
  }
  for (auto& thread : threads) thread.join();
}

// Stage 1 + stage 2 of V1 on `stream`; returns the first non-zero status.
inline int EnqueueBarrier(aclTensor* x_ref, const std::string& group, int64_t world_size, aclrtStream stream) {
  uint64_t workspace_size = 0;
  aclOpExecutor* executor = nullptr;
  int status = aclnnDistributeBarrierGetWorkspaceSize(x_ref, group.c_str(), world_size, &workspace_size, &executor);
  if (status != 0) return status;
  return aclnnDistributeBarrier(nullptr, workspace_size, executor, stream);
}

inline int EnqueueBarrierV2(aclTensor* x_ref, aclTensor* timeout, aclTensor* elastic, const std::string& group,
                            int64_t world_size, aclrtStream stream) {
  uint64_t workspace_size = 0;
  aclOpExecutor* executor = nullptr;
  int status = aclnnDistributeBarrierV2GetWorkspaceSize(x_ref, timeout, elastic, group.c_str(), world_size,
                                                        &workspace_size, &executor);
  if (status != 0) return status;
  return aclnnDistributeBarrierV2(nullptr, workspace_size, executor, stream);
}

}  // namespace distbarrier::testing
