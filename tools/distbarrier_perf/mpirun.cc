#include "mpirun.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <vector>

namespace distbarrier::perf {

std::optional<std::string> CaptureOutput(const std::vector<std::string>& args) {
  int fds[2];
  if (pipe(fds) != 0) return std::nullopt;
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) return std::nullopt;
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    std::vector<char*> argv;
    for (const auto& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  AddChild(pid);
  close(fds[1]);
  std::string out;
  char buffer[4096];
  ssize_t n;
  while ((n = read(fds[0], buffer, sizeof(buffer))) > 0) out.append(buffer, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  ForgetChildren();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return std::nullopt;
  return out;
}

namespace {

std::string HelperProgram(const char* name, const char* build_path) {
  char self[4096];
  ssize_t length = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (length > 0) {
    self[length] = 0;
    std::string dir(self);
    dir = dir.substr(0, dir.rfind('/'));
    std::string next_to_us = dir + "/" + name;
    if (access(next_to_us.c_str(), X_OK) == 0) return next_to_us;
  }
  if (build_path != nullptr && access(build_path, X_OK) == 0) return build_path;
  return "";
}

}  // namespace

std::string MpiProgram() {
#ifdef DISTBARRIER_PERF_MPI_PATH
  return HelperProgram("distbarrier_perf_mpi", DISTBARRIER_PERF_MPI_PATH);
#else
  return HelperProgram("distbarrier_perf_mpi", nullptr);
#endif
}

std::string MpiCollectivesProgram() {
#ifdef DISTBARRIER_PERF_MPI_COLL_PATH
  return HelperProgram("distbarrier_perf_mpi_coll", DISTBARRIER_PERF_MPI_COLL_PATH);
#else
  return HelperProgram("distbarrier_perf_mpi_coll", nullptr);
#endif
}

std::string FindInPath(const char* name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

double MeasureMpi(const Options& o, int ranks, const std::string& mpirun, const std::string& program) {
  auto out = CaptureOutput({mpirun, "--allow-run-as-root", "--oversubscribe", "-np", std::to_string(ranks), program,
                      "-n", std::to_string(o.iterations), "-w", std::to_string(o.warmup), "-r",
                      std::to_string(o.repeat)});
  if (!out) {
    std::fprintf(stderr, "distbarrier-perf: mpirun with %d ranks failed; MPI column left empty\n", ranks);
    return NAN;
  }
  auto at = out->find("ns_per_barrier ");
  if (at == std::string::npos) return NAN;
  return std::strtod(out->c_str() + at + 15, nullptr);
}

}  // namespace distbarrier::perf
