// The rank table of HcclCommInitClusterInfo (CANN's "rank table" JSON, version 1.2 on A3, 1.0
// on older parts): which servers take part, each server's host IP, and each rank's device.
// Every value in the file is a JSON string, numbers included ("server_count": "2",
// "rank_id": "0"), as CANN writes and reads it; a bare JSON number is refused.
//
//   {"status": "completed", "version": "1.2", "server_count": "2",
//    "server_list": [{"server_id": "node_0", "host_ip": "198.18.0.1",
//                     "device": [{"device_id": "0", "super_device_id": "0",
//                                 "device_ip": "192.168.1.6", "device_port": "16666",
//                                 "rank_id": "0"}, ...]}, ...],
//    "super_pod_list": [{"super_pod_id": "0", "server_list": [{"server_id": "node_0"}]}]}
//
// What is checked (each failure is a message that names the field, e.g.
// `server_list[1].device[0].rank_id`): status is "completed"; version is "1.0" or "1.2";
// server_count equals the length of server_list; server ids are unique; host_ip is an IPv4
// address (version 1.0 may leave it out when server_id is one); device ids are unique
// within a server; rank ids are unique, run 0..n-1 without gaps, and are contiguous within a
// server; the optional fields (super_device_id, device_ip, device_port, super_pod_list) are
// well formed when present. Other fields (host_port, backup_device_ip, ...) are ignored.
//
// This file is the whole parser; it depends on nothing of the library but fmt and
// nlohmann-json, so distbarrier-run compiles it too.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace distbarrier::comm {

// clusterInfo's limit in CANN: 4096 bytes including the terminating NUL.
inline constexpr size_t kMaxRankTablePathBytes = 4096;
// A rank table of the largest job is well under a megabyte; anything far larger is not one.
inline constexpr size_t kMaxRankTableBytes = 64u << 20;

struct RankTableDevice {
  uint32_t rank_id = 0;
  int32_t device_id = 0;
};

struct RankTableServer {
  std::string server_id;
  std::string host_ip;
  std::vector<RankTableDevice> devices;  // in file order; their rank ids are contiguous
};

struct RankTable {
  std::string version;
  std::vector<RankTableServer> servers;
  uint32_t rank_count = 0;
  uint64_t content_hash = 0;  // FNV-1a of the file's bytes: the same file gives the same hash on every host

  const RankTableServer& ServerOf(uint32_t rank) const { return servers[location_[rank].first]; }
  const RankTableDevice& DeviceOf(uint32_t rank) const {
    return servers[location_[rank].first].devices[location_[rank].second];
  }
  // Where rank `rank` is in the file, for messages: "server_list[1].device[0]".
  std::string FieldOf(uint32_t rank) const;
  // True when the servers name more than one host IP (the job spans hosts).
  bool SpansHosts() const;

 private:
  friend std::variant<RankTable, std::string> ParseRankTable(std::string_view text);
  std::vector<std::pair<uint32_t, uint32_t>> location_;  // rank -> (server, device) index
};

// The table in `text`, or why it is not a valid one (a message naming the field).
std::variant<RankTable, std::string> ParseRankTable(std::string_view text);

// The table in the file at `path`, or why not (path too long, unreadable, not a table). The
// message starts with the path.
std::variant<RankTable, std::string> ReadRankTable(const char* path);

}  // namespace distbarrier::comm
