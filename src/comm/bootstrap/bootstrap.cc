#include "comm/bootstrap/bootstrap.h"

#include <poll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "comm/barrier_window.h"
#include "comm/bootstrap/root_info.h"
#include "comm/bootstrap/wire.h"
#include "comm/group.h"
#include "common/log.h"

namespace distbarrier::comm {
namespace {

using Clock = std::chrono::steady_clock;

using wire::Hello;
using wire::kHelloMagic;
using wire::kReplyMagic;
using wire::ReplyHeader;
constexpr size_t kMaxRanks = 4096;

struct Listener {
  int fd;
  RootInfo info;
};

std::mutex listeners_mutex;
std::map<uint64_t, Listener>& Listeners() {
  static auto* listeners = new std::map<uint64_t, Listener>;
  return *listeners;
}

BootstrapError Error(HcclResult code, std::string message) { return {code, std::move(message)}; }

std::string GroupName(uint64_t job_id) { return fmt::format("hccl_root_{:016x}", job_id); }

int RemainingMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(std::min<int64_t>(left, 1 << 30));
}

// Sends all of `data` (and `pass_fd` with its first byte, if >= 0) before the deadline.
bool SendAll(int fd, const void* data, size_t size, int pass_fd, Clock::time_point deadline) {
  const char* bytes = static_cast<const char*>(data);
  bool fd_sent = pass_fd < 0;
  while (size > 0) {
    pollfd waiting{fd, POLLOUT, 0};
    const int ready = poll(&waiting, 1, RemainingMs(deadline));
    if (ready < 0 && errno == EINTR) continue;  // a signal is not the end of the wait
    if (ready <= 0) return false;
    iovec chunk{const_cast<char*>(bytes), size};
    msghdr message{};
    message.msg_iov = &chunk;
    message.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    if (!fd_sent) {
      message.msg_control = control;
      message.msg_controllen = sizeof(control);
      cmsghdr* header = CMSG_FIRSTHDR(&message);
      header->cmsg_level = SOL_SOCKET;
      header->cmsg_type = SCM_RIGHTS;
      header->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(header), &pass_fd, sizeof(int));
    }
    ssize_t sent = sendmsg(fd, &message, MSG_NOSIGNAL);
    if (sent < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (sent <= 0) return false;
    fd_sent = true;
    bytes += sent;
    size -= static_cast<size_t>(sent);
  }
  return true;
}

enum class Received { kAll, kClosed, kTimedOut };

// Receives exactly `size` bytes before the deadline; a passed descriptor lands in *passed_fd.
Received ReceiveAll(int fd, void* data, size_t size, int* passed_fd, Clock::time_point deadline) {
  char* bytes = static_cast<char*>(data);
  while (size > 0) {
    pollfd waiting{fd, POLLIN, 0};
    const int ready = poll(&waiting, 1, RemainingMs(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return Received::kTimedOut;
    iovec chunk{bytes, size};
    msghdr message{};
    message.msg_iov = &chunk;
    message.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    message.msg_control = control;
    message.msg_controllen = sizeof(control);
    ssize_t received = recvmsg(fd, &message, MSG_CMSG_CLOEXEC);
    if (received < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (received <= 0) return Received::kClosed;
    for (cmsghdr* header = CMSG_FIRSTHDR(&message); header != nullptr; header = CMSG_NXTHDR(&message, header)) {
      if (header->cmsg_level == SOL_SOCKET && header->cmsg_type == SCM_RIGHTS && passed_fd != nullptr) {
        std::memcpy(passed_fd, CMSG_DATA(header), sizeof(int));
      }
    }
    bytes += received;
    size -= static_cast<size_t>(received);
  }
  return Received::kAll;
}

void SendReply(int fd, HcclResult status, uint32_t rank_count, const std::string& text, Clock::time_point deadline) {
  ReplyHeader reply{};
  std::memcpy(reply.magic, kReplyMagic, sizeof(kReplyMagic));
  reply.status = status;
  reply.rank_count = rank_count;
  std::snprintf(reply.message, sizeof(reply.message), "%s", text.c_str());
  SendAll(fd, &reply, sizeof(reply), -1, deadline);
}

bool SecretsEqual(const uint8_t* a, const uint8_t* b) {
  uint8_t difference = 0;  // constant time: no early exit that would leak a prefix match
  for (size_t i = 0; i < kSecretBytes; ++i) difference |= static_cast<uint8_t>(a[i] ^ b[i]);
  return difference == 0;
}

struct PendingPeer {
  int fd;
  Hello hello;
  size_t received = 0;
};

// Rank 0: gathers the other ranks, then hands out the group's shared memory.
std::variant<JoinedGroup, BootstrapError> RunRoot(Listener listener, uint32_t rank_count, Clock::time_point deadline) {
  const RootInfo& info = listener.info;
  std::vector<int> peer_fd(rank_count, -1);
  std::vector<int32_t> pids(rank_count, 0);
  pids[0] = getpid();
  std::vector<PendingPeer> pending;
  uint32_t joined = 1;
  auto close_all = [&] {
    for (int fd : peer_fd) {
      if (fd >= 0) close(fd);
    }
    for (auto& peer : pending) close(peer.fd);
    close(listener.fd);
  };
  auto refuse = [&](PendingPeer& peer, HcclResult code, const std::string& why) {
    Log(LogLevel::kWarning, "HcclCommInitRootInfo (rank 0 of {}): refused a peer: {}", GroupName(info.job_id), why);
    SendReply(peer.fd, code, rank_count, why, std::min(deadline, Clock::now() + std::chrono::seconds(1)));
    close(peer.fd);
    peer.fd = -1;
  };

  while (joined < rank_count) {
    std::vector<pollfd> fds{{listener.fd, POLLIN, 0}};
    for (auto& peer : pending) fds.push_back({peer.fd, POLLIN, 0});
    int ready = poll(fds.data(), fds.size(), RemainingMs(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      std::vector<uint32_t> missing;
      for (uint32_t rank = 1; rank < rank_count; ++rank) {
        if (peer_fd[rank] < 0) missing.push_back(rank);
      }
      std::string why = fmt::format("ranks [{}] of {} never connected to rank 0 within the connect timeout",
                                    fmt::join(missing, ", "), rank_count);
      for (int fd : peer_fd) {
        if (fd >= 0) SendReply(fd, HCCL_E_TIMEOUT, rank_count, why, Clock::now() + std::chrono::seconds(1));
      }
      close_all();
      return Error(HCCL_E_TIMEOUT, why);
    }
    if (fds[0].revents & POLLIN) {
      int fd = accept4(listener.fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd >= 0) pending.push_back(PendingPeer{fd, {}, 0});
    }
    for (size_t i = 1; i < fds.size(); ++i) {
      PendingPeer& peer = pending[i - 1];
      if (fds[i].revents == 0) continue;
      ssize_t got = recv(peer.fd, reinterpret_cast<char*>(&peer.hello) + peer.received, sizeof(Hello) - peer.received, 0);
      if (got <= 0) {
        if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        close(peer.fd);  // gone before saying hello
        peer.fd = -1;
        continue;
      }
      peer.received += static_cast<size_t>(got);
      if (peer.received < sizeof(Hello)) continue;
      const Hello& hello = peer.hello;
      ucred credentials{};
      socklen_t length = sizeof(credentials);
      getsockopt(peer.fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length);
      if (std::memcmp(hello.magic, kHelloMagic, sizeof(kHelloMagic)) != 0) {
        refuse(peer, HCCL_E_PARA, "not a distbarrier hello");
      } else if (credentials.uid != getuid()) {
        refuse(peer, HCCL_E_PARA, fmt::format("pid {} runs as uid {}, the job as uid {}", credentials.pid,
                                              credentials.uid, getuid()));
      } else if (hello.job_id != info.job_id || !SecretsEqual(hello.secret, info.secret.data())) {
        refuse(peer, HCCL_E_PARA,
               fmt::format("pid {} presented a wrong secret or job id for group {}", credentials.pid,
                           GroupName(info.job_id)));
      } else if (hello.rank_count != rank_count) {
        refuse(peer, HCCL_E_PARA,
               fmt::format("pid {} says the group has {} ranks, rank 0 says {}", credentials.pid, hello.rank_count,
                           rank_count));
      } else if (hello.rank == 0 || hello.rank >= rank_count) {
        refuse(peer, HCCL_E_PARA,
               fmt::format("pid {} asked for rank {}, outside 1..{}", credentials.pid, hello.rank, rank_count - 1));
      } else if (peer_fd[hello.rank] >= 0) {
        refuse(peer, HCCL_E_PARA,
               fmt::format("pid {} asked for rank {}, already taken by pid {}", credentials.pid, hello.rank,
                           pids[hello.rank]));
      } else {
        peer_fd[hello.rank] = peer.fd;
        pids[hello.rank] = credentials.pid;
        peer.fd = -1;
        ++joined;
      }
    }
    std::erase_if(pending, [](const PendingPeer& peer) { return peer.fd < 0; });
  }
  close(listener.fd);  // nobody else may join; the abstract name disappears
  for (auto& peer : pending) {  // connected, hello unfinished: too late now
    SendReply(peer.fd, HCCL_E_PARA, rank_count, "the group is already complete", Clock::now());
    close(peer.fd);
  }
  pending.clear();

  std::string error;
  auto memory = SharedMemory::Create(GroupMemoryBytes(static_cast<int>(rank_count)), &error);
  if (!memory) {
    for (uint32_t rank = 1; rank < rank_count; ++rank) {
      SendReply(peer_fd[rank], HCCL_E_MEMORY, rank_count, error, deadline);
    }
    close_all();
    return Error(HCCL_E_MEMORY, error);
  }
  {
    BarrierWindow setup(static_cast<int>(rank_count), memory->Data(), /*initialize=*/true);
    for (uint32_t rank = 0; rank < rank_count; ++rank) setup.SetPid(static_cast<int>(rank), pids[rank]);
  }
  for (uint32_t rank = 1; rank < rank_count; ++rank) {
    ReplyHeader reply{};
    std::memcpy(reply.magic, kReplyMagic, sizeof(kReplyMagic));
    reply.status = HCCL_SUCCESS;
    reply.rank_count = rank_count;
    if (!SendAll(peer_fd[rank], &reply, sizeof(reply), memory->Fd(), deadline)) {
      Log(LogLevel::kWarning, "HcclCommInitRootInfo: rank {} (pid {}) left before receiving the group", rank,
          pids[rank]);
    }
    close(peer_fd[rank]);
    peer_fd[rank] = -1;
  }
  return JoinedGroup{GroupName(info.job_id), static_cast<int>(rank_count), std::move(memory)};
}

// Ranks 1..n-1: say hello to rank 0 and receive the group's shared memory.
std::variant<JoinedGroup, BootstrapError> RunPeer(const RootInfo& info, uint32_t rank_count, uint32_t rank,
                                                  Clock::time_point deadline) {
  socklen_t length = 0;
  sockaddr_un address = wire::AbstractAddress(info.address, &length);
  int fd = -1;
  // Rank 0 listens from HcclGetRootInfo on, so a refused connection means it is not (yet or
  // any more) there: retry until the deadline.
  while (true) {
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return Error(HCCL_E_SYSCALL, fmt::format("socket failed: {}", std::strerror(errno)));
    if (connect(fd, reinterpret_cast<sockaddr*>(&address), length) == 0) break;
    const int error = errno;
    close(fd);
    if (Clock::now() >= deadline) {
      return Error(HCCL_E_TIMEOUT, fmt::format("rank {} could not reach rank 0 of {} within the connect timeout: {}",
                                               rank, GroupName(info.job_id), std::strerror(error)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // retry pacing, not synchronization
  }
  Hello hello{};
  std::memcpy(hello.magic, kHelloMagic, sizeof(kHelloMagic));
  hello.rank = rank;
  hello.rank_count = rank_count;
  hello.job_id = info.job_id;
  std::memcpy(hello.secret, info.secret.data(), kSecretBytes);
  ReplyHeader reply{};
  int memory_fd = -1;
  // Rank 0 gives up at the same deadline and then says who never came: wait a little longer
  // than it does, so that verdict, not a bare timeout, is what this rank reports.
  constexpr auto kVerdictGrace = std::chrono::seconds(2);
  const Received outcome = SendAll(fd, &hello, sizeof(hello), -1, deadline)
                               ? ReceiveAll(fd, &reply, sizeof(reply), &memory_fd, deadline + kVerdictGrace)
                               : Received::kClosed;
  if (outcome != Received::kAll) {
    close(fd);
    if (memory_fd >= 0) close(memory_fd);
    if (outcome == Received::kTimedOut) {
      return Error(HCCL_E_TIMEOUT, fmt::format("rank {}: rank 0 of {} did not complete the group within the connect "
                                               "timeout",
                                               rank, GroupName(info.job_id)));
    }
    return Error(HCCL_E_TCP_CONNECT,
                 fmt::format("rank {}: rank 0 of {} closed the connection without an answer (it exited, or the "
                             "group was already complete)",
                             rank, GroupName(info.job_id)));
  }
  close(fd);
  reply.message[sizeof(reply.message) - 1] = '\0';
  if (std::memcmp(reply.magic, kReplyMagic, sizeof(kReplyMagic)) != 0) {
    if (memory_fd >= 0) close(memory_fd);
    return Error(HCCL_E_INTERNAL, "rank 0 answered with garbage");
  }
  if (reply.status != HCCL_SUCCESS || memory_fd < 0) {
    if (memory_fd >= 0) close(memory_fd);
    return Error(reply.status != HCCL_SUCCESS ? static_cast<HcclResult>(reply.status) : HCCL_E_INTERNAL,
                 fmt::format("rank 0 refused rank {}: {}", rank, reply.message));
  }
  std::string error;
  auto memory = SharedMemory::Map(memory_fd, GroupMemoryBytes(static_cast<int>(rank_count)), &error);
  if (!memory) return Error(HCCL_E_MEMORY, error);
  return JoinedGroup{GroupName(info.job_id), static_cast<int>(rank_count), std::move(memory)};
}

}  // namespace

std::variant<HcclRootInfo, BootstrapError> CreateRootInfo() {
  RootInfo info;
  if (getrandom(&info.job_id, sizeof(info.job_id), 0) != sizeof(info.job_id) ||
      getrandom(info.secret.data(), kSecretBytes, 0) != static_cast<ssize_t>(kSecretBytes)) {
    return Error(HCCL_E_SYSCALL, fmt::format("getrandom failed: {}", std::strerror(errno)));
  }
  info.boot_id = HostBootId();
  info.address = fmt::format("distbarrier-{}-{:016x}", getpid(), info.job_id);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Error(HCCL_E_SYSCALL, fmt::format("socket failed: {}", std::strerror(errno)));
  socklen_t length = 0;
  sockaddr_un address = wire::AbstractAddress(info.address, &length);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), length) != 0 || listen(fd, SOMAXCONN) != 0) {
    const int error = errno;
    close(fd);
    return Error(HCCL_E_SYSCALL, fmt::format("cannot listen on @{}: {}", info.address, std::strerror(error)));
  }
  HcclRootInfo encoded{};
  info.Encode(&encoded);
  std::lock_guard lock(listeners_mutex);
  Listeners().emplace(info.job_id, Listener{fd, std::move(info)});
  return encoded;
}

std::variant<JoinedGroup, BootstrapError> JoinGroup(const HcclRootInfo& root_info, uint32_t rank_count,
                                                    uint32_t rank, std::chrono::milliseconds timeout) {
  if (rank_count == 0 || rank_count > kMaxRanks) {
    return Error(HCCL_E_PARA, fmt::format("nRanks {} is out of range [1, {}]", rank_count, kMaxRanks));
  }
  if (rank >= rank_count) return Error(HCCL_E_PARA, fmt::format("rank {} is not below nRanks {}", rank, rank_count));
  auto decoded = RootInfo::Decode(root_info);
  if (auto* why = std::get_if<std::string>(&decoded)) return Error(HCCL_E_PARA, *why);
  const RootInfo& info = std::get<RootInfo>(decoded);
  if (info.boot_id != HostBootId()) {
    return Error(HCCL_E_NOT_SUPPORT,
                 "rootInfo was made on another host; groups across hosts need a network transport, not built yet");
  }
  const Clock::time_point deadline = Clock::now() + timeout;
  if (rank != 0) return RunPeer(info, rank_count, rank, deadline);
  Listener listener;
  {
    std::lock_guard lock(listeners_mutex);
    auto it = Listeners().find(info.job_id);
    if (it == Listeners().end()) {
      return Error(HCCL_E_PARA,
                   "rank 0 must call HcclCommInitRootInfo in the process that called HcclGetRootInfo, once");
    }
    listener = std::move(it->second);
    Listeners().erase(it);
  }
  return RunRoot(std::move(listener), rank_count, deadline);
}

void CloseUnusedRootInfos() {
  std::lock_guard lock(listeners_mutex);
  for (auto& [job, listener] : Listeners()) close(listener.fd);
  Listeners().clear();
}

}  // namespace distbarrier::comm
