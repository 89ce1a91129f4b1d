// A job for the live-diagnosis tests (check_status.py): ranks that run barriers until one of
// them stops in a chosen way.
//
//   status_program processes loop            (under distbarrier-run) barriers until killed
//   status_program processes stall R M       rank R stops after M barriers (pause), the others go on
//   status_program processes die R M         rank R kills itself (SIGKILL) after M barriers
//   status_program threads N stall R M       N ranks as threads of one process; rank R stops after M
//   status_program threads N abort M         N thread ranks run M barriers, then the process aborts
//   status_program threads N segv M          the same, then the process raises SIGSEGV
//
// Each rank prints "rank R pid P" once it has joined, then "rank R passed M" when it has passed
// barrier M in the stall/die/abort modes (the tests wait for those lines, never for time).
// Every barrier is synchronized, so a rank's sequence advances one barrier at a time. In the
// process modes the ranks that keep going ignore SIGTERM: a peer's failure makes the launcher
// send it, and what the test wants to see is how the barrier itself ends (timeout, peer died).
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "acl/acl.h"
#include "aclnnop/aclnn_distribute_barrier.h"
#include "hccl/hccl.h"

namespace {

[[noreturn]] void Fail(const char* what, int status) {
  std::fprintf(stderr, "status_program: %s failed: %d: %s\n", what, status, aclGetRecentErrMsg());
  std::fflush(stderr);
  std::exit(1);
}

#define CHECK_OK(call)                      \
  do {                                      \
    const int status_ = (call);             \
    if (status_ != 0) Fail(#call, status_); \
  } while (0)

int EnvInt(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr) {
    std::fprintf(stderr, "%s is not set: start this program with distbarrier-run\n", name);
    std::exit(2);
  }
  return std::atoi(value);
}

void Transfer(int fd, char* bytes, size_t size, bool send) {
  while (size > 0) {
    const ssize_t done = send ? write(fd, bytes, size) : read(fd, bytes, size);
    if (done <= 0) Fail("root info transfer", -1);
    bytes += done;
    size -= static_cast<size_t>(done);
  }
  close(fd);
}

// One rank's barrier loop: `count` barriers (forever when negative), each synchronized.
void RunBarriers(const char* group, int world_size, int rank, long count, bool announce_last) {
  aclrtStream stream = nullptr;
  CHECK_OK(aclrtCreateStream(&stream));
  void* data = nullptr;
  CHECK_OK(aclrtMalloc(&data, 64, ACL_MEM_MALLOC_HUGE_FIRST));
  int64_t shape[1] = {16};
  aclTensor* x_ref = aclCreateTensor(shape, 1, ACL_FLOAT, nullptr, 0, ACL_FORMAT_ND, shape, 1, data);
  for (long done = 0; count < 0 || done < count; ++done) {
    uint64_t workspace_size = 0;
    aclOpExecutor* executor = nullptr;
    CHECK_OK(aclnnDistributeBarrierGetWorkspaceSize(x_ref, group, world_size, &workspace_size, &executor));
    CHECK_OK(aclnnDistributeBarrier(nullptr, workspace_size, executor, stream));
    CHECK_OK(aclrtSynchronizeStream(stream));
    if (count < 0) usleep(200);  // pacing, so that an endless job leaves the cores to the others
  }
  if (announce_last) {
    std::printf("rank %d passed %ld\n", rank, count);
    std::fflush(stdout);
  }
}

int Processes(int argc, char** argv) {
  const std::string mode = argc > 2 ? argv[2] : "loop";
  const int stop_rank = argc > 3 ? std::atoi(argv[3]) : -1;
  const long stop_after = argc > 4 ? std::atol(argv[4]) : -1;
  const int rank = EnvInt("RANK");
  const int world_size = EnvInt("WORLD_SIZE");
  if (mode != "loop" && rank != stop_rank) signal(SIGTERM, SIG_IGN);

  CHECK_OK(aclInit(nullptr));
  CHECK_OK(aclrtSetDevice(0));
  HcclRootInfo root;
  if (rank == 0) {
    CHECK_OK(HcclGetRootInfo(&root));
    Transfer(EnvInt("DISTBARRIER_ROOT_INFO_OUT_FD"), root.internal, sizeof(root.internal), true);
  } else {
    Transfer(EnvInt("DISTBARRIER_ROOT_INFO_IN_FD"), root.internal, sizeof(root.internal), false);
  }
  HcclComm comm = nullptr;
  CHECK_OK(HcclCommInitRootInfo(world_size, &root, rank, &comm));
  char group[128] = {0};
  CHECK_OK(HcclGetCommName(comm, group));
  std::printf("rank %d pid %d\n", rank, static_cast<int>(getpid()));
  std::fflush(stdout);

  if (mode == "loop" || rank != stop_rank) {
    RunBarriers(group, world_size, rank, -1, false);
    return 0;
  }
  RunBarriers(group, world_size, rank, stop_after, true);
  if (mode == "die") raise(SIGKILL);
  for (;;) pause();  // stall: until the launcher ends the job
}

int Threads(int argc, char** argv) {
  if (argc < 5) return 2;
  const int ranks = std::atoi(argv[2]);
  const std::string mode = argv[3];
  const int stop_rank = mode == "stall" && argc > 5 ? std::atoi(argv[4]) : -1;
  const long stop_after = std::atol(argv[mode == "stall" ? 5 : 4]);
  CHECK_OK(aclInit(nullptr));
  std::vector<int32_t> devices(static_cast<size_t>(ranks));
  for (int rank = 0; rank < ranks; ++rank) devices[rank] = rank;
  std::vector<HcclComm> comms(static_cast<size_t>(ranks));
  CHECK_OK(HcclCommInitAll(static_cast<uint32_t>(ranks), devices.data(), comms.data()));
  char group[128] = {0};
  CHECK_OK(HcclGetCommName(comms[0], group));
  std::printf("threads pid %d\n", static_cast<int>(getpid()));
  std::fflush(stdout);
  std::vector<std::thread> threads;
  for (int rank = 0; rank < ranks; ++rank) {
    threads.emplace_back([&, rank] {
      CHECK_OK(aclrtSetDevice(rank));
      const bool stops = mode == "abort" || mode == "segv" || rank == stop_rank;
      RunBarriers(group, ranks, rank, stops ? stop_after : -1, stops);
    });
  }
  if (mode == "abort" || mode == "segv") {
    for (std::thread& thread : threads) thread.join();
    if (mode == "segv") {
      raise(SIGSEGV);  // the fatal-signal path other than abort's
      std::_Exit(3);   // reached only if the signal was swallowed
    }
    std::abort();
  }
  for (;;) pause();  // stall: until the test kills the process
}

}  // namespace

int main(int argc, char** argv) {
  const std::string kind = argc > 1 ? argv[1] : "";
  if (kind == "processes") return Processes(argc, argv);
  if (kind == "threads") return Threads(argc, argv);
  std::fprintf(stderr, "usage: see the comment at the top of status_program.cc\n");
  return 2;
}
