#include "common.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>

#include "acl/acl.h"

namespace distbarrier::perf {
namespace {

constexpr int kMaxChildren = 8192;
volatile pid_t g_children[kMaxChildren];
volatile sig_atomic_t g_child_count = 0;

void OnAlarm(int) {
  static const char message[] = "distbarrier-perf: --timeout reached, stopping\n";
  ssize_t ignored = write(STDERR_FILENO, message, sizeof(message) - 1);
  (void)ignored;
  for (int i = 0; i < g_child_count; ++i) kill(g_children[i], SIGKILL);
  _exit(124);
}

}  // namespace

void AddChild(pid_t pid) {
  const int count = g_child_count;
  if (count >= kMaxChildren) return;
  g_children[count] = pid;
  g_child_count = count + 1;
}

void ForgetChildren() { g_child_count = 0; }

void ArmRunTimeout(double seconds) {
  std::signal(SIGALRM, OnAlarm);
  alarm(static_cast<unsigned>(std::ceil(seconds)));
}

[[noreturn]] void Die(const char* what, int code) {
  std::fprintf(stderr, "distbarrier-perf: %s failed: %d: %s\n", what, code, aclGetRecentErrMsg());
  std::fflush(stderr);
  _exit(1);
}

double Median(std::vector<double> values) {
  if (values.empty()) return NAN;
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

}  // namespace distbarrier::perf
