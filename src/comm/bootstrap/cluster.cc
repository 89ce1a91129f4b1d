#include "comm/bootstrap/cluster.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <map>
#include <vector>

#include "comm/bootstrap/job_secret.h"
#include "comm/bootstrap/root_info.h"
#include "common/env.h"

namespace distbarrier::comm {
namespace {

static_assert(kJobSecretBytes == kSecretBytes, "the job secret is the root info's secret");

BootstrapError Refused(std::string message) {
  return {HCCL_E_PARA, std::move(message)};
}

// HCCL_IF_BASE_PORT, or why it is not a port. CANN's range is [1024, 65520].
std::variant<uint16_t, BootstrapError> BasePort() {
  const char* text = std::getenv("HCCL_IF_BASE_PORT");
  if (text == nullptr) return kDefaultBasePort;
  constexpr int64_t kNotANumber = -1;
  const int64_t port = EnvInt("HCCL_IF_BASE_PORT", kNotANumber);
  if (port < 1024 || port > 65520) {
    return Refused(fmt::format("HCCL_IF_BASE_PORT=\"{}\" is not a port in [1024, 65520]", text));
  }
  return static_cast<uint16_t>(port);
}

// The job's secret, from the environment. Required for every table: its ranks meet rank 0 over
// TCP, where the kernel cannot tell rank 0 who connects, so anything derived from the file alone
// would let any local user who can read it in.
std::variant<JobSecret, BootstrapError> SecretFor(const RankTable& table) {
  auto from_environment = JobSecretFromEnvironment();
  if (auto* why = std::get_if<std::string>(&from_environment)) return Refused(*why);
  if (auto& secret = std::get<std::optional<JobSecret>>(from_environment)) return *secret;
  std::string where =
      fmt::format("the rank table (its ranks meet rank 0 at {} over TCP, also on one host)", table.ServerOf(0).host_ip);
  if (table.SpansHosts()) {
    const std::string& first = table.servers.front().host_ip;
    const auto other = std::find_if(table.servers.begin(), table.servers.end(),
                                    [&](const RankTableServer& server) { return server.host_ip != first; });
    where = fmt::format("the rank table spans hosts ({} and {}, ...) and", first, other->host_ip);
  }
  return Refused(
      fmt::format("{} carries no secret: set {} (64 hex digits, the same for every rank, e.g. "
                  "from `openssl rand -hex 32`) or {}; distbarrier-run --rank-table makes one for a "
                  "one-server table",
                  where, kJobSecretEnv, kJobSecretFileEnv));
}

// The bootstrap's timeout names the ranks that never came ("ranks [2, 3] of 4 never connected
// ..."); the rank table knows where they run. The hosts, or "" when the message names no ranks.
std::string WhereTheyRun(const RankTable& table, const std::string& message) {
  const size_t open = message.find("ranks [");
  const size_t close = message.find(']', open);
  if (open == std::string::npos || close == std::string::npos) return "";
  std::map<uint32_t, std::vector<uint32_t>> by_server;  // server index -> its missing ranks
  const char* cursor = message.data() + open + 7;
  const char* end = message.data() + close;
  while (cursor < end) {
    uint32_t rank = 0;
    auto [next, error] = std::from_chars(cursor, end, rank);
    if (error != std::errc() || rank >= table.rank_count) return "";
    const auto& server = table.ServerOf(rank);
    by_server[static_cast<uint32_t>(&server - table.servers.data())].push_back(rank);
    cursor = next;
    while (cursor < end && (*cursor == ',' || *cursor == ' ')) ++cursor;
  }
  std::string where;
  constexpr size_t kMaxServersNamed = 8;
  size_t named = 0;
  for (const auto& [index, ranks] : by_server) {
    if (named == kMaxServersNamed) {
      where += "; ...";
      break;
    }
    if (named++ > 0) where += "; ";
    const RankTableServer& server = table.servers[index];
    where += fmt::format("{} {} on server \"{}\" (host_ip {})", ranks.size() == 1 ? "rank" : "ranks",
                         fmt::join(ranks, ", "), server.server_id, server.host_ip);
  }
  return where.empty() ? "" : " (in the rank table: " + where + ")";
}

}  // namespace

bool IsLocalAddress(const std::string& ip) {
  in6_addr wanted6{};
  in_addr wanted4{};
  const bool is4 = inet_pton(AF_INET, ip.c_str(), &wanted4) == 1;
  const bool is6 = !is4 && inet_pton(AF_INET6, ip.c_str(), &wanted6) == 1;
  if (!is4 && !is6) return false;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return false;
  bool found = false;
  for (ifaddrs* entry = list; entry != nullptr && !found; entry = entry->ifa_next) {
    if (entry->ifa_addr == nullptr) continue;
    if (is4 && entry->ifa_addr->sa_family == AF_INET) {
      found = reinterpret_cast<sockaddr_in*>(entry->ifa_addr)->sin_addr.s_addr == wanted4.s_addr;
    } else if (is6 && entry->ifa_addr->sa_family == AF_INET6) {
      found = std::memcmp(&reinterpret_cast<sockaddr_in6*>(entry->ifa_addr)->sin6_addr, &wanted6, sizeof(wanted6)) == 0;
    }
  }
  freeifaddrs(list);
  return found;
}

std::optional<BootstrapError> JoinClusterGroup(const RankTable& table, uint32_t rank, std::chrono::milliseconds timeout,
                                               const RankAttach& attach) {
  if (rank >= table.rank_count) {
    return Refused(
        fmt::format("rank {} is not a rank_id of the rank table (its rank ids are 0..{})", rank, table.rank_count - 1));
  }
  const RankTableServer& server = table.ServerOf(rank);
  if (!IsLocalAddress(server.host_ip)) {
    return Refused(fmt::format(
        "rank {} is on server \"{}\" ({}.host_ip {}) in the rank table, but no interface of "
        "this host has that address",
        rank, server.server_id, table.FieldOf(rank).substr(0, table.FieldOf(rank).find('.')), server.host_ip));
  }
  auto port = BasePort();
  if (auto* error = std::get_if<BootstrapError>(&port)) return *error;
  auto secret = SecretFor(table);
  if (auto* error = std::get_if<BootstrapError>(&secret)) return *error;
  const std::string& root_ip = table.ServerOf(0).host_ip;
  // Every rank builds the same root info; rank 0's JoinGroup listens at it.
  // The job id names the job's sockets on each host (visible to every local user, so it carries
  // nothing of the secret): two jobs of one rank table on one host, on other ports, must not
  // share them, so the port counts too (an FNV-1a step over it).
  uint64_t job_id = table.content_hash;
  for (int shift : {0, 8}) job_id = (job_id ^ ((std::get<uint16_t>(port) >> shift) & 0xff)) * 0x100000001b3ULL;
  auto root_info = CreateRootInfoAt(root_ip, std::get<uint16_t>(port), job_id, std::get<JobSecret>(secret));
  if (auto* error = std::get_if<BootstrapError>(&root_info)) return *error;
  auto error = JoinGroup(std::get<HcclRootInfo>(root_info), table.rank_count, rank, timeout, attach);
  if (error && error->code == HCCL_E_TIMEOUT) error->message += WhereTheyRun(table, error->message);
  return error;
}

}  // namespace distbarrier::comm
