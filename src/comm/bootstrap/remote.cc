#include "comm/bootstrap/remote.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <thread>

#include "comm/barrier_window.h"
#include "comm/bootstrap/network.h"
#include "comm/group.h"
#include "comm/hosts/host_agent.h"

namespace distbarrier::comm::remote {
namespace {

using wire::Hello;
using wire::PlanHeader;
using wire::Ready;
using wire::ReceiveAll;
using wire::Received;
using wire::RemoteHello;
using wire::ReplyHeader;
using wire::SendAll;

constexpr uint32_t kMaxBlob = 1 << 20;  // a UCX worker address is a few hundred bytes
constexpr auto kHelloTimeout = std::chrono::seconds(2);

BootstrapError Error(HcclResult code, std::string message) {
  return {code, std::move(message)};
}

std::string GroupName(uint64_t job_id) {
  return fmt::format("hccl_root_{:016x}", job_id);
}

bool SecretsEqual(const uint8_t* a, const uint8_t* b) {
  uint8_t difference = 0;
  for (size_t i = 0; i < kSecretBytes; ++i) difference |= static_cast<uint8_t>(a[i] ^ b[i]);
  return difference == 0;
}

void SendReply(int fd, HcclResult status, uint32_t rank_count, const std::string& text, Clock::time_point deadline) {
  ReplyHeader reply{};
  std::memcpy(reply.magic, wire::kReplyMagic, sizeof(wire::kReplyMagic));
  reply.status = status;
  reply.rank_count = rank_count;
  std::snprintf(reply.message, sizeof(reply.message), "%s", text.c_str());
  SendAll(fd, &reply, sizeof(reply), -1, deadline);
}

int ListenAbstract(const std::string& name) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  socklen_t length = 0;
  sockaddr_un address = wire::AbstractAddress(name, &length);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), length) != 0 || listen(fd, SOMAXCONN) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

ucred Credentials(int fd) {
  ucred credentials{};
  socklen_t length = sizeof(credentials);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) credentials.uid = static_cast<uid_t>(-1);
  return credentials;
}

// A non-leader rank: its host's memory from its host's leader (pid `leader_pid`).
std::variant<std::unique_ptr<SharedMemory>, BootstrapError> MemoryFromLeader(const RootInfo& info, uint32_t rank_count,
                                                                             uint32_t rank, int host,
                                                                             int32_t leader_pid,
                                                                             Clock::time_point deadline) {
  socklen_t length = 0;
  sockaddr_un address = wire::AbstractAddress(wire::HostSocketName(info.job_id, host), &length);
  int fd = -1;
  while (true) {  // the leader starts listening when it gets the plan, as we do: retry a while
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return Error(HCCL_E_SYSCALL, fmt::format("socket failed: {}", std::strerror(errno)));
    if (connect(fd, reinterpret_cast<sockaddr*>(&address), length) == 0) break;
    const int error = errno;
    close(fd);
    if (Clock::now() >= deadline) {
      return Error(HCCL_E_TIMEOUT, fmt::format("rank {}: the leader of its host (pid {}) never handed out the host's "
                                               "memory: {}",
                                               rank, leader_pid, std::strerror(error)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // retry pacing, not synchronization
  }
  const ucred listener = Credentials(fd);
  if (listener.uid != getuid() || listener.pid != leader_pid) {
    close(fd);
    return Error(HCCL_E_TCP_CONNECT, fmt::format("rank {}: the host socket is held by pid {} of uid {}, not the host "
                                                 "leader pid {}: nothing was sent to it",
                                                 rank, listener.pid, listener.uid, leader_pid));
  }
  Hello hello{};
  std::memcpy(hello.magic, wire::kHelloMagic, sizeof(wire::kHelloMagic));
  hello.rank = rank;
  hello.rank_count = rank_count;
  hello.job_id = info.job_id;
  std::memcpy(hello.secret, info.secret.data(), kSecretBytes);
  ReplyHeader reply{};
  int memory_fd = -1;
  if (!SendAll(fd, &hello, sizeof(hello), -1, deadline) ||
      ReceiveAll(fd, &reply, sizeof(reply), &memory_fd, deadline) != Received::kAll) {
    close(fd);
    if (memory_fd >= 0) close(memory_fd);
    return Error(HCCL_E_TCP_CONNECT, fmt::format("rank {}: its host leader (pid {}) gave no memory", rank, leader_pid));
  }
  close(fd);
  reply.message[sizeof(reply.message) - 1] = '\0';
  if (reply.status != HCCL_SUCCESS || memory_fd < 0) {
    if (memory_fd >= 0) close(memory_fd);
    return Error(reply.status != HCCL_SUCCESS ? static_cast<HcclResult>(reply.status) : HCCL_E_INTERNAL,
                 fmt::format("rank {}: its host leader refused it: {}", rank, reply.message));
  }
  std::string error;
  auto memory = SharedMemory::Map(memory_fd, GroupMemoryBytes(static_cast<int>(rank_count)), &error);
  if (!memory) return Error(HCCL_E_MEMORY, fmt::format("rank {}: from its host leader: {}", rank, error));
  return memory;
}

}  // namespace

std::string HostKey() {
  return fmt::format("{}/{}", HostBootId(), HostNetns());
}

std::vector<uint8_t> EncodePlan(const HostLayout& layout, const std::vector<int32_t>& pids, int receiver_host) {
  std::vector<uint8_t> bytes;
  auto append = [&](const void* data, size_t size) {
    const size_t at = bytes.size();
    bytes.resize(at + size);
    std::memcpy(bytes.data() + at, data, size);
  };
  PlanHeader header{};
  header.host_count = static_cast<uint32_t>(layout.host_count);
  header.my_host = static_cast<uint32_t>(receiver_host);
  append(&header, sizeof(header));
  for (size_t rank = 0; rank < layout.host_of_rank.size(); ++rank) {
    const uint32_t host = static_cast<uint32_t>(layout.host_of_rank[rank]);
    append(&host, sizeof(host));
    append(&pids[rank], sizeof(int32_t));
  }
  for (const std::string& name : layout.host_names) {
    char field[wire::kHostNameBytes] = {};
    std::snprintf(field, sizeof(field), "%s", name.c_str());
    append(field, sizeof(field));
  }
  return bytes;
}

namespace {

// The plan, received after a successful offer; fills layout (leaders from the ranks) and pids.
bool ReceivePlan(int fd, uint32_t rank_count, Clock::time_point deadline, HostLayout* layout,
                 std::vector<int32_t>* pids) {
  PlanHeader header{};
  if (ReceiveAll(fd, &header, sizeof(header), nullptr, deadline) != Received::kAll) return false;
  if (header.host_count == 0 || header.host_count > rank_count || header.my_host >= header.host_count) return false;
  layout->host_count = static_cast<int>(header.host_count);
  layout->my_host = static_cast<int>(header.my_host);
  std::vector<uint32_t> table(static_cast<size_t>(rank_count) * 2);
  if (ReceiveAll(fd, table.data(), table.size() * sizeof(uint32_t), nullptr, deadline) != Received::kAll) return false;
  layout->host_of_rank.assign(rank_count, 0);
  pids->assign(rank_count, 0);
  layout->leader_of_host.assign(header.host_count, -1);
  layout->leader_pid_of_host.assign(header.host_count, 0);
  for (uint32_t rank = 0; rank < rank_count; ++rank) {
    const uint32_t host = table[rank * 2];
    if (host >= header.host_count) return false;
    layout->host_of_rank[rank] = static_cast<int>(host);
    std::memcpy(&(*pids)[rank], &table[rank * 2 + 1], sizeof(int32_t));
    if (layout->leader_of_host[host] < 0) {
      layout->leader_of_host[host] = static_cast<int>(rank);
      layout->leader_pid_of_host[host] = (*pids)[rank];
    }
  }
  std::vector<char> names(header.host_count * wire::kHostNameBytes);
  if (ReceiveAll(fd, names.data(), names.size(), nullptr, deadline) != Received::kAll) return false;
  for (uint32_t host = 0; host < header.host_count; ++host) {
    const char* name = names.data() + host * wire::kHostNameBytes;
    layout->host_names.emplace_back(name, strnlen(name, wire::kHostNameBytes));
  }
  return std::find(layout->leader_of_host.begin(), layout->leader_of_host.end(), -1) == layout->leader_of_host.end();
}

}  // namespace

void InitHostWindow(void* memory, int rank_count, const HostLayout& layout, const std::vector<int32_t>& pids) {
  InitializeGroupMemory(memory, rank_count);
  BarrierWindow setup(rank_count, memory, /*initialize=*/false);
  setup.SetHosts(layout.host_count, layout.my_host);
  for (int rank = 0; rank < rank_count; ++rank) {
    setup.SetPid(rank, pids[rank]);
    setup.SetHost(rank, layout.host_of_rank[rank]);
  }
}

bool SendBlob(int fd, const std::vector<uint8_t>& bytes, Clock::time_point deadline) {
  const uint32_t length = static_cast<uint32_t>(bytes.size());
  return SendAll(fd, &length, sizeof(length), -1, deadline) &&
         (bytes.empty() || SendAll(fd, bytes.data(), bytes.size(), -1, deadline));
}

std::optional<std::vector<uint8_t>> ReceiveBlob(int fd, Clock::time_point deadline) {
  uint32_t length = 0;
  if (ReceiveAll(fd, &length, sizeof(length), nullptr, deadline) != Received::kAll || length > kMaxBlob) {
    return std::nullopt;
  }
  std::vector<uint8_t> bytes(length);
  if (length > 0 && ReceiveAll(fd, bytes.data(), length, nullptr, deadline) != Received::kAll) return std::nullopt;
  return bytes;
}

std::optional<BootstrapError> ServeHostMemory(const RootInfo& info, uint32_t rank_count, int host,
                                              const std::vector<int>& ranks, const std::vector<int32_t>& pids,
                                              int memory_fd, Clock::time_point deadline) {
  if (ranks.empty()) return std::nullopt;
  const std::string name = wire::HostSocketName(info.job_id, host);
  const int listener = ListenAbstract(name);
  if (listener < 0) {
    return Error(HCCL_E_SYSCALL,
                 fmt::format("host {} leader: cannot listen on @{}: {}", host, name, std::strerror(errno)));
  }
  std::set<int> waiting(ranks.begin(), ranks.end());
  while (!waiting.empty()) {
    pollfd incoming{listener, POLLIN, 0};
    const int ready = poll(&incoming, 1, wire::RemainingMs(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      close(listener);
      std::vector<int> missing(waiting.begin(), waiting.end());
      return Error(HCCL_E_TIMEOUT, fmt::format("host {} leader: ranks [{}] of this host never came for its memory",
                                               host, fmt::join(missing, ", ")));
    }
    const int fd = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) continue;
    const ucred peer = Credentials(fd);
    Hello hello{};
    const Clock::time_point hello_deadline = std::min(deadline, Clock::now() + kHelloTimeout);
    const auto refuse = [&](const std::string& why) {
      SendReply(fd, HCCL_E_PARA, rank_count, why, hello_deadline);
      close(fd);
    };
    if (peer.uid != getuid()) {
      refuse(
          fmt::format("pid {} runs as uid {}, the job as uid {}", peer.pid, static_cast<int64_t>(peer.uid), getuid()));
      continue;
    }
    if (ReceiveAll(fd, &hello, sizeof(hello), nullptr, hello_deadline) != Received::kAll ||
        std::memcmp(hello.magic, wire::kHelloMagic, sizeof(wire::kHelloMagic)) != 0) {
      refuse("no hello");
      continue;
    }
    const int rank = static_cast<int>(hello.rank);
    if (hello.job_id != info.job_id || !SecretsEqual(hello.secret, info.secret.data())) {
      refuse(fmt::format("pid {} presented a wrong secret or job id", peer.pid));
    } else if (hello.rank >= rank_count || waiting.count(rank) == 0 || pids[rank] != peer.pid) {
      refuse(
          fmt::format("pid {} asked for rank {}, which is not a rank of this host waiting for memory", peer.pid, rank));
    } else {
      ReplyHeader offer{};
      std::memcpy(offer.magic, wire::kReplyMagic, sizeof(wire::kReplyMagic));
      offer.status = HCCL_SUCCESS;
      offer.rank_count = rank_count;
      if (SendAll(fd, &offer, sizeof(offer), memory_fd, deadline)) waiting.erase(rank);
      close(fd);
    }
  }
  close(listener);
  return std::nullopt;
}

std::optional<BootstrapError> RunRemotePeer(const RootInfo& info, uint32_t rank_count, uint32_t rank,
                                            Clock::time_point deadline, const RankAttach& attach) {
  const std::string group_name = GroupName(info.job_id);
  auto connected = network::ConnectTcp(info.ip, info.port, deadline);
  if (auto* why = std::get_if<std::string>(&connected)) {
    return Error(Clock::now() >= deadline ? HCCL_E_TIMEOUT : HCCL_E_TCP_CONNECT,
                 fmt::format("rank {}: {}", rank, *why));
  }
  const int fd = std::get<int>(connected);
  auto fail = [&](BootstrapError error) {
    close(fd);
    return error;
  };
  RemoteHello hello{};
  std::memcpy(hello.hello.magic, wire::kRemoteHelloMagic, sizeof(wire::kRemoteHelloMagic));
  hello.hello.rank = rank;
  hello.hello.rank_count = rank_count;
  hello.hello.job_id = info.job_id;
  std::memcpy(hello.hello.secret, info.secret.data(), kSecretBytes);
  std::snprintf(hello.boot_id, sizeof(hello.boot_id), "%s", HostBootId().c_str());
  hello.netns = HostNetns();
  hello.pid = getpid();
  gethostname(hello.hostname, sizeof(hello.hostname) - 1);
  constexpr auto kVerdictGrace = std::chrono::seconds(2);  // rank 0 gives up at the same deadline
  auto receive_answer = [&](ReplyHeader* reply) -> std::optional<BootstrapError> {
    const Received outcome = ReceiveAll(fd, reply, sizeof(*reply), nullptr, deadline + kVerdictGrace);
    if (outcome == Received::kTimedOut) {
      return Error(
          HCCL_E_TIMEOUT,
          fmt::format("rank {}: rank 0 of {} did not complete the group within the connect timeout", rank, group_name));
    }
    if (outcome == Received::kClosed) {
      return Error(HCCL_E_TCP_CONNECT, fmt::format("rank {}: rank 0 of {} at {}:{} closed the connection without an "
                                                   "answer (it exited, or the group was already complete)",
                                                   rank, group_name, info.ip, info.port));
    }
    reply->message[sizeof(reply->message) - 1] = '\0';
    if (std::memcmp(reply->magic, wire::kReplyMagic, sizeof(wire::kReplyMagic)) != 0) {
      return Error(HCCL_E_INTERNAL, "rank 0 answered with garbage");
    }
    if (reply->status != HCCL_SUCCESS) {
      return Error(static_cast<HcclResult>(reply->status),
                   fmt::format("rank 0 refused rank {}: {}", rank, reply->message));
    }
    return std::nullopt;
  };
  if (!SendAll(fd, &hello, sizeof(hello), -1, deadline)) {
    return fail(Error(HCCL_E_TCP_CONNECT, fmt::format("rank {}: rank 0 closed the connection before the hello", rank)));
  }
  ReplyHeader offer{};
  if (auto refused = receive_answer(&offer)) return fail(*refused);
  auto layout = std::make_shared<HostLayout>();
  std::vector<int32_t> pids;
  if (!ReceivePlan(fd, rank_count, deadline + kVerdictGrace, layout.get(), &pids)) {
    return fail(
        Error(HCCL_E_TCP_TRANSFER, fmt::format("rank {}: rank 0's plan of the hosts is missing or malformed", rank)));
  }
  const int my_host = layout->my_host;
  const bool leader = layout->IsLeader(static_cast<int>(rank));
  JoinedGroup group{group_name, static_cast<int>(rank_count), nullptr, layout, nullptr};
  std::optional<BootstrapError> failed;
  std::string error;
  if (leader && my_host == 0) {
    failed = Error(HCCL_E_INTERNAL, "rank 0's host has rank 0 as its leader");
  } else if (leader) {
    group.memory = SharedMemory::Create(GroupMemoryBytes(static_cast<int>(rank_count)), &error);
    if (!group.memory) {
      failed = Error(HCCL_E_MEMORY, error);
    } else {
      InitHostWindow(group.memory->Data(), static_cast<int>(rank_count), *layout, pids);
      std::vector<int> others = layout->RanksOn(my_host);
      std::erase(others, static_cast<int>(rank));
      failed = ServeHostMemory(info, rank_count, my_host, others, pids, group.memory->Fd(), deadline);
      if (!failed) {
        group.agent = HostAgent::Create(*layout, group.memory->Data(), static_cast<int>(rank_count), &error);
        if (!group.agent) failed = Error(HCCL_E_INTERNAL, error);
      }
    }
  } else {
    auto memory = MemoryFromLeader(info, rank_count, rank, my_host, layout->leader_pid_of_host[my_host], deadline);
    if (auto* why = std::get_if<BootstrapError>(&memory)) {
      failed = *why;
    } else {
      group.memory = std::move(std::get<std::unique_ptr<SharedMemory>>(memory));
    }
  }
  HostAgent* agent = group.agent.get();  // the group owns it once attached
  std::vector<uint8_t> address = agent != nullptr ? agent->WorkerAddress() : std::vector<uint8_t>{};
  if (!failed) failed = attach.attach(group);
  Ready ready{};
  std::memcpy(ready.magic, wire::kReadyMagic, sizeof(wire::kReadyMagic));
  ready.rank = rank;
  ready.status = failed ? failed->code : HCCL_SUCCESS;
  if (failed) std::snprintf(ready.message, sizeof(ready.message), "%s", failed->message.c_str());
  const bool told = SendAll(fd, &ready, sizeof(ready), -1, deadline + kVerdictGrace) &&
                    SendBlob(fd, failed ? std::vector<uint8_t>{} : address, deadline + kVerdictGrace);
  if (failed) return fail(*failed);
  ReplyHeader verdict{};
  std::optional<BootstrapError> rejected =
      told ? receive_answer(&verdict)
           : Error(HCCL_E_TCP_CONNECT,
                   fmt::format("rank {}: rank 0 of {} left before the group was complete", rank, group_name));
  std::vector<std::vector<uint8_t>> addresses;
  for (int host = 0; !rejected && host < layout->host_count; ++host) {
    auto blob = ReceiveBlob(fd, deadline + kVerdictGrace);
    if (!blob)
      rejected = Error(HCCL_E_TCP_TRANSFER, fmt::format("rank {}: rank 0's list of host agents is cut", rank));
    else
      addresses.push_back(std::move(*blob));
  }
  if (!rejected && agent != nullptr) {
    if (auto why = agent->Start(addresses)) rejected = Error(HCCL_E_INTERNAL, fmt::format("rank {}: {}", rank, *why));
  }
  if (rejected) {
    attach.detach();
    return fail(*rejected);
  }
  close(fd);
  return std::nullopt;
}

}  // namespace distbarrier::comm::remote
