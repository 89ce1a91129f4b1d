#include "common/error.h"

namespace distbarrier {
namespace {
thread_local std::string recent_error;
}

void SetRecentError(std::string message) {
  Log(LogLevel::kError, "{}", message);
  recent_error = std::move(message);
}

void SetRecentErrorQuiet(std::string message) { recent_error = std::move(message); }

const char* RecentError() { return recent_error.c_str(); }

}  // namespace distbarrier
