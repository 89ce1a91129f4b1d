// Sleeping on a 32-bit atomic word with a timeout (std::atomic::wait has none).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace distbarrier {

// Sleeps while `word` holds `expected`, at most `timeout`; may wake spuriously.
void FutexWait(std::atomic<uint32_t>& word, uint32_t expected, std::chrono::nanoseconds timeout);
// Wakes every thread sleeping on `word`.
void FutexWakeAll(std::atomic<uint32_t>& word);

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

}  // namespace distbarrier
