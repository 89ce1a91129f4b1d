// A reference MoE step on EP 8 x TP 2 = 16 simulated devices, written against the CANN API
// only: random routing, aclnnMoeDistributeDispatchV2, a per-rank "expert" applied to the rows
// it received (located by expertTokenNums), aclnnDistributeBarrier, then
// aclnnMoeDistributeCombineV2. Device 5 is a slow card: its expert takes 20 ms longer. The
// barrier absorbs that skew (the table shows how long it held each device), and every output
// value is checked against a host reference computed from x, expertIds and expertScales alone.
//
//   moe_step [steps]        (default 3)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "acl/acl.h"
#include "aclnnop/aclnn_distribute_barrier.h"
#include "aclnnop/aclnn_moe_distribute_combine_v2.h"
#include "aclnnop/aclnn_moe_distribute_dispatch_v2.h"
#include "hccl/hccl.h"

namespace {

constexpr int kEp = 8;
constexpr int kTp = 2;
constexpr int kDevices = kEp * kTp;
constexpr int64_t kBs = 8;
constexpr int64_t kH = 1024;
constexpr int64_t kK = 3;
constexpr int64_t kSharedExperts = 1;
constexpr int64_t kSharedRanks = 1;   // EP rank 0 holds the shared expert
constexpr int64_t kMoeExperts = 7;    // one per remaining EP rank: localExpertNum 1 (needed with TP 2)
constexpr int64_t kGlobalBs = kBs * kEp;
constexpr int64_t kTokenNumsType = 0;  // expertTokenNums holds cumulative counts
constexpr int kSlowDevice = 5;
constexpr int kSlowMs = 20;

#define CHECK_OK(call)                                                                       \
    do {                                                                                     \
        int ret_ = (call);                                                                   \
        if (ret_ != 0) {                                                                     \
            std::fprintf(stderr, "%s failed: %d: %s\n", #call, ret_, aclGetRecentErrMsg()); \
            std::exit(1);                                                                    \
        }                                                                                    \
    } while (0)

// BF16 is the top half of a float; round to nearest even when narrowing.
float Bf16ToFloat(uint16_t bits)
{
    uint32_t word = static_cast<uint32_t>(bits) << 16;
    float value;
    std::memcpy(&value, &word, sizeof value);
    return value;
}
uint16_t FloatToBf16(float value)
{
    uint32_t word;
    std::memcpy(&word, &value, sizeof word);
    return static_cast<uint16_t>((word + 0x7fff + ((word >> 16) & 1)) >> 16);
}

// The experts: expert e scales its rows by ExpertFactor(e), the shared expert by 1.5. Each
// of the two TP ranks of an EP rank holds half of the expert's weights, so each computes half
// of the result; combine adds the halves.
float ExpertFactor(int64_t expert) { return 0.5f + 0.25f * static_cast<float>(expert); }
constexpr float kSharedFactor = 1.5f;

// Device memory with a tensor over it.
struct Tensor {
    void *data = nullptr;
    aclTensor *tensor = nullptr;
    size_t bytes = 0;
};

template <typename T>
Tensor MakeTensor(const std::vector<T> &host, std::vector<int64_t> shape, aclDataType dtype)
{
    Tensor t;
    t.bytes = host.size() * sizeof(T);
    CHECK_OK(aclrtMalloc(&t.data, t.bytes, ACL_MEM_MALLOC_HUGE_FIRST));
    CHECK_OK(aclrtMemcpy(t.data, t.bytes, host.data(), t.bytes, ACL_MEMCPY_HOST_TO_DEVICE));
    std::vector<int64_t> strides(shape.size(), 1);
    for (int i = static_cast<int>(shape.size()) - 2; i >= 0; --i) strides[i] = strides[i + 1] * shape[i + 1];
    t.tensor = aclCreateTensor(shape.data(), shape.size(), dtype, strides.data(), 0, ACL_FORMAT_ND, shape.data(),
                               shape.size(), t.data);
    return t;
}

template <typename T>
std::vector<T> Read(const Tensor &t)
{
    std::vector<T> host(t.bytes / sizeof(T));
    CHECK_OK(aclrtMemcpy(host.data(), t.bytes, t.data, t.bytes, ACL_MEMCPY_DEVICE_TO_HOST));
    return host;
}

void Free(Tensor &t)
{
    aclDestroyTensor(t.tensor);
    aclrtFree(t.data);
}

struct Device {
    int id = 0, ep_rank = 0, tp_rank = 0;
    std::string ep_group, tp_group, barrier_group;
    float barrier_ms = 0;    // summed over the steps
    double largest_error = 0;
    int64_t wrong = 0;
    int64_t rows_received = 0;
};

// One step on one device.
void Step(Device &d, aclrtStream stream, int step)
{
    const bool shared_rank = d.ep_rank < kSharedRanks;
    const int64_t local_experts = shared_rank ? 1 : kMoeExperts / (kEp - kSharedRanks);
    const int64_t a = shared_rank ? kGlobalBs / kSharedRanks : kGlobalBs * std::min(local_experts, kK);

    // Inputs: random tokens, each routed to K distinct random experts with random weights.
    std::mt19937 rng(1000u * static_cast<uint32_t>(step) + static_cast<uint32_t>(d.id));
    std::uniform_real_distribution<float> value(-1.0f, 1.0f), weight(0.1f, 1.0f);
    std::vector<uint16_t> x(kBs * kH);
    for (auto &bits : x) bits = FloatToBf16(value(rng));
    std::vector<int32_t> expert_ids;
    std::vector<float> expert_scales;
    std::vector<int32_t> experts(kMoeExperts);
    for (int32_t e = 0; e < kMoeExperts; ++e) experts[e] = e;
    for (int64_t t = 0; t < kBs; ++t) {
        std::shuffle(experts.begin(), experts.end(), rng);
        for (int64_t k = 0; k < kK; ++k) {
            expert_ids.push_back(experts[k]);
            expert_scales.push_back(weight(rng));
        }
    }

    Tensor xt = MakeTensor(x, {kBs, kH}, ACL_BF16);
    Tensor ids = MakeTensor(expert_ids, {kBs, kK}, ACL_INT32);
    Tensor scales = MakeTensor(expert_scales, {kBs, kK}, ACL_FLOAT);
    Tensor expand_x = MakeTensor(std::vector<uint16_t>(kTp * a * kH), {kTp * a, kH}, ACL_BF16);
    Tensor dynamic_scales = MakeTensor(std::vector<float>(kTp * a), {kTp * a}, ACL_FLOAT);
    Tensor assist = MakeTensor(std::vector<int32_t>(a * 128), {a * 128}, ACL_INT32);
    Tensor token_nums = MakeTensor(std::vector<int64_t>(local_experts), {local_experts}, ACL_INT64);
    Tensor ep_counts = MakeTensor(std::vector<int32_t>(kTp * local_experts * kEp), {kTp * local_experts * kEp},
                                  ACL_INT32);
    Tensor tp_counts = MakeTensor(std::vector<int32_t>(kTp * local_experts), {kTp * local_experts}, ACL_INT32);
    Tensor expand_scales = MakeTensor(std::vector<float>(a), {a}, ACL_FLOAT);
    Tensor expert_out = MakeTensor(std::vector<uint16_t>(kTp * a * kH), {kTp * a, kH}, ACL_BF16);
    Tensor out = MakeTensor(std::vector<uint16_t>(kBs * kH), {kBs, kH}, ACL_BF16);

    // 1. Dispatch: rows travel to their experts' ranks.
    uint64_t workspace = 0;
    aclOpExecutor *executor = nullptr;
    CHECK_OK(aclnnMoeDistributeDispatchV2GetWorkspaceSize(
        xt.tensor, ids.tensor, nullptr, nullptr, scales.tensor, d.ep_group.c_str(), kEp, d.ep_rank, kMoeExperts,
        d.tp_group.c_str(), kTp, d.tp_rank, 0, kSharedExperts, kSharedRanks, 0, kGlobalBs, kTokenNumsType, nullptr,
        expand_x.tensor, dynamic_scales.tensor, assist.tensor, token_nums.tensor, ep_counts.tensor,
        tp_counts.tensor, expand_scales.tensor, &workspace, &executor));
    CHECK_OK(aclnnMoeDistributeDispatchV2(nullptr, workspace, executor, stream));
    CHECK_OK(aclrtSynchronizeStream(stream));

    // 2. The expert, on the host: the rows of local expert j are [end(j-1), end(j)) of expandX,
    //    with end(j) = expertTokenNums[j] (cumulative counts). The slow card takes longer.
    if (d.id == kSlowDevice) std::this_thread::sleep_for(std::chrono::milliseconds(kSlowMs));
    const std::vector<int64_t> ends = Read<int64_t>(token_nums);
    const std::vector<uint16_t> rows = Read<uint16_t>(expand_x);
    std::vector<uint16_t> results(rows.size(), 0);
    int64_t begin = 0;
    for (int64_t j = 0; j < local_experts; ++j) {
        const float factor =
            (shared_rank ? kSharedFactor : ExpertFactor((d.ep_rank - kSharedRanks) * local_experts + j)) / kTp;
        for (int64_t i = begin * kH; i < ends[j] * kH; ++i) results[i] = FloatToBf16(Bf16ToFloat(rows[i]) * factor);
        begin = ends[j];
    }
    d.rows_received += begin;
    CHECK_OK(aclrtMemcpy(expert_out.data, expert_out.bytes, results.data(), results.size() * 2,
                         ACL_MEMCPY_HOST_TO_DEVICE));

    // 3. The barrier: no device starts combining before every device has finished its expert.
    //    Two events around it measure how long it held this device.
    aclrtEvent before = nullptr, after = nullptr;
    CHECK_OK(aclrtCreateEvent(&before));
    CHECK_OK(aclrtCreateEvent(&after));
    CHECK_OK(aclrtRecordEvent(before, stream));
    CHECK_OK(aclnnDistributeBarrierGetWorkspaceSize(expert_out.tensor, d.barrier_group.c_str(), kEp, &workspace,
                                                    &executor));
    CHECK_OK(aclnnDistributeBarrier(nullptr, workspace, executor, stream));
    CHECK_OK(aclrtRecordEvent(after, stream));

    // 4. Combine, on the same stream after the barrier: rows go back and are summed per token.
    CHECK_OK(aclnnMoeDistributeCombineV2GetWorkspaceSize(
        expert_out.tensor, ids.tensor, assist.tensor, ep_counts.tensor, scales.tensor, tp_counts.tensor, nullptr,
        nullptr, nullptr, nullptr, nullptr, nullptr, d.ep_group.c_str(), kEp, d.ep_rank, kMoeExperts,
        d.tp_group.c_str(), kTp, d.tp_rank, 0, kSharedExperts, kSharedRanks, kGlobalBs, 0, 0, 1, nullptr,
        out.tensor, &workspace, &executor));
    CHECK_OK(aclnnMoeDistributeCombineV2(nullptr, workspace, executor, stream));
    CHECK_OK(aclrtSynchronizeStream(stream));
    float held_ms = 0;
    CHECK_OK(aclrtEventElapsedTime(&held_ms, before, after));
    d.barrier_ms += held_ms;
    aclrtDestroyEvent(before);
    aclrtDestroyEvent(after);

    // 5. The host reference, from x, expertIds and expertScales alone:
    //    out[t] = sum_k expertScales[t,k] * ExpertFactor(expertIds[t,k]) * x[t] + kSharedFactor * x[t].
    //    Each expert result was rounded to BF16 once (per TP half) and the sum once more.
    const std::vector<uint16_t> got = Read<uint16_t>(out);
    const double u = 1.0 / 256;  // BF16's unit roundoff
    for (int64_t t = 0; t < kBs; ++t) {
        double factor = kSharedFactor, magnitude = kSharedFactor;
        for (int64_t k = 0; k < kK; ++k) {
            const double f = double{expert_scales[t * kK + k]} * ExpertFactor(expert_ids[t * kK + k]);
            factor += f;
            magnitude += std::fabs(f);
        }
        for (int64_t e = 0; e < kH; ++e) {
            const double xv = Bf16ToFloat(x[t * kH + e]);
            const double reference = factor * xv;
            const double bound = 2.02 * u * magnitude * std::fabs(xv) + 1e-6;
            const double error = std::fabs(Bf16ToFloat(got[t * kH + e]) - reference);
            d.largest_error = std::max(d.largest_error, error);
            if (!(error <= bound)) ++d.wrong;
        }
    }

    for (Tensor *t : {&xt, &ids, &scales, &expand_x, &dynamic_scales, &assist, &token_nums, &ep_counts,
                      &tp_counts, &expand_scales, &expert_out, &out}) {
        Free(*t);
    }
}

std::string Name(HcclComm comm)
{
    char name[COMM_NAME_MAX_LENGTH] = {0};
    CHECK_OK(HcclGetCommName(comm, name));
    return name;
}

}  // namespace

int main(int argc, char *argv[])
{
    const int steps = argc > 1 ? std::atoi(argv[1]) : 3;
    CHECK_OK(aclInit(nullptr));

    // The sample's communicators: per TP index an EP group (and a second one for the barrier),
    // per EP rank a TP group. Device = epRank * kTp + tpRank.
    std::vector<Device> devices(kDevices);
    for (int tp = 0; tp < kTp; ++tp) {
        int32_t ranks[kEp];
        for (int ep = 0; ep < kEp; ++ep) ranks[ep] = ep * kTp + tp;
        HcclComm ep_comms[kEp], barrier_comms[kEp];
        CHECK_OK(HcclCommInitAll(kEp, ranks, ep_comms));
        CHECK_OK(HcclCommInitAll(kEp, ranks, barrier_comms));
        for (int ep = 0; ep < kEp; ++ep) {
            Device &d = devices[ranks[ep]];
            d.id = ranks[ep];
            d.ep_rank = ep;
            d.tp_rank = tp;
            d.ep_group = Name(ep_comms[ep]);
            d.barrier_group = Name(barrier_comms[ep]);
        }
    }
    for (int ep = 0; ep < kEp; ++ep) {
        int32_t ranks[kTp] = {ep * kTp, ep * kTp + 1};
        HcclComm tp_comms[kTp];
        CHECK_OK(HcclCommInitAll(kTp, ranks, tp_comms));
        for (int tp = 0; tp < kTp; ++tp) devices[ranks[tp]].tp_group = Name(tp_comms[tp]);
    }

    std::vector<std::thread> threads;
    for (Device &d : devices) {
        threads.emplace_back([&d, steps] {
            CHECK_OK(aclrtSetDevice(d.id));
            aclrtStream stream = nullptr;
            CHECK_OK(aclrtCreateStream(&stream));
            for (int step = 0; step < steps; ++step) Step(d, stream, step);
            CHECK_OK(aclrtDestroyStream(stream));
        });
    }
    for (auto &thread : threads) thread.join();

    // The barrier group is the EP group of one TP plane (as in the vendor's sample), so the slow
    // card holds up the devices of its own plane: they wait in the barrier, it does not.
    std::printf(" device | EP rank | TP rank | rows received | barrier held (ms/step) | wrong values\n");
    double largest = 0;
    int matched = 0;
    for (const Device &d : devices) {
        std::printf(" %6d | %7d | %7d | %13lld | %22.2f | %12lld%s\n", d.id, d.ep_rank, d.tp_rank,
                    static_cast<long long>(d.rows_received), d.barrier_ms / steps, static_cast<long long>(d.wrong),
                    d.id == kSlowDevice ? "   <- slow card" : "");
        largest = std::max(largest, d.largest_error);
        matched += d.wrong == 0 ? 1 : 0;
    }
    std::printf("\nthe barrier absorbed device %d's %d ms on the devices of TP plane %d\n", kSlowDevice, kSlowMs,
                kSlowDevice % kTp);
    std::printf("largest error against the host reference: %.6f\n", largest);
    std::printf("%d/%d devices match the host reference over %d steps\n", matched, kDevices, steps);
    aclFinalize();
    return matched == kDevices ? 0 : 1;
}
