#include "common/env.h"

#include <charconv>
#include <cstdlib>
#include <string_view>

namespace distbarrier {

int64_t EnvInt(const char* name, int64_t fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr) return fallback;
  std::string_view view(text);
  int64_t value = 0;
  auto [end, error] = std::from_chars(view.data(), view.data() + view.size(), value);
  if (error != std::errc() || end != view.data() + view.size()) return fallback;
  return value;
}

std::optional<std::chrono::milliseconds> EnvDuration(const char* name, std::chrono::milliseconds unit) {
  if (std::getenv(name) == nullptr) return std::nullopt;
  // Any text that is not a number gives the sentinel, so "not a number" and a real value
  // are told apart without parsing twice.
  constexpr int64_t kNotANumber = INT64_MIN;
  const int64_t count = EnvInt(name, kNotANumber);
  if (count == kNotANumber) return std::nullopt;
  if (count <= 0 || unit.count() <= 0) return std::chrono::milliseconds(0);
  // Compared before multiplying: count * unit may not fit in int64.
  if (count >= kMaxEnvDuration.count() / unit.count()) return kMaxEnvDuration;
  return unit * count;
}

}  // namespace distbarrier
