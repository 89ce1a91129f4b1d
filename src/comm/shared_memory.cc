#include "comm/shared_memory.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace distbarrier::comm {

std::unique_ptr<SharedMemory> SharedMemory::Create(size_t bytes, std::string* error) {
  int fd = memfd_create("distbarrier-group", MFD_CLOEXEC);
  if (fd < 0) {
    *error = fmt::format("memfd_create failed: {}", std::strerror(errno));
    return nullptr;
  }
  if (ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    *error = fmt::format("ftruncate of the group's shared memory to {} bytes failed: {}", bytes, std::strerror(errno));
    close(fd);
    return nullptr;
  }
  return Map(fd, bytes, error);
}

std::unique_ptr<SharedMemory> SharedMemory::Map(int fd, size_t bytes, std::string* error) {
  struct stat info {};
  if (fstat(fd, &info) != 0 || static_cast<size_t>(info.st_size) < bytes) {
    *error = fmt::format("the group's shared memory is {} bytes, {} expected", info.st_size, bytes);
    close(fd);
    return nullptr;
  }
  void* data = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (data == MAP_FAILED) {
    *error = fmt::format("mmap of the group's shared memory failed: {}", std::strerror(errno));
    close(fd);
    return nullptr;
  }
  return std::unique_ptr<SharedMemory>(new SharedMemory(fd, data, bytes));
}

SharedMemory::~SharedMemory() {
  munmap(data_, bytes_);
  close(fd_);
}

}  // namespace distbarrier::comm
