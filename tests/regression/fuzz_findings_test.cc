// Regression tests for bugs found by the fuzzers of fuzz/ (inputs in fuzz/regressions/) and
// while writing them. Each fails (or, where noted, only fails under the asan preset) until its
// bug is fixed. Wire with:
//   distbarrier_add_test(fuzz_findings_test regression/fuzz_findings_test.cc LABEL regression)
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <dirent.h>
#include <future>
#include <thread>

#include "comm/bootstrap/root_info.h"
#include "comm/bootstrap/wire.h"
#include "test_support.h"

namespace distbarrier::testing {
namespace {

int OpenFdCount() {
  DIR* dir = opendir("/proc/self/fd");
  int count = 0;
  while (readdir(dir) != nullptr) ++count;
  closedir(dir);
  return count;
}

// --- stage 1 ---

// fuzz/regressions/stage1-tensor-offset-overflow. Tensor::FirstElement (src/op/tensor.cc)
// computes offset * element size in int64_t and adds it to the data pointer; PrepareBarrier
// calls it for timeOut and elasticInfo with the user's offset unchecked, so a huge offset is
// signed overflow (UB) in stage 1 and, if it does not overflow, a wild pointer the barrier task
// dereferences at run time. Only the asan preset (UBSan) sees the overflow itself.
TEST_F(RuntimeTest, HugeTensorOffsetIsRefusedNotOverflowed) {
  std::vector<HcclComm> comms = MakeGroup(FirstDevices(2));
  ASSERT_ACL_OK(aclrtSetDevice(0));
  DeviceTensor x_ref = MakeTensor(ACL_FLOAT16, {1});
  int32_t value = 1000;
  int64_t shape = 1, stride = 1;
  aclTensor* timeout = aclCreateTensor(&shape, 1, ACL_INT32, &stride, INT64_MAX / 2, ACL_FORMAT_ND, &shape, 1, &value);
  uint64_t workspace_size = 0;
  aclOpExecutor* executor = nullptr;
  aclnnStatus status = aclnnDistributeBarrierV2GetWorkspaceSize(x_ref.tensor, timeout, nullptr, CommName(comms[0]).c_str(),
                                                                2, &workspace_size, &executor);
  EXPECT_EQ(status, ACLNN_ERR_PARAM_INVALID) << "a timeOut whose first element lies 2^62 elements away was accepted";
  if (executor != nullptr) aclDestroyAclOpExecutor(executor);
  aclDestroyTensor(timeout);
}

// fuzz/regressions/stage1-unterminated-group-overread. PrepareBarrier bounds its scan of the
// group name with strnlen(group, 128), but the "128 bytes or longer" message formats the group
// with "{:.40}" from a const char*, and fmt takes strlen of it first: a group buffer of 128
// non-NUL bytes is read past its end. The buffer here ends at a PROT_NONE page, so the
// over-read is a SIGSEGV in any build.
TEST_F(RuntimeTest, LongUnterminatedGroupIsNotReadPastItsFirst128Bytes) {
  std::vector<HcclComm> comms = MakeGroup(FirstDevices(2));
  ASSERT_ACL_OK(aclrtSetDevice(0));
  DeviceTensor x_ref = MakeTensor(ACL_FLOAT16, {1});
  const long page = sysconf(_SC_PAGESIZE);
  auto* pages = static_cast<char*>(mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(pages, MAP_FAILED);
  ASSERT_EQ(mprotect(pages + page, page, PROT_NONE), 0);
  char* group = pages + page - 128;  // 128 bytes, no NUL, then the guard page
  std::memset(group, 'g', 128);
  uint64_t workspace_size = 0;
  aclOpExecutor* executor = nullptr;
  EXPECT_EQ(aclnnDistributeBarrierGetWorkspaceSize(x_ref.tensor, group, 2, &workspace_size, &executor),
            ACLNN_ERR_PARAM_INVALID);
  munmap(pages, 2 * page);
}

// --- bootstrap ---

using comm::wire::Hello;

int ConnectTo(const std::string& name) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  socklen_t length = 0;
  sockaddr_un address = comm::wire::AbstractAddress(name, &length);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), length) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// fuzz/regressions/hello-pending-peer-fd-leak. RunRoot (src/comm/bootstrap/bootstrap.cc)
// closes the descriptors of connections still in `pending` (accepted, hello incomplete) only
// on its error paths; when the group completes they stay open in rank 0's process for good,
// and the peer behind them waits for an answer that never comes.
TEST_F(RuntimeTest, RankZeroClosesIncompletePeersWhenTheGroupCompletes) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  aclrtContext context = nullptr;
  ASSERT_ACL_OK(aclrtGetCurrentContext(&context));
  // The process's first communicator opens the status socket (comm/diagnosis), which stays for
  // the life of the process: open it before counting, so that only the peers' descriptors count.
  HcclCommDestroy(MakeGroup(FirstDevices(1))[0]);
  const int fds_before = OpenFdCount();
  HcclRootInfo root{};
  ASSERT_EQ(HcclGetRootInfo(&root), HCCL_SUCCESS);
  const auto info = std::get<comm::RootInfo>(comm::RootInfo::Decode(root));
  auto rank0 = std::async(std::launch::async, [&] {
    aclrtSetCurrentContext(context);
    HcclComm comm = nullptr;
    HcclResult result = HcclCommInitRootInfo(2, &root, 0, &comm);
    return std::make_pair(result, comm);
  });
  const int silent = ConnectTo(info.address);  // connects, says nothing, stays open
  ASSERT_GE(silent, 0);
  Hello hello{};
  std::memcpy(hello.magic, comm::wire::kHelloMagic, 8);
  hello.rank = 1;
  hello.rank_count = 2;
  hello.job_id = info.job_id;
  std::memcpy(hello.secret, info.secret.data(), sizeof(hello.secret));
  const int rank1 = ConnectTo(info.address);  // accepted after `silent` (FIFO backlog)
  ASSERT_GE(rank1, 0);
  ASSERT_EQ(send(rank1, &hello, sizeof(hello), MSG_NOSIGNAL), static_cast<ssize_t>(sizeof(hello)));
  // Rank 1's side of the handshake: take the offer (and its memfd), say ready.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  comm::wire::ReplyHeader offer{};
  int memory_fd = -1;
  ASSERT_EQ(comm::wire::ReceiveAll(rank1, &offer, sizeof(offer), &memory_fd, deadline), comm::wire::Received::kAll);
  EXPECT_EQ(offer.status, HCCL_SUCCESS);
  if (memory_fd >= 0) close(memory_fd);
  comm::wire::Ready ready{};
  std::memcpy(ready.magic, comm::wire::kReadyMagic, sizeof(ready.magic));
  ready.rank = 1;
  ASSERT_TRUE(comm::wire::SendAll(rank1, &ready, sizeof(ready), -1, deadline));
  auto [result, comm] = rank0.get();
  ASSERT_EQ(result, HCCL_SUCCESS) << aclGetRecentErrMsg();
  close(rank1);  // (the verdict is dropped with the socket)
  pollfd waiting{silent, POLLIN, 0};
  EXPECT_EQ(poll(&waiting, 1, 2000), 1) << "the silent peer got neither an answer nor EOF";
  close(silent);
  ASSERT_EQ(HcclCommDestroy(comm), HCCL_SUCCESS);
  EXPECT_EQ(OpenFdCount(), fds_before) << "rank 0 kept descriptors of peers that never finished their hello";
}

// Found while writing fuzz_hello (its own poll() saw libFuzzer's timer signal): SendAll and
// ReceiveAll in src/comm/bootstrap/bootstrap.cc treat poll() < 0 as the end, so a signal that
// arrives while rank 1 waits for rank 0's answer (EINTR) fails HcclCommInitRootInfo at once
// with HCCL_E_TIMEOUT "did not complete the group within the connect timeout". Programs with
// profilers (SIGPROF), timers or child processes (SIGCHLD) get spurious init failures.
std::atomic<int>* g_signals_seen = nullptr;  // the child's handler counts into shared memory

TEST(BootstrapSignals, RankOneSurvivesSignalsWhileWaitingForRankZero) {
  struct Shared {
    std::atomic<int> ready;
    std::atomic<int> in_init;
    std::atomic<int> signals;
    HcclRootInfo root;
    int rank1_result;
    char message[512];
  };
  auto* shared = static_cast<Shared*>(
      mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(shared, MAP_FAILED);
  new (shared) Shared{};
  const pid_t child = fork();
  if (child == 0) {  // rank 1, its main thread interrupted by a no-op signal every 5 ms
    struct sigaction action {};
    g_signals_seen = &shared->signals;
    action.sa_handler = [](int) { g_signals_seen->fetch_add(1, std::memory_order_relaxed); };
    sigaction(SIGUSR1, &action, nullptr);  // no SA_RESTART (poll() is never restarted anyway)
    const pthread_t main_thread = pthread_self();
    std::atomic<bool> done{false};
    std::thread pester([&] {
      while (!done.load()) {
        pthread_kill(main_thread, SIGUSR1);
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    });
    aclrtSetDevice(0);
    while (shared->ready.load() == 0) std::this_thread::yield();
    HcclComm comm = nullptr;
    shared->in_init.store(1);
    shared->rank1_result = HcclCommInitRootInfo(2, &shared->root, 1, &comm);
    std::snprintf(shared->message, sizeof(shared->message), "%s", aclGetRecentErrMsg());
    done.store(true);
    pester.join();
    _exit(0);
  }
  ASSERT_ACL_OK(aclrtSetDevice(0));
  ASSERT_EQ(HcclGetRootInfo(&shared->root), HCCL_SUCCESS);
  shared->ready.store(1);
  // Rank 0 comes late (a slow process): only once rank 1 is inside its init and has taken 20
  // signals there, so that it waits for rank 0's answer while they arrive.
  static_assert(std::atomic<int>::is_always_lock_free, "the handler's counter must be signal-safe");
  while (shared->in_init.load() == 0) std::this_thread::yield();
  const int signals_at_init = shared->signals.load();
  while (shared->signals.load() < signals_at_init + 20) std::this_thread::yield();
  HcclComm comm = nullptr;
  const HcclResult rank0 = HcclCommInitRootInfo(2, &shared->root, 0, &comm);
  int wait_status = 0;
  waitpid(child, &wait_status, 0);
  EXPECT_EQ(shared->rank1_result, HCCL_SUCCESS) << shared->message;
  EXPECT_EQ(rank0, HCCL_SUCCESS) << aclGetRecentErrMsg();
  if (rank0 == HCCL_SUCCESS) HcclCommDestroy(comm);
  aclFinalize();
  munmap(shared, sizeof(Shared));
}

}  // namespace
}  // namespace distbarrier::testing
