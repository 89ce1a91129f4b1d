#include "comm/bootstrap/root_info.h"

#include <cstring>
#include <fstream>

#include "comm/bootstrap/wire.h"

namespace distbarrier::comm {

using namespace wire;  // the layout constants

namespace {

// A NUL-terminated string of at most `capacity` bytes at `field`, or nullopt.
std::optional<std::string> ReadString(const char* field, size_t capacity) {
  const void* end = std::memchr(field, '\0', capacity);
  if (end == nullptr) return std::nullopt;
  return std::string(field, static_cast<const char*>(end));
}

}  // namespace

void RootInfo::Encode(HcclRootInfo* out) const {
  char* bytes = out->internal;
  std::memset(bytes, 0, HCCL_ROOT_INFO_BYTES);
  std::memcpy(bytes, kRootMagic, sizeof(kRootMagic));
  std::memcpy(bytes + kRootJobOffset, &job_id, sizeof(job_id));
  std::memcpy(bytes + kRootSecretOffset, secret.data(), kSecretBytes);
  std::memcpy(bytes + kRootBootOffset, boot_id.data(), std::min(boot_id.size(), kBootIdBytes - 1));
  std::memcpy(bytes + kRootAddressOffset, address.data(), std::min(address.size(), kAddressBytes - 1));
  std::memcpy(bytes + kRootPidOffset, &root_pid, sizeof(root_pid));
  WriteRootInfoChecksum(out);
}

std::variant<RootInfo, std::string> RootInfo::Decode(const HcclRootInfo& in) {
  const char* bytes = in.internal;
  if (std::memcmp(bytes, kRootMagic, sizeof(kRootMagic)) != 0) {
    return std::string("rootInfo does not come from HcclGetRootInfo (no distbarrier root info header)");
  }
  uint64_t checksum = 0;
  std::memcpy(&checksum, bytes + kRootChecksumOffset, sizeof(checksum));
  if (checksum != RootInfoChecksum(in)) return std::string("rootInfo is damaged or truncated (checksum mismatch)");
  RootInfo info;
  std::memcpy(&info.job_id, bytes + kRootJobOffset, sizeof(info.job_id));
  std::memcpy(info.secret.data(), bytes + kRootSecretOffset, kSecretBytes);
  std::memcpy(&info.root_pid, bytes + kRootPidOffset, sizeof(info.root_pid));
  auto boot_id = ReadString(bytes + kRootBootOffset, kBootIdBytes);
  auto address = ReadString(bytes + kRootAddressOffset, kAddressBytes);
  // root_pid 0: built from a rank table, rank 0's pid unknown (SHIM(hosts-core)).
  if (!boot_id || !address || address->empty() || info.root_pid < 0) {
    return std::string("rootInfo has malformed fields");
  }
  info.boot_id = *boot_id;
  info.address = *address;
  return info;
}

std::string HostBootId() {
  // Read once: it cannot change while we run, and a later read may lack a descriptor.
  static const std::string id = [] {
    std::ifstream file("/proc/sys/kernel/random/boot_id");
    std::string line;
    std::getline(file, line);
    return line;
  }();
  return id;
}

}  // namespace distbarrier::comm
