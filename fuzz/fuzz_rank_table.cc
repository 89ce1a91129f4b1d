// Fuzzes the rank table parser (HcclCommInitClusterInfo's and distbarrier-run --rank-table's
// file): any bytes either parse into a consistent table or are refused with a message; never a
// crash, a hang or an exception out of ParseRankTable.
//
// Properties of an accepted table: rank ids run 0..rank_count-1, each rank's server and device
// are where the table says (ServerOf/DeviceOf agree with the server lists), each server's ranks
// are contiguous, and every host_ip is non-empty. A refusal has a non-empty message.
#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "comm/bootstrap/rank_table.h"
#include "fuzz_common.h"

using distbarrier::comm::ParseRankTable;
using distbarrier::comm::RankTable;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parsed = ParseRankTable(std::string_view(reinterpret_cast<const char*>(data), size));
  if (auto* why = std::get_if<std::string>(&parsed)) {
    FUZZ_CHECK(!why->empty(), "refused without a reason");
    return 0;
  }
  const RankTable& table = std::get<RankTable>(parsed);
  FUZZ_CHECK(table.rank_count > 0 && !table.servers.empty(), "an empty table was accepted");
  std::set<uint32_t> seen;
  for (const auto& server : table.servers) {
    FUZZ_CHECK(!server.host_ip.empty() && !server.devices.empty(), "server %s lacks a host or devices",
               server.server_id.c_str());
    uint32_t low = UINT32_MAX, high = 0;
    for (const auto& device : server.devices) {
      FUZZ_CHECK(seen.insert(device.rank_id).second, "rank %u twice", device.rank_id);
      FUZZ_CHECK(device.rank_id < table.rank_count, "rank %u beyond %u", device.rank_id, table.rank_count);
      FUZZ_CHECK(&table.ServerOf(device.rank_id) == &server, "ServerOf(%u) is another server", device.rank_id);
      FUZZ_CHECK(table.DeviceOf(device.rank_id).device_id == device.device_id, "DeviceOf(%u) differs", device.rank_id);
      low = std::min(low, device.rank_id);
      high = std::max(high, device.rank_id);
    }
    FUZZ_CHECK(high - low + 1 == server.devices.size(), "server %s: ranks not contiguous", server.server_id.c_str());
  }
  FUZZ_CHECK(seen.size() == table.rank_count, "%zu ranks seen, %u counted", seen.size(), table.rank_count);
  return 0;
}
