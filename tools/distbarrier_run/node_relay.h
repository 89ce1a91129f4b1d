// distbarrier-run across nodes: node 0's launcher serves rank 0's root info at
// --master-addr:--master-port; every other node's launcher fetches it there and hands it to
// its ranks through the same DISTBARRIER_ROOT_INFO_IN_FD pipes as on one node.
//
// The conversation, one TCP connection per node, fixed-size messages:
//   node k -> node 0: NodeHello {magic, nnodes, node_rank, nproc_per_node, job secret}
//   node 0 -> node k: NodeReply {magic, status, message, root info} once rank 0 has written its
//                     root info (or at once when the hello is refused)
// Node 0 refuses, with a reason that both launchers print, a wrong secret, another node count
// or ranks-per-node count, a node rank out of range or already served. The secret crosses the
// network in the clear, as the root info itself does: run jobs on a network you trust.
//
// Both ends are non-blocking state machines driven by the launcher's single poll() loop: they
// add their descriptors to its poll set, act on what poll() reports, and name their next
// deadline so that the loop wakes for it.
#pragma once

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "comm/bootstrap/job_secret.h"

namespace distbarrier::run {

using Clock = std::chrono::steady_clock;

struct NodeAddress {
  sockaddr_storage address{};
  socklen_t length = 0;
  std::string text;  // "host:port" as the user gave it, for messages
};

// `host`:`port` resolved (numeric or a name), or why not.
std::variant<NodeAddress, std::string> ResolveNode(const std::string& host, int port);

struct JobShape {
  int nnodes = 1;
  int nproc_per_node = 1;
};

// Node 0: serves the root info to nodes 1..nnodes-1, each once.
class RootInfoServer {
 public:
  static std::variant<std::unique_ptr<RootInfoServer>, std::string> Listen(const NodeAddress& at, JobShape shape,
                                                                           const comm::JobSecret& secret);
  ~RootInfoServer();

  void AddPollFds(std::vector<pollfd>& fds) const;
  void OnPoll(const std::vector<pollfd>& fds);
  void CheckDeadlines(Clock::time_point now);
  std::optional<Clock::time_point> NextDeadline() const;

  // Rank 0's root info: sent to every node that asked and will ask.
  void SetRootInfo(const std::vector<unsigned char>& root_info);
  // Rank 0 will not send one: every node that asks is told `why`.
  void SetRootInfoMissing(const std::string& why);
  // Every other node has its root info (the listener is closed).
  bool Done() const { return listen_fd_ < 0; }

 private:
  struct Peer;
  RootInfoServer(int listen_fd, JobShape shape, const comm::JobSecret& secret);
  void Accept();
  void Read(Peer& peer);
  void Write(Peer& peer);
  void Answer(Peer& peer, bool ok, const std::string& message);
  void Drop(Peer& peer);

  int listen_fd_;
  JobShape shape_;
  comm::JobSecret secret_;
  std::vector<std::unique_ptr<Peer>> peers_;
  std::vector<bool> served_;  // by node rank
  std::optional<std::vector<unsigned char>> root_info_;
  std::optional<std::string> missing_;
  std::optional<Clock::time_point> accept_resume_;  // accept failed for want of descriptors
};

// Node k > 0: fetches the root info from node 0, retrying the connection until `deadline`.
class RootInfoClient {
 public:
  RootInfoClient(NodeAddress server, JobShape shape, int node_rank, const comm::JobSecret& secret,
                 Clock::time_point deadline);
  ~RootInfoClient();

  enum class State { kWorking, kGot, kFailed };
  State state() const { return state_; }
  const std::vector<unsigned char>& root_info() const { return root_info_; }
  const std::string& error() const { return error_; }

  void AddPollFds(std::vector<pollfd>& fds) const;
  void OnPoll(const std::vector<pollfd>& fds);
  void CheckDeadlines(Clock::time_point now);
  std::optional<Clock::time_point> NextDeadline() const;

 private:
  void Connect();
  void Fail(std::string why);
  void Progress(short revents);

  NodeAddress server_;
  std::vector<char> hello_;
  Clock::time_point deadline_;
  State state_ = State::kWorking;
  int fd_ = -1;
  bool connected_ = false;
  size_t sent_ = 0;
  std::vector<char> reply_;
  size_t received_ = 0;
  std::optional<Clock::time_point> retry_at_;
  std::string last_error_ = "no answer";
  std::vector<unsigned char> root_info_;
  std::string error_;
};

}  // namespace distbarrier::run
