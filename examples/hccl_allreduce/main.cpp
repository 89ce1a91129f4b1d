// An HCCL AllReduce program written the way CANN's HCCL examples are: one thread per device,
// aclrtSetDevice, one HcclRootInfo shared by every rank's HcclCommInitRootInfo, device
// buffers from aclrtMalloc, HcclAllReduce on a stream, aclrtSynchronizeStream, and a check of
// the result on the host. It is plain C++14 and links with -lascendcl -lhccl:
//   g++ -std=c++14 -Wall -Wextra -Werror main.cpp -I$ASCEND_HOME_PATH/include
//       -L$ASCEND_HOME_PATH/lib64 -lascendcl -lhccl -lpthread -o hccl_allreduce
//   ./hccl_allreduce [devices (8)] [floats per device (1048576)]
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "acl/acl.h"
#include "hccl/hccl.h"

#define ACLCHECK(expr)                                                                                         \
    do {                                                                                                       \
        aclError ret_ = (expr);                                                                                \
        if (ret_ != ACL_SUCCESS) {                                                                             \
            std::printf("%s failed: %d (%s)\n", #expr, static_cast<int>(ret_), aclGetRecentErrMsg());         \
            return -1;                                                                                         \
        }                                                                                                      \
    } while (0)

#define HCCLCHECK(expr)                                                                                        \
    do {                                                                                                       \
        HcclResult ret_ = (expr);                                                                              \
        if (ret_ != HCCL_SUCCESS) {                                                                            \
            std::printf("%s failed: %d (%s)\n", #expr, static_cast<int>(ret_), aclGetRecentErrMsg());         \
            return -1;                                                                                         \
        }                                                                                                      \
    } while (0)

struct ThreadContext {
    HcclRootInfo *rootInfo;
    uint32_t device;
    uint32_t devCount;
    uint64_t count;
    int result;
};

static int RunRank(ThreadContext *ctx)
{
    ACLCHECK(aclrtSetDevice(static_cast<int32_t>(ctx->device)));
    HcclComm comm = nullptr;
    HCCLCHECK(HcclCommInitRootInfo(ctx->devCount, ctx->rootInfo, ctx->device, &comm));
    aclrtStream stream = nullptr;
    ACLCHECK(aclrtCreateStream(&stream));

    const size_t size = ctx->count * sizeof(float);
    std::vector<float> host(ctx->count);
    for (uint64_t i = 0; i < ctx->count; ++i) {
        host[i] = static_cast<float>(ctx->device + 1) + static_cast<float>(i % 7);
    }
    void *sendBuf = nullptr;
    void *recvBuf = nullptr;
    ACLCHECK(aclrtMalloc(&sendBuf, size, ACL_MEM_MALLOC_HUGE_FIRST));
    ACLCHECK(aclrtMalloc(&recvBuf, size, ACL_MEM_MALLOC_HUGE_FIRST));
    ACLCHECK(aclrtMemcpy(sendBuf, size, host.data(), size, ACL_MEMCPY_HOST_TO_DEVICE));

    HCCLCHECK(HcclAllReduce(sendBuf, recvBuf, ctx->count, HCCL_DATA_TYPE_FP32, HCCL_REDUCE_SUM, comm, stream));
    ACLCHECK(aclrtSynchronizeStream(stream));

    ACLCHECK(aclrtMemcpy(host.data(), size, recvBuf, size, ACL_MEMCPY_DEVICE_TO_HOST));
    // Sum over devices d of (d + 1 + i % 7): small integers, exact in float.
    const float ranksSum = static_cast<float>(ctx->devCount) * static_cast<float>(ctx->devCount + 1) / 2.0f;
    for (uint64_t i = 0; i < ctx->count; ++i) {
        const float expected = ranksSum + static_cast<float>(ctx->devCount) * static_cast<float>(i % 7);
        if (host[i] != expected) {
            std::printf("device %u: element %llu is %f, expected %f\n", ctx->device,
                        static_cast<unsigned long long>(i), host[i], expected);
            return -1;
        }
    }
    ACLCHECK(aclrtFree(sendBuf));
    ACLCHECK(aclrtFree(recvBuf));
    ACLCHECK(aclrtDestroyStream(stream));
    HCCLCHECK(HcclCommDestroy(comm));
    ACLCHECK(aclrtResetDevice(static_cast<int32_t>(ctx->device)));
    return 0;
}

int main(int argc, char **argv)
{
    const uint32_t devCount = argc > 1 ? static_cast<uint32_t>(std::atoi(argv[1])) : 8;
    const uint64_t count = argc > 2 ? static_cast<uint64_t>(std::atoll(argv[2])) : 1048576;
    ACLCHECK(aclInit(nullptr));
    ACLCHECK(aclrtSetDevice(0));
    HcclRootInfo rootInfo;
    HCCLCHECK(HcclGetRootInfo(&rootInfo));

    std::vector<ThreadContext> contexts(devCount);
    std::vector<std::thread> threads;
    for (uint32_t device = 0; device < devCount; ++device) {
        contexts[device] = ThreadContext{&rootInfo, device, devCount, count, -1};
        threads.emplace_back([&contexts, device] { contexts[device].result = RunRank(&contexts[device]); });
    }
    uint32_t passed = 0;
    for (uint32_t device = 0; device < devCount; ++device) {
        threads[device].join();
        passed += contexts[device].result == 0 ? 1 : 0;
    }
    std::printf("%u/%u devices: HcclAllReduce of %llu floats matches the host sum\n", passed, devCount,
                static_cast<unsigned long long>(count));
    aclFinalize();
    return passed == devCount ? 0 : 1;
}
