#include "common/log.h"

#include <unistd.h>

#include <cstdio>
#include <mutex>

#include "common/env.h"

namespace distbarrier {
namespace {

struct LogConfig {
  LogLevel level;
  FILE* sink;
};

const LogConfig& Config() {
  static const LogConfig config = [] {
    // Default: warnings and errors, like CANN's default of 3 would hide our hang warnings.
    int64_t level = EnvInt("ASCEND_GLOBAL_LOG_LEVEL", 2);
    level = EnvInt("DISTBARRIER_LOG_LEVEL", level);
    if (level < 0) level = 0;
    if (level > 4) level = 4;
    FILE* sink = EnvInt("ASCEND_SLOG_PRINT_TO_STDOUT", 0) == 1 ? stdout : stderr;
    return LogConfig{static_cast<LogLevel>(level), sink};
  }();
  return config;
}

constexpr const char* kLevelNames[] = {"DEBUG", "INFO", "WARNING", "ERROR"};

std::mutex sink_mutex;  // keeps lines of concurrent ranks whole; guards the listener
LogListener listener = nullptr;
void* listener_context = nullptr;

}  // namespace

void SetLogListener(LogListener new_listener, void* context) {
  std::lock_guard lock(sink_mutex);
  listener = new_listener;
  listener_context = context;
}

bool LogEnabled(LogLevel level) { return level >= Config().level && level != LogLevel::kOff; }

void LogLine(LogLevel level, std::string_view message) {
  const LogConfig& config = Config();
  std::lock_guard lock(sink_mutex);
  if (listener != nullptr) listener(level, message, listener_context);
  fmt::print(config.sink, "[{}] distbarrier({}): {}\n", kLevelNames[static_cast<int>(level)], getpid(),
             message);
  std::fflush(config.sink);
}

}  // namespace distbarrier
