#include "implementations.h"

#include <cstdio>
#include <cstdlib>
#include <new>

namespace distbarrier::perf {

SharedArea::SharedArea(size_t figure_count) {
  bytes = sizeof(Shared) + sizeof(double) * figure_count;
  memory = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) {
    std::perror("distbarrier-perf: mmap");
    std::exit(1);
  }
  shared = new (memory) Shared;
  figures = reinterpret_cast<double*>(static_cast<char*>(memory) + sizeof(Shared));
}

SharedArea::~SharedArea() {
  pthread_barrier_destroy(&shared->control);
  pthread_barrier_destroy(&shared->measured);
  shared->~Shared();
  munmap(memory, bytes);
}

void InitPthreadBarrier(pthread_barrier_t* barrier, unsigned count, bool process_shared) {
  pthread_barrierattr_t attr;
  pthread_barrierattr_init(&attr);
  pthread_barrierattr_setpshared(&attr, process_shared ? PTHREAD_PROCESS_SHARED : PTHREAD_PROCESS_PRIVATE);
  if (pthread_barrier_init(barrier, &attr, count) != 0) {
    std::fprintf(stderr, "distbarrier-perf: pthread_barrier_init failed\n");
    std::exit(1);
  }
  pthread_barrierattr_destroy(&attr);
}

}  // namespace distbarrier::perf
