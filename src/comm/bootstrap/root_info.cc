#include "comm/bootstrap/root_info.h"

#include <cstring>
#include <fstream>

namespace distbarrier::comm {
namespace {

constexpr char kMagic[8] = {'D', 'B', 'R', 'O', 'O', 'T', 'v', '1'};
constexpr size_t kBootIdBytes = 40;
constexpr size_t kAddressBytes = 100;
// Layout: magic | job id | secret | boot id | address | checksum (FNV-1a of all before it)
constexpr size_t kJobOffset = sizeof(kMagic);
constexpr size_t kSecretOffset = kJobOffset + sizeof(uint64_t);
constexpr size_t kBootOffset = kSecretOffset + kSecretBytes;
constexpr size_t kAddressOffset = kBootOffset + kBootIdBytes;
constexpr size_t kChecksumOffset = kAddressOffset + kAddressBytes;
static_assert(kChecksumOffset + sizeof(uint64_t) <= HCCL_ROOT_INFO_BYTES);

uint64_t Fnv1a(const char* data, size_t size) {
  uint64_t hash = 1469598103934665603ull;
  for (size_t i = 0; i < size; ++i) {
    hash ^= static_cast<uint8_t>(data[i]);
    hash *= 1099511628211ull;
  }
  return hash;
}

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
  std::memcpy(bytes, kMagic, sizeof(kMagic));
  std::memcpy(bytes + kJobOffset, &job_id, sizeof(job_id));
  std::memcpy(bytes + kSecretOffset, secret.data(), kSecretBytes);
  std::memcpy(bytes + kBootOffset, boot_id.data(), std::min(boot_id.size(), kBootIdBytes - 1));
  std::memcpy(bytes + kAddressOffset, address.data(), std::min(address.size(), kAddressBytes - 1));
  const uint64_t checksum = Fnv1a(bytes, kChecksumOffset);
  std::memcpy(bytes + kChecksumOffset, &checksum, sizeof(checksum));
}

std::variant<RootInfo, std::string> RootInfo::Decode(const HcclRootInfo& in) {
  const char* bytes = in.internal;
  if (std::memcmp(bytes, kMagic, sizeof(kMagic)) != 0) {
    return std::string("rootInfo does not come from HcclGetRootInfo (no distbarrier root info header)");
  }
  uint64_t checksum = 0;
  std::memcpy(&checksum, bytes + kChecksumOffset, sizeof(checksum));
  if (checksum != Fnv1a(bytes, kChecksumOffset)) {
    return std::string("rootInfo is damaged or truncated (checksum mismatch)");
  }
  RootInfo info;
  std::memcpy(&info.job_id, bytes + kJobOffset, sizeof(info.job_id));
  std::memcpy(info.secret.data(), bytes + kSecretOffset, kSecretBytes);
  auto boot_id = ReadString(bytes + kBootOffset, kBootIdBytes);
  auto address = ReadString(bytes + kAddressOffset, kAddressBytes);
  if (!boot_id || !address || address->empty()) return std::string("rootInfo has malformed fields");
  info.boot_id = *boot_id;
  info.address = *address;
  return info;
}

std::string HostBootId() {
  std::ifstream file("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(file, id);
  return id;
}

}  // namespace distbarrier::comm
