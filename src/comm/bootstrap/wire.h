// The bootstrap's wire format: what a rank says to rank 0 and what rank 0 answers, over an
// abstract Unix socket. Fixed-size, host byte order (both ends are on one host).
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
