#include "discovery.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "comm/diagnosis/status_protocol.h"

namespace distbarrier::status {
namespace {

using comm::diagnosis::kStatusSocketPrefix;
using comm::diagnosis::StatusSocketName;
using Clock = std::chrono::steady_clock;

struct Pending {
  size_t reply;  // index into the replies
  int fd;
  std::string text;
};

// Connects to `pid`'s socket and sends the request; -1 and reply.problem set when it cannot.
int Connect(ProcessReply& reply, std::string_view request) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    reply.problem = fmt::format("socket failed: {}", std::strerror(errno));
    return -1;
  }
  const std::string name = StatusSocketName(getuid(), reply.pid);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path + 1, name.data(), name.size());
  const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), length) != 0) {
    reply.problem = errno == EAGAIN ? "no answer (its status socket's queue is full)"
                                    : fmt::format("no status socket ({})", std::strerror(errno));
    close(fd);
    return -1;
  }
  // Abstract sockets have no file permissions: believe only a server of our own uid.
  ucred server{};
  socklen_t size = sizeof(server);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &server, &size) != 0 || server.uid != getuid()) {
    reply.problem = fmt::format("not asked: its status socket belongs to uid {}, not {}", server.uid, getuid());
    close(fd);
    return -1;
  }
  const std::string line = std::string(request) + "\n";
  if (send(fd, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size())) {
    reply.problem = fmt::format("cannot send the request: {}", std::strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

void Finish(ProcessReply& reply, const std::string& text) {
  try {
    nlohmann::json document = nlohmann::json::parse(text);
    if (document.contains("error")) {
      reply.problem = document["error"].get<std::string>();
    } else {
      reply.document = std::move(document);
    }
  } catch (const nlohmann::json::exception& error) {
    reply.problem = fmt::format("malformed answer ({} bytes): {}", text.size(), error.what());
  }
}

}  // namespace

std::vector<pid_t> FindServers(uid_t uid) {
  const std::string prefix = "@" + std::string(kStatusSocketPrefix) + std::to_string(uid) + ".";
  std::set<pid_t> pids;
  std::ifstream table("/proc/net/unix");
  std::string line;
  while (std::getline(table, line)) {
    const size_t at = line.find(prefix);
    if (at == std::string::npos) continue;
    const std::string rest = line.substr(at + prefix.size());
    char* end = nullptr;
    const long pid = std::strtol(rest.c_str(), &end, 10);
    if (end != rest.c_str() && (*end == '\0' || *end == ' ') && pid > 0) pids.insert(static_cast<pid_t>(pid));
  }
  return {pids.begin(), pids.end()};
}

std::string ProcessProblem(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(stat, text)) return "exited";
  // "pid (comm) S ...": the state follows the last ')' (comm may hold anything).
  const size_t close = text.rfind(')');
  if (close == std::string::npos || close + 2 >= text.size()) return {};
  switch (text[close + 2]) {
    case 'T': return "stopped (SIGSTOP)";
    case 't': return "stopped by a debugger";
    case 'Z':
    case 'X': return "exited";
    default: return {};
  }
}

std::vector<ProcessReply> Ask(const std::vector<pid_t>& pids, std::string_view request,
                              std::chrono::milliseconds budget) {
  const Clock::time_point deadline = Clock::now() + budget;
  std::vector<ProcessReply> replies;
  std::vector<Pending> pending;
  for (pid_t pid : pids) {
    ProcessReply& reply = replies.emplace_back();
    reply.pid = pid;
    reply.source = fmt::format("pid {}", pid);
    // A stopped process cannot answer: say so at once rather than wait for it.
    if (std::string problem = ProcessProblem(pid); !problem.empty()) {
      reply.problem = problem;
      continue;
    }
    const int fd = Connect(reply, request);
    if (fd >= 0) pending.push_back({replies.size() - 1, fd, {}});
  }
  while (!pending.empty()) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) break;
    std::vector<pollfd> fds;
    for (const Pending& entry : pending) fds.push_back({entry.fd, POLLIN, 0});
    if (poll(fds.data(), fds.size(), static_cast<int>(left)) < 0 && errno != EINTR) break;
    for (size_t i = fds.size(); i-- > 0;) {
      if (fds[i].revents == 0) continue;
      Pending& entry = pending[i];
      char buffer[65536];
      const ssize_t got = read(entry.fd, buffer, sizeof(buffer));
      if (got > 0) {
        entry.text.append(buffer, static_cast<size_t>(got));
        continue;
      }
      if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      Finish(replies[entry.reply], entry.text);  // EOF (or an error: what came is judged)
      close(entry.fd);
      pending.erase(pending.begin() + static_cast<std::ptrdiff_t>(i));
    }
  }
  for (Pending& entry : pending) {  // out of time
    ProcessReply& reply = replies[entry.reply];
    const std::string problem = ProcessProblem(reply.pid);
    reply.problem = !problem.empty() ? problem : fmt::format("no answer within {} ms", budget.count());
    close(entry.fd);
  }
  // A discovered socket of a process that is gone (a forked child kept it open) is no job.
  std::erase_if(replies, [](const ProcessReply& reply) { return reply.problem == "exited"; });
  return replies;
}

}  // namespace distbarrier::status
