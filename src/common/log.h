// Logging that honours CANN's switches: ASCEND_GLOBAL_LOG_LEVEL (0 debug .. 3 error, 4 off)
// and ASCEND_SLOG_PRINT_TO_STDOUT=1; DISTBARRIER_LOG_LEVEL overrides the level for us alone.
#pragma once

#include <fmt/format.h>

#include <string_view>

namespace distbarrier {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3, kOff = 4 };

bool LogEnabled(LogLevel level);
void LogLine(LogLevel level, std::string_view message);

// Tests observe what the library reports by adding a listener; every line logged while it is
// set is passed to it as well as written out. Null removes it.
using LogListener = void (*)(LogLevel level, std::string_view message, void* context);
void SetLogListener(LogListener listener, void* context);

template <typename... Args>
void Log(LogLevel level, fmt::format_string<Args...> format, Args&&... args) {
  if (LogEnabled(level)) LogLine(level, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace distbarrier
