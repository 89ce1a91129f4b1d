// Which card is slow? 16 devices share one barrier group; device 5 is delayed 2 ms before
// every barrier by a host function on its stream (a slow card). After the barriers, the
// arrival statistics of distbarrier/distbarrier.h name it, the trace shows it on a timeline,
// and distbarrier-skew draws it.
//
//   slow_card [trace.json] [skew.png]      (defaults: slow_card_trace.json, slow_card_skew.png)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "acl/acl.h"
#include "aclnnop/aclnn_distribute_barrier.h"
#include "distbarrier/distbarrier.h"
#include "hccl/hccl.h"

namespace {

constexpr int kDevices = 16;
constexpr int kSlowDevice = 5;
constexpr int kBarriers = 100;
constexpr int kDelayMs = 2;

#define CHECK_OK(call)                                                                       \
    do {                                                                                     \
        int ret_ = (call);                                                                   \
        if (ret_ != 0) {                                                                     \
            std::fprintf(stderr, "%s failed: %d: %s\n", #call, ret_, aclGetRecentErrMsg()); \
            std::exit(1);                                                                    \
        }                                                                                    \
    } while (0)

void SlowCard(void *)
{
    std::this_thread::sleep_for(std::chrono::milliseconds(kDelayMs));
}

void RunDevice(int device, const char *group)
{
    CHECK_OK(aclrtSetDevice(device));
    aclrtStream stream = nullptr;
    CHECK_OK(aclrtCreateStream(&stream));
    void *data = nullptr;
    CHECK_OK(aclrtMalloc(&data, 64, ACL_MEM_MALLOC_HUGE_FIRST));
    int64_t shape[1] = {16};
    aclTensor *xRef = aclCreateTensor(shape, 1, ACL_FLOAT, nullptr, 0, ACL_FORMAT_ND, shape, 1, data);
    for (int i = 0; i < kBarriers; ++i) {
        if (device == kSlowDevice) CHECK_OK(aclrtLaunchHostFunc(stream, SlowCard, nullptr));
        uint64_t workspaceSize = 0;
        aclOpExecutor *executor = nullptr;
        CHECK_OK(aclnnDistributeBarrierGetWorkspaceSize(xRef, group, kDevices, &workspaceSize, &executor));
        CHECK_OK(aclnnDistributeBarrier(nullptr, workspaceSize, executor, stream));
    }
    CHECK_OK(aclrtSynchronizeStream(stream));
    aclDestroyTensor(xRef);
    aclrtFree(data);
    aclrtDestroyStream(stream);
}

}  // namespace

int main(int argc, char **argv)
{
    const std::string trace = argc > 1 ? argv[1] : "slow_card_trace.json";
    const std::string png = argc > 2 ? argv[2] : "slow_card_skew.png";
    setenv("DISTBARRIER_TRACE", trace.c_str(), 1);  // before the first barrier
    CHECK_OK(aclInit(nullptr));

    int32_t devices[kDevices];
    for (int i = 0; i < kDevices; ++i) devices[i] = i;
    HcclComm comms[kDevices];
    CHECK_OK(HcclCommInitAll(kDevices, devices, comms));
    char group[128] = {0};
    CHECK_OK(HcclGetCommName(comms[0], group));

    std::vector<std::thread> threads;
    for (int device = 0; device < kDevices; ++device) threads.emplace_back(RunDevice, device, group);
    for (auto &thread : threads) thread.join();

    // Any rank's view will do: the statistics are the group's. Device i holds rank i here.
    CHECK_OK(aclrtSetDevice(0));
    distbarrierRankStats stats[kDevices];
    CHECK_OK(distbarrierGetRankStats(group, stats, kDevices));
    distbarrierBarrierInfo last;
    CHECK_OK(distbarrierGetLastBarrier(group, &last, nullptr, 0));

    std::printf("%d barriers over %d devices; device %d delayed %d ms before each\n\n", kBarriers, kDevices,
                kSlowDevice, kDelayMs);
    std::printf(" device | times last | mean lateness (ms) | max lateness (ms)\n");
    int slowest = 0;
    for (int rank = 0; rank < kDevices; ++rank) {
        std::printf(" %6d | %10llu | %18.3f | %17.3f\n", devices[rank],
                    static_cast<unsigned long long>(stats[rank].timesLast), stats[rank].meanLatenessNs / 1e6,
                    stats[rank].maxLatenessNs / 1e6);
        if (stats[rank].meanLatenessNs > stats[slowest].meanLatenessNs) slowest = rank;
    }
    std::printf("\nlast barrier #%llu: device %d arrived last, %.3f ms after the first\n",
                static_cast<unsigned long long>(last.sequence), devices[last.lastRank], last.spreadNs / 1e6);
    std::printf("slowest device: %d (mean lateness %.3f ms, last in %llu of %d barriers)\n", devices[slowest],
                stats[slowest].meanLatenessNs / 1e6, static_cast<unsigned long long>(stats[slowest].timesLast),
                kBarriers);

    for (HcclComm comm : comms) HcclCommDestroy(comm);
    aclFinalize();
    std::printf("trace: %s\n", trace.c_str());

    // The picture: distbarrier-skew from PATH (P/bin after setenv.bash), or DISTBARRIER_SKEW.
    const char *tool = std::getenv("DISTBARRIER_SKEW");
    std::string command = std::string(tool != nullptr ? tool : "distbarrier-skew") + " '" + trace + "' -o '" + png +
                          "' > /dev/null";
    if (std::system(command.c_str()) == 0) {
        std::printf("picture: %s\n", png.c_str());
    } else {
        std::printf("picture: not drawn (needs distbarrier-skew and python3-matplotlib)\n");
    }
    return devices[slowest] == kSlowDevice ? 0 : 1;
}
