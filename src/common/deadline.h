// Deadlines as start + duration on the steady clock, saturated instead of overflowing.
#pragma once

#include <chrono>

namespace distbarrier {

// start + duration, or the clock's maximum (never) when that sum would not fit.
template <typename Rep, typename Period>
std::chrono::steady_clock::time_point DeadlineAfter(std::chrono::steady_clock::time_point start,
                                                    std::chrono::duration<Rep, Period> duration) {
  using Clock = std::chrono::steady_clock;
  using Duration = std::chrono::duration<Rep, Period>;
  if (duration <= Duration::zero()) return start;
  // Compared in the duration's own unit (the room rounded down), so nothing is multiplied.
  const Clock::duration room = Clock::time_point::max() - start;
  if (duration >= std::chrono::duration_cast<Duration>(room)) return Clock::time_point::max();
  return start + std::chrono::duration_cast<Clock::duration>(duration);
}

}  // namespace distbarrier
