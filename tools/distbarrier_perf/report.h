// What distbarrier-perf prints and writes: the "#" lines, the table (one row per rank count,
// printed as it is measured) and the JSON file.
#pragma once

#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "common.h"
#include "idle.h"
#include "runners.h"
#include "stage1.h"

namespace distbarrier::perf {

// What one run measured besides the options; the table rows and the JSON file read it.
struct RunFigures {
  long nproc = 0;
  std::string cpu;
  std::vector<double> pingpong_rounds;
  double pingpong = NAN;
  double context_switch = NAN;
  double launch = NAN;
  std::vector<Stage1Figures> stage1;
  std::optional<IdleResult> idle;
  std::vector<Row> rows;
};

// The "model name" of /proc/cpuinfo, or "unknown".
std::string CpuModel();

// The two lines that say how the run measures (from run.nproc and run.cpu).
void PrintRunHeader(const Options& o, const RunFigures& run);
void PrintContextSwitch(double ns);
void PrintLaunch(double ns);
void PrintColumns(bool processes);
void PrintRow(const Row& row, double pingpong, bool processes);
void PrintIdle(const std::optional<IdleResult>& idle, double idle_s);

// Every figure of the run into o.json; false (with a message) if the file cannot be written.
bool WriteJson(const Options& o, const RunFigures& run);

}  // namespace distbarrier::perf
