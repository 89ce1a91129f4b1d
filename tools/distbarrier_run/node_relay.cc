#include "node_relay.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "launcher.h"

namespace distbarrier::run {
namespace {

constexpr char kHelloMagic[8] = {'D', 'B', 'R', 'U', 'N', 'H', 'I', '1'};
constexpr char kReplyMagic[8] = {'D', 'B', 'R', 'U', 'N', 'R', 'E', '1'};

// Integers in network byte order; no padding (static_asserts below).
struct NodeHello {
  char magic[8];
  uint32_t nnodes;
  uint32_t node_rank;
  uint32_t nproc_per_node;
  uint8_t secret[comm::kJobSecretBytes];
};
static_assert(sizeof(NodeHello) == 8 + 12 + comm::kJobSecretBytes);

struct NodeReply {
  char magic[8];
  char ok;  // 1: root_info is rank 0's; 0: message says why not
  char message[247];
  unsigned char root_info[kRootInfoBytes];
};
static_assert(sizeof(NodeReply) == 8 + 1 + 247 + kRootInfoBytes);

// A connection that has not said a whole hello in this time is dropped; a real launcher sends
// it right after connecting. At most this many such connections are held (the oldest goes).
constexpr auto kHelloTimeout = std::chrono::seconds(10);
constexpr size_t kMaxUnidentified = 64;
// When accept fails for want of resources, the listener is not polled for this long.
constexpr auto kAcceptBackoff = std::chrono::milliseconds(50);
// Pacing of connection attempts while node 0 does not listen yet (not synchronization).
constexpr auto kRetryPause = std::chrono::milliseconds(100);

void CloseFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

std::string PeerName(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  char host[INET6_ADDRSTRLEN] = "?";
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    const void* raw = address.ss_family == AF_INET6
                          ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(&address)->sin6_addr)
                          : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(&address)->sin_addr);
    ::inet_ntop(address.ss_family, raw, host, sizeof(host));
  }
  return host;
}

}  // namespace

std::variant<NodeAddress, std::string> ResolveNode(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  const int error = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found);
  if (error != 0) return "cannot resolve '" + host + "': " + ::gai_strerror(error);
  NodeAddress node;
  std::memcpy(&node.address, found->ai_addr, found->ai_addrlen);
  node.length = found->ai_addrlen;
  node.text = host + ":" + service;
  ::freeaddrinfo(found);
  return node;
}

// ---- node 0 -------------------------------------------------------------------------------

struct RootInfoServer::Peer {
  int fd = -1;
  std::string name;  // its address, for messages
  Clock::time_point hello_deadline;
  NodeHello hello{};
  size_t received = 0;
  int node_rank = -1;  // once its hello is accepted
  std::vector<char> reply;
  size_t sent = 0;
  bool served = false;  // the reply carries the root info
};

std::variant<std::unique_ptr<RootInfoServer>, std::string> RootInfoServer::Listen(const NodeAddress& at, JobShape shape,
                                                                                  const comm::JobSecret& secret) {
  int fd = ::socket(at.address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return "socket: " + std::string(std::strerror(errno));
  const int on = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&at.address), at.length) != 0 || ::listen(fd, 64) != 0) {
    const int error = errno;
    ::close(fd);
    return "cannot listen at " + at.text + " (--master-addr, --master-port): " + std::strerror(error);
  }
  return std::unique_ptr<RootInfoServer>(new RootInfoServer(fd, shape, secret));
}

RootInfoServer::RootInfoServer(int listen_fd, JobShape shape, const comm::JobSecret& secret)
    : listen_fd_(listen_fd), shape_(shape), secret_(secret), served_(static_cast<size_t>(shape.nnodes), false) {
  served_[0] = true;  // node 0 is this one
}

RootInfoServer::~RootInfoServer() {
  CloseFd(listen_fd_);
  for (auto& peer : peers_) CloseFd(peer->fd);
}

void RootInfoServer::AddPollFds(std::vector<pollfd>& fds) const {
  if (listen_fd_ >= 0 && (!accept_resume_ || Clock::now() >= *accept_resume_)) fds.push_back({listen_fd_, POLLIN, 0});
  for (const auto& peer : peers_) {
    if (!peer->reply.empty()) {
      fds.push_back({peer->fd, POLLOUT, 0});
    } else {
      fds.push_back({peer->fd, POLLIN, 0});  // its hello, or its going away while it waits
    }
  }
}

void RootInfoServer::OnPoll(const std::vector<pollfd>& fds) {
  for (const pollfd& entry : fds) {
    if (entry.revents == 0) continue;
    if (entry.fd == listen_fd_ && listen_fd_ >= 0) {
      Accept();
      continue;
    }
    for (auto& peer : peers_) {
      if (peer->fd != entry.fd) continue;
      if (!peer->reply.empty()) {
        Write(*peer);
      } else {
        Read(*peer);
      }
    }
  }
  peers_.erase(std::remove_if(peers_.begin(), peers_.end(), [](const auto& peer) { return peer->fd < 0; }),
               peers_.end());
  if (std::all_of(served_.begin(), served_.end(), [](bool served) { return served; })) CloseFd(listen_fd_);
}

void RootInfoServer::Accept() {
  for (;;) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0 && (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)) return;
    if (fd < 0) {
      // Out of descriptors, say: the listener stays readable, so polling it now would spin.
      accept_resume_ = Clock::now() + kAcceptBackoff;
      return;
    }
    accept_resume_.reset();
    size_t unidentified = 0;
    for (const auto& peer : peers_) unidentified += peer->node_rank < 0 && peer->reply.empty() ? 1 : 0;
    if (unidentified >= kMaxUnidentified) {
      for (auto& peer : peers_) {
        if (peer->node_rank < 0 && peer->reply.empty()) {
          Drop(*peer);  // the oldest silent one
          break;
        }
      }
    }
    auto peer = std::make_unique<Peer>();
    peer->fd = fd;
    peer->name = PeerName(fd);
    peer->hello_deadline = Clock::now() + kHelloTimeout;
    peers_.push_back(std::move(peer));
  }
}

void RootInfoServer::Read(Peer& peer) {
  if (peer.node_rank >= 0) {
    // A node waiting for the root info has nothing more to say: readable means it went away.
    char byte;
    ssize_t n = ::recv(peer.fd, &byte, 1, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) Drop(peer);
    return;
  }
  ssize_t n = ::recv(peer.fd, reinterpret_cast<char*>(&peer.hello) + peer.received, sizeof(NodeHello) - peer.received,
                     MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) {
    Drop(peer);
    return;
  }
  peer.received += static_cast<size_t>(n);
  if (peer.received < sizeof(NodeHello)) return;
  const NodeHello& hello = peer.hello;
  const uint32_t nnodes = ntohl(hello.nnodes);
  const uint32_t node_rank = ntohl(hello.node_rank);
  const uint32_t nproc = ntohl(hello.nproc_per_node);
  if (std::memcmp(hello.magic, kHelloMagic, sizeof(kHelloMagic)) != 0) {
    Answer(peer, false, "not a distbarrier-run launcher");
  } else if (!comm::JobSecretsEqual(hello.secret, secret_.data())) {
    Answer(peer, false, "wrong job secret (DISTBARRIER_JOB_SECRET, DISTBARRIER_JOB_SECRET_FILE or --secret-file)");
  } else if (nnodes != static_cast<uint32_t>(shape_.nnodes)) {
    Answer(peer, false,
           "--nnodes " + std::to_string(nnodes) + " differs from node 0's --nnodes " + std::to_string(shape_.nnodes));
  } else if (nproc != static_cast<uint32_t>(shape_.nproc_per_node)) {
    Answer(peer, false,
           "--nproc-per-node " + std::to_string(nproc) + " differs from node 0's " +
               std::to_string(shape_.nproc_per_node));
  } else if (node_rank == 0 || node_rank >= nnodes) {
    Answer(peer, false, "--node-rank " + std::to_string(node_rank) + " is outside 1.." + std::to_string(nnodes - 1));
  } else if (served_[node_rank] || std::any_of(peers_.begin(), peers_.end(), [&](const auto& other) {
               return other->node_rank == static_cast<int>(node_rank);
             })) {
    Answer(peer, false, "node rank " + std::to_string(node_rank) + " has already asked for the root info");
  } else {
    peer.node_rank = static_cast<int>(node_rank);
    if (root_info_) {
      Answer(peer, true, "");
    } else if (missing_) {
      Answer(peer, false, *missing_);
    }
  }
}

void RootInfoServer::Answer(Peer& peer, bool ok, const std::string& message) {
  if (!ok) Say("refused the launcher at %s: %s", peer.name.c_str(), message.c_str());
  NodeReply reply{};
  std::memcpy(reply.magic, kReplyMagic, sizeof(kReplyMagic));
  reply.ok = ok ? 1 : 0;
  std::snprintf(reply.message, sizeof(reply.message), "%s", message.c_str());
  if (ok) std::memcpy(reply.root_info, root_info_->data(), kRootInfoBytes);
  peer.served = ok;
  peer.reply.assign(reinterpret_cast<char*>(&reply), reinterpret_cast<char*>(&reply) + sizeof(reply));
  Write(peer);
}

void RootInfoServer::Write(Peer& peer) {
  while (peer.sent < peer.reply.size()) {
    ssize_t n = ::send(peer.fd, peer.reply.data() + peer.sent, peer.reply.size() - peer.sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) {
      Drop(peer);
      return;
    }
    peer.sent += static_cast<size_t>(n);
  }
  if (peer.served) served_[static_cast<size_t>(peer.node_rank)] = true;
  CloseFd(peer.fd);
}

void RootInfoServer::Drop(Peer& peer) {
  CloseFd(peer.fd);  // removed from peers_ at the end of OnPoll / CheckDeadlines
  peer.node_rank = -1;
}

void RootInfoServer::SetRootInfo(const std::vector<unsigned char>& root_info) {
  root_info_ = root_info;
  for (auto& peer : peers_) {
    if (peer->fd >= 0 && peer->node_rank >= 0 && peer->reply.empty()) Answer(*peer, true, "");
  }
}

void RootInfoServer::SetRootInfoMissing(const std::string& why) {
  missing_ = why;
  for (auto& peer : peers_) {
    if (peer->fd >= 0 && peer->node_rank >= 0 && peer->reply.empty()) Answer(*peer, false, why);
  }
}

void RootInfoServer::CheckDeadlines(Clock::time_point now) {
  if (accept_resume_ && now >= *accept_resume_) accept_resume_.reset();  // poll the listener again
  for (auto& peer : peers_) {
    if (peer->fd >= 0 && peer->node_rank < 0 && peer->reply.empty() && now >= peer->hello_deadline) Drop(*peer);
  }
  peers_.erase(std::remove_if(peers_.begin(), peers_.end(), [](const auto& peer) { return peer->fd < 0; }),
               peers_.end());
}

std::optional<Clock::time_point> RootInfoServer::NextDeadline() const {
  std::optional<Clock::time_point> next = accept_resume_;
  for (const auto& peer : peers_) {
    if (peer->node_rank < 0 && peer->reply.empty()) {
      next = next ? std::min(*next, peer->hello_deadline) : peer->hello_deadline;
    }
  }
  return next;
}

// ---- nodes 1..n-1 -------------------------------------------------------------------------

RootInfoClient::RootInfoClient(NodeAddress server, JobShape shape, int node_rank, const comm::JobSecret& secret,
                               Clock::time_point deadline)
    : server_(std::move(server)), deadline_(deadline) {
  NodeHello hello{};
  std::memcpy(hello.magic, kHelloMagic, sizeof(kHelloMagic));
  hello.nnodes = htonl(static_cast<uint32_t>(shape.nnodes));
  hello.node_rank = htonl(static_cast<uint32_t>(node_rank));
  hello.nproc_per_node = htonl(static_cast<uint32_t>(shape.nproc_per_node));
  std::memcpy(hello.secret, secret.data(), secret.size());
  hello_.assign(reinterpret_cast<char*>(&hello), reinterpret_cast<char*>(&hello) + sizeof(hello));
  reply_.resize(sizeof(NodeReply));
  Connect();
}

RootInfoClient::~RootInfoClient() {
  CloseFd(fd_);
}

void RootInfoClient::Connect() {
  retry_at_.reset();
  connected_ = false;
  sent_ = 0;
  received_ = 0;
  fd_ = ::socket(server_.address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return Fail("socket: " + std::string(std::strerror(errno)));
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&server_.address), server_.length) == 0) {
    connected_ = true;
  } else if (errno != EINPROGRESS) {
    last_error_ = std::strerror(errno);
    CloseFd(fd_);
    retry_at_ = Clock::now() + kRetryPause;
  }
}

void RootInfoClient::Fail(std::string why) {
  CloseFd(fd_);
  retry_at_.reset();
  state_ = State::kFailed;
  error_ = std::move(why);
}

void RootInfoClient::AddPollFds(std::vector<pollfd>& fds) const {
  if (state_ != State::kWorking || fd_ < 0) return;
  const bool writing = !connected_ || sent_ < hello_.size();
  fds.push_back({fd_, static_cast<short>(writing ? POLLOUT : POLLIN), 0});
}

void RootInfoClient::OnPoll(const std::vector<pollfd>& fds) {
  for (const pollfd& entry : fds) {
    if (entry.revents != 0 && entry.fd == fd_ && fd_ >= 0 && state_ == State::kWorking) Progress(entry.revents);
  }
}

void RootInfoClient::Progress(short revents) {
  if (!connected_) {
    int error = 0;
    socklen_t length = sizeof(error);
    ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &length);
    if (error != 0 || (revents & (POLLERR | POLLHUP)) != 0) {
      // Node 0 does not listen yet (or is not up yet): try again until the deadline.
      last_error_ = std::strerror(error != 0 ? error : ECONNREFUSED);
      CloseFd(fd_);
      retry_at_ = Clock::now() + kRetryPause;
      return;
    }
    connected_ = true;
  }
  last_error_ = "connected, but rank 0 has not written its root info yet";
  while (sent_ < hello_.size()) {
    ssize_t n = ::send(fd_, hello_.data() + sent_, hello_.size() - sent_, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) return Fail("node 0 at " + server_.text + " closed the connection: " + std::strerror(errno));
    sent_ += static_cast<size_t>(n);
  }
  while (received_ < reply_.size()) {
    ssize_t n = ::recv(fd_, reply_.data() + received_, reply_.size() - received_, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) {
      return Fail("node 0 at " + server_.text + " closed the connection before sending the root info" +
                  (n < 0 ? std::string(": ") + std::strerror(errno) : std::string()));
    }
    received_ += static_cast<size_t>(n);
  }
  NodeReply reply;
  std::memcpy(&reply, reply_.data(), sizeof(reply));
  reply.message[sizeof(reply.message) - 1] = '\0';
  if (std::memcmp(reply.magic, kReplyMagic, sizeof(kReplyMagic)) != 0) {
    return Fail(server_.text + " is not a distbarrier-run node 0 (its answer has no distbarrier-run header)");
  }
  if (reply.ok != 1) return Fail("node 0 at " + server_.text + " refused this node: " + reply.message);
  root_info_.assign(reply.root_info, reply.root_info + kRootInfoBytes);
  CloseFd(fd_);
  state_ = State::kGot;
}

void RootInfoClient::CheckDeadlines(Clock::time_point now) {
  if (state_ != State::kWorking) return;
  if (now >= deadline_) {
    return Fail("no root info from node 0 at " + server_.text + " within the connect timeout (last: " + last_error_ +
                ")");
  }
  if (retry_at_ && now >= *retry_at_) Connect();
}

std::optional<Clock::time_point> RootInfoClient::NextDeadline() const {
  if (state_ != State::kWorking) return std::nullopt;
  return retry_at_ ? std::min(*retry_at_, deadline_) : deadline_;
}

}  // namespace distbarrier::run
