// Three HCCL calls as a CANN developer writes them in one program, built with its own Makefile
// from nothing but what P/bin/setenv.bash exports (see the Makefile next to this file):
// one thread per device, one HcclRootInfo shared by every rank's HcclCommInitRootInfo, and on
// one stream per rank
//   1. HcclAllReduce (int32 SUM, out of place),
//   2. HcclBroadcast from the last rank (float, in place),
//   3. a ring of HcclSend/HcclRecv: rank r passes its block to rank r + 1,
// each checked on the host. Usage: ./hccl_collectives [devices (8)] [elements (65537)]
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "acl/acl.h"
#include "hccl/hccl.h"

#define ACL_OK_OR_RETURN(expr)                                                                               \
    do {                                                                                                     \
        const aclError ret_ = (expr);                                                                        \
        if (ret_ != ACL_SUCCESS) {                                                                           \
            std::printf("[ERROR] %s: %d (%s)\n", #expr, static_cast<int>(ret_), aclGetRecentErrMsg());        \
            return -1;                                                                                       \
        }                                                                                                    \
    } while (0)

#define HCCL_OK_OR_RETURN(expr)                                                                              \
    do {                                                                                                     \
        const HcclResult ret_ = (expr);                                                                      \
        if (ret_ != HCCL_SUCCESS) {                                                                          \
            std::printf("[ERROR] %s: %d (%s)\n", #expr, static_cast<int>(ret_), aclGetRecentErrMsg());        \
            return -1;                                                                                       \
        }                                                                                                    \
    } while (0)

namespace {

struct RankArgs {
    HcclRootInfo *rootInfo = nullptr;
    uint32_t rank = 0;
    uint32_t rankSize = 0;
    uint64_t elements = 0;
    int status = -1;
};

// The value rank `rank` contributes at index `i`: small integers, exact in int32 and float.
int32_t Contribution(uint32_t rank, uint64_t i) { return static_cast<int32_t>(rank * 3 + i % 11); }

int CheckAllReduce(const RankArgs &args, HcclComm comm, aclrtStream stream)
{
    const size_t bytes = args.elements * sizeof(int32_t);
    std::vector<int32_t> host(args.elements);
    for (uint64_t i = 0; i < args.elements; ++i) {
        host[i] = Contribution(args.rank, i);
    }
    void *input = nullptr;
    void *output = nullptr;
    ACL_OK_OR_RETURN(aclrtMalloc(&input, bytes, ACL_MEM_MALLOC_HUGE_FIRST));
    ACL_OK_OR_RETURN(aclrtMalloc(&output, bytes, ACL_MEM_MALLOC_HUGE_FIRST));
    ACL_OK_OR_RETURN(aclrtMemcpy(input, bytes, host.data(), bytes, ACL_MEMCPY_HOST_TO_DEVICE));
    HCCL_OK_OR_RETURN(HcclAllReduce(input, output, args.elements, HCCL_DATA_TYPE_INT32, HCCL_REDUCE_SUM, comm, stream));
    ACL_OK_OR_RETURN(aclrtSynchronizeStream(stream));
    ACL_OK_OR_RETURN(aclrtMemcpy(host.data(), bytes, output, bytes, ACL_MEMCPY_DEVICE_TO_HOST));
    for (uint64_t i = 0; i < args.elements; ++i) {
        int32_t expected = 0;
        for (uint32_t peer = 0; peer < args.rankSize; ++peer) {
            expected += Contribution(peer, i);
        }
        if (host[i] != expected) {
            std::printf("[ERROR] rank %u: HcclAllReduce element %llu is %d, expected %d\n", args.rank,
                        static_cast<unsigned long long>(i), host[i], expected);
            return -1;
        }
    }
    ACL_OK_OR_RETURN(aclrtFree(input));
    ACL_OK_OR_RETURN(aclrtFree(output));
    return 0;
}

int CheckBroadcast(const RankArgs &args, HcclComm comm, aclrtStream stream)
{
    const uint32_t root = args.rankSize - 1;
    const size_t bytes = args.elements * sizeof(float);
    std::vector<float> host(args.elements);
    for (uint64_t i = 0; i < args.elements; ++i) {
        host[i] = static_cast<float>(Contribution(args.rank, i));
    }
    void *buffer = nullptr;
    ACL_OK_OR_RETURN(aclrtMalloc(&buffer, bytes, ACL_MEM_MALLOC_HUGE_FIRST));
    ACL_OK_OR_RETURN(aclrtMemcpy(buffer, bytes, host.data(), bytes, ACL_MEMCPY_HOST_TO_DEVICE));
    HCCL_OK_OR_RETURN(HcclBroadcast(buffer, args.elements, HCCL_DATA_TYPE_FP32, root, comm, stream));
    ACL_OK_OR_RETURN(aclrtSynchronizeStream(stream));
    ACL_OK_OR_RETURN(aclrtMemcpy(host.data(), bytes, buffer, bytes, ACL_MEMCPY_DEVICE_TO_HOST));
    for (uint64_t i = 0; i < args.elements; ++i) {
        if (host[i] != static_cast<float>(Contribution(root, i))) {
            std::printf("[ERROR] rank %u: HcclBroadcast element %llu is %f, expected root %u's %d\n", args.rank,
                        static_cast<unsigned long long>(i), host[i], root, Contribution(root, i));
            return -1;
        }
    }
    ACL_OK_OR_RETURN(aclrtFree(buffer));
    return 0;
}

// A send completes when its receiver has taken the data, so a ring must not wait in a circle:
// even ranks send first, odd ranks receive first. With an odd rank count the last rank (even)
// sends to rank 0, which first finishes its own send to rank 1 (odd, receiving first).
int CheckSendRecvRing(const RankArgs &args, HcclComm comm, aclrtStream stream)
{
    const uint32_t next = (args.rank + 1) % args.rankSize;
    const uint32_t previous = (args.rank + args.rankSize - 1) % args.rankSize;
    const size_t bytes = args.elements * sizeof(int32_t);
    std::vector<int32_t> host(args.elements);
    for (uint64_t i = 0; i < args.elements; ++i) {
        host[i] = Contribution(args.rank, i);
    }
    void *sendBuf = nullptr;
    void *recvBuf = nullptr;
    ACL_OK_OR_RETURN(aclrtMalloc(&sendBuf, bytes, ACL_MEM_MALLOC_HUGE_FIRST));
    ACL_OK_OR_RETURN(aclrtMalloc(&recvBuf, bytes, ACL_MEM_MALLOC_HUGE_FIRST));
    ACL_OK_OR_RETURN(aclrtMemcpy(sendBuf, bytes, host.data(), bytes, ACL_MEMCPY_HOST_TO_DEVICE));
    if (args.rank % 2 == 0) {
        HCCL_OK_OR_RETURN(HcclSend(sendBuf, args.elements, HCCL_DATA_TYPE_INT32, next, comm, stream));
        HCCL_OK_OR_RETURN(HcclRecv(recvBuf, args.elements, HCCL_DATA_TYPE_INT32, previous, comm, stream));
    } else {
        HCCL_OK_OR_RETURN(HcclRecv(recvBuf, args.elements, HCCL_DATA_TYPE_INT32, previous, comm, stream));
        HCCL_OK_OR_RETURN(HcclSend(sendBuf, args.elements, HCCL_DATA_TYPE_INT32, next, comm, stream));
    }
    ACL_OK_OR_RETURN(aclrtSynchronizeStream(stream));
    ACL_OK_OR_RETURN(aclrtMemcpy(host.data(), bytes, recvBuf, bytes, ACL_MEMCPY_DEVICE_TO_HOST));
    for (uint64_t i = 0; i < args.elements; ++i) {
        if (host[i] != Contribution(previous, i)) {
            std::printf("[ERROR] rank %u: HcclRecv element %llu is %d, expected rank %u's %d\n", args.rank,
                        static_cast<unsigned long long>(i), host[i], previous, Contribution(previous, i));
            return -1;
        }
    }
    ACL_OK_OR_RETURN(aclrtFree(sendBuf));
    ACL_OK_OR_RETURN(aclrtFree(recvBuf));
    return 0;
}

int RunRank(RankArgs *args)
{
    ACL_OK_OR_RETURN(aclrtSetDevice(static_cast<int32_t>(args->rank)));
    HcclComm comm = nullptr;
    HCCL_OK_OR_RETURN(HcclCommInitRootInfo(args->rankSize, args->rootInfo, args->rank, &comm));
    uint32_t rankId = 0;
    uint32_t rankSize = 0;
    HCCL_OK_OR_RETURN(HcclGetRankId(comm, &rankId));
    HCCL_OK_OR_RETURN(HcclGetRankSize(comm, &rankSize));
    if (rankId != args->rank || rankSize != args->rankSize) {
        std::printf("[ERROR] rank %u of %u: the communicator says rank %u of %u\n", args->rank, args->rankSize,
                    rankId, rankSize);
        return -1;
    }
    aclrtStream stream = nullptr;
    ACL_OK_OR_RETURN(aclrtCreateStream(&stream));
    if (CheckAllReduce(*args, comm, stream) != 0 || CheckBroadcast(*args, comm, stream) != 0 ||
        CheckSendRecvRing(*args, comm, stream) != 0) {
        return -1;
    }
    ACL_OK_OR_RETURN(aclrtDestroyStream(stream));
    HCCL_OK_OR_RETURN(HcclCommDestroy(comm));
    ACL_OK_OR_RETURN(aclrtResetDevice(static_cast<int32_t>(args->rank)));
    return 0;
}

}  // namespace

int main(int argc, char **argv)
{
    const uint32_t wanted = argc > 1 ? static_cast<uint32_t>(std::strtoul(argv[1], nullptr, 10)) : 8;
    const uint64_t elements = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 65537;
    ACL_OK_OR_RETURN(aclInit(nullptr));
    uint32_t deviceCount = 0;
    ACL_OK_OR_RETURN(aclrtGetDeviceCount(&deviceCount));
    if (wanted < 2 || wanted > deviceCount) {
        std::printf("[ERROR] asked for %u devices; between 2 and %u are available\n", wanted, deviceCount);
        return 1;
    }
    ACL_OK_OR_RETURN(aclrtSetDevice(0));
    HcclRootInfo rootInfo;
    HCCL_OK_OR_RETURN(HcclGetRootInfo(&rootInfo));

    std::vector<RankArgs> ranks(wanted);
    std::vector<std::thread> threads;
    for (uint32_t rank = 0; rank < wanted; ++rank) {
        ranks[rank].rootInfo = &rootInfo;
        ranks[rank].rank = rank;
        ranks[rank].rankSize = wanted;
        ranks[rank].elements = elements;
        threads.emplace_back([&ranks, rank] { ranks[rank].status = RunRank(&ranks[rank]); });
    }
    uint32_t passed = 0;
    for (uint32_t rank = 0; rank < wanted; ++rank) {
        threads[rank].join();
        passed += ranks[rank].status == 0 ? 1 : 0;
    }
    std::printf("%u/%u ranks: HcclAllReduce, HcclBroadcast and a HcclSend/HcclRecv ring of %llu elements match the host\n",
                passed, wanted, static_cast<unsigned long long>(elements));
    ACL_OK_OR_RETURN(aclrtResetDevice(0));
    ACL_OK_OR_RETURN(aclFinalize());
    return passed == wanted ? 0 : 1;
}
