#include "comm/diagnosis/status_server.h"

#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstring>
#include <string_view>
#include <system_error>
#include <thread>

#include "comm/diagnosis/flight_recorder.h"
#include "comm/diagnosis/status_protocol.h"
#include "common/env.h"
#include "common/json_sink.h"
#include "common/log.h"

namespace distbarrier::comm::diagnosis {
namespace {

constexpr int kIoTimeoutMs = 1000;  // a client that neither asks nor reads is dropped
constexpr size_t kMaxRequest = 64;

std::atomic<int32_t> g_server_pid{0};
int g_listen_fd = -1;  // this process's, or a forked child's inherited one until it starts its own

std::string ErrorReply(std::string_view message) {
  std::string text;
  {
    JsonSink out(&text);
    out.Raw("{").Key("error").String(message).Raw("}\n");
  }
  return text;
}

void SendAll(int fd, std::string_view text) {
  while (!text.empty()) {
    const ssize_t sent = send(fd, text.data(), text.size(), MSG_NOSIGNAL);
    if (sent < 0 && errno == EINTR) continue;
    if (sent <= 0) return;  // the client left or stalled: nothing to do about it
    text.remove_prefix(static_cast<size_t>(sent));
  }
}

// The request line, or empty when the client sent none in time.
std::string ReadRequest(int fd) {
  std::string request;
  char c = 0;
  while (request.size() < kMaxRequest) {
    const ssize_t got = recv(fd, &c, 1, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0 || c == '\n') break;
    request.push_back(c);
  }
  return request;
}

void Answer(int fd) {
  const timeval timeout{kIoTimeoutMs / 1000, (kIoTimeoutMs % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  // The request is read first in every case: closing with it unread would reset the
  // connection, and a refused client would see that instead of the refusal.
  const std::string request = ReadRequest(fd);
  ucred peer{};
  socklen_t length = sizeof(peer);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &length) != 0) {
    SendAll(fd, ErrorReply("refused: the client's credentials cannot be read"));
    return;
  }
  if (!ClientAllowed(peer.uid, getuid())) {
    SendAll(fd,
            ErrorReply(fmt::format("refused: uid {} may not read the state of a job of uid {}", peer.uid, getuid())));
    return;
  }
  if (request == kStateRequest) {
    SendAll(fd, StateDocument());
  } else if (request == kDumpRequest) {
    const std::string path = DumpFlightRecorders("request");
    std::string text;
    {
      JsonSink out(&text);
      if (path.empty()) {
        out.Raw("{").Key("error").String("the flight recorder file could not be written (see the job's log)");
      } else {
        out.Raw("{").Key("dumped").String(path);
      }
      out.Raw("}\n");
    }
    SendAll(fd, text);
  } else {
    SendAll(fd, ErrorReply(fmt::format("unknown request '{}'", request)));
  }
}

void Serve(int listen_fd) {
  // Asynchronous signals belong to the program's own threads.
  sigset_t blocked;
  sigfillset(&blocked);
  for (int fault : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT}) sigdelset(&blocked, fault);
  pthread_sigmask(SIG_BLOCK, &blocked, nullptr);
  for (;;) {
    const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EBADF || errno == EINVAL) return;
      // Out of descriptors or memory: wait a little for them rather than spin.
      pollfd none{-1, 0, 0};
      poll(&none, 1, 100);
      continue;
    }
    Answer(fd);
    close(fd);
  }
}

}  // namespace

bool ClientAllowed(uid_t client, uid_t owner) {
  return client == owner;
}

void EnsureStatusServer() {
  const int32_t self = getpid();
  if (g_server_pid.load(std::memory_order_relaxed) == self) return;
  g_server_pid.store(self, std::memory_order_relaxed);  // one attempt per process
  if (g_listen_fd >= 0) {                               // a forked child: the parent's socket, which nobody here serves
    close(g_listen_fd);
    g_listen_fd = -1;
  }
  if (EnvInt("DISTBARRIER_STATUS", 1) == 0) return;
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    Log(LogLevel::kWarning, "status server: socket failed: {}; distbarrier-status will not see this process",
        std::strerror(errno));
    return;
  }
  const std::string name = StatusSocketName(getuid(), self);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path + 1, name.data(), name.size());  // sun_path[0] = 0: abstract
  const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), length) != 0 || listen(fd, 16) != 0) {
    Log(LogLevel::kWarning, "status server: cannot listen on @{}: {}; distbarrier-status will not see this process",
        name, std::strerror(errno));
    close(fd);
    return;
  }
  try {
    std::thread(Serve, fd).detach();  // lives as long as the process, like the runtime
  } catch (const std::system_error& failure) {
    Log(LogLevel::kWarning, "status server: no thread: {}", failure.what());
    close(fd);
    return;
  }
  g_listen_fd = fd;
}

}  // namespace distbarrier::comm::diagnosis
