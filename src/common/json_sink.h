// JSON text built without allocating or locking, so that a signal handler may write it: a
// fixed buffer flushed to a file descriptor with write(2). A sink over a std::string is
// there for callers that may allocate (the status server); both produce the same text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace distbarrier {

class JsonSink {
 public:
  explicit JsonSink(int fd) : fd_(fd) {}
  explicit JsonSink(std::string* text) : text_(text) {}
  ~JsonSink() { Flush(); }
  JsonSink(const JsonSink&) = delete;
  JsonSink& operator=(const JsonSink&) = delete;

  // Text as is: punctuation and keys the caller knows need no escaping.
  JsonSink& Raw(std::string_view text);
  JsonSink& Int(int64_t value);
  JsonSink& UInt(uint64_t value);
  JsonSink& Bool(bool value) { return Raw(value ? "true" : "false"); }
  // A quoted, escaped string literal.
  JsonSink& String(std::string_view text);
  // `"key":` (the key needs no escaping).
  JsonSink& Key(std::string_view key) { return Raw("\"").Raw(key).Raw("\":"); }

  void Flush();
  // True once a write to the descriptor failed (the document is then incomplete).
  bool Failed() const { return failed_; }

 private:
  void Put(char c) {
    if (used_ == sizeof(buffer_)) Flush();
    buffer_[used_++] = c;
  }

  int fd_ = -1;
  std::string* text_ = nullptr;
  char buffer_[4096];
  size_t used_ = 0;
  bool failed_ = false;
};

}  // namespace distbarrier
