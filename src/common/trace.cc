#include "common/trace.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "common/log.h"

namespace distbarrier {
namespace {
constexpr std::string_view kHead = "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[";
constexpr std::string_view kTail = "\n]}\n";

bool WriteAll(int fd, std::string_view bytes, long long offset) {
  while (!bytes.empty()) {
    ssize_t written = pwrite(fd, bytes.data(), bytes.size(), offset);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(written));
    offset += written;
  }
  return true;
}
}  // namespace

TraceWriter* TraceWriter::Instance() {
  static TraceWriter* writer = []() -> TraceWriter* {
    const char* requested = std::getenv("DISTBARRIER_TRACE");
    if (requested == nullptr || *requested == '\0') return nullptr;
    // "%p" becomes the pid, so the processes of one job write one file each.
    std::string path_text = requested;
    for (size_t at = path_text.find("%p"); at != std::string::npos; at = path_text.find("%p", at)) {
      path_text.replace(at, 2, std::to_string(getpid()));
    }
    const char* path = path_text.c_str();
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
      Log(LogLevel::kError, "DISTBARRIER_TRACE: cannot create '{}': {}", path, std::strerror(errno));
      return nullptr;
    }
    std::string initial = std::string(kHead) + std::string(kTail);
    if (!WriteAll(fd, initial, 0)) {
      Log(LogLevel::kError, "DISTBARRIER_TRACE: cannot write '{}': {}", path, std::strerror(errno));
      close(fd);
      return nullptr;
    }
    Log(LogLevel::kInfo, "writing a barrier trace to {}", path);
    return new TraceWriter(fd);  // lives as long as the process; the file is always complete
  }();
  return writer;
}

TraceWriter::TraceWriter(int fd) : fd_(fd), tail_offset_(static_cast<long long>(kHead.size())) {}

void TraceWriter::Emit(std::string_view event_json) {
  std::lock_guard lock(mutex_);
  std::string chunk = fmt::format("{}\n{}{}", first_event_ ? "" : ",", event_json, kTail);
  if (!WriteAll(fd_, chunk, tail_offset_)) return;  // the file keeps its previous, valid content
  first_event_ = false;
  tail_offset_ += static_cast<long long>(chunk.size() - kTail.size());
}

std::string JsonEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<unsigned char>(c));
        } else {
          out += c;
        }
    }
  }
  return out;
}

}  // namespace distbarrier
