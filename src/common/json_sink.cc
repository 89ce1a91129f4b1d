#include "common/json_sink.h"

#include <unistd.h>

#include <cerrno>

namespace distbarrier {

JsonSink& JsonSink::Raw(std::string_view text) {
  for (char c : text) Put(c);
  return *this;
}

JsonSink& JsonSink::UInt(uint64_t value) {
  char digits[24];
  int count = 0;
  do {
    digits[count++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  while (count > 0) Put(digits[--count]);
  return *this;
}

JsonSink& JsonSink::Int(int64_t value) {
  if (value >= 0) return UInt(static_cast<uint64_t>(value));
  Put('-');
  return UInt(static_cast<uint64_t>(-(value + 1)) + 1);  // INT64_MIN too
}

JsonSink& JsonSink::String(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  Put('"');
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      Put('\\');
      Put(c);
    } else if (byte < 0x20) {
      Raw("\\u00");
      Put(kHex[byte >> 4]);
      Put(kHex[byte & 15]);
    } else {
      Put(c);
    }
  }
  Put('"');
  return *this;
}

void JsonSink::Flush() {
  if (text_ != nullptr) {
    text_->append(buffer_, used_);
    used_ = 0;
    return;
  }
  size_t done = 0;
  while (done < used_ && !failed_) {
    const ssize_t written = write(fd_, buffer_ + done, used_ - done);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) {
      failed_ = true;
      break;
    }
    done += static_cast<size_t>(written);
  }
  used_ = 0;
}

}  // namespace distbarrier
