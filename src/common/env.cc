#include "common/env.h"

#include <cstdlib>
#include <string_view>
#include <charconv>

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

}  // namespace distbarrier
