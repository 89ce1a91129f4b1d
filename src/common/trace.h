// DISTBARRIER_TRACE=path: a Chrome/Perfetto trace-event JSON file (open it in ui.perfetto.dev
// or chrome://tracing). The file is valid JSON after every event: each event is written
// together with the closing brackets in one pwrite, over the previous closing brackets, so a
// program that dies by an error still leaves a file that parses. "%p" in the path becomes the
// pid: processes of one job must each write their own file (DISTBARRIER_TRACE=trace.%p.json).
#pragma once

#include <mutex>
#include <string>
#include <string_view>

namespace distbarrier {

class TraceWriter {
 public:
  // The process's trace, or null when DISTBARRIER_TRACE is unset (or the file cannot be made).
  static TraceWriter* Instance();

  // Appends one trace event, a JSON object.
  void Emit(std::string_view event_json);

 private:
  explicit TraceWriter(int fd);

  std::mutex mutex_;
  const int fd_;
  long long tail_offset_;  // where the closing brackets start
  bool first_event_ = true;
};

// `text` as the inside of a JSON string literal.
std::string JsonEscape(std::string_view text);

}  // namespace distbarrier
