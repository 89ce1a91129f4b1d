// Memory shared between the processes of a group: an anonymous memfd, mapped. It has no
// name in /dev/shm or anywhere else, so nothing can leak when processes end or are killed,
// and only processes that were handed the descriptor (over a Unix socket) can map it. Its size
// is sealed (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL): nobody can shrink it under a mapping
// (SIGBUS), and a receiver refuses a descriptor without those seals or of another size.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

namespace distbarrier::comm {

class SharedMemory {
 public:
  // A new zero-filled segment of `bytes`; null and *error set on failure.
  static std::unique_ptr<SharedMemory> Create(size_t bytes, std::string* error);
  // Maps a segment received from another process, once it checked the seals and that the size
  // is exactly `bytes`; takes ownership of `fd`.
  static std::unique_ptr<SharedMemory> Map(int fd, size_t bytes, std::string* error);
  ~SharedMemory();
  SharedMemory(const SharedMemory&) = delete;
  SharedMemory& operator=(const SharedMemory&) = delete;

  void* Data() const { return data_; }
  size_t Bytes() const { return bytes_; }
  int Fd() const { return fd_; }

 private:
  SharedMemory(int fd, void* data, size_t bytes) : fd_(fd), data_(data), bytes_(bytes) {}
  int fd_;
  void* data_;
  size_t bytes_;
};

}  // namespace distbarrier::comm
