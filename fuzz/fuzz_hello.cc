// Fuzzes rank 0's side of the bootstrap (RunRoot's message handling): per input, a real rank 0
// (HcclGetRootInfo + HcclCommInitRootInfo(2, root, 0) on a thread with a current device) gets
// up to four connections to its abstract socket that send fuzzed bytes (raw, or a hello with
// fuzzed fields, cut anywhere), then close, half-close and wait for the answer, or stay open;
// a connection that sent exactly a valid rank-1 hello completes the handshake (offer, ready,
// verdict: see src/comm/bootstrap/wire.h); then a well-formed rank 1 joins, unless a fuzzed
// one did.
//
// Properties: rank 0 refuses garbage and stays usable: it completes the group with
// HCCL_SUCCESS as soon as a valid rank 1 completes the handshake (a rank 1 that sent more
// than its hello is not counted); every half-closed connection gets an answer or EOF (never a hang); only the rank 1
// that completed the handshake is offered the group; after the communicator is destroyed and
// our sockets closed, the process holds exactly the descriptors it held before. Answers are
// read with the library's own receive loop (wire::ReceiveAll).
#include <fuzzer/FuzzedDataProvider.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "comm/bootstrap/root_info.h"
#include "comm/bootstrap/wire.h"
#include "fuzz_common.h"
#include "hccl/hccl.h"

namespace {

using distbarrier::comm::RootInfo;

namespace wire = distbarrier::comm::wire;
using wire::Hello;
using wire::ReplyHeader;

aclrtContext g_context;

int Connect(const std::string& name) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  FUZZ_CHECK(fd >= 0, "socket");
  socklen_t length = 0;
  sockaddr_un address = wire::AbstractAddress(name, &length);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), length) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

void SendBytes(int fd, const void* data, size_t size) {
  if (size > 0) (void)send(fd, data, size, MSG_NOSIGNAL);  // the peer may have closed already
}

enum class Answer { kEof, kRefused, kSuccess, kGarbage };

// Reads rank 0's answer (or EOF) within `limit_ms` with the library's own receive loop; closes
// a passed descriptor, after checking an offer came with one.
Answer ReadAnswer(int fd, int limit_ms, bool expect_memory) {
  ReplyHeader reply{};
  int passed = -1;
  const auto received = wire::ReceiveAll(fd, &reply, sizeof(reply), &passed,
                                         std::chrono::steady_clock::now() + std::chrono::milliseconds(limit_ms));
  FUZZ_CHECK(received != wire::Received::kTimedOut, "rank 0 neither answered nor closed within %d ms", limit_ms);
  if (passed >= 0) close(passed);
  if (received == wire::Received::kClosed) return Answer::kEof;  // (or a cut answer, which rank 0 never sends)
  if (std::memcmp(reply.magic, wire::kReplyMagic, 8) != 0) return Answer::kGarbage;
  if (reply.status == HCCL_SUCCESS) {
    FUZZ_CHECK(passed >= 0 || !expect_memory, "an offer without the group's memory");
    FUZZ_CHECK(reply.rank_count == 2, "an offer for %u ranks", reply.rank_count);
    return Answer::kSuccess;
  }
  FUZZ_CHECK(reply.message[0] != '\0', "refusal without a reason");
  return Answer::kRefused;
}

// Rank 1's side after its hello: the offer, "ready", the verdict. kSuccess only if both said so.
Answer Handshake(int fd) {
  const Answer offer = ReadAnswer(fd, 10000, /*expect_memory=*/true);
  if (offer != Answer::kSuccess) return offer;
  wire::Ready ready{};
  std::memcpy(ready.magic, wire::kReadyMagic, sizeof(ready.magic));
  ready.rank = 1;
  FUZZ_CHECK(wire::SendAll(fd, &ready, sizeof(ready), -1, std::chrono::steady_clock::now() + std::chrono::seconds(10)),
             "rank 0 closed before rank 1 said ready");
  return ReadAnswer(fd, 10000, /*expect_memory=*/false);
}

struct Connection {
  int fd;
  int close_mode;  // 2: kept open until rank 0 finished
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  setenv("DISTBARRIER_DEVICE_COUNT", "1", 1);
  // The status server (comm/diagnosis) keeps one socket for the process's life, opened by the
  // first communicator; it is not what is fuzzed here, and would count as a leaked descriptor.
  setenv("DISTBARRIER_STATUS", "0", 1);
  setenv("DISTBARRIER_LOG_LEVEL", "4", 1);  // refusals are logged as warnings
  setenv("DISTBARRIER_CONNECT_TIMEOUT_S", "30", 1);  // rank 0 must finish because rank 1 came, not by timeout
  FUZZ_CHECK(aclrtSetDevice(0) == ACL_SUCCESS, "aclrtSetDevice");
  FUZZ_CHECK(aclrtGetCurrentContext(&g_context) == ACL_SUCCESS, "context");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const int fds_before = fuzz::OpenFdCount();

  HcclRootInfo root{};
  FUZZ_CHECK(HcclGetRootInfo(&root) == HCCL_SUCCESS, "HcclGetRootInfo");
  const RootInfo info = std::get<RootInfo>(RootInfo::Decode(root));
  Hello valid{};
  std::memcpy(valid.magic, wire::kHelloMagic, 8);
  valid.rank = 1;
  valid.rank_count = 2;
  valid.job_id = info.job_id;
  std::memcpy(valid.secret, info.secret.data(), sizeof(valid.secret));

  std::promise<std::pair<HcclResult, HcclComm>> rank0_promise;
  auto rank0_result = rank0_promise.get_future();
  std::thread rank0([&] {
    aclrtSetCurrentContext(g_context);
    HcclComm comm = nullptr;
    HcclResult result = HcclCommInitRootInfo(2, &root, 0, &comm);
    rank0_promise.set_value({result, comm});
  });

  std::vector<Connection> connections;
  bool fuzzed_valid = false;  // a fuzzed connection sent a complete, valid rank-1 hello
  int successes = 0;
  const int count = in.ConsumeIntegralInRange(0, 4);
  for (int i = 0; i < count && !fuzzed_valid; ++i) {
    std::string bytes;
    if (in.ConsumeBool()) {
      bytes = in.ConsumeRandomLengthString(120);
    } else {
      Hello hello = valid;
      const int edits = in.ConsumeIntegralInRange(0, 3);
      for (int e = 0; e < edits; ++e) {
        switch (in.ConsumeIntegralInRange(0, 5)) {
          case 0: hello.rank = in.ConsumeBool() ? in.ConsumeIntegralInRange<uint32_t>(0, 3) : in.ConsumeIntegral<uint32_t>(); break;
          case 1: hello.rank_count = in.ConsumeBool() ? in.ConsumeIntegralInRange<uint32_t>(0, 3) : in.ConsumeIntegral<uint32_t>(); break;
          case 2: hello.job_id ^= uint64_t{1} << in.ConsumeIntegralInRange(0, 63); break;
          case 3: hello.secret[in.ConsumeIntegralInRange(0, 31)] ^= in.ConsumeIntegralInRange<uint8_t>(1, 255); break;
          case 4: hello.magic[in.ConsumeIntegralInRange(0, 7)] ^= in.ConsumeIntegralInRange<uint8_t>(1, 255); break;
          default: break;
        }
      }
      const size_t cut = in.ConsumeBool() ? sizeof(Hello) : in.ConsumeIntegralInRange<size_t>(0, sizeof(Hello) + 8);
      bytes.assign(reinterpret_cast<const char*>(&hello), sizeof(Hello));
      if (cut > sizeof(Hello)) bytes += in.ConsumeBytesAsString(cut - sizeof(Hello));
      else bytes.resize(cut);
    }
    // Valid only if it is exactly a valid hello: a rank that sends more than its hello breaks
    // the protocol and is dropped like one that left.
    const bool valid_hello = bytes.size() == sizeof(Hello) && std::memcmp(bytes.data(), &valid, sizeof(Hello)) == 0;
    // A valid rank 1 completes the handshake. (One that leaves right after its hello may or
    // may not be seen leaving before the group looks complete, a race the fuzzer cannot steer;
    // tests/system/bootstrap_test.cc covers it deterministically.)
    const int mode = valid_hello ? 1 : in.ConsumeIntegralInRange(0, 2);
    fuzzed_valid = valid_hello;
    const int fd = Connect(info.address);
    FUZZ_CHECK(fd >= 0, "rank 0's listener refused a connection before the group was complete");
    SendBytes(fd, bytes.data(), bytes.size());
    if (mode == 0) {
      close(fd);
    } else if (mode == 1 && valid_hello) {
      const Answer answer = Handshake(fd);
      close(fd);
      FUZZ_CHECK(answer == Answer::kSuccess, "a valid rank 1 was not accepted (answer %d)", static_cast<int>(answer));
      successes += 1;
    } else if (mode == 1) {
      shutdown(fd, SHUT_WR);
      const Answer answer = ReadAnswer(fd, 10000, /*expect_memory=*/true);
      close(fd);
      FUZZ_CHECK(answer != Answer::kGarbage, "rank 0 answered garbage");
      FUZZ_CHECK(answer != Answer::kSuccess, "an invalid hello was accepted");
    } else {
      connections.push_back({fd, mode});
    }
  }
  if (!fuzzed_valid) {  // the real rank 1
    const int fd = Connect(info.address);
    FUZZ_CHECK(fd >= 0, "rank 0's listener is gone before rank 1 came");
    SendBytes(fd, &valid, sizeof(valid));
    const Answer answer = Handshake(fd);
    close(fd);
    FUZZ_CHECK(answer == Answer::kSuccess, "rank 0 did not accept a valid rank 1 after fuzzed peers (answer %d)",
               static_cast<int>(answer));
    ++successes;
  }
  FUZZ_CHECK(rank0_result.wait_for(std::chrono::seconds(10)) == std::future_status::ready,
             "rank 0 still in HcclCommInitRootInfo 10 s after rank 1 joined");
  rank0.join();
  auto [result, comm] = rank0_result.get();
  FUZZ_CHECK(result == HCCL_SUCCESS, "rank 0 failed: %d", result);
  for (Connection& connection : connections) {
    // Kept open: answered by now if rank 0 ever read it (refused or accepted); a connection rank 0
    // never finished reading gets nothing, so look without waiting.
    pollfd waiting{connection.fd, POLLIN, 0};
    if (poll(&waiting, 1, 0) > 0) {
      const Answer answer = ReadAnswer(connection.fd, 10000, /*expect_memory=*/true);
      FUZZ_CHECK(answer != Answer::kGarbage, "rank 0 answered garbage");
      FUZZ_CHECK(answer != Answer::kSuccess, "a connection that never finished its hello got an offer");
    }
    close(connection.fd);
  }
  FUZZ_CHECK(successes <= 1, "%d connections were told they are rank 1", successes);
  FUZZ_CHECK(HcclCommDestroy(comm) == HCCL_SUCCESS, "HcclCommDestroy");
  const int fds_after = fuzz::OpenFdCount();
  FUZZ_CHECK(fds_after == fds_before, "descriptors leaked by rank 0: %d open before, %d after", fds_before, fds_after);
  return 0;
}
