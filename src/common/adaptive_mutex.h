// A mutex that spins briefly before it sleeps (glibc's PTHREAD_MUTEX_ADAPTIVE_NP), for locks
// held a few dozen nanoseconds by threads on different cores: with std::mutex, a thread
// that finds such a lock taken goes to sleep in the kernel and the holder pays a futex wake
// on unlock, which costs more than the critical section by two orders of magnitude.
#pragma once

#include <pthread.h>

namespace distbarrier {

class AdaptiveMutex {
 public:
  AdaptiveMutex() {
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
    pthread_mutex_init(&mutex_, &attr);
    pthread_mutexattr_destroy(&attr);
  }
  ~AdaptiveMutex() { pthread_mutex_destroy(&mutex_); }
  AdaptiveMutex(const AdaptiveMutex&) = delete;
  AdaptiveMutex& operator=(const AdaptiveMutex&) = delete;

  void lock() { pthread_mutex_lock(&mutex_); }
  void unlock() { pthread_mutex_unlock(&mutex_); }
  bool try_lock() { return pthread_mutex_trylock(&mutex_) == 0; }

 private:
  pthread_mutex_t mutex_;
};

}  // namespace distbarrier
