// What HcclRootInfo's 4108 bytes carry: how to reach rank 0 (an abstract Unix socket name
// on this host) and which process rank 0 is (a peer checks the listener is that pid before it
// sends anything), a random secret peers must present, a job id, and this host's boot id (so
// root info taken to another host fails clearly). A checksum catches garbage and truncation.
// The byte layout is in wire.h.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "hccl/hccl_types.h"

namespace distbarrier::comm {

inline constexpr size_t kSecretBytes = 32;

struct RootInfo {
  uint64_t job_id = 0;
  std::array<uint8_t, kSecretBytes> secret{};
  std::string boot_id;  // /proc/sys/kernel/random/boot_id of rank 0's host
  std::string address;  // abstract Unix socket name, without the leading NUL
  int32_t root_pid = 0;  // the process of rank 0, which listens at `address`

  void Encode(HcclRootInfo* out) const;
  // The root info, or why the bytes are not one.
  static std::variant<RootInfo, std::string> Decode(const HcclRootInfo& in);
};

// This host's boot id ("" if unreadable).
std::string HostBootId();

}  // namespace distbarrier::comm
