#include "comm/peer_watch.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <system_error>

#include <fmt/format.h>

#include "common/log.h"

namespace distbarrier::comm {

std::unique_ptr<PeerWatch> PeerWatch::Start(BarrierWindow& window, std::string* error) {
  std::unique_ptr<PeerWatch> watch(new PeerWatch(window));
  // The stop signal first: without it the thread could never be stopped.
  watch->stop_fd_ = eventfd(0, EFD_CLOEXEC);
  if (watch->stop_fd_ < 0) {
    *error = fmt::format("cannot watch the group's other processes: eventfd failed: {}", std::strerror(errno));
    return nullptr;
  }
  const int32_t self = getpid();
  for (int rank = 0; rank < window.RankCount(); ++rank) {
    const int32_t pid = window.Pid(rank);
    // Ranks of other hosts are their host agent's to watch (comm/hosts).
    if (pid == self || pid <= 0 || window.Host(rank) != window.LocalHost()) continue;
    int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
    if (fd < 0) {
      if (errno == ESRCH) {
        window.MarkDead(rank);  // gone already
      } else {
        Log(LogLevel::kWarning, "cannot watch rank {} (pid {}): pidfd_open: {}; its death will show as a timeout",
            rank, pid, std::strerror(errno));
      }
      continue;
    }
    watch->ranks_.push_back(rank);
    watch->pidfds_.push_back(fd);
  }
  try {
    watch->thread_ = std::thread([raw = watch.get()] { raw->Run(); });
  } catch (const std::system_error& failure) {
    *error = fmt::format("cannot watch the group's other processes: no thread: {}", failure.what());
    return nullptr;  // the destructor closes the descriptors; there is no thread to join
  }
  return watch;
}

PeerWatch::~PeerWatch() {
  if (thread_.joinable()) {
    const uint64_t one = 1;
    if (write(stop_fd_, &one, sizeof(one)) != sizeof(one)) {
      Log(LogLevel::kError, "peer watch: cannot signal its thread to stop: {}", std::strerror(errno));
    }
    thread_.join();
  }
  for (int fd : pidfds_) close(fd);
  if (stop_fd_ >= 0) close(stop_fd_);
}

void PeerWatch::Run() {
  std::vector<pollfd> fds;
  fds.push_back({stop_fd_, POLLIN, 0});
  for (int fd : pidfds_) fds.push_back({fd, POLLIN, 0});
  size_t alive = pidfds_.size();
  while (true) {
    int ready = poll(fds.data(), fds.size(), -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      Log(LogLevel::kError, "peer watch: poll failed: {}", std::strerror(errno));
      return;
    }
    if (fds[0].revents != 0) return;
    for (size_t i = 1; i < fds.size(); ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const int rank = ranks_[i - 1];
      // Info only: at the end of a job peers exit normally; a barrier that waits for the
      // rank reports its death itself.
      Log(LogLevel::kInfo, "rank {} (pid {}) of a barrier group has exited", rank, window_.Pid(rank));
      window_.MarkDead(rank);
      fds[i].fd = -1;  // poll ignores negative descriptors
      --alive;
    }
    if (alive == 0) {  // nothing left to watch but the stop request
      fds.resize(1);
    }
  }
}

}  // namespace distbarrier::comm
