// distbarrier-status [--json] [--watch [S]] [--dump] [--pid PID]... [--timeout MS]
// distbarrier-status --analyze FILE... [--json]
//
// Asks every live distbarrier process of the calling user on this host for its state and
// prints, per communicator and rank: pid, host, device, last barrier reached, and whether it
// runs, waits in barrier k (for how long, for which ranks), is stopped or dead. --dump makes
// each process write its flight recorder file; --analyze reads such files and says where the
// job stopped. See the README ("When a job hangs") and docs/DESIGN.md.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "comm/diagnosis/status_protocol.h"
#include "discovery.h"
#include "job_view.h"

namespace {

using distbarrier::status::ProcessReply;
constexpr int kExitRefused = 1;
constexpr int kExitUsage = 2;

std::vector<pid_t> Targets(const std::vector<int>& pids) {
  if (!pids.empty()) return {pids.begin(), pids.end()};
  return distbarrier::status::FindServers(getuid());
}

std::string HostName() {
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  return host;
}

// One look at the jobs: the table or the JSON. Returns whether every process asked answered
// or was merely stopped (a refusal or an error reply is a failure).
bool ShowStatus(const std::vector<int>& pids, bool as_json, std::chrono::milliseconds budget) {
  const std::vector<ProcessReply> replies =
      distbarrier::status::Ask(Targets(pids), distbarrier::comm::diagnosis::kStateRequest, budget);
  nlohmann::json merged = distbarrier::status::MergeLive(replies);
  bool refused = false;
  for (const ProcessReply& reply : replies) refused |= reply.problem.rfind("refused", 0) == 0;
  if (as_json) {
    merged["host"] = HostName();
    merged["uid"] = getuid();
    std::cout << merged.dump() << std::endl;
  } else if (replies.empty()) {
    std::cout << "no distbarrier processes of uid " << getuid() << " on " << HostName() << std::endl;
  } else {
    std::cout << distbarrier::status::FormatTable(merged) << std::flush;
  }
  return !refused;
}

int Dump(const std::vector<int>& pids, std::chrono::milliseconds budget) {
  const std::vector<ProcessReply> replies =
      distbarrier::status::Ask(Targets(pids), distbarrier::comm::diagnosis::kDumpRequest, budget);
  if (replies.empty()) std::cout << "no distbarrier processes of uid " << getuid() << " on " << HostName() << std::endl;
  int status = 0;
  for (const ProcessReply& reply : replies) {
    if (reply.document && reply.document->contains("dumped")) {
      std::cout << "pid " << reply.pid << ": flight recorder written to "
                << (*reply.document)["dumped"].get<std::string>() << std::endl;
    } else {
      std::cout << "pid " << reply.pid << ": " << reply.problem << std::endl;
      status = kExitRefused;
    }
  }
  return status;
}

int Analyze(const std::vector<std::string>& files, bool as_json) {
  std::vector<ProcessReply> dumps;
  int status = 0;
  for (const std::string& file : files) {
    ProcessReply& dump = dumps.emplace_back();
    dump.source = file;
    std::ifstream in(file);
    if (!in) {
      std::cerr << "distbarrier-status: cannot read " << file << std::endl;
      status = 1;
      continue;
    }
    try {
      nlohmann::json document = nlohmann::json::parse(in);
      if (document.value("format", std::string()) != distbarrier::comm::diagnosis::kFlightRecorderFormat) {
        std::cerr << "distbarrier-status: " << file << " is not a flight recorder file" << std::endl;
        status = 1;
        continue;
      }
      dump.pid = document.value("pid", 0);
      dump.document = std::move(document);
    } catch (const nlohmann::json::exception& error) {
      std::cerr << "distbarrier-status: " << file << " is not valid JSON: " << error.what() << std::endl;
      status = 1;
    }
  }
  const nlohmann::json analysis = distbarrier::status::Analyze(dumps);
  if (as_json) {
    std::cout << analysis.dump() << std::endl;
  } else {
    std::cout << distbarrier::status::FormatAnalysis(analysis) << std::flush;
  }
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Shows who waits for whom in the live distbarrier jobs of this user on this host, or analyzes "
      "flight recorder files.",
      "distbarrier-status"};
  bool as_json = false;
  bool dump = false;
  std::string watch_text;  // "--watch" alone leaves it empty: the default period
  int timeout_ms = 800;
  std::vector<int> pids;
  std::vector<std::string> files;
  app.add_flag("--json", as_json, "print JSON instead of a table");
  auto* watch = app.add_option("--watch", watch_text, "refresh every SECONDS (default 1) until interrupted")
                    ->expected(0, 1)
                    ->type_name("[SECONDS]");
  app.add_flag("--dump", dump, "ask each process to write its flight recorder file");
  app.add_option("--analyze", files, "merge flight recorder files of a job and say where it stopped")
      ->type_name("FILE...")
      ->expected(1, -1);
  app.add_option("--pid", pids, "ask only this process (repeatable)")->type_name("PID");
  app.add_option("--timeout", timeout_ms, "how long to wait for the processes' answers")
      ->type_name("MS")
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    if (error.get_exit_code() == 0) return app.exit(error);
    std::fprintf(stderr, "distbarrier-status: %s\nRun with --help for more information.\n", error.what());
    return kExitUsage;
  }
  double watch_s = 1.0;
  if (!watch_text.empty()) {
    char* end = nullptr;
    watch_s = std::strtod(watch_text.c_str(), &end);
    if (end == watch_text.c_str() || *end != '\0') watch_s = 0;  // refused below
  }
  if (timeout_ms < 1 || !(watch_s > 0) || !std::isfinite(watch_s)) {
    std::fprintf(stderr, "distbarrier-status: --watch takes seconds > 0, --timeout milliseconds >= 1\n");
    return kExitUsage;
  }
  const std::chrono::milliseconds budget(timeout_ms);
  if (!files.empty()) return Analyze(files, as_json);
  if (dump) return Dump(pids, budget);
  if (watch->count() == 0) return ShowStatus(pids, as_json, budget) ? 0 : kExitRefused;
  const bool terminal = isatty(STDOUT_FILENO) != 0;
  for (;;) {
    if (terminal && !as_json) std::cout << "\033[H\033[2J";
    if (!as_json) {
      const std::time_t now = std::time(nullptr);
      char stamp[32];
      std::strftime(stamp, sizeof(stamp), "%H:%M:%S", std::localtime(&now));
      std::cout << stamp << "\n";
    }
    ShowStatus(pids, as_json, budget);
    std::this_thread::sleep_for(std::chrono::duration<double>(watch_s));  // the refresh period, not a sync
  }
}
