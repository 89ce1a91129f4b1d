// aclnnDistributeBarrierV2: surviving a lost card.
//
// 8 devices (threads) share one barrier group. Device 5 "dies" before the barrier: it never
// arrives. The other 7 run the barrier with a 200 ms timeout, see it fail with
// ACL_ERROR_RT_VECTOR_CORE_TIMEOUT and a message naming the missing rank, then run the
// barrier again on the same communicator in elastic mode (with a 10 s timeout), with an
// elasticInfo table that leaves rank 5 out, and pass.
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "acl/acl.h"
#include "aclnnop/aclnn_distribute_barrier_v2.h"
#include "hccl/hccl.h"

namespace {

constexpr int kWorldSize = 8;
constexpr int kLostRank = 5;
constexpr int32_t kTimeoutUs = 200 * 1000;
// The survivors leave the first barrier when their own timeout expires, up to one timeout plus
// their arrival spread apart (more on a loaded machine), so the elastic barrier that gathers
// them again waits longer.
constexpr int32_t kElasticTimeoutUs = 10 * 1000 * 1000;

std::mutex print_mutex;

#define CHECK_OK(call)                                                                                   \
    do {                                                                                                 \
        int ret_ = (call);                                                                               \
        if (ret_ != 0) {                                                                                 \
            std::lock_guard<std::mutex> lock_(print_mutex);                                              \
            std::printf("[ERROR] rank %d: %s failed, ret %d: %s\n", rank, #call, ret_, aclGetRecentErrMsg()); \
            return ret_;                                                                                 \
        }                                                                                                \
    } while (0)

// An int32 device tensor of `values`, 1-D.
struct DeviceInts {
    void *device = nullptr;
    aclTensor *tensor = nullptr;
};

int MakeDeviceInts(int rank, const std::vector<int32_t> &values, DeviceInts *out)
{
    size_t bytes = values.size() * sizeof(int32_t);
    CHECK_OK(aclrtMalloc(&out->device, bytes, ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_OK(aclrtMemcpy(out->device, bytes, values.data(), bytes, ACL_MEMCPY_HOST_TO_DEVICE));
    int64_t shape[1] = {static_cast<int64_t>(values.size())};
    int64_t stride[1] = {1};
    out->tensor = aclCreateTensor(shape, 1, ACL_INT32, stride, 0, ACL_FORMAT_ND, shape, 1, out->device);
    return 0;
}

void FreeDeviceInts(DeviceInts &ints)
{
    aclDestroyTensor(ints.tensor);
    aclrtFree(ints.device);
}

int RunBarrier(int rank, const char *group, const DeviceInts &xRef, const DeviceInts &timeout,
               const DeviceInts *elastic, aclrtStream stream)
{
    uint64_t workspaceSize = 0;
    aclOpExecutor *executor = nullptr;
    CHECK_OK(aclnnDistributeBarrierV2GetWorkspaceSize(xRef.tensor, timeout.tensor,
                                                      elastic ? elastic->tensor : nullptr, group, kWorldSize,
                                                      &workspaceSize, &executor));
    CHECK_OK(aclnnDistributeBarrierV2(nullptr, workspaceSize, executor, stream));
    return aclrtSynchronizeStream(stream);
}

int RankMain(int rank, HcclComm comm)
{
    CHECK_OK(aclrtSetDevice(rank));
    if (rank == kLostRank) {
        std::lock_guard<std::mutex> lock(print_mutex);
        std::printf("[INFO] rank %d: simulating a lost card, never reaching the barrier\n", rank);
        return 0;
    }
    char group[128] = {0};
    CHECK_OK(HcclGetCommName(comm, group));
    aclrtStream stream = nullptr;
    CHECK_OK(aclrtCreateStream(&stream));
    DeviceInts xRef, timeout;
    CHECK_OK(MakeDeviceInts(rank, {0, 0, 0, 0}, &xRef));
    CHECK_OK(MakeDeviceInts(rank, {kTimeoutUs}, &timeout));

    // 1. Everyone expected: times out, naming the missing rank.
    int ret = RunBarrier(rank, group, xRef, timeout, nullptr, stream);
    {
        std::lock_guard<std::mutex> lock(print_mutex);
        std::printf("[INFO] rank %d: barrier over all %d ranks returned %d%s\n       %s\n", rank, kWorldSize, ret,
                    ret == ACL_ERROR_RT_VECTOR_CORE_TIMEOUT ? " (ACL_ERROR_RT_VECTOR_CORE_TIMEOUT)" : "",
                    aclGetRecentErrMsg());
    }
    if (ret != ACL_ERROR_RT_VECTOR_CORE_TIMEOUT) return -1;
    // The failed stream stays failed until destroyed; continue on a fresh one.
    CHECK_OK(aclrtDestroyStream(stream));
    CHECK_OK(aclrtCreateStream(&stream));

    // 2. Elastic: [isElastic, rankNumAfter, sharedExpertRankNum, moeExpertNum,
    //              table1: epRank -> localRank or -1, table2: localRank -> epRank]
    std::vector<int32_t> info = {1, kWorldSize - 1, 0, 0};
    std::vector<int32_t> table2;
    for (int r = 0, local = 0; r < kWorldSize; ++r) {
        info.push_back(r == kLostRank ? -1 : local++);
        if (r != kLostRank) table2.push_back(r);
    }
    table2.push_back(-1);  // pad to worldSize entries
    info.insert(info.end(), table2.begin(), table2.end());
    DeviceInts elastic, elasticTimeout;
    CHECK_OK(MakeDeviceInts(rank, info, &elastic));
    CHECK_OK(MakeDeviceInts(rank, {kElasticTimeoutUs}, &elasticTimeout));
    ret = RunBarrier(rank, group, xRef, elasticTimeout, &elastic, stream);
    {
        std::lock_guard<std::mutex> lock(print_mutex);
        std::printf("[INFO] rank %d: elastic barrier over the %d survivors returned %d\n", rank, kWorldSize - 1,
                    ret);
    }
    FreeDeviceInts(elasticTimeout);
    FreeDeviceInts(elastic);
    FreeDeviceInts(timeout);
    FreeDeviceInts(xRef);
    CHECK_OK(aclrtDestroyStream(stream));
    return ret;
}

}  // namespace

int main()
{
    if (aclInit(nullptr) != ACL_SUCCESS) return 1;
    int32_t devices[kWorldSize];
    for (int i = 0; i < kWorldSize; ++i) devices[i] = i;
    HcclComm comms[kWorldSize];
    if (HcclCommInitAll(kWorldSize, devices, comms) != HCCL_SUCCESS) {
        std::printf("[ERROR] HcclCommInitAll failed: %s\n", aclGetRecentErrMsg());
        return 1;
    }
    std::vector<int> results(kWorldSize, -1);
    std::vector<std::thread> threads;
    for (int rank = 0; rank < kWorldSize; ++rank) {
        threads.emplace_back([&results, &comms, rank] { results[rank] = RankMain(rank, comms[rank]); });
    }
    for (auto &thread : threads) thread.join();
    int survivors_ok = 0;
    for (int rank = 0; rank < kWorldSize; ++rank) survivors_ok += (rank != kLostRank && results[rank] == 0);
    for (int rank = 0; rank < kWorldSize; ++rank) HcclCommDestroy(comms[rank]);
    aclFinalize();
    std::printf("\n%d/%d survivors detected the lost rank %d and passed the elastic barrier: %s\n", survivors_ok,
                kWorldSize - 1, kLostRank, survivors_ok == kWorldSize - 1 ? "SUCCESS" : "FAILURE");
    return survivors_ok == kWorldSize - 1 ? 0 : 1;
}
