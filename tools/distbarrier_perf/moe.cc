// distbarrier-perf --moe: time per MoE step next to a single-core memcpy of the same bytes.
//
//   distbarrier-perf --moe [--bs 8,64] [--hidden 7168] [-n 20] [-w 3] [--repeat 5]
//                    [--mode threads|processes] [--timeout S] [--json FILE]
//
// The vendor sample's configuration (examples/seed_sample): EP 8 x TP 2 = 16 ranks, device d
// is EP rank d / 2 and TP rank d % 2; H 7168, K 3, moeExpertNum 7, sharedExpertNum 1 on
// sharedExpertRankNum 1, quantMode 0, BF16, expertTokenNumsType 1. Threads mode: one EP
// group per TP index and one TP group per EP rank by HcclCommInitAll, one thread per device.
// Processes mode: 16 forked processes join the same groups by HcclCommInitRootInfo; the root
// info of each group travels through a MAP_SHARED area made before the fork.
//
// Routing: every token of every rank goes to K distinct random experts (a fixed seed per
// device and Bs), with random weights; x is random BF16.
//
// One step on a rank: aclnnMoeDistributeDispatchV2GetWorkspaceSize + aclnnMoeDistributeDispatchV2,
// then aclnnMoeDistributeCombineV2GetWorkspaceSize + aclnnMoeDistributeCombineV2 with
// dispatch's expandX as combine's expandX (the expert is the identity), both on one stream,
// then one aclrtSynchronizeStream. A rank times -n steps after -w untimed ones, both phases
// started on a control barrier; a round's figure is the maximum over ranks of the rank's time
// per step, and the table shows the median of --repeat rounds.
//
// Bytes moved per step, counted from the routing (payload only; the 16-byte row headers and
// the count tables are left out). With R = the routed rows of all ranks (each token: K expert
// rows + one row per shared copy, including rows a rank routes to itself, which take the same
// path), summed over the 16 ranks:
//   dispatch, EP all-to-all-v:         R * H * 2   (each rank sends its rows)
//   dispatch, TP all-gather:           R * H * 2   (each rank sends the rows it received to its TP peer)
//   combine, TP exchange:              R * H * 2   (each rank sends the peer plane's rows back to the peer)
//   combine, EP return:                R * H * 4   (each row goes home as floats: the TP pair's sum)
//   bytes = R * H * 10
// memcpy: one thread copies `bytes` between two buffers of that size (both written before,
// so no page faults are timed), --repeat times right before the row's ranks start; the
// median. Goal (issue 11): step <= 3 x memcpy in threads mode, <= 4 x in processes mode.
#include "moe.h"

#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <new>
#include <random>
#include <string>
#include <thread>

#include "acl/acl.h"
#include "aclnnop/aclnn_moe_distribute_combine_v2.h"
#include "aclnnop/aclnn_moe_distribute_dispatch_v2.h"
#include "hccl/hccl.h"
#include "implementations.h"
#include "report.h"
#include "runners.h"

namespace distbarrier::perf {
namespace {

constexpr int kEp = 8;
constexpr int kTp = 2;
constexpr int kRanks = kEp * kTp;
constexpr int64_t kK = 3;
constexpr int64_t kMoeExperts = 7;
constexpr int64_t kSharedExperts = 1;
constexpr int64_t kSharedRanks = 1;
constexpr int64_t kMoeLocalExperts = kMoeExperts / (kEp - kSharedRanks);
constexpr int64_t kTokenNumsType = 1;
// Bytes per routed row and per H, over the four exchanges of a step (see the header comment).
constexpr int64_t kBytesPerRowElement = 2 + 2 + 2 + 4;

double Goal(bool processes) {
  return processes ? 4.0 : 3.0;
}

// What a rank's step reads: its tokens and their routing.
struct Routing {
  std::vector<uint16_t> x;  // BF16 (bs, h)
  std::vector<int32_t> expert_ids;
  std::vector<float> expert_scales;
};

Routing MakeRouting(int device, int bs, int h) {
  std::mt19937 rng(7919u * static_cast<uint32_t>(bs) + static_cast<uint32_t>(device));
  std::uniform_real_distribution<float> value(-1.0f, 1.0f), weight(0.1f, 1.0f);
  Routing r;
  r.x.resize(static_cast<size_t>(bs) * h);
  for (uint16_t& bits : r.x) {
    const float f = value(rng);
    uint32_t word;
    std::memcpy(&word, &f, sizeof word);
    bits = static_cast<uint16_t>(word >> 16);
  }
  std::vector<int32_t> experts(kMoeExperts);
  for (int32_t e = 0; e < kMoeExperts; ++e) experts[e] = e;
  for (int t = 0; t < bs; ++t) {
    std::shuffle(experts.begin(), experts.end(), rng);
    for (int64_t k = 0; k < kK; ++k) {
      r.expert_ids.push_back(experts[k]);
      r.expert_scales.push_back(weight(rng));
    }
  }
  return r;
}

// Routed rows per step over all ranks: each token's K expert rows (to EP rank
// kSharedRanks + expert / kMoeLocalExperts) and its shared copy (to EP rank 0).
int64_t RoutedRows(int bs, int h) {
  int64_t rows = 0;
  for (int device = 0; device < kRanks; ++device) {
    const Routing r = MakeRouting(device, bs, h);
    for (int32_t expert : r.expert_ids) rows += expert >= 0 && expert < kMoeExperts ? 1 : 0;
    rows += static_cast<int64_t>(bs) * kSharedExperts;
  }
  return rows;
}

// Device memory with a tensor over it (row-major, contiguous).
struct DeviceTensor {
  void* data = nullptr;
  aclTensor* tensor = nullptr;

  DeviceTensor(std::vector<int64_t> shape, aclDataType dtype, size_t element_bytes, const void* host = nullptr) {
    size_t bytes = element_bytes;
    for (int64_t d : shape) bytes *= static_cast<size_t>(d);
    CHECK_OK(aclrtMalloc(&data, bytes, ACL_MEM_MALLOC_HUGE_FIRST));
    if (host != nullptr) {
      CHECK_OK(aclrtMemcpy(data, bytes, host, bytes, ACL_MEMCPY_HOST_TO_DEVICE));
    } else {
      CHECK_OK(aclrtMemset(data, bytes, 0, bytes));
    }
    std::vector<int64_t> strides(shape.size(), 1);
    for (int i = static_cast<int>(shape.size()) - 2; i >= 0; --i) strides[i] = strides[i + 1] * shape[i + 1];
    tensor = aclCreateTensor(shape.data(), shape.size(), dtype, strides.data(), 0, ACL_FORMAT_ND, shape.data(),
                             shape.size(), data);
    if (tensor == nullptr) Die("aclCreateTensor", -1);
  }
  ~DeviceTensor() {
    aclDestroyTensor(tensor);
    aclrtFree(data);
  }
  DeviceTensor(const DeviceTensor&) = delete;
  DeviceTensor& operator=(const DeviceTensor&) = delete;
};

// The area the ranks share in both modes (MAP_SHARED, made before any fork): the control
// barrier, the root infos of the groups (processes mode), then double figures[repeat][ranks].
struct MoeShared {
  pthread_barrier_t control;
  std::atomic<uint32_t> ep_ready[kTp];
  HcclRootInfo ep_root[kTp];
  std::atomic<uint32_t> tp_ready[kEp];
  HcclRootInfo tp_root[kEp];
};

class MoeArea {
 public:
  MoeArea(int repeat, bool process_shared) {
    bytes_ = sizeof(MoeShared) + sizeof(double) * static_cast<size_t>(repeat) * kRanks;
    memory_ = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory_ == MAP_FAILED) {
      std::perror("distbarrier-perf: mmap");
      std::exit(1);
    }
    shared = new (memory_) MoeShared;
    figures = reinterpret_cast<double*>(static_cast<char*>(memory_) + sizeof(MoeShared));
    InitPthreadBarrier(&shared->control, kRanks, process_shared);
  }
  ~MoeArea() {
    pthread_barrier_destroy(&shared->control);
    shared->~MoeShared();
    munmap(memory_, bytes_);
  }
  MoeArea(const MoeArea&) = delete;
  MoeArea& operator=(const MoeArea&) = delete;

  MoeShared* shared = nullptr;
  double* figures = nullptr;

 private:
  void* memory_ = MAP_FAILED;
  size_t bytes_ = 0;
};

// One rank's step: its tensors (sized as the sample sizes them) and the two operators.
class MoeRank {
 public:
  MoeRank(int device, int bs, int h, const char* ep_group, const char* tp_group)
      : ep_rank_(device / kTp),
        tp_rank_(device % kTp),
        global_bs_(static_cast<int64_t>(bs) * kEp),
        ep_group_(ep_group),
        tp_group_(tp_group),
        routing_(MakeRouting(device, bs, h)),
        local_experts_(ep_rank_ < kSharedRanks ? 1 : kMoeLocalExperts),
        a_(ep_rank_ < kSharedRanks ? global_bs_ / kSharedRanks : global_bs_ * std::min(local_experts_, kK)),
        x_({bs, h}, ACL_BF16, 2, routing_.x.data()),
        expert_ids_({bs, kK}, ACL_INT32, 4, routing_.expert_ids.data()),
        expert_scales_({bs, kK}, ACL_FLOAT, 4, routing_.expert_scales.data()),
        expand_x_({kTp * a_, h}, ACL_BF16, 2),
        dynamic_scales_({kTp * a_}, ACL_FLOAT, 4),
        expand_idx_({a_ * 128}, ACL_INT32, 4),
        expert_token_nums_({local_experts_}, ACL_INT64, 8),
        ep_recv_counts_({kTp * local_experts_ * kEp}, ACL_INT32, 4),
        tp_recv_counts_({kTp * local_experts_}, ACL_INT32, 4),
        expand_scales_({a_}, ACL_FLOAT, 4) {
    CHECK_OK(aclrtCreateStream(&stream_));
  }
  ~MoeRank() {
    if (workspace_ != nullptr) aclrtFree(workspace_);
    CHECK_OK(aclrtDestroyStream(stream_));
  }
  MoeRank(const MoeRank&) = delete;
  MoeRank& operator=(const MoeRank&) = delete;

  void Step() {
    uint64_t size = 0;
    aclOpExecutor* executor = nullptr;
    CHECK_OK(aclnnMoeDistributeDispatchV2GetWorkspaceSize(
        x_.tensor, expert_ids_.tensor, nullptr, nullptr, expert_scales_.tensor, ep_group_, kEp, ep_rank_, kMoeExperts,
        tp_group_, kTp, tp_rank_, 0, kSharedExperts, kSharedRanks, 0, global_bs_, kTokenNumsType, nullptr,
        expand_x_.tensor, dynamic_scales_.tensor, expand_idx_.tensor, expert_token_nums_.tensor, ep_recv_counts_.tensor,
        tp_recv_counts_.tensor, expand_scales_.tensor, &size, &executor));
    CHECK_OK(aclnnMoeDistributeDispatchV2(Workspace(size), size, executor, stream_));
    CHECK_OK(aclnnMoeDistributeCombineV2GetWorkspaceSize(
        expand_x_.tensor, expert_ids_.tensor, expand_idx_.tensor, ep_recv_counts_.tensor, expert_scales_.tensor,
        tp_recv_counts_.tensor, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, ep_group_, kEp, ep_rank_,
        kMoeExperts, tp_group_, kTp, tp_rank_, 0, kSharedExperts, kSharedRanks, global_bs_, 0, 0, 1, nullptr, x_.tensor,
        &size, &executor));
    CHECK_OK(aclnnMoeDistributeCombineV2(Workspace(size), size, executor, stream_));
    CHECK_OK(aclrtSynchronizeStream(stream_));
  }

 private:
  void* Workspace(uint64_t size) {
    if (size > workspace_size_) {
      if (workspace_ != nullptr) aclrtFree(workspace_);
      CHECK_OK(aclrtMalloc(&workspace_, size, ACL_MEM_MALLOC_HUGE_FIRST));
      workspace_size_ = size;
    }
    return size > 0 ? workspace_ : nullptr;
  }

  const int64_t ep_rank_, tp_rank_, global_bs_;
  const char* ep_group_;
  const char* tp_group_;
  const Routing routing_;
  const int64_t local_experts_, a_;
  DeviceTensor x_, expert_ids_, expert_scales_, expand_x_, dynamic_scales_, expand_idx_, expert_token_nums_,
      ep_recv_counts_, tp_recv_counts_, expand_scales_;
  aclrtStream stream_ = nullptr;
  void* workspace_ = nullptr;
  uint64_t workspace_size_ = 0;
};

// The rounds of one rank: warm-up and timed steps, each phase started on the control barrier.
void RunMoeRank(const Options& o, int bs, MoeArea& area, int device, const char* ep_group, const char* tp_group) {
  MoeRank rank(device, bs, o.moe_hidden, ep_group, tp_group);
  for (int round = 0; round < o.repeat; ++round) {
    pthread_barrier_wait(&area.shared->control);
    for (int step = 0; step < o.warmup; ++step) rank.Step();
    pthread_barrier_wait(&area.shared->control);
    const auto begin = Clock::now();
    for (int step = 0; step < o.iterations; ++step) rank.Step();
    area.figures[static_cast<size_t>(round) * kRanks + device] =
        std::chrono::duration<double, std::nano>(Clock::now() - begin).count() / o.iterations;
  }
  pthread_barrier_wait(&area.shared->control);
}

std::string Name(HcclComm comm) {
  char name[128] = {0};
  CHECK_OK(HcclGetCommName(comm, name));
  return name;
}

void MeasureMoeThreads(const Options& o, int bs, MoeArea& area) {
  std::vector<HcclComm> ep(kRanks), tp(kRanks);  // by device
  for (int tp_rank = 0; tp_rank < kTp; ++tp_rank) {
    int32_t devices[kEp];
    HcclComm comms[kEp];
    for (int e = 0; e < kEp; ++e) devices[e] = e * kTp + tp_rank;
    CHECK_OK(HcclCommInitAll(kEp, devices, comms));
    for (int e = 0; e < kEp; ++e) ep[devices[e]] = comms[e];
  }
  for (int ep_rank = 0; ep_rank < kEp; ++ep_rank) {
    int32_t devices[kTp];
    HcclComm comms[kTp];
    for (int t = 0; t < kTp; ++t) devices[t] = ep_rank * kTp + t;
    CHECK_OK(HcclCommInitAll(kTp, devices, comms));
    for (int t = 0; t < kTp; ++t) tp[devices[t]] = comms[t];
  }
  std::vector<std::thread> threads;
  threads.reserve(kRanks);
  for (int device = 0; device < kRanks; ++device) {
    threads.emplace_back([&, device] {
      CHECK_OK(aclrtSetDevice(device));
      const std::string ep_group = Name(ep[device]), tp_group = Name(tp[device]);
      RunMoeRank(o, bs, area, device, ep_group.c_str(), tp_group.c_str());
    });
  }
  for (auto& thread : threads) thread.join();
  for (int device = 0; device < kRanks; ++device) {
    CHECK_OK(HcclCommDestroy(ep[device]));
    CHECK_OK(HcclCommDestroy(tp[device]));
  }
}

// Joins the group whose root info is (ready, root) in the shared area: its rank 0 makes it.
HcclComm Join(std::atomic<uint32_t>& ready, HcclRootInfo& root, int ranks, int rank) {
  if (rank == 0) {
    CHECK_OK(HcclGetRootInfo(&root));
    ready.store(1, std::memory_order_release);
  } else {
    while (ready.load(std::memory_order_acquire) == 0) sched_yield();
  }
  HcclRootInfo copy;
  std::memcpy(&copy, &root, sizeof copy);
  HcclComm comm = nullptr;
  CHECK_OK(HcclCommInitRootInfo(static_cast<uint32_t>(ranks), &copy, static_cast<uint32_t>(rank), &comm));
  return comm;
}

void MeasureMoeProcesses(const Options& o, int bs, MoeArea& area) {
  RunRankProcesses(kRanks, [&](int device) {
    MoeShared* shared = area.shared;
    const int ep_rank = device / kTp, tp_rank = device % kTp;
    CHECK_OK(aclInit(nullptr));
    CHECK_OK(aclrtSetDevice(device));
    HcclComm ep = Join(shared->ep_ready[tp_rank], shared->ep_root[tp_rank], kEp, ep_rank);
    HcclComm tp = Join(shared->tp_ready[ep_rank], shared->tp_root[ep_rank], kTp, tp_rank);
    {
      const std::string ep_group = Name(ep), tp_group = Name(tp);
      RunMoeRank(o, bs, area, device, ep_group.c_str(), tp_group.c_str());
    }
    CHECK_OK(HcclCommDestroy(ep));
    CHECK_OK(HcclCommDestroy(tp));
    CHECK_OK(aclFinalize());
  });
}

// ns of one memcpy of `bytes` by this thread, per round.
std::vector<double> MemcpyRounds(size_t bytes, int repeat) {
  std::vector<std::byte> from(bytes, std::byte{1}), to(bytes, std::byte{0});
  std::memcpy(to.data(), from.data(), bytes);  // warm the caches and the TLB once
  std::vector<double> rounds;
  for (int round = 0; round < repeat; ++round) {
    from[round % bytes] = std::byte{static_cast<unsigned char>(round)};
    const auto begin = Clock::now();
    std::memcpy(to.data(), from.data(), bytes);
    asm volatile("" : : "r"(to.data()) : "memory");  // the copy is used
    rounds.push_back(std::chrono::duration<double, std::nano>(Clock::now() - begin).count());
  }
  return rounds;
}

MoeRow MeasureMoe(const Options& o, int bs) {
  MoeRow row;
  row.bs = bs;
  row.rows = RoutedRows(bs, o.moe_hidden);
  row.bytes = static_cast<double>(row.rows) * o.moe_hidden * kBytesPerRowElement;
  row.memcpy_rounds = MemcpyRounds(static_cast<size_t>(row.bytes), o.repeat);
  row.memcpy_ns = Median(row.memcpy_rounds);
  MoeArea area(o.repeat, o.processes());
  if (o.processes()) {
    MeasureMoeProcesses(o, bs, area);
  } else {
    MeasureMoeThreads(o, bs, area);
  }
  for (int round = 0; round < o.repeat; ++round) {
    const double* per_rank = area.figures + static_cast<size_t>(round) * kRanks;
    row.step_rounds.push_back(*std::max_element(per_rank, per_rank + kRanks));
  }
  row.step_ns = Median(row.step_rounds);
  return row;
}

void PrintMoeHeader(const Options& o, long nproc, const std::string& cpu) {
  std::printf("# distbarrier-perf --moe: mode %s, nproc %ld, CPU %s, -n %d -w %d --repeat %d\n", o.mode.c_str(), nproc,
              cpu.c_str(), o.iterations, o.warmup, o.repeat);
  std::printf(
      "# step = dispatch -> combine V2 (identity expert, stage 1 + stage 2 each, one stream sync), EP %d x TP "
      "%d, H %d, K %lld, moeExpertNum %lld, shared expert %lld on %lld rank, BF16, quantMode 0, random "
      "routing\n",
      kEp, kTp, o.moe_hidden, static_cast<long long>(kK), static_cast<long long>(kMoeExperts),
      static_cast<long long>(kSharedExperts), static_cast<long long>(kSharedRanks));
  std::printf(
      "# step_us: median of %d rounds of the max over ranks of us per step; MB = rows * H * 10 bytes (EP "
      "dispatch 2 + TP gather 2 + TP exchange 2 + EP return 4); memcpy_us: one core copying MB, median of "
      "%d; goal step/memcpy <= %.0f\n",
      o.repeat, o.repeat, Goal(o.processes()));
  std::printf("%6s %8s %10s %11s %9s %11s %11s %9s\n", "bs", "rows", "MB/step", "step_us", "GB/s", "memcpy_us",
              "memcpy_GB/s", "step/cpy");
  std::fflush(stdout);
}

void PrintMoeRow(const MoeRow& row) {
  std::printf("%6d %8lld %10.2f %11.1f %9.2f %11.1f %11.2f %9.2f\n", row.bs, static_cast<long long>(row.rows),
              row.bytes / 1e6, row.step_ns / 1e3, row.bytes / row.step_ns, row.memcpy_ns / 1e3,
              row.bytes / row.memcpy_ns, row.step_ns / row.memcpy_ns);
  std::fflush(stdout);
}

std::string JsonList(const std::vector<double>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    char buffer[64];
    std::snprintf(buffer, sizeof(buffer), "%s%.1f", i ? ", " : "", values[i]);
    out += buffer;
  }
  return out + "]";
}

bool WriteMoeJson(const Options& o, long nproc, const std::string& cpu, const std::vector<MoeRow>& rows) {
  std::ofstream out(o.json);
  std::string cpu_text;
  for (char ch : cpu) {
    if (ch == '"' || ch == '\\') cpu_text += '\\';
    if (static_cast<unsigned char>(ch) >= 0x20) cpu_text += ch;
  }
  out << "{\n  \"tool\": \"distbarrier-perf\",\n  \"moe\": true,\n  \"mode\": \"" << o.mode
      << "\",\n  \"machine\": {\"nproc\": " << nproc << ", \"cpu\": \"" << cpu_text << "\"},\n"
      << "  \"ep\": " << kEp << ",\n  \"tp\": " << kTp << ",\n  \"h\": " << o.moe_hidden << ",\n  \"k\": " << kK
      << ",\n  \"iterations\": " << o.iterations << ",\n  \"warmup\": " << o.warmup << ",\n  \"repeat\": " << o.repeat
      << ",\n  \"goal\": " << Goal(o.processes()) << ",\n  \"rows\": [\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    const MoeRow& row = rows[i];
    char figures[256];
    std::snprintf(figures, sizeof(figures),
                  "\"bs\": %d, \"routed_rows\": %lld, \"bytes_per_step\": %.0f, \"step_ns\": %.1f, \"memcpy_ns\": "
                  "%.1f, \"step_over_memcpy\": %.3f",
                  row.bs, static_cast<long long>(row.rows), row.bytes, row.step_ns, row.memcpy_ns,
                  row.step_ns / row.memcpy_ns);
    out << "    {" << figures << ", \"step_rounds_ns\": " << JsonList(row.step_rounds)
        << ", \"memcpy_rounds_ns\": " << JsonList(row.memcpy_rounds) << "}" << (i + 1 < rows.size() ? "," : "") << "\n";
  }
  out << "  ]\n}\n";
  if (!out) {
    std::fprintf(stderr, "distbarrier-perf: cannot write %s\n", o.json.c_str());
    return false;
  }
  return true;
}

}  // namespace

int RunMoe(const Options& o) {
  const long nproc = sysconf(_SC_NPROCESSORS_ONLN);
  const std::string cpu = CpuModel();
  PrintMoeHeader(o, nproc, cpu);
  if (!o.processes()) CHECK_OK(aclInit(nullptr));
  std::vector<MoeRow> rows;
  for (int bs : o.moe_bs) {
    rows.push_back(MeasureMoe(o, bs));
    PrintMoeRow(rows.back());
  }
  if (!o.processes()) aclFinalize();
  if (!o.json.empty() && !WriteMoeJson(o, nproc, cpu, rows)) return 1;
  return 0;
}

}  // namespace distbarrier::perf
