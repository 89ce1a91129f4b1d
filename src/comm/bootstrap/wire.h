// The bootstrap's formats, in one place: the bytes of HcclRootInfo, and what a rank says to
// rank 0 and what rank 0 answers over an abstract Unix socket. Fixed-size, host byte order
// (both ends are on one host).
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "comm/bootstrap/root_info.h"

namespace distbarrier::comm::wire {

// HcclRootInfo's bytes: magic | job id | secret | boot id | address | root pid | checksum
// (FNV-1a of all bytes before it); the rest is zero.
inline constexpr char kRootMagic[8] = {'D', 'B', 'R', 'O', 'O', 'T', 'v', '2'};
inline constexpr size_t kBootIdBytes = 40;
inline constexpr size_t kAddressBytes = 100;
inline constexpr size_t kRootJobOffset = sizeof(kRootMagic);
inline constexpr size_t kRootSecretOffset = kRootJobOffset + sizeof(uint64_t);
inline constexpr size_t kRootBootOffset = kRootSecretOffset + kSecretBytes;
inline constexpr size_t kRootAddressOffset = kRootBootOffset + kBootIdBytes;
inline constexpr size_t kRootPidOffset = kRootAddressOffset + kAddressBytes;
inline constexpr size_t kRootChecksumOffset = kRootPidOffset + sizeof(int32_t);
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

// Followed, on success, by the group's memfd (SCM_RIGHTS, with the first byte).
struct ReplyHeader {
  char magic[8];
  int32_t status;  // HcclResult
  uint32_t rank_count;
  char message[240];
};

static_assert(sizeof(Hello) == 56 && sizeof(ReplyHeader) == 256, "the wire format is fixed");

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
