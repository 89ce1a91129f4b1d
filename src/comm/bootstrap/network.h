// The network side of the bootstrap: which address rank 0 offers to ranks of other hosts, and
// TCP listening and connecting (the control conversation only; barrier traffic goes over UCX).
#pragma once

#include <cstdint>
#include <string>
#include <variant>

#include "comm/bootstrap/wire.h"

namespace distbarrier::comm::network {

// HCCL_IF_IP, else the first IPv4 address of an interface HCCL_SOCKET_IFNAME names (a comma
// separated list of name prefixes, or "=name,..." for exact names, as in CANN), else of the
// first non-loopback interface that is up in sorted name order, else 127.0.0.1. An error when
// HCCL_IF_IP is not an IPv4 address or HCCL_SOCKET_IFNAME names no interface with one.
std::variant<std::string, std::string> ChooseAddress();

// A TCP listener on ip:port (SO_REUSEADDR), or an error message.
std::variant<int, std::string> ListenTcp(const std::string& ip, uint16_t port);

// A listener on `ip` at HCCL_IF_BASE_PORT (default 60000) or the next free port above it
// (at most kPortTries tries); *port is set to the one taken.
inline constexpr int kPortTries = 1024;
std::variant<int, std::string> ListenTcpFromBasePort(const std::string& ip, uint16_t* port);

// Connects to ip:port, retrying a refused or unreachable connection until `deadline` (rank 0
// of a rank table may not listen yet). A connected non-blocking socket, or an error message.
std::variant<int, std::string> ConnectTcp(const std::string& ip, uint16_t port, wire::Clock::time_point deadline);

// Whether `ip` is a dotted IPv4 address.
bool ValidIpv4(const std::string& ip);

}  // namespace distbarrier::comm::network
