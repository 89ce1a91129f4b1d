// The bootstrap's formats, in one place: the bytes of HcclRootInfo, and what a rank says to
// rank 0 and what rank 0 answers over an abstract Unix socket. Fixed-size, host byte order
// (both ends are on one host).
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "comm/bootstrap/root_info.h"

namespace distbarrier::comm::wire {

// HcclRootInfo's bytes: magic | job id | secret | boot id | address | root pid | netns |
// ip | port | checksum (FNV-1a of all bytes before it); the rest is zero.
inline constexpr char kRootMagic[8] = {'D', 'B', 'R', 'O', 'O', 'T', 'v', '3'};
inline constexpr size_t kIpBytes = 48;
inline constexpr size_t kBootIdBytes = 40;
inline constexpr size_t kAddressBytes = 100;
inline constexpr size_t kRootJobOffset = sizeof(kRootMagic);
inline constexpr size_t kRootSecretOffset = kRootJobOffset + sizeof(uint64_t);
inline constexpr size_t kRootBootOffset = kRootSecretOffset + kSecretBytes;
inline constexpr size_t kRootAddressOffset = kRootBootOffset + kBootIdBytes;
inline constexpr size_t kRootPidOffset = kRootAddressOffset + kAddressBytes;
inline constexpr size_t kRootNetnsOffset = kRootPidOffset + sizeof(int32_t);
inline constexpr size_t kRootIpOffset = kRootNetnsOffset + sizeof(uint64_t);
inline constexpr size_t kRootPortOffset = kRootIpOffset + kIpBytes;
inline constexpr size_t kRootChecksumOffset = kRootPortOffset + sizeof(uint16_t);
static_assert(kRootChecksumOffset + sizeof(uint64_t) <= HCCL_ROOT_INFO_BYTES);

// The checksum of root info bytes (what Decode checks).
inline uint64_t RootInfoChecksum(const HcclRootInfo& info) {
  uint64_t hash = 1469598103934665603ull;
  for (size_t i = 0; i < kRootChecksumOffset; ++i) {
    hash ^= static_cast<uint8_t>(info.internal[i]);
    hash *= 1099511628211ull;
  }
  return hash;
}

// Writes the checksum of the bytes before it (Encode's last step).
inline void WriteRootInfoChecksum(HcclRootInfo* info) {
  const uint64_t checksum = RootInfoChecksum(*info);
  std::memcpy(info->internal + kRootChecksumOffset, &checksum, sizeof(checksum));
}

inline constexpr char kHelloMagic[8] = {'D', 'B', 'H', 'E', 'L', 'L', 'O', '1'};
inline constexpr char kReplyMagic[8] = {'D', 'B', 'R', 'E', 'P', 'L', 'Y', '1'};

struct Hello {
  char magic[8];
  uint32_t rank;
  uint32_t rank_count;
  uint64_t job_id;
  uint8_t secret[kSecretBytes];
};

inline constexpr char kReadyMagic[8] = {'D', 'B', 'R', 'E', 'A', 'D', 'Y', '1'};

// The conversation, after connect (the peer first checks the listener's SO_PEERCRED):
//   peer -> Hello
//   rank 0 -> ReplyHeader, the offer: a refusal, or success with the group's memfd
//             (SCM_RIGHTS, with the first byte), sent once every rank said hello
//   peer -> Ready: it mapped the memory and made its communicator, or why not
//   rank 0 -> ReplyHeader, the verdict: success only when every rank is ready
// so a rank counts as joined only when it is still there at the end, and a failure of any rank
// reaches every other.
struct ReplyHeader {
  char magic[8];
  int32_t status;  // HcclResult
  uint32_t rank_count;
  char message[240];
};

struct Ready {
  char magic[8];
  int32_t status;  // HcclResult: HCCL_SUCCESS, or why this rank cannot join
  uint32_t rank;
  char message[240];
};

static_assert(sizeof(Hello) == 56 && sizeof(ReplyHeader) == 256 && sizeof(Ready) == 256, "the wire format is fixed");

// Ranks of other hosts talk to rank 0 over TCP (no SO_PEERCRED: the secret is the check):
//   peer -> RemoteHello (a Hello with magic kRemoteHelloMagic, then where the rank runs)
//   rank 0 -> ReplyHeader: a refusal, or success followed by the plan: PlanHeader, then per
//             rank uint32 host and int32 pid, then per host kHostNameBytes of name
//   the peer gets its host's memory: its host's leader (lowest rank there) makes it and serves
//   it to the others over an abstract Unix socket (HostSocketName), as rank 0 does on its host
//   peer -> Ready, then uint32 length and the UCX worker address of its host agent (leaders
//           only; length 0 for the others)
//   rank 0 -> ReplyHeader, the verdict; on success followed by, per host, uint32 length and
//             its agent's worker address
inline constexpr char kRemoteHelloMagic[8] = {'D', 'B', 'H', 'E', 'L', 'L', 'O', '2'};
inline constexpr size_t kHostNameBytes = 64;

struct RemoteHello {
  Hello hello;
  char boot_id[kBootIdBytes];
  uint64_t netns;
  int32_t pid;
  uint32_t reserved;
  char hostname[kHostNameBytes];
};

struct PlanHeader {
  uint32_t host_count;
  uint32_t my_host;  // the receiver's host
  uint32_t reserved[2];
};

static_assert(sizeof(RemoteHello) == 176 && sizeof(PlanHeader) == 16, "the wire format is fixed");

// The abstract socket over which host `host`'s leader hands its host's memory to the others.
inline std::string HostSocketName(uint64_t job_id, int host) {
  return "distbarrier-" + std::to_string(job_id) + "-host" + std::to_string(host);
}

using Clock = std::chrono::steady_clock;

// Milliseconds from now to `deadline` for poll(): 0 once it passed.
int RemainingMs(Clock::time_point deadline);

// Sends all of `data` (and `pass_fd` with its first byte, if >= 0) before the deadline; a
// signal (EINTR) does not end the wait.
bool SendAll(int fd, const void* data, size_t size, int pass_fd, Clock::time_point deadline);

enum class Received { kAll, kClosed, kTimedOut };

// Receives exactly `size` bytes before the deadline. A descriptor passed with them lands in
// *passed_fd (which must be -1 on entry); any other passed descriptor is closed.
Received ReceiveAll(int fd, void* data, size_t size, int* passed_fd, Clock::time_point deadline);

// The address of abstract socket `name` (no file is created), and its length in *length.
inline sockaddr_un AbstractAddress(const std::string& name, socklen_t* length) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  address.sun_path[0] = '\0';
  const size_t size = std::min(name.size(), sizeof(address.sun_path) - 2);
  std::memcpy(address.sun_path + 1, name.data(), size);
  *length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + size);
  return address;
}

}  // namespace distbarrier::comm::wire
