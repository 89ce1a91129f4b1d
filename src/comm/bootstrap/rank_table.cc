#include "comm/bootstrap/rank_table.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

namespace distbarrier::comm {
namespace {

using Json = nlohmann::json;

// A parse step: the value, or the message naming the field that is wrong.
template <typename T>
using Parsed = std::variant<T, std::string>;

#define RANK_TABLE_TRY(var, expr)                                       \
  auto var##_parsed = (expr);                                           \
  if (auto* why = std::get_if<std::string>(&var##_parsed)) return *why; \
  auto var = std::move(std::get<0>(var##_parsed))

// A value for a message. Containers are described, not dumped: dump() recurses, and a file of
// a few MB can nest deeper than the stack.
std::string Shown(const Json& value) {
  if (value.is_array()) return fmt::format("an array of {} elements", value.size());
  if (value.is_object()) return fmt::format("an object of {} members", value.size());
  std::string text = value.dump();
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return text;
}

const Json* Member(const Json& object, const char* key) {
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

// A string field's value (a type of its own: Parsed<std::string> could not tell it from the error).
struct Text {
  std::string value;
};

Parsed<Text> RequiredString(const Json& object, const std::string& where, const char* key) {
  const Json* value = Member(object, key);
  if (value == nullptr) return fmt::format("{}{}: missing", where, key);
  if (!value->is_string()) return fmt::format("{}{}: must be a string, got {}", where, key, Shown(*value));
  return Text{value->get<std::string>()};
}

// A number written as a JSON string of decimal digits, as CANN's rank table has them.
Parsed<uint64_t> DecimalString(const Json& value, const std::string& field, uint64_t max) {
  if (!value.is_string()) {
    return fmt::format(
        "{}: must be a string of decimal digits such as \"0\" (the rank table writes numbers as "
        "strings), got {}",
        field, Shown(value));
  }
  const std::string& text = value.get_ref<const std::string&>();
  uint64_t number = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (text.empty() || error == std::errc::invalid_argument || end != text.data() + text.size()) {
    return fmt::format("{}: \"{}\" is not a decimal number", field, text.substr(0, 40));
  }
  if (error == std::errc::result_out_of_range || number > max) {
    return fmt::format("{}: {} is out of range [0, {}]", field, text.substr(0, 40), max);
  }
  return number;
}

Parsed<uint64_t> RequiredNumber(const Json& object, const std::string& where, const char* key, uint64_t max) {
  const Json* value = Member(object, key);
  if (value == nullptr) return fmt::format("{}{}: missing", where, key);
  return DecimalString(*value, where + key, max);
}

std::optional<std::string> CheckOptionalNumber(const Json& object, const std::string& where, const char* key,
                                               uint64_t max) {
  const Json* value = Member(object, key);
  if (value == nullptr) return std::nullopt;
  auto parsed = DecimalString(*value, where + key, max);
  if (auto* why = std::get_if<std::string>(&parsed)) return *why;
  return std::nullopt;
}

bool IsIpv4Address(const std::string& text) {
  in_addr buffer{};
  return inet_pton(AF_INET, text.c_str(), &buffer) == 1;
}

bool IsIpAddress(const std::string& text) {
  unsigned char buffer[sizeof(in6_addr)];
  return inet_pton(AF_INET, text.c_str(), buffer) == 1 || inet_pton(AF_INET6, text.c_str(), buffer) == 1;
}

std::optional<std::string> CheckOptionalIp(const Json& object, const std::string& where, const char* key) {
  const Json* value = Member(object, key);
  if (value == nullptr) return std::nullopt;
  if (!value->is_string() || !IsIpAddress(value->get<std::string>())) {
    return fmt::format("{}{}: must be an IP address string, got {}", where, key, Shown(*value));
  }
  return std::nullopt;
}

Parsed<const Json*> RequiredArray(const Json& object, const std::string& where, const char* key) {
  const Json* value = Member(object, key);
  if (value == nullptr) return fmt::format("{}{}: missing", where, key);
  if (!value->is_array()) return fmt::format("{}{}: must be an array, got {}", where, key, Shown(*value));
  if (value->empty()) return fmt::format("{}{}: is empty", where, key);
  return value;
}

// The rank ids run 0..n-1 without gaps or repeats (n = their number).
constexpr uint64_t kMaxRankId = UINT32_MAX - 1;
constexpr uint64_t kMaxDeviceId = INT32_MAX;
constexpr uint64_t kMaxPort = 65535;

Parsed<RankTableServer> ParseServer(const Json& entry, const std::string& where, const std::string& version) {
  if (!entry.is_object()) return fmt::format("{}: must be an object, got {}", where, Shown(entry));
  const std::string prefix = where + ".";
  RankTableServer server;
  RANK_TABLE_TRY(server_id, RequiredString(entry, prefix, "server_id"));
  if (server_id.value.empty()) return fmt::format("{}server_id: is empty", prefix);
  server.server_id = server_id.value;
  if (const Json* host_ip = Member(entry, "host_ip"); host_ip != nullptr) {
    // Rank 0 listens at its host_ip, and the bootstrap speaks IPv4.
    if (!host_ip->is_string() || !IsIpv4Address(host_ip->get<std::string>())) {
      return fmt::format("{}host_ip: must be an IPv4 address string, got {}", prefix, Shown(*host_ip));
    }
    server.host_ip = host_ip->get<std::string>();
  } else if (version == "1.0" && IsIpv4Address(server.server_id)) {
    server.host_ip = server.server_id;  // version 1.0 names a server by its IP
  } else {
    return fmt::format("{}host_ip: missing (the host IP of server \"{}\")", prefix, server.server_id);
  }
  RANK_TABLE_TRY(devices, RequiredArray(entry, prefix, "device"));
  std::set<int32_t> device_ids;
  for (size_t d = 0; d < devices->size(); ++d) {
    const Json& device = (*devices)[d];
    const std::string device_where = fmt::format("{}device[{}]", prefix, d);
    if (!device.is_object()) return fmt::format("{}: must be an object, got {}", device_where, Shown(device));
    const std::string field = device_where + ".";
    RANK_TABLE_TRY(device_id, RequiredNumber(device, field, "device_id", kMaxDeviceId));
    RANK_TABLE_TRY(rank_id, RequiredNumber(device, field, "rank_id", kMaxRankId));
    if (!device_ids.insert(static_cast<int32_t>(device_id)).second) {
      return fmt::format("{}device_id: device {} appears twice in server \"{}\"", field, device_id, server.server_id);
    }
    if (auto why = CheckOptionalNumber(device, field, "super_device_id", UINT32_MAX)) return *why;
    if (auto why = CheckOptionalNumber(device, field, "device_port", kMaxPort)) return *why;
    if (auto why = CheckOptionalIp(device, field, "device_ip")) return *why;
    server.devices.push_back({static_cast<uint32_t>(rank_id), static_cast<int32_t>(device_id)});
  }
  return server;
}

// super_pod_list, when present: each pod names servers of server_list, each server in one pod.
std::optional<std::string> CheckSuperPods(const Json& root, const std::vector<RankTableServer>& servers) {
  const Json* pods = Member(root, "super_pod_list");
  if (pods == nullptr) return std::nullopt;
  if (!pods->is_array()) return fmt::format("super_pod_list: must be an array, got {}", Shown(*pods));
  std::set<std::string> known;
  for (const auto& server : servers) known.insert(server.server_id);
  std::map<std::string, std::string> pod_of;
  for (size_t p = 0; p < pods->size(); ++p) {
    const Json& pod = (*pods)[p];
    const std::string where = fmt::format("super_pod_list[{}]", p);
    if (!pod.is_object()) return fmt::format("{}: must be an object, got {}", where, Shown(pod));
    auto pod_id = RequiredString(pod, where + ".", "super_pod_id");
    if (auto* why = std::get_if<std::string>(&pod_id)) return *why;
    auto members = RequiredArray(pod, where + ".", "server_list");
    if (auto* why = std::get_if<std::string>(&members)) return *why;
    const Json& list = *std::get<const Json*>(members);
    for (size_t s = 0; s < list.size(); ++s) {
      const std::string member_where = fmt::format("{}.server_list[{}]", where, s);
      if (!list[s].is_object()) return fmt::format("{}: must be an object, got {}", member_where, Shown(list[s]));
      auto server_id = RequiredString(list[s], member_where + ".", "server_id");
      if (auto* why = std::get_if<std::string>(&server_id)) return *why;
      const std::string& id = std::get<Text>(server_id).value;
      if (known.count(id) == 0) {
        return fmt::format("{}.server_id: \"{}\" is not a server_id of server_list", member_where, id);
      }
      if (auto [it, fresh] = pod_of.emplace(id, std::get<Text>(pod_id).value); !fresh) {
        return fmt::format("{}.server_id: server \"{}\" is already in super pod \"{}\"", member_where, id, it->second);
      }
    }
  }
  return std::nullopt;
}

uint64_t Fnv1a(std::string_view bytes) {
  uint64_t hash = 1469598103934665603ull;
  for (char byte : bytes) {
    hash ^= static_cast<uint8_t>(byte);
    hash *= 1099511628211ull;
  }
  return hash;
}

}  // namespace

std::string RankTable::FieldOf(uint32_t rank) const {
  return fmt::format("server_list[{}].device[{}]", location_[rank].first, location_[rank].second);
}

bool RankTable::SpansHosts() const {
  return std::any_of(servers.begin(), servers.end(),
                     [&](const RankTableServer& server) { return server.host_ip != servers.front().host_ip; });
}

std::variant<RankTable, std::string> ParseRankTable(std::string_view text) {
  Json root;
  try {
    root = Json::parse(text.begin(), text.end());
  } catch (const Json::exception& error) {
    return fmt::format("not valid JSON: {}", error.what());
  }
  if (!root.is_object()) return fmt::format("the top level must be a JSON object, got {}", Shown(root));
  RankTable table;
  table.content_hash = Fnv1a(text);
  RANK_TABLE_TRY(status_text, RequiredString(root, "", "status"));
  if (status_text.value != "completed") {
    return fmt::format("status: \"{}\" (the rank table is usable only when status is \"completed\")",
                       status_text.value.substr(0, 40));
  }
  RANK_TABLE_TRY(version_text, RequiredString(root, "", "version"));
  const std::string& version = version_text.value;
  if (version != "1.2" && version != "1.0") {
    return fmt::format("version: \"{}\" is not supported (\"1.2\" for A3, or \"1.0\")", version.substr(0, 40));
  }
  table.version = version;
  RANK_TABLE_TRY(server_count, RequiredNumber(root, "", "server_count", kMaxRankId));
  RANK_TABLE_TRY(servers, RequiredArray(root, "", "server_list"));
  if (server_count != servers->size()) {
    return fmt::format("server_count: \"{}\" but server_list has {} servers", server_count, servers->size());
  }
  std::map<std::string, size_t> server_index;
  std::map<uint32_t, std::string> rank_field;
  for (size_t s = 0; s < servers->size(); ++s) {
    const std::string where = fmt::format("server_list[{}]", s);
    RANK_TABLE_TRY(server, ParseServer((*servers)[s], where, version));
    if (auto [it, fresh] = server_index.emplace(server.server_id, s); !fresh) {
      return fmt::format("{}.server_id: \"{}\" is also server_list[{}]'s (server ids are unique)", where,
                         server.server_id, it->second);
    }
    std::vector<uint32_t> ranks;
    for (size_t d = 0; d < server.devices.size(); ++d) {
      const uint32_t rank = server.devices[d].rank_id;
      const std::string field = fmt::format("{}.device[{}].rank_id", where, d);
      if (auto [it, fresh] = rank_field.emplace(rank, field); !fresh) {
        return fmt::format("{}: rank_id {} appears twice (also {})", field, rank, it->second);
      }
      ranks.push_back(rank);
    }
    std::sort(ranks.begin(), ranks.end());
    if (ranks.back() - ranks.front() + 1 != ranks.size()) {
      return fmt::format("{}.device: the rank ids of one server must be contiguous, server \"{}\" has {}", where,
                         server.server_id, fmt::join(ranks, ", "));
    }
    table.servers.push_back(std::move(server));
  }
  if (auto why = CheckSuperPods(root, table.servers)) return *why;
  table.rank_count = static_cast<uint32_t>(rank_field.size());
  // The map is ordered: the first rank id that is not its own position is where the gap is.
  uint32_t expected = 0;
  for (const auto& [rank, field] : rank_field) {
    if (rank != expected) {
      return fmt::format("{}: rank_id {} but rank_id {} is in no server (rank ids run 0..{} without gaps)", field, rank,
                         expected, table.rank_count - 1);
    }
    ++expected;
  }
  table.location_.resize(table.rank_count);
  for (uint32_t s = 0; s < table.servers.size(); ++s) {
    for (uint32_t d = 0; d < table.servers[s].devices.size(); ++d) {
      table.location_[table.servers[s].devices[d].rank_id] = {s, d};
    }
  }
  return table;
}

std::variant<RankTable, std::string> ReadRankTable(const char* path) {
  const size_t length = strnlen(path, kMaxRankTablePathBytes);
  if (length == 0) return std::string("the rank table path is empty");
  if (length >= kMaxRankTablePathBytes) {
    return fmt::format("the rank table path is longer than {} bytes with its terminating NUL", kMaxRankTablePathBytes);
  }
  // O_NONBLOCK and the regular-file check: a FIFO or a device given as the path is refused,
  // never waited on.
  const int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return fmt::format("rank table {}: cannot open: {}", path, std::strerror(errno));
  struct stat info {};
  std::string bytes;
  std::string failure;
  if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    failure = fmt::format("rank table {}: not a regular file", path);
  } else if (static_cast<uint64_t>(info.st_size) > kMaxRankTableBytes) {
    failure = fmt::format("rank table {}: larger than {} MiB, not a rank table", path, kMaxRankTableBytes >> 20);
  } else {
    char buffer[65536];
    while (bytes.size() <= kMaxRankTableBytes) {
      const ssize_t got = read(fd, buffer, sizeof(buffer));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) failure = fmt::format("rank table {}: read failed: {}", path, std::strerror(errno));
      if (got <= 0) break;
      bytes.append(buffer, static_cast<size_t>(got));
    }
  }
  close(fd);
  if (!failure.empty()) return failure;
  auto parsed = ParseRankTable(bytes);
  if (auto* why = std::get_if<std::string>(&parsed)) return fmt::format("rank table {}: {}", path, *why);
  return parsed;
}

}  // namespace distbarrier::comm
