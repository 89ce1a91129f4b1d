#include "hosts.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

#include "mpirun.h"

namespace distbarrier::perf {
namespace {

constexpr double kGoal = 1.5;  // issue 12: barrier <= 1.5 x ceil(log2 H) x the UCX round trip
constexpr int kSkipped = 77;   // run_hosts.sh: not root, or no namespaces here

struct Script {
  int status = -1;  // exit status; -1 if killed or never started
  std::string out;
};

// Runs run_hosts.sh with `env` added, stdout captured (stderr passes through). Past the
// deadline the script gets SIGTERM, never SIGKILL: its trap removes the namespaces and stops
// what runs in them.
Script RunScript(const std::vector<std::string>& args, const std::vector<std::string>& env, double timeout_s) {
  Script result;
  int fds[2];
  if (pipe(fds) != 0) return result;
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return result;
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    for (const auto& entry : env) putenv(const_cast<char*>(entry.c_str()));
    std::vector<char*> argv;
    for (const auto& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(fds[1]);
  const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
  bool terminated = false;
  char buffer[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0 && !terminated) {
      std::fprintf(stderr, "distbarrier-perf: --hosts run past %.0f s, stopping it\n", timeout_s);
      kill(pid, SIGTERM);
      terminated = true;
    }
    pollfd entry{fds[0], POLLIN, 0};
    const int ready = poll(&entry, 1, terminated ? -1 : static_cast<int>(std::min<long long>(left, 1000)));
    if (ready <= 0) continue;
    const ssize_t n = read(fds[0], buffer, sizeof(buffer));
    if (n <= 0) break;
    result.out.append(buffer, static_cast<size_t>(n));
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status) && !terminated) result.status = WEXITSTATUS(status);
  return result;
}

// "key=value" out of one line of run_hosts.sh; NAN if absent or "-".
double Field(const std::string& line, const std::string& key) {
  const auto at = line.find(" " + key + "=");
  if (at == std::string::npos) return NAN;
  const char* begin = line.c_str() + at + key.size() + 2;
  char* end = nullptr;
  const double value = std::strtod(begin, &end);
  return end == begin ? NAN : value;
}

struct HostsRow {
  int hosts = 0;
  std::vector<double> barrier, rtt, floor, mpi;  // us, one per round
};

std::string Cell(double value, const char* format) {
  if (std::isnan(value)) return "-";
  char text[32];
  std::snprintf(text, sizeof(text), format, value);
  return text;
}

void PrintHostsRow(const HostsRow& row) {
  const double barrier = Median(row.barrier), rtt = Median(row.rtt), floor = Median(row.floor), mpi = Median(row.mpi);
  const auto [low, high] = std::minmax_element(row.barrier.begin(), row.barrier.end());
  const int rounds = static_cast<int>(std::ceil(std::log2(row.hosts)));
  const double ratio = rtt > 0 && rounds > 0 ? barrier / (rounds * rtt) : NAN;
  const double floor_ratio = rtt > 0 && rounds > 0 ? floor / (rounds * rtt) : NAN;
  std::printf("%6d %11s %15s %9s %6d %11s %5.1f %10s %11s %13s %10s %11s\n", row.hosts, Cell(barrier, "%.1f").c_str(),
              (Cell(*low, "%.1f") + "-" + Cell(*high, "%.1f")).c_str(), Cell(rtt, "%.1f").c_str(), rounds,
              Cell(ratio, "%.2f").c_str(), kGoal, Cell(floor, "%.1f").c_str(), Cell(floor_ratio, "%.2f").c_str(),
              Cell(floor > 0 ? barrier / floor : NAN, "%.2f").c_str(), Cell(mpi, "%.1f").c_str(),
              Cell(mpi > 0 ? barrier / mpi : NAN, "%.3f").c_str());
  std::fflush(stdout);
}

}  // namespace

int RunHosts(const Options& o, const std::vector<int>& hosts) {
#if defined(DISTBARRIER_PERF_HOSTS_SCRIPT) && defined(DISTBARRIER_PERF_HOSTS_RANK)
  const std::string script = DISTBARRIER_PERF_HOSTS_SCRIPT, rank_program = DISTBARRIER_PERF_HOSTS_RANK;
#else
  const std::string script, rank_program;
#endif
  if (geteuid() != 0) {
    std::printf("# hosts: skipped: needs root (network namespaces stand for the hosts)\n");
    return 0;
  }
  if (script.empty() || access(script.c_str(), X_OK) != 0 || access(rank_program.c_str(), X_OK) != 0) {
    std::printf(
        "# hosts: skipped: needs tests/hosts/run_hosts.sh and the hosts_rank test program (a build "
        "with DISTBARRIER_BUILD_TESTS)\n");
    return 0;
  }
  const std::string mpirun = FindInPath("mpirun"), mpi_program = MpiProgram();
  // MPI_Barrier runs fewer barriers than ours: with more spinning ranks than cores each takes ms.
  const int mpi_iterations = std::max(1, std::min(o.iterations, 200));
  std::printf(
      "# distbarrier-perf --hosts: H network namespaces on one bridge (198.18.0.0/15), one rank per "
      "host, UCX over TCP, nproc %ld; -n %d -w 200 --repeat %d (MPI: -n %d)\n",
      sysconf(_SC_NPROCESSORS_ONLN), o.iterations, o.repeat, mpi_iterations);
  std::printf(
      "# barrier: aclnnDistributeBarrierV2 + aclrtSynchronizeStream on rank 0; RTT: UCX active message "
      "round trip host 0 <-> 1; ratio: barrier / (log2H x RTT), goal <= %.1f; UCX.dissem: a dissemination "
      "barrier of bare UCX active messages, one process per host polling with a yield (what the cores allow "
      "without a runtime), and its own ratio; MPI: MPI_Barrier over TCP (mpirun through ip netns exec); all in "
      "us, median of the rounds\n",
      kGoal);
  if (mpirun.empty() || mpi_program.empty())
    std::printf("# MPI: not measured: %s\n", mpirun.empty() ? "no mpirun in PATH" : "distbarrier_perf_mpi not built");
  std::printf("%6s %11s %15s %9s %6s %11s %5s %10s %11s %13s %10s %11s\n", "hosts", "barrier", "barrier.range",
              "UCX.RTT", "log2H", "ratio", "goal", "UCX.dissem", "dissem.ratio", "barrier/dissem", "MPI",
              "barrier/MPI");
  std::fflush(stdout);
  for (int count : hosts) {
    std::vector<std::string> env = {"PERF_ROUNDS=" + std::to_string(o.repeat),
                                    "PERF_ITERS=" + std::to_string(o.iterations),
                                    "PERF_MPI_ITERS=" + std::to_string(mpi_iterations)};
    if (!mpirun.empty() && !mpi_program.empty()) env.push_back("PERF_MPI_PROGRAM=" + mpi_program);
    const double timeout_s = o.timeout_s > 0 ? o.timeout_s : 600;
    const Script run = RunScript({script, rank_program, "perf-" + std::to_string(count)}, env, timeout_s);
    if (run.status == kSkipped) {
      std::printf("# hosts: skipped: %s", run.out.c_str());
      return 0;
    }
    HostsRow row;
    row.hosts = count;
    std::stringstream lines(run.out);
    std::string line;
    while (std::getline(lines, line)) {
      if (line.rfind("hosts=", 0) != 0) continue;
      row.barrier.push_back(Field(line, "barrier_us"));
      row.rtt.push_back(Field(line, "ucx_round_trip_us"));
      row.floor.push_back(Field(line, "ucx_dissemination_us"));
      const double mpi = Field(line, "mpi_barrier_us");
      if (!std::isnan(mpi)) row.mpi.push_back(mpi);
    }
    if (run.status != 0 || row.barrier.empty()) {
      std::fprintf(stderr, "distbarrier-perf: run_hosts.sh perf-%d failed (status %d):\n%s", count, run.status,
                   run.out.c_str());
      return 1;
    }
    PrintHostsRow(row);
  }
  return 0;
}

}  // namespace distbarrier::perf
