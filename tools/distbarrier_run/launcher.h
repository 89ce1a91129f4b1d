// distbarrier-run: the process launcher behind the command-line front end in main.cc.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace distbarrier::run {

// The size of an HcclRootInfo, the payload relayed from rank 0 to every other rank.
inline constexpr std::size_t kRootInfoBytes = 4108;

// Exit codes of the launcher itself (a failing rank's own code is passed through).
inline constexpr int kExitUsage = 2;
inline constexpr int kExitInternal = 1;
inline constexpr int kExitTimeout = 124;
inline constexpr int kExitCannotExecute = 127;

struct Options {
  int world_size = 0;                // -n
  double timeout_s = 0.0;            // --timeout; 0 = none
  double kill_grace_s = 5.0;         // --kill-grace: SIGTERM .. SIGKILL
  std::vector<std::string> command;  // program and its arguments
};

// Starts options.world_size copies of options.command, relays the root info, supervises them
// and returns the launcher's exit code (see README.md).
int Launch(const Options& options);

}  // namespace distbarrier::run
