// What HcclRootInfo's 4108 bytes carry: how to reach rank 0 from its own host (an abstract
// Unix socket name) and which process rank 0 is (a peer checks the listener is that pid before
// it sends anything), how to reach it from elsewhere (IPv4 address and TCP port), a random
// secret peers must present, a job id, and which host rank 0 is on (boot id and network
// namespace: a peer on the same host takes the Unix socket, any other TCP). Root info made
// from a rank table (CreateRootInfoAt) names no socket, pid or host: everyone takes TCP. A
// checksum catches garbage and truncation. The byte layout is in wire.h.
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
  std::string boot_id;  // /proc/sys/kernel/random/boot_id of rank 0's host ("" if unknown)
  std::string address;  // abstract Unix socket name, without the leading NUL ("": none)
  int32_t root_pid = 0;  // the process of rank 0, which listens at `address` (0: unknown)
  uint64_t netns = 0;    // rank 0's network namespace (inode; 0: unknown)
  std::string ip;        // IPv4 address rank 0 listens at over TCP
  uint16_t port = 0;

  // True when this process is on rank 0's host and may take the Unix socket.
  bool OnThisHost() const;

  void Encode(HcclRootInfo* out) const;
  // The root info, or why the bytes are not one.
  static std::variant<RootInfo, std::string> Decode(const HcclRootInfo& in);
};

// This host's boot id ("" if unreadable).
std::string HostBootId();
// This process's network namespace (the inode of /proc/self/ns/net; 0 if unreadable). Hosts
// are told apart by boot id and network namespace: abstract Unix sockets live in one network
// namespace, so tests stand for hosts with namespaces.
uint64_t HostNetns();

}  // namespace distbarrier::comm
