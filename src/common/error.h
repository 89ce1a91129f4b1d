// The per-thread "most recent error" behind aclGetRecentErrMsg(), and helpers that set it.
#pragma once

#include <fmt/format.h>

#include <string>

#include "common/log.h"

namespace distbarrier {

// Stores `message` as the calling thread's recent error and logs it at error level.
void SetRecentError(std::string message);
// Stores `message` as the calling thread's recent error without logging it again.
void SetRecentErrorQuiet(std::string message);
const char* RecentError();
// The calling thread's last ACL-family error code (>= 100000) that went through Fail, for
// aclrtGetLastError / aclrtPeekAtLastError; 0 when none. Taking it clears it.
void NoteErrorCode(long long code);
int PeekLastErrorCode();
int TakeLastErrorCode();

// Records the formatted message and returns `code`, so error paths read as one statement:
//   return Fail(ACL_ERROR_INVALID_PARAM, "aclrtMemcpy: count {} exceeds destMax {}", n, max);
template <typename Code, typename... Args>
Code Fail(Code code, fmt::format_string<Args...> format, Args&&... args) {
  SetRecentError(fmt::format("{} (error {})", fmt::format(format, std::forward<Args>(args)...),
                             static_cast<long long>(code)));
  NoteErrorCode(static_cast<long long>(code));
  return code;
}

}  // namespace distbarrier
