#include "comm/bootstrap/job_secret.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace distbarrier::comm {
namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string_view Trimmed(std::string_view text) {
  const char* space = " \t\r\n";
  const size_t first = text.find_first_not_of(space);
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(space) - first + 1);
}

}  // namespace

std::variant<JobSecret, std::string> ParseJobSecret(std::string_view hex, const std::string& source) {
  hex = Trimmed(hex);
  if (hex.size() != 2 * kJobSecretBytes) {
    return fmt::format(
        "{}: the job secret must be {} hex digits ({} random bytes, e.g. `openssl rand -hex {}`), "
        "got {} characters",
        source, 2 * kJobSecretBytes, kJobSecretBytes, kJobSecretBytes, hex.size());
  }
  JobSecret secret{};
  for (size_t i = 0; i < kJobSecretBytes; ++i) {
    const int high = HexDigit(hex[2 * i]);
    const int low = HexDigit(hex[2 * i + 1]);
    if (high < 0 || low < 0) {
      return fmt::format("{}: the job secret must be hex digits only (character {} is not one)", source,
                         2 * i + (high < 0 ? 0 : 1));
    }
    secret[i] = static_cast<uint8_t>(high << 4 | low);
  }
  return secret;
}

std::variant<JobSecret, std::string> ReadJobSecretFile(const std::string& path) {
  const std::string source = fmt::format("job secret file {}", path);
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return fmt::format("{}: cannot open: {}", source, std::strerror(errno));
  struct stat info {};
  std::string failure;
  char text[256] = {};
  ssize_t got = 0;
  if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    failure = fmt::format("{}: not a regular file", source);
  } else if ((info.st_mode & 077) != 0) {
    failure = fmt::format("{}: other users may access it (mode {:04o}); chmod 600 it", source, info.st_mode & 07777);
  } else {
    do {
      got = read(fd, text, sizeof(text) - 1);
    } while (got < 0 && errno == EINTR);
    if (got < 0) failure = fmt::format("{}: read failed: {}", source, std::strerror(errno));
  }
  close(fd);
  if (!failure.empty()) return failure;
  return ParseJobSecret(std::string_view(text, static_cast<size_t>(got)), source);
}

std::variant<std::optional<JobSecret>, std::string> JobSecretFromEnvironment() {
  const char* hex = std::getenv(kJobSecretEnv);
  const char* file = std::getenv(kJobSecretFileEnv);
  if (hex != nullptr && file != nullptr) {
    return fmt::format("both {} and {} are set; set one", kJobSecretEnv, kJobSecretFileEnv);
  }
  std::variant<JobSecret, std::string> secret;
  if (hex != nullptr) {
    secret = ParseJobSecret(hex, kJobSecretEnv);
  } else if (file != nullptr) {
    secret = ReadJobSecretFile(file);
  } else {
    return std::optional<JobSecret>();
  }
  if (auto* why = std::get_if<std::string>(&secret)) return *why;
  return std::optional<JobSecret>(std::get<JobSecret>(secret));
}

bool JobSecretsEqual(const uint8_t* a, const uint8_t* b) {
  uint8_t difference = 0;
  for (size_t i = 0; i < kJobSecretBytes; ++i) difference |= static_cast<uint8_t>(a[i] ^ b[i]);
  return difference == 0;
}

}  // namespace distbarrier::comm
