#include "comm/shared_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace distbarrier::comm {
namespace {
constexpr int kRequiredSeals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
}

std::unique_ptr<SharedMemory> SharedMemory::Create(size_t bytes, std::string* error) {
  int fd = memfd_create("distbarrier-group", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) {
    *error = fmt::format("memfd_create failed: {}", std::strerror(errno));
    return nullptr;
  }
  if (ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    *error = fmt::format("ftruncate of the group's shared memory to {} bytes failed: {}", bytes, std::strerror(errno));
    close(fd);
    return nullptr;
  }
  if (fcntl(fd, F_ADD_SEALS, kRequiredSeals) != 0) {
    *error = fmt::format("sealing the group's shared memory failed: {}", std::strerror(errno));
    close(fd);
    return nullptr;
  }
  return Map(fd, bytes, error);
}

std::unique_ptr<SharedMemory> SharedMemory::Map(int fd, size_t bytes, std::string* error) {
  const int seals = fcntl(fd, F_GET_SEALS);
  if (seals < 0 || (seals & kRequiredSeals) != kRequiredSeals) {
    *error = seals < 0
                 ? fmt::format("the group's shared memory is not a sealable memfd ({}): refused", std::strerror(errno))
                 : fmt::format(
                       "the group's shared memory is not sealed against resizing (seals {:#x}, "
                       "{:#x} required): refused",
                       seals, kRequiredSeals);
    close(fd);
    return nullptr;
  }
  struct stat info {};
  if (fstat(fd, &info) != 0 || static_cast<size_t>(info.st_size) != bytes) {
    *error = fmt::format("the group's shared memory is {} bytes, {} expected: refused", info.st_size, bytes);
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
