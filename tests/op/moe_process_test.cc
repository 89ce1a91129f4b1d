// The numeric test of moe_numeric_test with one process per rank (HcclCommInitRootInfo):
// the rows move through each group's shared-memory data region. Ranks are forked before
// anything touches the runtime; they share an anonymous MAP_SHARED area with the parent for
// the root infos and their results, and wait for a root info by watching a flag in it.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "moe_world.h"

namespace distbarrier::testing::moe {
namespace {

constexpr int kMaxGroups = 8;
constexpr int kMaxProcesses = 16;

struct SharedArea {
  std::atomic<int> ep_ready[kMaxGroups];
  HcclRootInfo ep_root[kMaxGroups];
  std::atomic<int> tp_ready[kMaxGroups];
  HcclRootInfo tp_root[kMaxGroups];
  int status[kMaxProcesses];  // 0 ok
  char message[kMaxProcesses][512];
  int64_t checked[kMaxProcesses];
  std::atomic<int> joined;
};

// Joins the group whose root info lives at (ready, root): rank 0 makes it, the others wait.
HcclComm Join(std::atomic<int>& ready, HcclRootInfo& root, int ranks, int rank) {
  if (rank == 0) {
    HcclRootInfo made;
    if (HcclGetRootInfo(&made) != HCCL_SUCCESS) return nullptr;
    root = made;
    ready.store(1, std::memory_order_release);
  }
  while (ready.load(std::memory_order_acquire) == 0) std::this_thread::yield();
  HcclRootInfo copy = root;
  HcclComm comm = nullptr;
  if (HcclCommInitRootInfo(static_cast<uint32_t>(ranks), &copy, static_cast<uint32_t>(rank), &comm) != HCCL_SUCCESS) {
    return nullptr;
  }
  return comm;
}

// One rank process: dispatch -> expert -> combine twice, compared with the host reference.
int RunRank(const Config& c, SharedArea* area, int device) {
  const RankId r{device, device / c.tp, device % c.tp};
  auto fail = [&](const std::string& what) {
    area->status[device] = 1;
    std::snprintf(area->message[device], sizeof(area->message[device]), "%s: %s", what.c_str(), aclGetRecentErrMsg());
    return 1;
  };
  if (aclrtSetDevice(0) != 0) return fail("aclrtSetDevice");
  HcclComm ep = Join(area->ep_ready[r.tp_rank], area->ep_root[r.tp_rank], c.ep, r.ep_rank);
  if (ep == nullptr) return fail("joining the EP group");
  HcclComm tp = nullptr;
  if (c.tp == 2) {
    tp = Join(area->tp_ready[r.ep_rank], area->tp_root[r.ep_rank], 2, r.tp_rank);
    if (tp == nullptr) return fail("joining the TP group");
  }
  const std::string ep_name = World::Name(ep), tp_name = tp != nullptr ? World::Name(tp) : "";
  aclrtStream stream = nullptr;
  if (aclrtCreateStream(&stream) != 0) return fail("aclrtCreateStream");
  for (int round = 0; round < 2; ++round) {
    // Device numbers of the thread test, so that both draw the same inputs.
    const RankInputs in = DrawInputs(c, device, round);
    RankTensors t(c, in, r.ep_rank);
    int status = EnqueueDispatch(c, ep_name, tp_name, r, t, stream);
    if (status == 0) status = aclrtSynchronizeStream(stream);
    if (status != 0) return fail("dispatch " + std::to_string(status));
    ApplyExperts(c, r, t);
    status = EnqueueCombine(c, ep_name, tp_name, r, t, stream);
    if (status == 0) status = aclrtSynchronizeStream(stream);
    if (status != 0) return fail("combine " + std::to_string(status));
    const Comparison result = Compare(c, in, t, device);
    if (result.wrong > 0) return fail(std::to_string(result.wrong) + " wrong values; first: " + result.first);
    area->checked[device] += static_cast<int64_t>(c.bs) * c.h;
    t.Release();
  }
  aclFinalize();
  return 0;
}

class MoeProcessTest : public ::testing::TestWithParam<Config> {};

TEST_P(MoeProcessTest, CombineOfExpertOfDispatchMatchesHostReference) {
  const Config c = GetParam();
  SCOPED_TRACE(c.Describe());
  ASSERT_LE(c.Devices(), kMaxProcesses);
  void* memory = mmap(nullptr, sizeof(SharedArea), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(memory, MAP_FAILED);
  auto* area = new (memory) SharedArea{};
  std::vector<pid_t> children;
  for (int device = 0; device < c.Devices(); ++device) {
    const pid_t pid = fork();
    if (pid == 0) _exit(RunRank(c, area, device));
    children.push_back(pid);
  }
  for (int device = 0; device < c.Devices(); ++device) {
    int wait_status = 0;
    waitpid(children[device], &wait_status, 0);
    EXPECT_TRUE(WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0)
        << "device " << device << " (status " << wait_status << "): " << area->message[device];
    EXPECT_EQ(area->checked[device], 2 * c.bs * c.h) << "device " << device;
  }
  munmap(memory, sizeof(SharedArea));
}

// Across processes too, a dispatch on one rank only times out naming the ranks that never came.
TEST(MoeProcessMisuseTest, DispatchInOneProcessOnlyTimesOutNamingTheOthers) {
  Config c;
  c.ep = 3;
  c.moe_experts = 3;
  c.k = 2;
  void* memory = mmap(nullptr, sizeof(SharedArea), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(memory, MAP_FAILED);
  auto* area = new (memory) SharedArea{};
  std::atomic<int>& done = area->tp_ready[0];  // rank 0 has its answer: the others may leave
  std::vector<pid_t> children;
  for (int device = 0; device < c.ep; ++device) {
    const pid_t pid = fork();
    if (pid == 0) {
      setenv("HCCL_EXEC_TIMEOUT", "1", 1);
      if (aclrtSetDevice(0) != 0) _exit(2);
      HcclComm ep = Join(area->ep_ready[0], area->ep_root[0], c.ep, device);
      if (ep == nullptr) _exit(3);
      if (device == 0) {
        aclrtStream stream = nullptr;
        aclrtCreateStream(&stream);
        RankTensors t(c, DrawInputs(c, 0, 0), 0);
        int status = EnqueueDispatch(c, World::Name(ep), "", {0, 0, 0}, t, stream);
        if (status == 0) status = aclrtSynchronizeStream(stream);
        area->status[0] = status;
        std::snprintf(area->message[0], sizeof(area->message[0]), "%s", aclGetRecentErrMsg());
        done.store(1, std::memory_order_release);
      }
      while (done.load(std::memory_order_acquire) == 0) std::this_thread::yield();
      _exit(0);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) waitpid(pid, nullptr, 0);
  EXPECT_EQ(area->status[0], ACL_ERROR_RT_VECTOR_CORE_TIMEOUT);
  EXPECT_NE(std::string(area->message[0]).find("ranks that never came: [1, 2]"), std::string::npos) << area->message[0];
  munmap(memory, sizeof(SharedArea));
}

// A rank whose process exits before the call: its peers fail with 507057 naming it, without
// a timeout set (the group's peer watch sees the exit).
TEST(MoeProcessMisuseTest, APeerThatDiedIsNamedWithoutATimeout) {
  Config c;
  c.ep = 3;
  c.moe_experts = 3;
  c.k = 2;
  void* memory = mmap(nullptr, sizeof(SharedArea), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(memory, MAP_FAILED);
  auto* area = new (memory) SharedArea{};
  std::vector<pid_t> children;
  for (int device = 0; device < c.ep; ++device) {
    const pid_t pid = fork();
    if (pid == 0) {
      unsetenv("HCCL_EXEC_TIMEOUT");
      if (aclrtSetDevice(0) != 0) _exit(2);
      HcclComm ep = Join(area->ep_ready[0], area->ep_root[0], c.ep, device);
      if (ep == nullptr) {
        std::snprintf(area->message[device], sizeof(area->message[device]), "join: %s", aclGetRecentErrMsg());
        _exit(3);
      }
      area->joined.fetch_add(1, std::memory_order_acq_rel);
      if (device == 2) {
        // Dies without a word once everyone has joined (dying during the join is another story).
        while (area->joined.load(std::memory_order_acquire) < c.ep) std::this_thread::yield();
        _exit(0);
      }
      aclrtStream stream = nullptr;
      aclrtCreateStream(&stream);
      RankTensors t(c, DrawInputs(c, device, 0), device);
      int status = EnqueueDispatch(c, World::Name(ep), "", {device, device, 0}, t, stream);
      if (status == 0) status = aclrtSynchronizeStream(stream);
      area->status[device] = status;
      std::snprintf(area->message[device], sizeof(area->message[device]), "%s", aclGetRecentErrMsg());
      _exit(0);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) waitpid(pid, nullptr, 0);
  for (int device : {0, 1}) {
    const std::string message = area->message[device];
    EXPECT_EQ(area->status[device], ACL_ERROR_RT_SUSPECT_REMOTE_ERROR) << device << ": " << message;
    EXPECT_NE(message.find("[2]"), std::string::npos) << message;
    EXPECT_TRUE(message.find("died") != std::string::npos || message.find("dead") != std::string::npos) << message;
  }
  munmap(memory, sizeof(SharedArea));
}

Config Make(int ep, int tp, int shared_ranks, int moe_experts, int k, int quant, int token_nums_type, bool mask,
            aclDataType dtype, uint32_t seed) {
  Config c;
  c.ep = ep;
  c.tp = tp;
  c.shared_ranks = shared_ranks;
  c.shared_experts = shared_ranks > 0 ? 1 : 0;
  c.moe_experts = moe_experts;
  c.k = k;
  c.bs = 4;
  c.quant_mode = quant;
  c.token_nums_type = token_nums_type;
  c.mask = mask;
  c.dtype = dtype;
  c.seed = seed;
  return c;
}

INSTANTIATE_TEST_SUITE_P(Configs, MoeProcessTest,
                         ::testing::Values(Make(4, 1, 1, 6, 3, 0, 0, true, ACL_BF16, 51),      // L 2, shared
                                           Make(4, 2, 0, 4, 2, 0, 1, false, ACL_BF16, 52),     // TP 2
                                           Make(4, 2, 1, 3, 2, 2, 0, true, ACL_FLOAT16, 53)),  // TP 2, int8
                         [](const ::testing::TestParamInfo<Config>& info) {
                           const Config& c = info.param;
                           return "EP" + std::to_string(c.ep) + "_TP" + std::to_string(c.tp) + "_shared" +
                                  std::to_string(c.shared_ranks) + "_quant" + std::to_string(c.quant_mode) + "_seed" +
                                  std::to_string(c.seed);
                         });

}  // namespace
}  // namespace distbarrier::testing::moe
