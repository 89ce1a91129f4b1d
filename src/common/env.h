// Reading configuration from the environment.
#pragma once

#include <cstdint>

namespace distbarrier {

// The integer value of environment variable `name`, or `fallback` when unset or not a number.
int64_t EnvInt(const char* name, int64_t fallback);

}  // namespace distbarrier
