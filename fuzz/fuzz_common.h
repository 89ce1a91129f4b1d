// Shared bits of the fuzz harnesses: a CHECK that explains itself before trapping, and an
// open-descriptor count (descriptor leaks are leaks too, LeakSanitizer does not see them).
#pragma once

#include <dirent.h>

#include <cstdio>

#include "acl/acl.h"

#define FUZZ_CHECK(cond, ...)                                                                      \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      std::fprintf(stderr, "FUZZ_CHECK failed at %s:%d: %s\n  ", __FILE__, __LINE__, #cond);      \
      std::fprintf(stderr, __VA_ARGS__);                                                           \
      std::fprintf(stderr, "\n  aclGetRecentErrMsg: %s\n", aclGetRecentErrMsg());                 \
      __builtin_trap();                                                                            \
    }                                                                                              \
  } while (0)

namespace fuzz {

inline int OpenFdCount() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int count = 0;
  while (readdir(dir) != nullptr) ++count;
  closedir(dir);
  return count;
}

}  // namespace fuzz
