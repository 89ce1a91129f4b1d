// What every room of distbarrier-perf uses: the run's options, the clock, CHECK_OK, Median, and
// the run-wide list of children that the --timeout guard stops.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "implementations.h"

namespace distbarrier::perf {

using Clock = std::chrono::steady_clock;

struct Options {
  std::vector<int> ranks;
  int min_ranks = 2, max_ranks = 16, factor = 2;
  int iterations = 2000, warmup = 200, repeat = 5;
  std::string mode = "threads";
  double timeout_s = 0;
  std::string json;
  double idle_s = 0;
  bool context_switch = false;
  bool launch = false;
  std::string impls = "b2b,s12,nostats,rt,std,pthread,central,mpi";
  bool stage1 = false;  // --stage1: stage 1 alone, on 1 and on N threads at once
  bool enabled[kImplCount] = {};
  bool mpi = false;
  bool moe = false;              // the MoE mode (moe.h) instead of the barrier table
  std::vector<int> moe_bs{8, 64};
  int moe_hidden = 7168;
  std::vector<int> hosts;  // --hosts: host counts across network namespaces (hosts.h)
  bool bind = false;       // --bind: processes mode, rank r on the r-th allowed CPU when ranks <= CPUs
  bool processes() const { return mode == "processes"; }
};

// Children (rank processes, mpirun) to stop when the run guard fires: add each one forked,
// forget them all once they have been waited for.
void AddChild(pid_t pid);
void ForgetChildren();

// The run guard: after `seconds`, kills the children and exits the tool with 124.
void ArmRunTimeout(double seconds);

// Prints what failed with the runtime's last error message and exits the process at once
// (a rank's child process as well as the tool).
[[noreturn]] void Die(const char* what, int code);

#define CHECK_OK(call)                                      \
  do {                                                      \
    int code_ = (call);                                     \
    if (code_ != 0) ::distbarrier::perf::Die(#call, code_); \
  } while (0)

// NAN for no values.
double Median(std::vector<double> values);

}  // namespace distbarrier::perf
