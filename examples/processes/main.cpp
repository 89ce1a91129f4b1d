// One process per rank, started by the launcher:
//
//   distbarrier-run -n 8 ./process_barrier [barriers=1000]
//   distbarrier-run --rank-table rank_table.json [--node-rank K] ./process_barrier [barriers]
//
// Rank 0 makes the root info (HcclGetRootInfo) and hands its 4108 bytes to the launcher,
// which relays them to the other ranks (see tools/distbarrier_run/README.md); every rank then
// joins with HcclCommInitRootInfo and runs the barriers on its own stream. Started with a rank
// table, every rank joins with HcclCommInitClusterInfo instead. Each rank prints
// one summary line: its time per barrier and how late it arrived on average.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "acl/acl.h"
#include "aclnnop/aclnn_distribute_barrier.h"
#include "distbarrier/distbarrier.h"
#include "hccl/hccl.h"

namespace {

int rank = 0;

#define CHECK_OK(call)                                                                                   \
    do {                                                                                                 \
        int ret_ = (call);                                                                               \
        if (ret_ != 0) {                                                                                 \
            std::fprintf(stderr, "rank %d: %s failed: %d: %s\n", rank, #call, ret_, aclGetRecentErrMsg()); \
            std::exit(1);                                                                                \
        }                                                                                                \
    } while (0)

int EnvInt(const char *name)
{
    const char *value = std::getenv(name);
    if (value == nullptr) {
        std::fprintf(stderr, "%s is not set: start this program with distbarrier-run\n", name);
        std::exit(2);
    }
    return std::atoi(value);
}

// Exactly `size` bytes through `fd`, in either direction.
void Transfer(int fd, char *bytes, size_t size, bool send)
{
    while (size > 0) {
        ssize_t done = send ? write(fd, bytes, size) : read(fd, bytes, size);
        if (done <= 0) {
            std::fprintf(stderr, "rank %d: root info %s failed\n", rank, send ? "send" : "receive");
            std::exit(1);
        }
        bytes += done;
        size -= static_cast<size_t>(done);
    }
    close(fd);
}

}  // namespace

int main(int argc, char **argv)
{
    rank = EnvInt("RANK");
    const int worldSize = EnvInt("WORLD_SIZE");
    const int barriers = argc > 1 ? std::atoi(argv[1]) : 1000;

    CHECK_OK(aclInit(nullptr));
    HcclComm comm = nullptr;
    if (const char *rankTable = std::getenv("RANK_TABLE_FILE")) {
        // distbarrier-run --rank-table: the rank table says each rank's device, no root info travels.
        CHECK_OK(aclrtSetDevice(EnvInt("DEVICE_ID")));
        CHECK_OK(HcclCommInitClusterInfo(rankTable, rank, &comm));
    } else {
        CHECK_OK(aclrtSetDevice(EnvInt("LOCAL_RANK") % 16));
        HcclRootInfo root;
        if (rank == 0) {
            CHECK_OK(HcclGetRootInfo(&root));
            Transfer(EnvInt("DISTBARRIER_ROOT_INFO_OUT_FD"), root.internal, sizeof(root.internal), true);
        } else {
            Transfer(EnvInt("DISTBARRIER_ROOT_INFO_IN_FD"), root.internal, sizeof(root.internal), false);
        }
        CHECK_OK(HcclCommInitRootInfo(worldSize, &root, rank, &comm));
    }
    char group[128] = {0};
    CHECK_OK(HcclGetCommName(comm, group));

    aclrtStream stream = nullptr;
    CHECK_OK(aclrtCreateStream(&stream));
    void *data = nullptr;
    CHECK_OK(aclrtMalloc(&data, 64, ACL_MEM_MALLOC_HUGE_FIRST));
    int64_t shape[1] = {16};
    aclTensor *xRef = aclCreateTensor(shape, 1, ACL_FLOAT, nullptr, 0, ACL_FORMAT_ND, shape, 1, data);

    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < barriers; ++i) {
        uint64_t workspaceSize = 0;
        aclOpExecutor *executor = nullptr;
        CHECK_OK(aclnnDistributeBarrierGetWorkspaceSize(xRef, group, worldSize, &workspaceSize, &executor));
        CHECK_OK(aclnnDistributeBarrier(nullptr, workspaceSize, executor, stream));
    }
    CHECK_OK(aclrtSynchronizeStream(stream));
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    std::vector<distbarrierRankStats> stats(worldSize);
    CHECK_OK(distbarrierGetRankStats(group, stats.data(), worldSize));
    std::printf("rank %2d (pid %6d): %d barriers in %.3f s, %.2f us per barrier; arrived last %llu times, "
                "mean lateness %.2f us\n",
                rank, static_cast<int>(getpid()), barriers, seconds, seconds * 1e6 / barriers,
                static_cast<unsigned long long>(stats[rank].timesLast), stats[rank].meanLatenessNs / 1e3);

    aclDestroyTensor(xRef);
    CHECK_OK(HcclCommDestroy(comm));
    CHECK_OK(aclFinalize());
    return 0;
}
