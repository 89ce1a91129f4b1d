// The root-info bootstrap against hostile and careless peers (issue 16, items 7-10): a
// listener that is not rank 0, shared memory that could be resized under us, descriptor
// exhaustion and idle connections at rank 0, ranks that leave or arrive late.
//
// Fake listeners and fake peers are plain sockets in this test; ranks that must be separate
// processes are forked before they touch the runtime where the test allows it, and report
// through an anonymous MAP_SHARED area. Nothing sleeps to synchronize.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <string>
#include <thread>

#include "comm/barrier_window.h"
#include "comm/bootstrap/root_info.h"
#include "comm/group.h"
#include "comm/bootstrap/wire.h"
#include "comm/shared_memory.h"
#include "test_support.h"

namespace distbarrier::testing {
namespace {

using ::testing::HasSubstr;
using comm::RootInfo;
using comm::wire::Hello;
using comm::wire::ReplyHeader;

// A root info as HcclGetRootInfo would make it, but for a listener of our choosing.
HcclRootInfo ForgedRootInfo(const std::string& address, int32_t root_pid) {
  RootInfo info;
  info.job_id = 0x5eed0000u + static_cast<uint64_t>(getpid());
  for (size_t i = 0; i < info.secret.size(); ++i) info.secret[i] = static_cast<uint8_t>(i * 7 + 1);
  info.boot_id = comm::HostBootId();
  info.netns = comm::HostNetns();
  info.address = address;
  info.root_pid = root_pid;
  HcclRootInfo bytes{};
  info.Encode(&bytes);
  return bytes;
}

std::string UniqueAddress(const char* what) {
  static std::atomic<int> counter{0};
  return "distbarrier-test-" + std::to_string(getpid()) + "-" + what + "-" + std::to_string(++counter);
}

int Listen(const std::string& address) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  socklen_t length = 0;
  sockaddr_un name = comm::wire::AbstractAddress(address, &length);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&name), length) != 0 || listen(fd, 64) != 0) return -1;
  return fd;
}

// Accepts one connection within `limit_ms` (-1 if none came).
int AcceptWithin(int listener, int limit_ms) {
  pollfd waiting{listener, POLLIN, 0};
  if (poll(&waiting, 1, limit_ms) <= 0) return -1;
  return accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
}

// Reads until EOF (bounded by `limit_ms` of silence); returns the bytes received.
size_t DrainUntilEof(int fd, int limit_ms) {
  size_t total = 0;
  char buffer[512];
  for (;;) {
    pollfd waiting{fd, POLLIN, 0};
    if (poll(&waiting, 1, limit_ms) <= 0) return total;
    const ssize_t got = recv(fd, buffer, sizeof(buffer), 0);
    if (got <= 0) return total;
    total += static_cast<size_t>(got);
  }
}

// Joins as `rank` of `ranks` with `root` from this thread (device 0); returns the result.
struct JoinOutcome {
  HcclResult result;
  std::string message;
};
JoinOutcome JoinWith(const HcclRootInfo& root, uint32_t ranks, uint32_t rank, int device = 0) {
  if (aclrtSetDevice(device) != ACL_SUCCESS) return {HCCL_E_RUNTIME, aclGetRecentErrMsg()};
  HcclComm comm = nullptr;
  HcclResult result = HcclCommInitRootInfo(ranks, &root, rank, &comm);
  JoinOutcome outcome{result, aclGetRecentErrMsg()};
  if (comm != nullptr) HcclCommDestroy(comm);
  return outcome;
}

class BootstrapTest : public RuntimeTest {
 protected:
  void SetUp() override { setenv("DISTBARRIER_CONNECT_TIMEOUT_S", "20", 1); }
  void TearDown() override {
    unsetenv("DISTBARRIER_CONNECT_TIMEOUT_S");
    RuntimeTest::TearDown();
  }
};

// --- 7: a listener that is not rank 0 never gets the secret ---

TEST_F(BootstrapTest, ListenerOfAnotherPidThanTheRootInfoNamesNeverReceivesTheSecret) {
  // This process listens, but the root info says rank 0 is our parent process.
  const std::string address = UniqueAddress("impostor");
  const int listener = Listen(address);
  ASSERT_GE(listener, 0) << std::strerror(errno);
  const HcclRootInfo forged = ForgedRootInfo(address, getppid());
  size_t received = 0;
  bool connected = false;
  std::thread impostor([&] {
    const int fd = AcceptWithin(listener, 20000);
    connected = fd >= 0;
    if (fd >= 0) {
      received = DrainUntilEof(fd, 20000);
      close(fd);
    }
  });
  const JoinOutcome outcome = JoinWith(forged, 2, 1);
  impostor.join();
  close(listener);
  EXPECT_TRUE(connected);
  EXPECT_EQ(received, 0u) << "the impostor received bytes (the hello carries the secret)";
  EXPECT_EQ(outcome.result, HCCL_E_TCP_CONNECT);
  EXPECT_THAT(outcome.message, HasSubstr("is pid " + std::to_string(getpid())));
  EXPECT_THAT(outcome.message, HasSubstr("names rank 0 as pid " + std::to_string(getppid())));
}

TEST_F(BootstrapTest, ProcessBindingTheRootsNameAfterTheRootClosedItNeverReceivesTheSecret) {
  ASSERT_ACL_OK(aclrtSetDevice(0));
  HcclRootInfo root;
  ASSERT_EQ(HcclGetRootInfo(&root), HCCL_SUCCESS);
  const RootInfo info = std::get<RootInfo>(RootInfo::Decode(root));
  ASSERT_ACL_OK(aclFinalize());  // rank 0 gives up its unused root info: the name is free
  int ready[2], report[2];
  ASSERT_EQ(pipe2(ready, O_CLOEXEC), 0);
  ASSERT_EQ(pipe2(report, O_CLOEXEC), 0);
  const pid_t squatter = fork();
  if (squatter == 0) {  // only async-signal-safe calls until _exit
    const int listener = Listen(info.address);
    const char ok = listener >= 0 ? 'y' : 'n';
    (void)!write(ready[1], &ok, 1);
    int64_t received = -1;
    const int fd = listener >= 0 ? AcceptWithin(listener, 20000) : -1;
    if (fd >= 0) received = static_cast<int64_t>(DrainUntilEof(fd, 20000));
    (void)!write(report[1], &received, sizeof(received));
    _exit(0);
  }
  char ok = 0;
  ASSERT_EQ(read(ready[0], &ok, 1), 1);
  ASSERT_EQ(ok, 'y');
  const JoinOutcome outcome = JoinWith(root, 2, 1);
  int64_t received = -2;
  ASSERT_EQ(read(report[0], &received, sizeof(received)), static_cast<ssize_t>(sizeof(received)));
  waitpid(squatter, nullptr, 0);
  for (int fd : {ready[0], ready[1], report[0], report[1]}) close(fd);
  EXPECT_EQ(received, 0) << "the squatter received bytes (-1: nobody connected)";
  EXPECT_EQ(outcome.result, HCCL_E_TCP_CONNECT) << outcome.message;
  EXPECT_THAT(outcome.message, HasSubstr("is pid " + std::to_string(squatter)));
}

// A fake rank 0 in this process (so its pid is the one the root info names) that answers the
// hello with `memory_fd` as the group's memory, then reads until the peer closes.
class FakeRoot {
 public:
  explicit FakeRoot(int memory_fd) : address_(UniqueAddress("fakeroot")), listener_(Listen(address_)) {
    thread_ = std::thread([this, memory_fd] {
      const int fd = AcceptWithin(listener_, 20000);
      if (fd < 0) return;
      Hello hello{};
      if (recv(fd, &hello, sizeof(hello), MSG_WAITALL) == static_cast<ssize_t>(sizeof(hello))) {
        ReplyHeader reply{};
        std::memcpy(reply.magic, comm::wire::kReplyMagic, sizeof(reply.magic));
        reply.status = HCCL_SUCCESS;
        reply.rank_count = hello.rank_count;
        iovec chunk{&reply, sizeof(reply)};
        msghdr message{};
        message.msg_iov = &chunk;
        message.msg_iovlen = 1;
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
        message.msg_control = control;
        message.msg_controllen = sizeof(control);
        cmsghdr* header = CMSG_FIRSTHDR(&message);
        header->cmsg_level = SOL_SOCKET;
        header->cmsg_type = SCM_RIGHTS;
        header->cmsg_len = CMSG_LEN(sizeof(int));
        std::memcpy(CMSG_DATA(header), &memory_fd, sizeof(int));
        sent_ = sendmsg(fd, &message, MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof(reply));
      }
      DrainUntilEof(fd, 20000);
      close(fd);
    });
  }
  ~FakeRoot() {
    thread_.join();
    close(listener_);
  }
  HcclRootInfo Root() const { return ForgedRootInfo(address_, getpid()); }
  bool Sent() const { return sent_; }

 private:
  std::string address_;
  int listener_;
  bool sent_ = false;
  std::thread thread_;
};

int MemfdOf(size_t bytes, int seals) {
  const int fd = memfd_create("fake-group", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(ftruncate(fd, static_cast<off_t>(bytes)), 0);
  if (seals != 0) {
    EXPECT_EQ(fcntl(fd, F_ADD_SEALS, seals), 0);
  }
  return fd;
}

TEST_F(BootstrapTest, UnsealedGroupMemoryIsRefusedBeforeMapping) {
  const int memory = MemfdOf(comm::GroupMemoryBytes(2), 0);
  JoinOutcome outcome;
  {
    FakeRoot root(memory);
    outcome = JoinWith(root.Root(), 2, 1);
    // The peer closes after refusing, which ends the fake root's read.
  }
  close(memory);
  EXPECT_EQ(outcome.result, HCCL_E_MEMORY);
  EXPECT_THAT(outcome.message, HasSubstr("not sealed against resizing"));
}

TEST_F(BootstrapTest, SealedGroupMemoryOfTheWrongSizeIsRefused) {
  const size_t bytes = comm::GroupMemoryBytes(2);
  const int memory = MemfdOf(bytes * 2, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
  JoinOutcome outcome;
  {
    FakeRoot root(memory);
    outcome = JoinWith(root.Root(), 2, 1);
  }
  close(memory);
  EXPECT_EQ(outcome.result, HCCL_E_MEMORY);
  EXPECT_THAT(outcome.message, HasSubstr(std::to_string(bytes * 2) + " bytes, " + std::to_string(bytes) + " expected"));
}

TEST_F(BootstrapTest, GroupMemoryIsMadeSealedAgainstResizing) {
  std::string error;
  auto memory = comm::SharedMemory::Create(4096, &error);
  ASSERT_NE(memory, nullptr) << error;
  EXPECT_NE(ftruncate(memory->Fd(), 0), 0);
  EXPECT_EQ(errno, EPERM);
  EXPECT_NE(fcntl(memory->Fd(), F_ADD_SEALS, F_SEAL_WRITE), 0) << "the seals themselves must be sealed";
}

// --- processes: a shared area for reports, bounded waits ---

struct RankReport {
  int status;
  char message[512];
  int64_t cpu_ms;
  int64_t wall_ms;
};

struct Area {
  std::atomic<int> root_ready;
  std::atomic<int> limited;  // rank 0 has limited its descriptors
  std::atomic<int> joined;   // ranks that returned from HcclCommInitRootInfo
  HcclRootInfo root;
  RankReport reports[8];
};

Area* NewArea() {
  void* memory = mmap(nullptr, sizeof(Area), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  EXPECT_NE(memory, MAP_FAILED);
  return new (memory) Area{};
}

void Report(Area* area, int slot, int status, int64_t cpu_ms = 0, int64_t wall_ms = 0) {
  area->reports[slot].status = status;
  area->reports[slot].cpu_ms = cpu_ms;
  area->reports[slot].wall_ms = wall_ms;
  std::snprintf(area->reports[slot].message, sizeof(area->reports[slot].message), "%s", aclGetRecentErrMsg());
}

void AwaitFlag(const std::atomic<int>& flag) {
  while (flag.load(std::memory_order_acquire) == 0) std::this_thread::yield();
}

pid_t Spawn(const std::function<int()>& body) {
  const pid_t pid = fork();
  if (pid == 0) _exit(body());
  return pid;
}

// Waits up to `limit_s` for `pid` to exit; kills it and returns false if it does not.
bool ExitsWithin(pid_t pid, int limit_s, int* wait_status = nullptr) {
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  pollfd waiting{pidfd, POLLIN, 0};
  const bool exited = pidfd >= 0 && poll(&waiting, 1, limit_s * 1000) > 0;
  if (!exited) kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  if (pidfd >= 0) close(pidfd);
  if (wait_status != nullptr) *wait_status = status;
  return exited;
}

int64_t CpuMs() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000 +
         (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1000;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// UBSan's vptr check probes memory through a pipe: with no descriptor left it takes every
// virtual call for one on a bad object. The asan preset (ASan + UBSan) therefore skips the
// tests that leave no descriptor at all; the plain and tsan builds run them.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kCanExhaustDescriptors = false;
#else
constexpr bool kCanExhaustDescriptors = true;
#endif

// Leaves exactly `free_count` descriptors this process may still open (RLIMIT_NOFILE 1024,
// the rest filled with /dev/null).
void LeaveFreeDescriptors(int free_count) {
  rlimit limit{1024, 1024};
  setrlimit(RLIMIT_NOFILE, &limit);
  std::vector<int> filler;
  for (;;) {
    const int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) break;
    filler.push_back(fd);
  }
  for (int i = 0; i < free_count && !filler.empty(); ++i) {
    close(filler.back());
    filler.pop_back();
  }
}

// In a rank process: joins as `rank` of `ranks` (root info from the area), then runs one
// barrier; reports into slot `rank`.
int JoinAndBarrier(Area* area, int rank, int ranks) {
  if (aclrtSetDevice(0) != ACL_SUCCESS) return 10;
  AwaitFlag(area->root_ready);
  HcclRootInfo root = area->root;
  HcclComm comm = nullptr;
  HcclResult result = HcclCommInitRootInfo(static_cast<uint32_t>(ranks), &root, static_cast<uint32_t>(rank), &comm);
  if (result != HCCL_SUCCESS) {
    Report(area, rank, result);
    return 1;
  }
  aclrtStream stream = NewStream();
  int status = HcclBarrier(comm, stream);
  if (status == 0) status = aclrtSynchronizeStream(stream);
  Report(area, rank, status);
  HcclCommDestroy(comm);
  aclFinalize();
  return status == 0 ? 0 : 2;
}

void PublishRoot(Area* area) {
  HcclRootInfo root;
  if (HcclGetRootInfo(&root) != HCCL_SUCCESS) _exit(11);
  area->root = root;
  area->root_ready.store(1, std::memory_order_release);
}

int ConnectRaw(const std::string& address) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  socklen_t length = 0;
  sockaddr_un name = comm::wire::AbstractAddress(address, &length);
  if (connect(fd, reinterpret_cast<sockaddr*>(&name), length) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

Hello ValidHello(const RootInfo& info, uint32_t rank, uint32_t ranks) {
  Hello hello{};
  std::memcpy(hello.magic, comm::wire::kHelloMagic, sizeof(hello.magic));
  hello.rank = rank;
  hello.rank_count = ranks;
  hello.job_id = info.job_id;
  std::memcpy(hello.secret, info.secret.data(), sizeof(hello.secret));
  return hello;
}

class BootstrapProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    area_ = NewArea();
    setenv("DISTBARRIER_CONNECT_TIMEOUT_S", "20", 1);
  }
  void TearDown() override {
    unsetenv("DISTBARRIER_CONNECT_TIMEOUT_S");
    munmap(area_, sizeof(Area));
  }
  Area* area_ = nullptr;
};

// --- 8: descriptors, idle connections, ranks that leave ---

TEST_F(BootstrapProcessTest, AcceptFailingForWantOfDescriptorsNeitherSpinsNorOutlivesTheConnectTimeout) {
  if (!kCanExhaustDescriptors) GTEST_SKIP() << "UBSan cannot run without a free descriptor";
  setenv("DISTBARRIER_CONNECT_TIMEOUT_S", "1", 1);
  const pid_t root = Spawn([&] {
    if (aclrtSetDevice(0) != ACL_SUCCESS) return 10;
    PublishRoot(area_);
    LeaveFreeDescriptors(0);
    area_->limited.store(1, std::memory_order_release);
    HcclRootInfo info = area_->root;
    HcclComm comm = nullptr;
    const int64_t cpu = CpuMs(), wall = NowMs();
    HcclResult result = HcclCommInitRootInfo(2, &info, 0, &comm);
    Report(area_, 0, result, CpuMs() - cpu, NowMs() - wall);
    return 0;
  });
  // Rank 1 connects (the listener turns readable) but rank 0 cannot accept it.
  const pid_t peer = Spawn([&] {
    AwaitFlag(area_->limited);
    return JoinAndBarrier(area_, 1, 2);
  });
  const bool root_returned = ExitsWithin(root, 60);
  ExitsWithin(peer, 60);
  ASSERT_TRUE(root_returned) << "rank 0 was still in HcclCommInitRootInfo 60 s after a 1 s connect timeout";
  EXPECT_EQ(area_->reports[0].status, HCCL_E_TIMEOUT) << area_->reports[0].message;
  EXPECT_THAT(area_->reports[0].message, HasSubstr("ranks [1] of 2 never connected"));
  // A bound, not a speed claim: spinning on the readable listener costs a core for the whole
  // wait; backing off costs almost nothing.
  EXPECT_LT(area_->reports[0].cpu_ms * 4, area_->reports[0].wall_ms)
      << "rank 0 used " << area_->reports[0].cpu_ms << " ms of CPU in " << area_->reports[0].wall_ms << " ms";
}

TEST_F(BootstrapProcessTest, IdleConnectionsDoNotKeepARealRankOutWhenDescriptorsAreShort) {
  const pid_t root = Spawn([&] {
    if (aclrtSetDevice(0) != ACL_SUCCESS) return 10;
    PublishRoot(area_);
    LeaveFreeDescriptors(24);
    area_->limited.store(1, std::memory_order_release);
    return JoinAndBarrier(area_, 0, 2);
  });
  AwaitFlag(area_->limited);
  const RootInfo info = std::get<RootInfo>(RootInfo::Decode(area_->root));
  std::vector<int> idle;
  for (int i = 0; i < 150; ++i) idle.push_back(ConnectRaw(info.address));
  const pid_t peer = Spawn([&] { return JoinAndBarrier(area_, 1, 2); });
  int root_status = 0, peer_status = 0;
  const bool root_returned = ExitsWithin(root, 60, &root_status);
  ExitsWithin(peer, 60, &peer_status);
  for (int fd : idle) {
    if (fd >= 0) close(fd);
  }
  ASSERT_TRUE(root_returned) << "rank 0 did not finish within 60 s";
  for (int rank = 0; rank < 2; ++rank) {
    EXPECT_EQ(area_->reports[rank].status, 0) << "rank " << rank << ": " << area_->reports[rank].message;
  }
  EXPECT_TRUE(WIFEXITED(root_status) && WEXITSTATUS(root_status) == 0);
  EXPECT_TRUE(WIFEXITED(peer_status) && WEXITSTATUS(peer_status) == 0);
}

TEST_F(BootstrapProcessTest, ARankThatLeftBeforeTheGroupWasCompleteDoesNotCount) {
  constexpr int kRanks = 3;
  const pid_t root = Spawn([&] {
    if (aclrtSetDevice(0) != ACL_SUCCESS) return 10;
    PublishRoot(area_);
    return JoinAndBarrier(area_, 0, kRanks);
  });
  // A rank 1 that says hello and leaves at once (a process that gave up, or a copy of the
  // secret in an idle script): rank 0 must not count it. The real ranks come after it left,
  // so the group cannot complete while it is still connected.
  AwaitFlag(area_->root_ready);
  const RootInfo info = std::get<RootInfo>(RootInfo::Decode(area_->root));
  const int leaver = ConnectRaw(info.address);
  ASSERT_GE(leaver, 0);
  const Hello hello = ValidHello(info, 1, kRanks);
  ASSERT_EQ(send(leaver, &hello, sizeof(hello), MSG_NOSIGNAL), static_cast<ssize_t>(sizeof(hello)));
  close(leaver);
  const pid_t rank2 = Spawn([&] { return JoinAndBarrier(area_, 2, kRanks); });
  const pid_t rank1 = Spawn([&] { return JoinAndBarrier(area_, 1, kRanks); });
  for (pid_t pid : {root, rank2, rank1}) EXPECT_TRUE(ExitsWithin(pid, 60));
  for (int rank = 0; rank < kRanks; ++rank) {
    EXPECT_EQ(area_->reports[rank].status, 0) << "rank " << rank << ": " << area_->reports[rank].message;
  }
}

TEST_F(BootstrapProcessTest, AnotherUsersConnectionIsRefusedAtOnceWithoutWaitingForAHello) {
  if (getuid() != 0) GTEST_SKIP() << "needs root to connect as another user";
  const pid_t root = Spawn([&] {
    if (aclrtSetDevice(0) != ACL_SUCCESS) return 10;
    PublishRoot(area_);
    return JoinAndBarrier(area_, 0, 2);
  });
  AwaitFlag(area_->root_ready);
  const RootInfo info = std::get<RootInfo>(RootInfo::Decode(area_->root));
  const pid_t stranger = Spawn([&] {  // says nothing: the refusal must come anyway
    if (setuid(65534) != 0) return 20;
    const int fd = ConnectRaw(info.address);
    if (fd < 0) return 21;
    ReplyHeader reply{};
    const auto got = comm::wire::ReceiveAll(fd, &reply, sizeof(reply), nullptr,
                                            comm::wire::Clock::now() + std::chrono::seconds(20));
    area_->reports[2].status = got == comm::wire::Received::kAll ? reply.status : -1;
    std::snprintf(area_->reports[2].message, sizeof(area_->reports[2].message), "%s", reply.message);
    return 0;
  });
  int stranger_status = 0;
  ASSERT_TRUE(ExitsWithin(stranger, 60, &stranger_status));
  const pid_t peer = Spawn([&] { return JoinAndBarrier(area_, 1, 2); });
  EXPECT_TRUE(ExitsWithin(root, 60));
  EXPECT_TRUE(ExitsWithin(peer, 60));
  ASSERT_TRUE(WIFEXITED(stranger_status) && WEXITSTATUS(stranger_status) == 0) << stranger_status;
  EXPECT_EQ(area_->reports[2].status, HCCL_E_PARA) << area_->reports[2].message;
  EXPECT_THAT(area_->reports[2].message, HasSubstr("runs as uid 65534"));
  for (int rank = 0; rank < 2; ++rank) {
    EXPECT_EQ(area_->reports[rank].status, 0) << "rank " << rank << ": " << area_->reports[rank].message;
  }
}

// The secret check, seen from the wire (process_test's WrongSecret goes through JoinGroup): a
// hello that is right in every field but one byte of the secret is answered with a refusal
// naming the secret, and the job completes with the real rank.
TEST_F(BootstrapProcessTest, AHelloWithOneWrongSecretByteIsRefusedOnTheWire) {
  const pid_t root = Spawn([&] {
    if (aclrtSetDevice(0) != ACL_SUCCESS) return 10;
    PublishRoot(area_);
    return JoinAndBarrier(area_, 0, 2);
  });
  AwaitFlag(area_->root_ready);
  const RootInfo info = std::get<RootInfo>(RootInfo::Decode(area_->root));
  const int fd = ConnectRaw(info.address);
  ASSERT_GE(fd, 0);
  Hello hello = ValidHello(info, 1, 2);
  hello.secret[sizeof(hello.secret) - 1] ^= 0x01;
  ASSERT_EQ(send(fd, &hello, sizeof(hello), MSG_NOSIGNAL), static_cast<ssize_t>(sizeof(hello)));
  ReplyHeader reply{};
  const auto got =
      comm::wire::ReceiveAll(fd, &reply, sizeof(reply), nullptr, comm::wire::Clock::now() + std::chrono::seconds(20));
  close(fd);
  ASSERT_EQ(got, comm::wire::Received::kAll);
  reply.message[sizeof(reply.message) - 1] = '\0';
  EXPECT_NE(reply.status, HCCL_SUCCESS);
  EXPECT_THAT(std::string(reply.message), HasSubstr("secret"));
  const pid_t peer = Spawn([&] { return JoinAndBarrier(area_, 1, 2); });
  EXPECT_TRUE(ExitsWithin(root, 60));
  EXPECT_TRUE(ExitsWithin(peer, 60));
  for (int rank = 0; rank < 2; ++rank) {
    EXPECT_EQ(area_->reports[rank].status, 0) << "rank " << rank << ": " << area_->reports[rank].message;
  }
}

TEST_F(BootstrapProcessTest, PeerWatchWithoutAnEventfdFailsTheJoinInsteadOfHangingDestroy) {
  if (!kCanExhaustDescriptors) GTEST_SKIP() << "UBSan cannot run without a free descriptor";
  const pid_t root = Spawn([&] {
    if (aclrtSetDevice(0) != ACL_SUCCESS) return 10;
    PublishRoot(area_);
    // Closing the listener frees one descriptor, the group's memfd takes it: nothing is left
    // for the peer watch's eventfd.
    LeaveFreeDescriptors(0);
    HcclRootInfo info = area_->root;
    HcclComm comm = nullptr;
    HcclResult result = HcclCommInitRootInfo(1, &info, 0, &comm);
    Report(area_, 0, result);
    if (comm != nullptr) HcclCommDestroy(comm);
    return 0;
  });
  ASSERT_TRUE(ExitsWithin(root, 60)) << "HcclCommInitRootInfo or HcclCommDestroy hung";
  EXPECT_EQ(area_->reports[0].status, HCCL_E_SYSCALL) << area_->reports[0].message;
  EXPECT_THAT(area_->reports[0].message, HasSubstr("eventfd"));
}

// --- 10: a rank that comes after the group completed, or after rank 0 is gone ---

TEST_F(BootstrapProcessTest, ARankArrivingAfterTheGroupCompletedIsRefusedAtOnce) {
  setenv("DISTBARRIER_CONNECT_TIMEOUT_S", "120", 1);
  std::atomic<int>& late_done = area_->limited;  // the ranks stay alive until the late one is answered
  std::vector<pid_t> ranks;
  for (int rank = 0; rank < 2; ++rank) {
    ranks.push_back(Spawn([&, rank] {
      if (aclrtSetDevice(0) != ACL_SUCCESS) return 10;
      if (rank == 0) PublishRoot(area_);
      AwaitFlag(area_->root_ready);
      HcclRootInfo root = area_->root;
      HcclComm comm = nullptr;
      Report(area_, rank, HcclCommInitRootInfo(2, &root, static_cast<uint32_t>(rank), &comm));
      area_->joined.fetch_add(1, std::memory_order_release);
      AwaitFlag(late_done);
      return 0;
    }));
  }
  while (area_->joined.load(std::memory_order_acquire) < 2) std::this_thread::yield();
  ASSERT_EQ(area_->reports[0].status, 0) << area_->reports[0].message;
  ASSERT_EQ(area_->reports[1].status, 0) << area_->reports[1].message;
  const pid_t late = Spawn([&] {
    if (aclrtSetDevice(0) != ACL_SUCCESS) return 10;
    HcclRootInfo root = area_->root;
    HcclComm comm = nullptr;
    Report(area_, 2, HcclCommInitRootInfo(2, &root, 1, &comm));
    return 0;
  });
  const bool answered = ExitsWithin(late, 30);
  late_done.store(1, std::memory_order_release);
  for (pid_t pid : ranks) ExitsWithin(pid, 30);
  ASSERT_TRUE(answered) << "a rank after the group completed was not answered within 30 s (connect timeout 120 s)";
  EXPECT_EQ(area_->reports[2].status, HCCL_E_TCP_CONNECT) << area_->reports[2].message;
  EXPECT_THAT(area_->reports[2].message, HasSubstr("already complete"));
}

TEST_F(BootstrapProcessTest, ARankArrivingAfterRankZerosProcessExitedIsToldTheRootIsGone) {
  setenv("DISTBARRIER_CONNECT_TIMEOUT_S", "120", 1);
  const pid_t root = Spawn([&] {
    if (aclrtSetDevice(0) != ACL_SUCCESS) return 10;
    PublishRoot(area_);
    return 0;  // exits without ever joining
  });
  ASSERT_TRUE(ExitsWithin(root, 30));
  const pid_t late = Spawn([&] {
    if (aclrtSetDevice(0) != ACL_SUCCESS) return 10;
    HcclRootInfo info = area_->root;
    HcclComm comm = nullptr;
    Report(area_, 1, HcclCommInitRootInfo(2, &info, 1, &comm));
    return 0;
  });
  ASSERT_TRUE(ExitsWithin(late, 30)) << "a rank of a root that exited was not answered within 30 s";
  EXPECT_EQ(area_->reports[1].status, HCCL_E_TCP_CONNECT) << area_->reports[1].message;
  EXPECT_THAT(area_->reports[1].message, HasSubstr("root gone: no listener for this root info"));
  EXPECT_THAT(area_->reports[1].message, HasSubstr("pid " + std::to_string(root)));
}

}  // namespace
}  // namespace distbarrier::testing
