// The root info shipped with MPI_Bcast, as MPI-launched jobs do:
//
//   mpirun -np 4 ./mpi_barrier [barriers=1000]
//
// Rank 0 makes the root info; MPI_Bcast hands its 4108 bytes to every rank; all join with
// HcclCommInitRootInfo and run the barriers. Each rank prints its time per barrier.
#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "acl/acl.h"
#include "aclnnop/aclnn_distribute_barrier.h"
#include "hccl/hccl.h"

#define CHECK_OK(call)                                                                                   \
    do {                                                                                                 \
        int ret_ = (call);                                                                               \
        if (ret_ != 0) {                                                                                 \
            std::fprintf(stderr, "rank %d: %s failed: %d: %s\n", rank, #call, ret_, aclGetRecentErrMsg()); \
            MPI_Abort(MPI_COMM_WORLD, 1);                                                                \
        }                                                                                                \
    } while (0)

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank = 0;
    int worldSize = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &worldSize);
    const int barriers = argc > 1 ? std::atoi(argv[1]) : 1000;

    CHECK_OK(aclInit(nullptr));
    CHECK_OK(aclrtSetDevice(rank % 16));
    HcclRootInfo root;
    if (rank == 0) CHECK_OK(HcclGetRootInfo(&root));
    MPI_Bcast(root.internal, HCCL_ROOT_INFO_BYTES, MPI_CHAR, 0, MPI_COMM_WORLD);
    HcclComm comm = nullptr;
    CHECK_OK(HcclCommInitRootInfo(worldSize, &root, rank, &comm));
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
    std::printf("rank %d of %d: %d barriers, %.2f us per barrier\n", rank, worldSize, barriers,
                seconds * 1e6 / barriers);

    aclDestroyTensor(xRef);
    CHECK_OK(HcclCommDestroy(comm));
    CHECK_OK(aclFinalize());
    MPI_Finalize();
    return 0;
}
