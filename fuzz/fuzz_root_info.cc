// Fuzzes root info parsing: RootInfo::Decode on arbitrary 4108 bytes, the Encode/Decode round
// trip, and HcclCommInitRootInfo with arbitrary root info bytes (raw, re-checksummed so the
// field checks are reached, or a real root info from HcclGetRootInfo with fields replaced) and
// random nRanks/rank, in a process with a current device.
//
// What may not block long is kept out: a root info that decodes, is of this host and names a
// rank other than 0 would make the call connect and wait (>= 1 s, the connect timeout's
// minimum); such inputs are skipped. Rank 0 of this process's own live root info completes at
// once only with nRanks 1, so that case is called with nRanks 1 (nRanks 2 with a peer is
// fuzz_hello's job).
//
// Properties: Decode never crashes and only accepts what Encode could have made; Encode then
// Decode gives the fields back (strings cut at 39/99 bytes or their first NUL, a pid > 0); the call returns
// HCCL_E_PTR, HCCL_E_PARA or HCCL_E_NOT_SUPPORT at once for everything but our own root info,
// which it accepts; no descriptor or memory leaks.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "comm/bootstrap/root_info.h"
#include "comm/bootstrap/wire.h"
#include "fuzz_common.h"
#include "hccl/hccl.h"

namespace {

using distbarrier::comm::RootInfo;

namespace wire = distbarrier::comm::wire;

HcclRootInfo g_live;  // from HcclGetRootInfo: its listener is open until rank 0 joins with it
std::string g_boot_id;

void NewLiveRootInfo() { FUZZ_CHECK(HcclGetRootInfo(&g_live) == HCCL_SUCCESS, "HcclGetRootInfo"); }

std::string CutString(const std::string& text, size_t capacity) {
  std::string cut = text.substr(0, std::min(text.size(), capacity - 1));
  return cut.substr(0, cut.find('\0'));
}

void CheckDecode(const HcclRootInfo& bytes) {
  auto decoded = RootInfo::Decode(bytes);
  if (auto* why = std::get_if<std::string>(&decoded)) {
    FUZZ_CHECK(!why->empty(), "Decode failed without a reason");
    return;
  }
  const RootInfo& info = std::get<RootInfo>(decoded);
  // A Unix address with its pid, or a TCP address with its port (root info v3).
  FUZZ_CHECK((!info.address.empty() || !info.ip.empty()) && (info.address.empty() || info.root_pid > 0) &&
                 (info.ip.empty() || info.port != 0) && info.address.size() < wire::kAddressBytes &&
                 info.ip.size() < wire::kIpBytes && info.boot_id.size() < wire::kBootIdBytes && info.root_pid >= 0,
             "Decode accepted odd fields");
  HcclRootInfo again{};
  info.Encode(&again);
  auto redecoded = RootInfo::Decode(again);
  FUZZ_CHECK(std::holds_alternative<RootInfo>(redecoded), "re-encoded root info does not decode");
  const RootInfo& back = std::get<RootInfo>(redecoded);
  FUZZ_CHECK(back.job_id == info.job_id && back.secret == info.secret && back.boot_id == info.boot_id &&
                 back.address == info.address && back.root_pid == info.root_pid && back.ip == info.ip &&
                 back.port == info.port && back.netns == info.netns,
             "Encode/Decode round trip changed the fields");
}

void RoundTrip(FuzzedDataProvider& in) {
  RootInfo info;
  info.job_id = in.ConsumeIntegral<uint64_t>();
  for (auto& byte : info.secret) byte = in.ConsumeIntegral<uint8_t>();
  info.boot_id = in.ConsumeRandomLengthString(80);
  info.address = in.ConsumeRandomLengthString(200);
  info.root_pid = in.ConsumeIntegral<int32_t>();
  HcclRootInfo bytes{};
  info.Encode(&bytes);
  auto decoded = RootInfo::Decode(bytes);
  const std::string address = CutString(info.address, wire::kAddressBytes);
  if (address.empty() || info.root_pid <= 0) {
    FUZZ_CHECK(std::holds_alternative<std::string>(decoded), "empty address or pid <= 0 accepted");
    return;
  }
  FUZZ_CHECK(std::holds_alternative<RootInfo>(decoded), "Encode made bytes Decode refuses: %s",
             std::get<std::string>(decoded).c_str());
  const RootInfo& back = std::get<RootInfo>(decoded);
  FUZZ_CHECK(back.job_id == info.job_id && back.secret == info.secret &&
                 back.boot_id == CutString(info.boot_id, wire::kBootIdBytes) && back.address == address &&
                 back.root_pid == info.root_pid,
             "round trip changed the fields");
}

void InitRootInfo(FuzzedDataProvider& in) {
  HcclRootInfo bytes{};
  switch (in.ConsumeIntegralInRange(0, 3)) {
    case 0: {  // raw bytes
      const std::string raw = in.ConsumeBytesAsString(in.ConsumeIntegralInRange<size_t>(0, HCCL_ROOT_INFO_BYTES));
      std::memcpy(bytes.internal, raw.data(), raw.size());
      break;
    }
    case 1: {  // raw fields behind the right magic, re-checksummed
      const std::string raw = in.ConsumeBytesAsString(in.ConsumeIntegralInRange<size_t>(0, HCCL_ROOT_INFO_BYTES));
      std::memcpy(bytes.internal, raw.data(), raw.size());
      std::memcpy(bytes.internal, wire::kRootMagic, sizeof(wire::kRootMagic));
      if (in.ConsumeBool())
        std::memcpy(bytes.internal + wire::kRootBootOffset, g_boot_id.c_str(), g_boot_id.size() + 1);
      wire::WriteRootInfoChecksum(&bytes);
      break;
    }
    default: {  // the live root info, some bytes replaced, re-checksummed or not
      bytes = g_live;
      const int edits = in.ConsumeIntegralInRange(0, 4);
      for (int i = 0; i < edits; ++i) {
        const size_t at = in.ConsumeBool() ? in.ConsumeIntegralInRange<size_t>(0, wire::kRootChecksumOffset + 7)
                                           : in.ConsumeIntegralInRange<size_t>(0, HCCL_ROOT_INFO_BYTES - 1);
        bytes.internal[at] = static_cast<char>(in.ConsumeIntegral<uint8_t>());
      }
      if (in.ConsumeBool()) wire::WriteRootInfoChecksum(&bytes);
      break;
    }
  }
  uint32_t n_ranks = in.ConsumeBool() ? in.ConsumeIntegralInRange<uint32_t>(0, 5) : in.ConsumeIntegral<uint32_t>();
  uint32_t rank = in.ConsumeBool() ? in.ConsumeIntegralInRange<uint32_t>(0, 5) : in.ConsumeIntegral<uint32_t>();
  const bool null_root = in.ConsumeIntegralInRange(0, 31) == 0;
  const bool null_comm = in.ConsumeIntegralInRange(0, 31) == 0;

  // What the call will do, to keep the slow cases (and any traffic) out.
  auto decoded = RootInfo::Decode(bytes);
  const RootInfo* info = std::get_if<RootInfo>(&decoded);
  const bool ranks_ok = n_ranks >= 1 && n_ranks <= 4096 && rank < n_ranks;
  const bool live = info != nullptr && info->job_id == std::get<RootInfo>(RootInfo::Decode(g_live)).job_id;
  if (!null_root && !null_comm && ranks_ok && info != nullptr) {
    if (rank != 0 && (info->OnThisHost() || !info->ip.empty())) return;  // would connect and wait
    if (rank == 0 && info->address.empty()) return;  // would listen at an arbitrary address
    if (rank == 0 && live) n_ranks = 1;                // completes at once
  }
  const int fds_before = fuzz::OpenFdCount();
  HcclComm comm = nullptr;
  const HcclResult result = HcclCommInitRootInfo(n_ranks, null_root ? nullptr : &bytes, rank, null_comm ? nullptr : &comm);
  if (null_root || null_comm) {
    FUZZ_CHECK(result == HCCL_E_PTR, "null argument answered %d", result);
    return;
  }
  if (!ranks_ok || info == nullptr) {
    FUZZ_CHECK(result == HCCL_E_PARA, "bad nRanks/rank or undecodable root info answered %d", result);
  } else if (rank != 0) {
    FUZZ_CHECK(result == HCCL_E_NOT_SUPPORT, "another host's root info without a TCP address answered %d", result);
  } else if (!live) {
    FUZZ_CHECK(result == HCCL_E_PARA, "rank 0 of an unknown job answered %d", result);
  } else {
    FUZZ_CHECK(result == HCCL_SUCCESS, "rank 0 of the live root info with nRanks 1 failed: %d", result);
    uint32_t size = 0, id = 9;
    FUZZ_CHECK(HcclGetRankSize(comm, &size) == HCCL_SUCCESS && size == 1, "rank size");
    FUZZ_CHECK(HcclGetRankId(comm, &id) == HCCL_SUCCESS && id == 0, "rank id");
    FUZZ_CHECK(HcclCommDestroy(comm) == HCCL_SUCCESS, "destroy");
    NewLiveRootInfo();  // the old listener was used up (and closed); the new one replaces it
  }
  if (result != HCCL_SUCCESS) FUZZ_CHECK(comm == nullptr, "failed call gave a comm");
  const int fds_after = fuzz::OpenFdCount();
  FUZZ_CHECK(fds_after == fds_before, "descriptors leaked: %d open before, %d after", fds_before, fds_after);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  setenv("DISTBARRIER_DEVICE_COUNT", "1", 1);
  // The status server (comm/diagnosis) keeps one socket for the process's life, opened by the
  // first communicator; it is not what is fuzzed here, and would count as a leaked descriptor.
  setenv("DISTBARRIER_STATUS", "0", 1);
  setenv("DISTBARRIER_LOG_LEVEL", "4", 1);
  setenv("DISTBARRIER_CONNECT_TIMEOUT_S", "1", 1);
  FUZZ_CHECK(aclrtSetDevice(0) == ACL_SUCCESS, "aclrtSetDevice");
  g_boot_id = distbarrier::comm::HostBootId();
  NewLiveRootInfo();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Arbitrary bytes as root info, straight.
  HcclRootInfo raw{};
  std::memcpy(raw.internal, data, std::min<size_t>(size, HCCL_ROOT_INFO_BYTES));
  CheckDecode(raw);

  FuzzedDataProvider in(data, size);
  switch (in.ConsumeIntegralInRange(0, 2)) {
    case 0: RoundTrip(in); break;
    default: InitRootInfo(in); break;
  }
  return 0;
}
