// distbarrier-perf: barrier latency in the style of nccl-tests.
//
//   distbarrier-perf -b 2 -e 16 [-f 2] [-n 2000] [-w 200] [--repeat 5] [--mode threads|processes]
//                    [--timeout S] [--json FILE] [--idle S] [--impls b2b,rt,std,pthread,central,mpi]
//   distbarrier-perf --moe [--bs 8,64] [--hidden 7168] [-n 20] [-w 3] [--repeat 5] [--mode ...]
//   distbarrier-perf --hosts 2 4 8 [-n 2000] [--repeat 5] [--timeout S]   (as root: namespaces)
//
// One row per rank count; every column is ns per barrier, measured in the same run on the same
// ranks, each the median of --repeat rounds (implementations alternate within a round, in
// reverse order every other round). A round's figure is the maximum over ranks of the rank's
// own steady_clock time for the timed loop / iterations; the phases start together on a
// control barrier outside the timed region.
//
//   b2b      distbarrier back to back: one repeatable executor, n aclnnDistributeBarrier on the
//            rank's stream, then one aclrtSynchronizeStream
//   rtrip    distbarrier round trip: n times (aclnnDistributeBarrier + aclrtSynchronizeStream)
//   std      std::barrier::arrive_and_wait (threads mode only)
//   pthread  pthread_barrier_wait (PROCESS_PRIVATE for threads, PROCESS_SHARED in a MAP_SHARED
//            mapping for processes)
//   central  a central counter barrier whose waiters spin 16 checks, then sched_yield
//   mpi      MPI_Barrier via mpirun of distbarrier_perf_mpi (processes mode, MPI installed)
//   pp       one round trip of a cache line between two threads/processes (the floor)
//
// With --coll allreduce|alltoall it measures HCCL collectives instead (collectives.h).
//
// This file: the command line and the loop over rank counts. The rooms it drives:
//   collectives.h      the collectives mode (--coll)
//   runners.h          a row measured on threads or processes; the launch call alone
//   implementations.h  the barriers measured per rank besides distbarrier; the shared area
//   floors.h           the ping-pong and context-switch floors
//   mpirun.h           the MPI_Barrier column
//   idle.h             the CPU of idle streams
//   report.h           the "#" lines, the table and the JSON file
//   moe.h              --moe: a dispatch -> combine step next to a memcpy of its bytes
//   hosts.h            --hosts: the barrier across namespaces next to the UCX round trip, MPI
//   common.h           options, CHECK_OK, Median, the children the --timeout guard stops
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "acl/acl.h"
#include "collectives.h"
#include "common.h"
#include "floors.h"
#include "hosts.h"
#include "idle.h"
#include "implementations.h"
#include "moe.h"
#include "mpirun.h"
#include "report.h"
#include "runners.h"
#include "stage1.h"

namespace distbarrier::perf {
namespace {

int Run(int argc, char** argv) {
  Options o;
  CLI::App app{"distbarrier-perf: ns per barrier of distbarrier next to std::barrier, pthread_barrier, a "
               "spin-then-yield central barrier, MPI_Barrier and the cache-line ping-pong"};
  app.add_option("-g,--ranks", o.ranks, "rank counts (one or more); overrides -b/-e")->check(CLI::Range(1, 4096));
  app.add_option("-b,--minranks", o.min_ranks, "smallest rank count")->check(CLI::Range(1, 4096))->capture_default_str();
  app.add_option("-e,--maxranks", o.max_ranks, "largest rank count")->check(CLI::Range(1, 4096))->capture_default_str();
  app.add_option("-f,--stepfactor", o.factor, "multiply the rank count by this")->check(CLI::Range(2, 64))
      ->capture_default_str();
  CLI::Option* iterations = app.add_option("-n,--iters", o.iterations, "timed barriers (MoE steps) per round")->check(CLI::Range(1, 100000000))
      ->capture_default_str();
  CLI::Option* warmup = app.add_option("-w,--warmup_iters", o.warmup, "untimed barriers (MoE steps) before each timed loop")
      ->check(CLI::Range(0, 100000000))->capture_default_str();
  app.add_option("--repeat", o.repeat, "rounds; each figure is the median")->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--mode", o.mode, "ranks are threads of this process or forked processes")
      ->check(CLI::IsMember({"threads", "processes"}))->capture_default_str();
  app.add_option("--timeout", o.timeout_s, "stop the whole run after this many seconds (0: never)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--json", o.json, "also write every figure to this JSON file");
  app.add_option("--idle", o.idle_s, "also measure the CPU of 48 idle streams for this many seconds")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--ctxswitch", o.context_switch,
               "also measure a context switch: pipe ping-pong between two processes pinned to one CPU");
  app.add_flag("--bind", o.bind,
               "processes mode: bind rank r to the r-th CPU this process may use when the ranks do not outnumber "
               "them, as mpirun binds 2 ranks to 2 cores (the MPI column is always run as mpirun binds)");
  app.add_flag("--launch", o.launch,
               "also measure one aclnnDistributeBarrier call that only enqueues (threads mode)");
  app.add_flag("--stage1", o.stage1,
               "also measure stage 1 alone (aclnnDistributeBarrierGetWorkspaceSize) on 1 thread and on N threads at "
               "once (threads mode)");
  app.add_option("--impls", o.impls, "comma-separated subset of b2b,s12,nostats,rt,std,pthread,central,mpi")
      ->capture_default_str();
  app.add_flag("--moe", o.moe,
               "measure MoE dispatch -> combine on EP 8 x TP 2 next to a memcpy of its bytes instead (-n 20 -w 3 "
               "unless given)");
  app.add_option("--bs", o.moe_bs, "--moe: tokens per rank (one row each)")->delimiter(',')
      ->check(CLI::Range(1, 512))->capture_default_str();
  app.add_option("--hidden", o.moe_hidden, "--moe: H")->check(CLI::Range(1024, 8192))->capture_default_str();
  app.add_option("--hosts", o.hosts,
                 "measure the barrier across H hosts instead (network namespaces, as root; one row per H) next to "
                 "the UCX round trip and MPI_Barrier over TCP")
      ->check(CLI::Range(2, 64));
  CLI11_PARSE(app, argc, argv);

  if (!o.hosts.empty()) return RunHosts(o, o.hosts);

  if (o.moe) {
    if (iterations->count() == 0) o.iterations = 20;
    if (warmup->count() == 0) o.warmup = 3;
    if (o.timeout_s > 0) ArmRunTimeout(o.timeout_s);
    return RunMoe(o);
  }

  {
    std::stringstream list(o.impls);
    std::string item;
    while (std::getline(list, item, ',')) {
      bool known = false;
      for (int impl = 0; impl < kImplCount; ++impl) {
        if (item == kImplKeys[impl]) o.enabled[impl] = known = true;
      }
      if (item == "mpi") o.mpi = known = true;
      if (!known) {
        std::fprintf(stderr, "distbarrier-perf: unknown implementation '%s' in --impls\n", item.c_str());
        return 2;
      }
    }
  }
  if (o.ranks.empty()) {
    if (o.min_ranks > o.max_ranks) {
      std::fprintf(stderr, "distbarrier-perf: -b %d is above -e %d\n", o.min_ranks, o.max_ranks);
      return 2;
    }
    for (int n = o.min_ranks; n <= o.max_ranks; n *= o.factor) o.ranks.push_back(n);
  }
  const int most_ranks = *std::max_element(o.ranks.begin(), o.ranks.end());
  const bool processes = o.processes();

  if (o.timeout_s > 0) ArmRunTimeout(o.timeout_s);
  // Threads mode: devices 0..N-1 must exist before the first ACL call.
  if (!processes && most_ranks > 16 && std::getenv("DISTBARRIER_DEVICE_COUNT") == nullptr) {
    setenv("DISTBARRIER_DEVICE_COUNT", std::to_string(most_ranks).c_str(), 1);
  } else if (!processes && std::getenv("DISTBARRIER_DEVICE_COUNT") != nullptr &&
             std::atoi(std::getenv("DISTBARRIER_DEVICE_COUNT")) < most_ranks) {
    setenv("DISTBARRIER_DEVICE_COUNT", std::to_string(most_ranks).c_str(), 1);
  }

  std::string mpirun, mpi_program;
  if (processes && o.mpi) {
    mpirun = FindInPath("mpirun");
    mpi_program = MpiProgram();
    if (mpirun.empty() || mpi_program.empty()) o.mpi = false;
  } else {
    o.mpi = false;
  }

  RunFigures run;
  run.nproc = sysconf(_SC_NPROCESSORS_ONLN);
  run.cpu = CpuModel();
  PrintRunHeader(o, run);

  if (o.idle_s > 0) run.idle = MeasureIdle(o.idle_s);

  // The floor, once per run: median of --repeat rounds.
  const int pp_iterations = std::clamp(o.iterations, 20000, 200000);
  for (int round = 0; round < o.repeat; ++round) run.pingpong_rounds.push_back(PingPong(processes, pp_iterations));
  run.pingpong = Median(run.pingpong_rounds);
  if (o.context_switch) {
    std::vector<double> rounds;
    for (int round = 0; round < o.repeat; ++round) rounds.push_back(ContextSwitchNs(20000));
    run.context_switch = Median(rounds);
    PrintContextSwitch(run.context_switch);
  }

  if (!processes) CHECK_OK(aclInit(nullptr));
  if (o.launch && !processes) {
    std::vector<double> rounds;
    for (int round = 0; round < o.repeat; ++round) rounds.push_back(LaunchNs(o.iterations));
    run.launch = Median(rounds);
    PrintLaunch(run.launch);
  }
  if (o.stage1 && !processes) run.stage1 = MeasureStage1(o);

  PrintColumns(processes);
  for (int ranks : o.ranks) {
    Row row = processes ? MeasureProcesses(o, ranks) : MeasureThreads(o, ranks);
    if (o.mpi) row.mpi = MeasureMpi(o, ranks, mpirun, mpi_program);
    PrintRow(row, run.pingpong, processes);
    run.rows.push_back(std::move(row));
  }
  if (!processes) aclFinalize();
  PrintIdle(run.idle, o.idle_s);

  if (!o.json.empty() && !WriteJson(o, run)) return 1;
  return 0;
}

}  // namespace
}  // namespace distbarrier::perf

int main(int argc, char** argv) {
  if (distbarrier::perf::WantsCollectives(argc, argv)) return distbarrier::perf::RunCollectives(argc, argv);
  return distbarrier::perf::Run(argc, argv);
}
