#include "common/error.h"

#include <cstdint>
#include <utility>

namespace distbarrier {
namespace {
thread_local std::string recent_error;
thread_local int last_error_code = 0;
constexpr long long kFirstAclErrorCode = 100000;  // below: HCCL's small codes, not the runtime's
}

void SetRecentError(std::string message) {
  Log(LogLevel::kError, "{}", message);
  recent_error = std::move(message);
}

void SetRecentErrorQuiet(std::string message) { recent_error = std::move(message); }

const char* RecentError() { return recent_error.c_str(); }

void NoteErrorCode(long long code) {
  if (code >= kFirstAclErrorCode && code <= INT32_MAX) last_error_code = static_cast<int>(code);
}

int PeekLastErrorCode() { return last_error_code; }

int TakeLastErrorCode() { return std::exchange(last_error_code, 0); }

}  // namespace distbarrier
