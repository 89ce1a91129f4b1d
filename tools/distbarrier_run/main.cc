// distbarrier-run -n N [--nnodes M --node-rank K --master-addr A --master-port P]
//                 [--rank-table FILE [--node-rank K]] [--timeout S] [--kill-grace S] [--] program [args...]
//
// A torchrun-like launcher for distbarrier programs, one per node; see README.md.
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
               "usage: distbarrier-run -n N [--nnodes M --node-rank K --master-addr HOST --master-port PORT]\n"
               "                       [--rank-table FILE [--node-rank K]] [--timeout SECONDS] [--kill-grace SECONDS]\n"
               "                       [--] program [args...]\n"
               "Run with --help for more information.\n",
               message.c_str());
  return distbarrier::run::kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace distbarrier::run;
  Options options;

  CLI::App app{
      "Starts this node's ranks of a distbarrier program, relays rank 0's HcclRootInfo to the other "
      "ranks (across nodes through node 0's launcher), forwards SIGINT/SIGTERM, and stops every rank "
      "when one fails.",
      "distbarrier-run"};
  app.add_option("-n,--nproc-per-node,--nproc_per_node", options.nproc_per_node,
                 "number of ranks to start on this node (>= 1)")
      ->type_name("N");
  app.add_option("--nnodes", options.nnodes, "number of nodes of the job (default 1)")->type_name("M");
  app.add_option("--node-rank,--node_rank", options.node_rank,
                 "this node's index, 0..M-1 (default 0); with --rank-table: its server's index in server_list")
      ->type_name("K");
  app.add_option("--master-addr,--master_addr", options.master_addr,
                 "where node 0's launcher serves the root info (default 127.0.0.1)")
      ->type_name("HOST");
  app.add_option("--master-port,--master_port", options.master_port,
                 "its port (default 29500); the ranks' MASTER_PORT is the next one, for a store of their own")
      ->type_name("PORT");
  app.add_option("--connect-timeout", options.connect_timeout_s,
                 "how long a node waits for node 0's root info, and node 0 serves it")
      ->type_name("SECONDS")
      ->capture_default_str();
  app.add_option("--rank-table", options.rank_table,
                 "start this node's server of a CANN rank table (ranks call HcclCommInitClusterInfo)")
      ->type_name("FILE");
  app.add_option("--secret-file", options.secret_file,
                 "the job secret (64 hex digits, mode 0600); default: DISTBARRIER_JOB_SECRET[_FILE]")
      ->type_name("FILE");
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
      "Rank r (global: node_rank * N + local rank) gets RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE,\n"
      "NODE_RANK (on several nodes also MASTER_ADDR, MASTER_PORT = --master-port + 1) and their\n"
      "DISTBARRIER_* twins. Rank 0 writes its 4108-byte\n"
      "HcclRootInfo to the fd in DISTBARRIER_ROOT_INFO_OUT_FD; every other rank, on any node, reads it\n"
      "from the fd in DISTBARRIER_ROOT_INFO_IN_FD (EOF if rank 0 never sent it). Several nodes need a job\n"
      "secret both launchers know (DISTBARRIER_JOB_SECRET, DISTBARRIER_JOB_SECRET_FILE or --secret-file).\n"
      "With --rank-table the ranks also get RANK_TABLE_FILE, DISTBARRIER_RANK_TABLE, RANK_ID, RANK_SIZE and\n"
      "DEVICE_ID. Exit code: 0 if every rank exited 0, else the first failing rank's status (128+signal\n"
      "if killed), 124 on --timeout, 2 on bad usage, 127 if the program cannot be executed, 1 on a\n"
      "launcher error (no root info from node 0, say).");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    return Usage(e.what());
  }

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
  auto plan = PlanNode(options);
  if (auto* why = std::get_if<std::string>(&plan)) return Usage(*why);
  if (options.command.empty()) return Usage("no program given");

  return Launch(options, std::get<NodePlan>(plan));
}
