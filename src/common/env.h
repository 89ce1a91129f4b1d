// Reading configuration from the environment.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

namespace distbarrier {

// The integer value of environment variable `name`, or `fallback` when unset or not a number.
int64_t EnvInt(const char* name, int64_t fallback);

// The longest duration the environment may set, about 100 years: "never" in practice, and
// far enough from the steady clock's limit (int64 nanoseconds, about 292 years) that
// now + duration cannot overflow.
inline constexpr std::chrono::milliseconds kMaxEnvDuration = std::chrono::hours(24 * 365 * 100);

// Environment variable `name` counted in `unit`s (DISTBARRIER_TIMEOUT_MS: milliseconds,
// DISTBARRIER_WARN_S: seconds), clamped to [0, kMaxEnvDuration] without overflowing; nullopt
// when unset or not a number. Callers decide what zero means.
std::optional<std::chrono::milliseconds> EnvDuration(const char* name, std::chrono::milliseconds unit);

}  // namespace distbarrier
