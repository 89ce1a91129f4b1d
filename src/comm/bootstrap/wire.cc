#include "comm/bootstrap/wire.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace distbarrier::comm::wire {

int RemainingMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(std::min<int64_t>(left, 1 << 30));
}

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
      if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
      int fd = -1;
      std::memcpy(&fd, CMSG_DATA(header), sizeof(int));
      // One descriptor is expected, where one is asked for; any other is closed, not leaked.
      if (passed_fd != nullptr && *passed_fd < 0) {
        *passed_fd = fd;
      } else {
        close(fd);
      }
    }
    bytes += received;
    size -= static_cast<size_t>(received);
  }
  return Received::kAll;
}

}  // namespace distbarrier::comm::wire
