// distbarrier-run -n N [--timeout S] [--kill-grace S] [--] program [args...]
//
// A torchrun-like launcher for distbarrier programs on one machine; see README.md.
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "launcher.h"

namespace {

int Usage(const std::string& message) {
  std::fprintf(stderr,
               "distbarrier-run: %s\n"
               "usage: distbarrier-run -n N [--timeout SECONDS] [--kill-grace SECONDS] [--] program [args...]\n"
               "Run with --help for more information.\n",
               message.c_str());
  return distbarrier::run::kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace distbarrier::run;
  Options options;

  CLI::App app{
      "Starts N ranks of a distbarrier program on this machine, relays rank 0's HcclRootInfo "
      "to the other ranks, forwards SIGINT/SIGTERM, and stops every rank when one fails.",
      "distbarrier-run"};
  app.add_option("-n,--nproc-per-node,--nproc_per_node", options.world_size, "number of ranks to start (>= 1)")
      ->required()
      ->type_name("N");
  app.add_option("--timeout", options.timeout_s,
                 "stop the job and exit 124 when it runs longer than this; 0 = no limit")
      ->type_name("SECONDS")
      ->capture_default_str();
  app.add_option("--kill-grace", options.kill_grace_s, "time between SIGTERM and SIGKILL when stopping the ranks")
      ->type_name("SECONDS")
      ->capture_default_str();
  // Everything from the program on belongs to the program, options included.
  app.prefix_command();
  app.footer(
      "Each rank i gets RANK, LOCAL_RANK, DISTBARRIER_RANK, DISTBARRIER_LOCAL_RANK = i and\n"
      "WORLD_SIZE, LOCAL_WORLD_SIZE, DISTBARRIER_WORLD_SIZE = N. Rank 0 writes its 4108-byte\n"
      "HcclRootInfo to the fd in DISTBARRIER_ROOT_INFO_OUT_FD; every other rank reads it from the fd\n"
      "in DISTBARRIER_ROOT_INFO_IN_FD (EOF if rank 0 never sent it). Exit code: 0 if every rank\n"
      "exited 0, else the first failing rank's status (128+signal if killed), 124 on --timeout,\n"
      "2 on bad usage, 127 if the program cannot be executed.");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    return Usage(e.what());
  }

  if (options.world_size < 1) return Usage("-n must be at least 1, got " + std::to_string(options.world_size));
  if (!std::isfinite(options.timeout_s) || options.timeout_s < 0) {
    return Usage("--timeout must be a number of seconds >= 0");
  }
  if (!std::isfinite(options.kill_grace_s) || options.kill_grace_s < 0) {
    return Usage("--kill-grace must be a number of seconds >= 0");
  }

  options.command = app.remaining();
  if (!options.command.empty() && options.command.front() == "--") {
    options.command.erase(options.command.begin());
  } else if (!options.command.empty() && options.command.front().size() > 1 && options.command.front().front() == '-') {
    // prefix_command() leaves unknown options to the program; before the program they are errors.
    return Usage("unknown option '" + options.command.front() + "' (put -- before a program whose name starts with -)");
  }
  if (options.command.empty()) return Usage("no program given");

  return Launch(options);
}
