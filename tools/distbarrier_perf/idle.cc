#include "idle.h"

#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <new>
#include <thread>
#include <vector>

#include "acl/acl.h"
#include "common.h"

namespace distbarrier::perf {
namespace {

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec + (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

}  // namespace

std::optional<IdleResult> MeasureIdle(double seconds) {
  void* memory = mmap(nullptr, sizeof(IdleResult), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) return std::nullopt;
  auto* result = new (memory) IdleResult;
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    std::vector<aclrtStream> streams;
    for (int device = 0; device < 16; ++device) {
      CHECK_OK(aclrtSetDevice(device));
      for (int i = 0; i < 3; ++i) {
        aclrtStream stream;
        CHECK_OK(aclrtCreateStream(&stream));
        CHECK_OK(aclrtLaunchHostFunc(stream, [](void*) {}, nullptr));
        CHECK_OK(aclrtSynchronizeStream(stream));
        streams.push_back(stream);
      }
    }
    const double cpu_before = CpuSeconds();
    const auto wall_before = Clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    result->cpu_s = CpuSeconds() - cpu_before;
    result->wall_s = std::chrono::duration<double>(Clock::now() - wall_before).count();
    result->streams = static_cast<int>(streams.size());
    _exit(0);
  }
  AddChild(pid);
  int status = 0;
  waitpid(pid, &status, 0);
  ForgetChildren();
  std::optional<IdleResult> out;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) out = *result;
  munmap(memory, sizeof(IdleResult));
  return out;
}

}  // namespace distbarrier::perf
