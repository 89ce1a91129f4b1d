#include "comm/bootstrap/bootstrap.h"

#include <poll.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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
#include "comm/bootstrap/network.h"
#include "comm/bootstrap/remote.h"
#include "comm/bootstrap/root_info.h"
#include "comm/bootstrap/wire.h"
#include "comm/group.h"
#include "common/log.h"

namespace distbarrier::comm {
namespace {

using Clock = std::chrono::steady_clock;

using wire::Hello;
using wire::kHelloMagic;
using wire::kReadyMagic;
using wire::kReplyMagic;
using wire::Ready;
using wire::ReceiveAll;
using wire::Received;
using wire::RemainingMs;
using wire::ReplyHeader;
using wire::SendAll;
constexpr size_t kMaxRanks = 4096;

struct Listener {
  int fd = -1;      // abstract Unix socket, for ranks of this host (-1: none, rank table)
  int tcp_fd = -1;  // TCP, for ranks of other hosts
  RootInfo info;
};

std::mutex listeners_mutex;
std::map<uint64_t, Listener>& Listeners() {
  static auto* listeners = new std::map<uint64_t, Listener>;
  return *listeners;
}

BootstrapError Error(HcclResult code, std::string message) { return {code, std::move(message)}; }

std::string GroupName(uint64_t job_id) { return fmt::format("hccl_root_{:016x}", job_id); }

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

// Connections that have not said hello yet: at most this many (the oldest is dropped for a
// new one), each for at most kHelloTimeout. A real peer sends its hello right after connecting.
constexpr size_t kMaxPending = 64;
constexpr auto kHelloTimeout = std::chrono::seconds(2);
// When accept fails for want of descriptors, the listener is not polled for this long (it
// stays readable, so polling it would spin).
constexpr auto kAcceptBackoff = std::chrono::milliseconds(50);

struct PendingPeer {
  int fd;
  Clock::time_point hello_deadline;
  bool tcp = false;  // from another host (or a rank table): a RemoteHello is due
  wire::RemoteHello hello{};
  size_t received = 0;
};

// "1.2.3.4" for a TCP peer.
std::string PeerIp(int fd) {
  sockaddr_in address{};
  socklen_t length = sizeof(address);
  char text[INET_ADDRSTRLEN] = "?";
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    inet_ntop(AF_INET, &address.sin_addr, text, sizeof(text));
  }
  return text;
}

ucred PeerCredentials(int fd) {
  ucred credentials{};
  socklen_t length = sizeof(credentials);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) credentials.uid = static_cast<uid_t>(-1);
  return credentials;
}

bool AcceptFailedForWantOfResources(int error) {
  return error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM;
}

// Rank 0: gathers the other ranks, hands out the group's shared memory, and declares the
// group complete once every rank is ready.
std::optional<BootstrapError> RunRoot(Listener listener, uint32_t rank_count, Clock::time_point deadline,
                                      const RankAttach& attach) {
  const RootInfo& info = listener.info;
  const std::string group_name = GroupName(info.job_id);
  std::vector<int> peer_fd(rank_count, -1);
  std::vector<int32_t> pids(rank_count, 0);
  pids[0] = getpid();
  // Ranks that came over TCP, with their host ("boot id/netns") and a label for messages.
  std::vector<bool> via_tcp(rank_count, false);
  std::vector<std::string> host_key(rank_count), host_label(rank_count);
  char own_name[wire::kHostNameBytes] = {};
  gethostname(own_name, sizeof(own_name) - 1);
  host_key[0] = remote::HostKey();
  host_label[0] = fmt::format("{} {}", own_name, info.ip);
  std::vector<PendingPeer> pending;  // oldest first
  uint32_t joined = 1;
  Clock::time_point accept_resume{};
  bool warned_descriptors = false;
  auto close_all = [&] {
    for (int& fd : peer_fd) {
      if (fd >= 0) close(fd);
      fd = -1;
    }
    for (auto& peer : pending) close(peer.fd);
    pending.clear();
    if (listener.fd >= 0) close(listener.fd);
    if (listener.tcp_fd >= 0) close(listener.tcp_fd);
    listener.fd = listener.tcp_fd = -1;
  };
  auto refuse = [&](int& fd, HcclResult code, const std::string& why) {
    Log(LogLevel::kWarning, "HcclCommInitRootInfo (rank 0 of {}): refused a peer: {}", group_name, why);
    SendReply(fd, code, rank_count, why, std::min(deadline, Clock::now() + std::chrono::milliseconds(100)));
    close(fd);
    fd = -1;
  };
  // Tells every joined rank that the group failed, and fails rank 0 with the same words.
  auto fail_all = [&](HcclResult code, const std::string& why) {
    for (int fd : peer_fd) {
      if (fd >= 0) SendReply(fd, code, rank_count, why, Clock::now() + std::chrono::seconds(1));
    }
    close_all();
    return Error(code, why);
  };

  // Gathers until every rank said hello and, on one last look, none of them has left since.
  while (true) {
    const bool all_in = joined == rank_count;
    // The deadline holds whatever poll reports: checked on every turn.
    const Clock::time_point now = Clock::now();
    if (!all_in && now >= deadline) {
      std::vector<uint32_t> missing;
      for (uint32_t rank = 1; rank < rank_count; ++rank) {
        if (peer_fd[rank] < 0) missing.push_back(rank);
      }
      return fail_all(HCCL_E_TIMEOUT, fmt::format("ranks [{}] of {} never connected to rank 0 within the connect "
                                                  "timeout",
                                                  fmt::join(missing, ", "), rank_count));
    }
    Clock::time_point wake = deadline;
    for (auto& peer : pending) {
      if (now >= peer.hello_deadline) {
        refuse(peer.fd, HCCL_E_TIMEOUT,
               fmt::format("no complete hello within {} s of connecting", kHelloTimeout.count()));
      } else {
        wake = std::min(wake, peer.hello_deadline);
      }
    }
    std::erase_if(pending, [](const PendingPeer& peer) { return peer.fd < 0; });

    // Poll: the listener (unless backing off), joined ranks (to see them leave), pending peers.
    std::vector<pollfd> fds;
    const bool accepting = !all_in && now >= accept_resume;
    if (accepting) {
      fds.push_back({listener.fd, POLLIN, 0});  // poll skips a listener of -1
      fds.push_back({listener.tcp_fd, POLLIN, 0});
    } else {
      wake = std::min(wake, accept_resume);
    }
    const size_t joined_at = fds.size();
    std::vector<uint32_t> joined_ranks;
    for (uint32_t rank = 1; rank < rank_count; ++rank) {
      if (peer_fd[rank] < 0) continue;
      fds.push_back({peer_fd[rank], POLLIN, 0});
      joined_ranks.push_back(rank);
    }
    const size_t pending_at = fds.size();
    if (!all_in) {
      for (auto& peer : pending) fds.push_back({peer.fd, POLLIN, 0});
    }
    const int ready = poll(fds.data(), fds.size(), all_in ? 0 : RemainingMs(wake));
    if (ready == 0 && all_in) break;
    if (ready <= 0) continue;  // EINTR, or a deadline: checked above

    // A joined rank says nothing until the offer: readable means it closed (or broke the
    // protocol); either way it no longer counts.
    for (size_t i = 0; i < joined_ranks.size(); ++i) {
      if (fds[joined_at + i].revents == 0) continue;
      const uint32_t rank = joined_ranks[i];
      Log(LogLevel::kWarning,
          "HcclCommInitRootInfo (rank 0 of {}): rank {} (pid {}) left before the group was "
          "complete; waiting for rank {} again",
          group_name, rank, pids[rank], rank);
      close(peer_fd[rank]);
      peer_fd[rank] = -1;
      pids[rank] = 0;
      via_tcp[rank] = false;
      --joined;
    }
    if (all_in) {
      if (joined == rank_count) break;
      continue;
    }
    for (size_t i = 0; i < pending.size() && pending_at + i < fds.size(); ++i) {
      PendingPeer& peer = pending[i];
      if (fds[pending_at + i].revents == 0) continue;
      // A Hello first; a RemoteHello is longer, which its magic says.
      const bool remote_magic = peer.received >= sizeof(wire::kRemoteHelloMagic) &&
                                std::memcmp(peer.hello.hello.magic, wire::kRemoteHelloMagic,
                                            sizeof(wire::kRemoteHelloMagic)) == 0;
      const size_t need = remote_magic ? sizeof(wire::RemoteHello) : sizeof(Hello);
      ssize_t got = recv(peer.fd, reinterpret_cast<char*>(&peer.hello) + peer.received, need - peer.received,
                         MSG_DONTWAIT);
      if (got <= 0) {
        if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        close(peer.fd);  // gone before saying hello
        peer.fd = -1;
        continue;
      }
      peer.received += static_cast<size_t>(got);
      if (peer.received < sizeof(Hello)) continue;
      const bool is_remote = std::memcmp(peer.hello.hello.magic, wire::kRemoteHelloMagic,
                                         sizeof(wire::kRemoteHelloMagic)) == 0;
      if (is_remote && peer.received < sizeof(wire::RemoteHello)) continue;
      const Hello& hello = peer.hello.hello;
      int32_t pid = 0;
      std::string who;
      if (peer.tcp) {
        peer.hello.hostname[sizeof(peer.hello.hostname) - 1] = '\0';
        peer.hello.boot_id[sizeof(peer.hello.boot_id) - 1] = '\0';
        pid = peer.hello.pid;
        who = fmt::format("pid {} on {} ({})", pid, peer.hello.hostname, PeerIp(peer.fd));
      } else {
        pid = PeerCredentials(peer.fd).pid;
        who = fmt::format("pid {}", pid);
      }
      if (std::memcmp(hello.magic, peer.tcp ? wire::kRemoteHelloMagic : kHelloMagic, sizeof(kHelloMagic)) != 0) {
        refuse(peer.fd, HCCL_E_PARA, "not a distbarrier hello");
      } else if (hello.job_id != info.job_id || !SecretsEqual(hello.secret, info.secret.data())) {
        refuse(peer.fd, HCCL_E_PARA, fmt::format("{} presented a wrong secret or job id for group {}", who, group_name));
      } else if (hello.rank_count != rank_count) {
        refuse(peer.fd, HCCL_E_PARA,
               fmt::format("{} says the group has {} ranks, rank 0 says {}", who, hello.rank_count, rank_count));
      } else if (hello.rank == 0 || hello.rank >= rank_count) {
        refuse(peer.fd, HCCL_E_PARA, fmt::format("{} asked for rank {}, outside 1..{}", who, hello.rank, rank_count - 1));
      } else if (peer_fd[hello.rank] >= 0) {
        refuse(peer.fd, HCCL_E_PARA,
               fmt::format("{} asked for rank {}, already taken by pid {}", who, hello.rank, pids[hello.rank]));
      } else {
        peer_fd[hello.rank] = peer.fd;
        pids[hello.rank] = pid;
        via_tcp[hello.rank] = peer.tcp;
        if (peer.tcp) {
          host_key[hello.rank] = fmt::format("{}/{}", peer.hello.boot_id, peer.hello.netns);
          host_label[hello.rank] = fmt::format("{} {}", peer.hello.hostname, PeerIp(peer.fd));
        }
        peer.fd = -1;
        ++joined;
      }
    }
    std::erase_if(pending, [](const PendingPeer& peer) { return peer.fd < 0; });

    for (int which = 0; which < 2 && accepting && joined < rank_count; ++which) {
      if ((fds[which].revents & POLLIN) == 0) continue;
      const bool tcp = which == 1;
      int fd = accept4(tcp ? listener.tcp_fd : listener.fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0 && AcceptFailedForWantOfResources(errno)) {
        if (!warned_descriptors) {
          Log(LogLevel::kWarning,
              "HcclCommInitRootInfo (rank 0 of {}): accept failed: {}; dropping connections "
              "without a hello and retrying",
              group_name, std::strerror(errno));
          warned_descriptors = true;
        }
        if (!pending.empty()) {  // the oldest connection without a hello makes room
          refuse(pending.front().fd, HCCL_E_UNAVAIL, "rank 0 is out of descriptors and needs room for other ranks");
          pending.erase(pending.begin());
        } else {
          accept_resume = Clock::now() + kAcceptBackoff;
        }
      } else if (fd >= 0) {
        // Another user's connection on this host is refused at once: it can hold no slot. Over
        // TCP there is no such check; the secret is.
        const ucred credentials = tcp ? ucred{0, getuid(), 0} : PeerCredentials(fd);
        if (credentials.uid != getuid()) {
          refuse(fd, HCCL_E_PARA,
                 fmt::format("pid {} runs as uid {}, the job as uid {}", credentials.pid,
                             static_cast<int64_t>(credentials.uid), getuid()));
        } else {
          if (tcp) {
            const int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
          }
          if (pending.size() >= kMaxPending) {
            refuse(pending.front().fd, HCCL_E_UNAVAIL,
                   fmt::format("more than {} connections without a hello; dropped the oldest", kMaxPending));
            pending.erase(pending.begin());
          }
          PendingPeer peer{fd, Clock::now() + kHelloTimeout};
          peer.tcp = tcp;
          pending.push_back(peer);
        }
      }
    }
  }
  // Nobody else may join; the abstract name disappears. (The TCP listener stays open, unpolled,
  // until the group is complete: a late connection waits there and is then dropped.)
  if (listener.fd >= 0) close(listener.fd);
  listener.fd = -1;
  for (auto& peer : pending) {  // connected, hello unfinished: too late now
    SendReply(peer.fd, HCCL_E_PARA, rank_count, "the group is already complete", Clock::now());
    close(peer.fd);
  }
  pending.clear();

  // Where the ranks run: host 0 is ours; others by their lowest rank. Ranks of this host that
  // came over TCP (a rank table) get the memory from us as their host's leader, as elsewhere.
  const bool any_tcp = std::find(via_tcp.begin(), via_tcp.end(), true) != via_tcp.end();
  std::shared_ptr<HostLayout> layout;
  if (any_tcp) {
    layout = std::make_shared<HostLayout>();
    std::map<std::string, int> host_of_key;
    for (uint32_t rank = 0; rank < rank_count; ++rank) {
      const std::string& key = via_tcp[rank] ? host_key[rank] : host_key[0];
      auto [it, added] = host_of_key.emplace(key, static_cast<int>(host_of_key.size()));
      if (added) {
        layout->leader_of_host.push_back(static_cast<int>(rank));
        layout->leader_pid_of_host.push_back(pids[rank]);
        layout->host_names.push_back(host_label[rank]);
      }
      layout->host_of_rank.push_back(it->second);
    }
    layout->host_count = static_cast<int>(host_of_key.size());
    layout->my_host = 0;
  }

  // The offer: the group's memory, to every rank of this host; the plan to the others.
  std::string error;
  auto memory = SharedMemory::Create(GroupMemoryBytes(static_cast<int>(rank_count)), &error);
  if (!memory) return fail_all(HCCL_E_MEMORY, error);
  if (layout) {
    remote::InitHostWindow(memory->Data(), static_cast<int>(rank_count), *layout, pids);
  } else {
    InitializeGroupMemory(memory->Data(), static_cast<int>(rank_count));
    BarrierWindow setup(static_cast<int>(rank_count), memory->Data(), /*initialize=*/false);
    for (uint32_t rank = 0; rank < rank_count; ++rank) setup.SetPid(static_cast<int>(rank), pids[rank]);
  }
  const int memory_fd = memory->Fd();
  std::vector<int> host0_over_tcp;
  for (uint32_t rank = 1; rank < rank_count; ++rank) {
    ReplyHeader offer{};
    std::memcpy(offer.magic, kReplyMagic, sizeof(kReplyMagic));
    offer.status = HCCL_SUCCESS;
    offer.rank_count = rank_count;
    bool sent = false;
    if (via_tcp[rank]) {
      const int host = layout->host_of_rank[rank];
      if (host == 0) host0_over_tcp.push_back(static_cast<int>(rank));
      sent = SendAll(peer_fd[rank], &offer, sizeof(offer), -1, deadline);
      const std::vector<uint8_t> plan = remote::EncodePlan(*layout, pids, host);
      sent = sent && SendAll(peer_fd[rank], plan.data(), plan.size(), -1, deadline);
    } else {
      sent = SendAll(peer_fd[rank], &offer, sizeof(offer), memory_fd, deadline);
    }
    if (!sent) {
      return fail_all(HCCL_E_TCP_TRANSFER,
                      fmt::format("rank {} (pid {}) left before receiving the group's memory", rank, pids[rank]));
    }
  }
  if (auto failed = remote::ServeHostMemory(info, rank_count, 0, host0_over_tcp, pids, memory_fd, deadline)) {
    return fail_all(failed->code, failed->message);
  }
  std::unique_ptr<HostAgent> agent;
  std::vector<std::vector<uint8_t>> addresses;
  if (layout && layout->host_count > 1) {
    agent = HostAgent::Create(*layout, memory->Data(), static_cast<int>(rank_count), &error);
    if (!agent) return fail_all(HCCL_E_INTERNAL, error);
    addresses.resize(static_cast<size_t>(layout->host_count));
    addresses[0] = agent->WorkerAddress();
  }
  // Every rank must be ready before anyone is told the group exists.
  for (uint32_t rank = 1; rank < rank_count; ++rank) {
    Ready ready{};
    const Received outcome = ReceiveAll(peer_fd[rank], &ready, sizeof(ready), nullptr, deadline);
    if (outcome != Received::kAll || std::memcmp(ready.magic, kReadyMagic, sizeof(kReadyMagic)) != 0) {
      return fail_all(HCCL_E_TCP_TRANSFER,
                      fmt::format("rank {} (pid {}{}) left before the group was complete{}", rank, pids[rank],
                                  via_tcp[rank] ? ", on " + host_label[rank] : "",
                                  outcome == Received::kTimedOut ? " (connect timeout)" : ""));
    }
    if (ready.status != HCCL_SUCCESS) {
      ready.message[sizeof(ready.message) - 1] = '\0';
      return fail_all(static_cast<HcclResult>(ready.status),
                      fmt::format("rank {} (pid {}) could not join: {}", rank, pids[rank], ready.message));
    }
    if (via_tcp[rank]) {
      auto address = remote::ReceiveBlob(peer_fd[rank], deadline);
      if (!address) {
        return fail_all(HCCL_E_TCP_TRANSFER, fmt::format("rank {} (pid {}) sent no agent address", rank, pids[rank]));
      }
      const int host = layout->host_of_rank[rank];
      if (layout->IsLeader(static_cast<int>(rank)) && host != 0) addresses[host] = std::move(*address);
    }
  }
  HostAgent* started_agent = agent.get();  // the group owns it once attached
  JoinedGroup group{group_name, static_cast<int>(rank_count), std::move(memory), layout, std::move(agent)};
  if (std::optional<BootstrapError> failed = attach.attach(group)) return fail_all(failed->code, failed->message);
  if (started_agent != nullptr) {
    if (auto why = started_agent->Start(addresses)) {
      attach.detach();
      return fail_all(HCCL_E_INTERNAL, *why);
    }
  }
  // The verdict. A rank that vanishes now is a dead peer like any other (the peer watch).
  for (uint32_t rank = 1; rank < rank_count; ++rank) {
    ReplyHeader verdict{};
    std::memcpy(verdict.magic, kReplyMagic, sizeof(kReplyMagic));
    verdict.status = HCCL_SUCCESS;
    verdict.rank_count = rank_count;
    bool told = SendAll(peer_fd[rank], &verdict, sizeof(verdict), -1, deadline);
    if (via_tcp[rank]) {
      for (int host = 0; told && host < layout->host_count; ++host) {
        told = remote::SendBlob(peer_fd[rank], host < static_cast<int>(addresses.size()) ? addresses[host]
                                                                                         : std::vector<uint8_t>{},
                                deadline);
      }
    }
    if (!told) {
      Log(LogLevel::kWarning, "HcclCommInitRootInfo: rank {} (pid {}) left before hearing the group is complete", rank,
          pids[rank]);
    }
    close(peer_fd[rank]);
    peer_fd[rank] = -1;
  }
  close_all();
  return std::nullopt;
}

// Ranks 1..n-1: say hello to rank 0, receive the group's shared memory, attach, and wait for
// rank 0's verdict.
std::optional<BootstrapError> RunPeer(const RootInfo& info, uint32_t rank_count, uint32_t rank,
                                      Clock::time_point deadline, const RankAttach& attach) {
  const std::string group_name = GroupName(info.job_id);
  socklen_t length = 0;
  sockaddr_un address = wire::AbstractAddress(info.address, &length);
  int fd = -1;
  // Rank 0 listens from HcclGetRootInfo until its group is complete (or it gives up), so no
  // listener means there never will be one: say so at once. A full backlog is retried.
  while (true) {
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return Error(HCCL_E_SYSCALL, fmt::format("socket failed: {}", std::strerror(errno)));
    if (connect(fd, reinterpret_cast<sockaddr*>(&address), length) == 0) break;
    const int error = errno;
    close(fd);
    if (error == ECONNREFUSED) {
      const bool root_alive = kill(info.root_pid, 0) == 0 || errno == EPERM;
      return Error(HCCL_E_TCP_CONNECT,
                   root_alive ? fmt::format("rank {}: no listener for this root info: the group {} is already "
                                            "complete, or rank 0 (pid {}) gave up or released its root info",
                                            rank, group_name, info.root_pid)
                              : fmt::format("rank {}: root gone: no listener for this root info (rank 0's process, "
                                            "pid {}, has exited)",
                                            rank, info.root_pid));
    }
    if (Clock::now() >= deadline) {
      return Error(HCCL_E_TIMEOUT, fmt::format("rank {} could not reach rank 0 of {} within the connect timeout: {}",
                                               rank, group_name, std::strerror(error)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // retry pacing, not synchronization
  }
  // Anyone can bind an abstract name once rank 0 is gone: nothing, least of all the secret,
  // goes to a listener that is not rank 0's process of our own user.
  ucred listener{};
  socklen_t credentials_length = sizeof(listener);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &listener, &credentials_length) != 0) {
    const int error = errno;
    close(fd);
    return Error(HCCL_E_SYSCALL, fmt::format("rank {}: SO_PEERCRED on the connection to rank 0 failed: {}", rank,
                                             std::strerror(error)));
  }
  if (listener.uid != getuid() || listener.pid != info.root_pid) {
    close(fd);
    return Error(HCCL_E_TCP_CONNECT,
                 fmt::format("rank {}: the listener at @{} is pid {} of uid {}, but the root info names rank 0 as "
                             "pid {} of uid {}: not rank 0, nothing was sent to it",
                             rank, info.address, listener.pid, listener.uid, info.root_pid, getuid()));
  }
  Hello hello{};
  std::memcpy(hello.magic, kHelloMagic, sizeof(kHelloMagic));
  hello.rank = rank;
  hello.rank_count = rank_count;
  hello.job_id = info.job_id;
  std::memcpy(hello.secret, info.secret.data(), kSecretBytes);
  // Rank 0 gives up at the same deadline and then says who never came: wait a little longer
  // than it does, so that verdict, not a bare timeout, is what this rank reports.
  constexpr auto kVerdictGrace = std::chrono::seconds(2);
  // Rank 0's answer (the offer or the verdict), or why there is none.
  auto receive_answer = [&](ReplyHeader* reply, int* memory_fd) -> std::optional<BootstrapError> {
    const Received outcome = ReceiveAll(fd, reply, sizeof(*reply), memory_fd, deadline + kVerdictGrace);
    if (outcome == Received::kTimedOut) {
      return Error(HCCL_E_TIMEOUT, fmt::format("rank {}: rank 0 of {} did not complete the group within the connect "
                                               "timeout",
                                               rank, group_name));
    }
    if (outcome == Received::kClosed) {
      return Error(HCCL_E_TCP_CONNECT,
                   fmt::format("rank {}: rank 0 of {} closed the connection without an answer (it exited, or the "
                               "group was already complete)",
                               rank, group_name));
    }
    reply->message[sizeof(reply->message) - 1] = '\0';
    if (std::memcmp(reply->magic, kReplyMagic, sizeof(kReplyMagic)) != 0) {
      return Error(HCCL_E_INTERNAL, "rank 0 answered with garbage");
    }
    if (reply->status != HCCL_SUCCESS) {
      return Error(static_cast<HcclResult>(reply->status),
                   fmt::format("rank 0 refused rank {}: {}", rank, reply->message));
    }
    return std::nullopt;
  };
  auto fail = [&](BootstrapError error) {
    close(fd);
    return error;
  };
  if (!SendAll(fd, &hello, sizeof(hello), -1, deadline)) {
    return fail(Error(HCCL_E_TCP_CONNECT,
                      fmt::format("rank {}: rank 0 of {} closed the connection before the hello", rank, group_name)));
  }
  ReplyHeader offer{};
  int memory_fd = -1;
  std::optional<BootstrapError> refused = receive_answer(&offer, &memory_fd);
  if (!refused && memory_fd < 0) refused = Error(HCCL_E_INTERNAL, "rank 0 offered no memory");
  if (refused) {
    if (memory_fd >= 0) close(memory_fd);
    return fail(*refused);
  }
  // Map and attach; tell rank 0 whether this rank is ready.
  std::optional<BootstrapError> failed;
  std::string error;
  auto memory = SharedMemory::Map(memory_fd, GroupMemoryBytes(static_cast<int>(rank_count)), &error);
  JoinedGroup group{group_name, static_cast<int>(rank_count), std::move(memory), nullptr, nullptr};
  if (!group.memory) {
    failed = Error(HCCL_E_MEMORY, fmt::format("rank {}: from rank 0: {}", rank, error));
  } else {
    failed = attach.attach(group);
  }
  Ready ready{};
  std::memcpy(ready.magic, kReadyMagic, sizeof(kReadyMagic));
  ready.rank = rank;
  ready.status = failed ? failed->code : HCCL_SUCCESS;
  if (failed) std::snprintf(ready.message, sizeof(ready.message), "%s", failed->message.c_str());
  const bool told = SendAll(fd, &ready, sizeof(ready), -1, deadline + kVerdictGrace);
  if (failed) return fail(*failed);
  ReplyHeader verdict{};
  // Read the verdict even when the ready could not be sent: rank 0 may have failed the group
  // because of another rank, sent us why and closed before our ready arrived.
  std::optional<BootstrapError> rejected = receive_answer(&verdict, nullptr);
  if (!told && (!rejected || rejected->code == HCCL_E_TCP_CONNECT)) {
    rejected = Error(HCCL_E_TCP_CONNECT,
                     fmt::format("rank {}: rank 0 of {} left before the group was complete", rank, group_name));
  }
  if (rejected) {
    attach.detach();
    return fail(*rejected);
  }
  close(fd);
  return std::nullopt;
}

}  // namespace

std::variant<HcclRootInfo, BootstrapError> CreateRootInfo() {
  RootInfo info;
  if (getrandom(&info.job_id, sizeof(info.job_id), 0) != sizeof(info.job_id) ||
      getrandom(info.secret.data(), kSecretBytes, 0) != static_cast<ssize_t>(kSecretBytes)) {
    return Error(HCCL_E_SYSCALL, fmt::format("getrandom failed: {}", std::strerror(errno)));
  }
  auto chosen = network::ChooseAddress();
  if (chosen.index() == 1) return Error(HCCL_E_PARA, std::get<1>(chosen));
  info.ip = std::get<0>(chosen);
  auto tcp = network::ListenTcpFromBasePort(info.ip, &info.port);
  if (auto* why = std::get_if<std::string>(&tcp)) return Error(HCCL_E_UNAVAIL, *why);
  const int tcp_fd = std::get<int>(tcp);
  info.boot_id = HostBootId();
  info.netns = HostNetns();
  info.root_pid = getpid();
  info.address = fmt::format("distbarrier-{}-{:016x}", info.root_pid, info.job_id);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    close(tcp_fd);
    return Error(HCCL_E_SYSCALL, fmt::format("socket failed: {}", std::strerror(errno)));
  }
  socklen_t length = 0;
  sockaddr_un address = wire::AbstractAddress(info.address, &length);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), length) != 0 || listen(fd, SOMAXCONN) != 0) {
    const int error = errno;
    close(fd);
    close(tcp_fd);
    return Error(HCCL_E_SYSCALL, fmt::format("cannot listen on @{}: {}", info.address, std::strerror(error)));
  }
  HcclRootInfo encoded{};
  info.Encode(&encoded);
  std::lock_guard lock(listeners_mutex);
  Listeners().emplace(info.job_id, Listener{fd, tcp_fd, std::move(info)});
  return encoded;
}

std::variant<HcclRootInfo, BootstrapError> CreateRootInfoAt(const std::string& ip, uint16_t port, uint64_t job_id,
                                                            const std::array<uint8_t, kSecretBytes>& secret) {
  if (!network::ValidIpv4(ip)) return Error(HCCL_E_PARA, fmt::format("rank 0's address '{}' is not IPv4", ip));
  if (port == 0) return Error(HCCL_E_PARA, "rank 0's port is 0");
  RootInfo info;
  info.job_id = job_id;
  info.secret = secret;
  info.ip = ip;
  info.port = port;
  HcclRootInfo encoded{};
  info.Encode(&encoded);
  return encoded;
}

std::optional<BootstrapError> JoinGroup(const HcclRootInfo& root_info, uint32_t rank_count, uint32_t rank,
                                        std::chrono::milliseconds timeout, const RankAttach& attach) {
  if (rank_count == 0 || rank_count > kMaxRanks) {
    return Error(HCCL_E_PARA, fmt::format("nRanks {} is out of range [1, {}]", rank_count, kMaxRanks));
  }
  if (rank >= rank_count) return Error(HCCL_E_PARA, fmt::format("rank {} is not below nRanks {}", rank, rank_count));
  auto decoded = RootInfo::Decode(root_info);
  if (auto* why = std::get_if<std::string>(&decoded)) return Error(HCCL_E_PARA, *why);
  const RootInfo& info = std::get<RootInfo>(decoded);
  const Clock::time_point deadline = Clock::now() + timeout;
  if (rank != 0 && !info.OnThisHost()) {
    if (info.ip.empty()) {
      return Error(HCCL_E_NOT_SUPPORT, "rootInfo was made on another host and names no TCP address for rank 0");
    }
    return remote::RunRemotePeer(info, rank_count, rank, deadline, attach);
  }
  if (rank != 0) return RunPeer(info, rank_count, rank, deadline, attach);
  Listener listener;
  if (info.address.empty()) {  // root info from a rank table: rank 0 listens at its address now
    auto tcp = network::ListenTcp(info.ip, info.port);
    if (auto* why = std::get_if<std::string>(&tcp)) return Error(HCCL_E_TCP_CONNECT, fmt::format("rank 0: {}", *why));
    listener.tcp_fd = std::get<int>(tcp);
    listener.info = info;
    return RunRoot(std::move(listener), rank_count, deadline, attach);
  }
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
  return RunRoot(std::move(listener), rank_count, deadline, attach);
}

void CloseUnusedRootInfos() {
  std::lock_guard lock(listeners_mutex);
  for (auto& [job, listener] : Listeners()) {
    if (listener.fd >= 0) close(listener.fd);
    if (listener.tcp_fd >= 0) close(listener.tcp_fd);
  }
  Listeners().clear();
}

}  // namespace distbarrier::comm
