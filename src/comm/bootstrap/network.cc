#include "comm/bootstrap/network.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <thread>
#include <vector>

#include "common/env.h"

namespace distbarrier::comm::network {
namespace {

std::vector<std::string> Split(const std::string& text) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) parts.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

// Interface name -> its first IPv4 address, for interfaces that are up; sorted by name.
std::map<std::string, std::string> Ipv4Interfaces() {
  std::map<std::string, std::string> found;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return found;
  for (ifaddrs* entry = list; entry != nullptr; entry = entry->ifa_next) {
    if (entry->ifa_addr == nullptr || entry->ifa_addr->sa_family != AF_INET) continue;
    if ((entry->ifa_flags & IFF_UP) == 0) continue;
    char text[INET_ADDRSTRLEN] = {};
    const auto* address = reinterpret_cast<const sockaddr_in*>(entry->ifa_addr);
    if (inet_ntop(AF_INET, &address->sin_addr, text, sizeof(text)) == nullptr) continue;
    found.emplace(entry->ifa_name, text);  // the first address of each interface
  }
  freeifaddrs(list);
  return found;
}

bool Loopback(const std::string& ip) {
  return ip.rfind("127.", 0) == 0;
}

sockaddr_in Address(const std::string& ip, uint16_t port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  inet_pton(AF_INET, ip.c_str(), &address.sin_addr);
  return address;
}

}  // namespace

bool ValidIpv4(const std::string& ip) {
  in_addr parsed{};
  return inet_pton(AF_INET, ip.c_str(), &parsed) == 1;
}

std::variant<std::string, std::string> ChooseAddress() {
  using Result = std::variant<std::string, std::string>;
  if (const char* chosen = std::getenv("HCCL_IF_IP"); chosen != nullptr && *chosen != '\0') {
    if (!ValidIpv4(chosen)) {
      return Result(std::in_place_index<1>, fmt::format("HCCL_IF_IP={} is not an IPv4 address", chosen));
    }
    return Result(std::in_place_index<0>, chosen);
  }
  const auto interfaces = Ipv4Interfaces();
  if (const char* names = std::getenv("HCCL_SOCKET_IFNAME"); names != nullptr && *names != '\0') {
    std::string wanted = names;
    const bool exact = wanted[0] == '=';
    if (exact) wanted.erase(0, 1);
    for (const std::string& name : Split(wanted)) {
      for (const auto& [interface, ip] : interfaces) {
        if (exact ? interface == name : interface.rfind(name, 0) == 0) return Result(std::in_place_index<0>, ip);
      }
    }
    return Result(std::in_place_index<1>,
                  fmt::format("HCCL_SOCKET_IFNAME={} names no interface that is up with an IPv4 address", names));
  }
  for (const auto& [interface, ip] : interfaces) {
    if (!Loopback(ip)) return Result(std::in_place_index<0>, ip);
  }
  return Result(std::in_place_index<0>, "127.0.0.1");
}

std::variant<int, std::string> ListenTcp(const std::string& ip, uint16_t port) {
  using Result = std::variant<int, std::string>;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Result(std::in_place_index<1>, fmt::format("socket failed: {}", std::strerror(errno)));
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in address = Address(ip, port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 || listen(fd, SOMAXCONN) != 0) {
    const int error = errno;
    close(fd);
    return Result(std::in_place_index<1>, fmt::format("cannot listen on {}:{}: {}", ip, port, std::strerror(error)));
  }
  return Result(std::in_place_index<0>, fd);
}

std::variant<int, std::string> ListenTcpFromBasePort(const std::string& ip, uint16_t* port) {
  using Result = std::variant<int, std::string>;
  const int64_t base = EnvInt("HCCL_IF_BASE_PORT", 60000);
  if (base < 1 || base > 65535) {
    return Result(std::in_place_index<1>, fmt::format("HCCL_IF_BASE_PORT={} is not a port (1..65535)", base));
  }
  std::string last_error;
  for (int64_t candidate = base; candidate < base + kPortTries && candidate <= 65535; ++candidate) {
    auto listened = ListenTcp(ip, static_cast<uint16_t>(candidate));
    if (auto* fd = std::get_if<0>(&listened)) {
      *port = static_cast<uint16_t>(candidate);
      return *fd;
    }
    last_error = std::get<1>(listened);
    if (last_error.find(std::strerror(EADDRINUSE)) == std::string::npos) break;  // not a busy port: no use going on
  }
  return Result(std::in_place_index<1>,
                fmt::format("no free TCP port from HCCL_IF_BASE_PORT={} ({} tried): {}", base, kPortTries, last_error));
}

std::variant<int, std::string> ConnectTcp(const std::string& ip, uint16_t port, wire::Clock::time_point deadline) {
  using Result = std::variant<int, std::string>;
  const sockaddr_in address = Address(ip, port);
  std::string last_error = "no attempt";
  while (true) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return Result(std::in_place_index<1>, fmt::format("socket failed: {}", std::strerror(errno)));
    int error = 0;
    if (connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
      error = errno;
      if (error == EINPROGRESS) {
        pollfd waiting{fd, POLLOUT, 0};
        const int ready = poll(&waiting, 1, std::min(wire::RemainingMs(deadline), 1000));
        socklen_t length = sizeof(error);
        if (ready <= 0) {
          error = ETIMEDOUT;
        } else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) {
          error = errno;
        }
      }
    }
    if (error == 0) {
      const int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      return Result(std::in_place_index<0>, fd);
    }
    close(fd);
    last_error = std::strerror(error);
    if (wire::Clock::now() >= deadline) {
      return Result(
          std::in_place_index<1>,
          fmt::format("cannot connect to rank 0 at {}:{} within the connect timeout: {}", ip, port, last_error));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // retry pacing, not synchronization
  }
}

}  // namespace distbarrier::comm::network
