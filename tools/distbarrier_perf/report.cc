#include "report.h"

#include <cstdio>
#include <fstream>

namespace distbarrier::perf {
namespace {

constexpr int kWidth = 11;

std::string Cell(double value, int width, int precision) {
  char buffer[64];
  if (std::isnan(value)) std::snprintf(buffer, sizeof(buffer), "%*s", width, "-");
  else std::snprintf(buffer, sizeof(buffer), "%*.*f", width, precision, value);
  return buffer;
}

std::string JsonNumber(double value) {
  if (std::isnan(value)) return "null";
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.1f", value);
  return buffer;
}

std::string JsonString(const std::string& text) {
  std::string out = "\"";
  for (char ch : text) {
    if (ch == '"' || ch == '\\') out += '\\';
    if (static_cast<unsigned char>(ch) >= 0x20) out += ch;
  }
  return out + "\"";
}

}  // namespace

std::string CpuModel() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) {
        std::string model = line.substr(colon + 1);
        model.erase(0, model.find_first_not_of(" \t"));
        return model;
      }
    }
  }
  return "unknown";
}

void PrintRunHeader(const Options& o, const RunFigures& run) {
  const bool processes = o.processes();
  std::printf("# distbarrier-perf: mode %s, nproc %ld, CPU %s, -n %d -w %d --repeat %d\n", o.mode.c_str(), run.nproc,
              run.cpu.c_str(), o.iterations, o.warmup, o.repeat);
  std::printf("# ns per barrier; each figure the median of %d rounds of the max over ranks of the rank's own "
              "time / %d; pp = cache-line ping-pong round trip between two %s (measured once); MPI: %s\n",
              o.repeat, o.iterations, processes ? "processes" : "threads",
              o.mpi ? "mpirun" : (processes ? "not available" : "processes mode only"));
  std::fflush(stdout);
}

void PrintContextSwitch(double ns) {
  std::printf("# context switch (pipe ping-pong, two processes pinned to one CPU): %.0f ns\n", ns);
}

void PrintLaunch(double ns) {
  std::printf("# launch (aclnnDistributeBarrier that only enqueues, one thread): %.0f ns\n", ns);
  std::fflush(stdout);
}

void PrintColumns(bool processes) {
  const char* versus = processes ? "b2b/MPI" : "b2b/std";
  std::printf("%6s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s\n", "ranks", kWidth, "b2b", kWidth,
              "stage1+2", kWidth, "b2b.nostat", kWidth, "rtrip", kWidth, "std", kWidth, "pthread", kWidth, "central",
              kWidth, "MPI", kWidth, "pp", 8, "b2b/pp", 8, versus, 8, "rt/b2b", 8, "b2b/cen", 8, "s12/b2b", 8,
              "st/nost");
  std::fflush(stdout);
}

void PrintRow(const Row& row, double pp, bool processes) {
  const double b2b = row.figure[kB2b];
  const double reference = processes ? row.mpi : row.figure[kStd];
  std::printf("%6d %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s\n", row.ranks, Cell(b2b, kWidth, 0).c_str(),
              Cell(row.figure[kStage12], kWidth, 0).c_str(), Cell(row.figure[kB2bStatsOff], kWidth, 0).c_str(),
              Cell(row.figure[kRoundTrip], kWidth, 0).c_str(), Cell(row.figure[kStd], kWidth, 0).c_str(),
              Cell(row.figure[kPthread], kWidth, 0).c_str(), Cell(row.figure[kCentral], kWidth, 0).c_str(),
              Cell(row.mpi, kWidth, 0).c_str(), Cell(pp, kWidth, 0).c_str(), Cell(b2b / pp, 8, 2).c_str(),
              Cell(b2b / reference, 8, 2).c_str(), Cell(row.figure[kRoundTrip] / b2b, 8, 2).c_str(),
              Cell(b2b / row.figure[kCentral], 8, 2).c_str(), Cell(row.figure[kStage12] / b2b, 8, 2).c_str(),
              Cell(b2b / row.figure[kB2bStatsOff], 8, 2).c_str());
  std::fflush(stdout);
}

void PrintIdle(const std::optional<IdleResult>& idle, double idle_s) {
  if (idle) {
    std::printf("# idle: %d streams for %.1f s used %.4f s of CPU = %.3f%% of one core\n", idle->streams,
                idle->wall_s, idle->cpu_s, 100.0 * idle->cpu_s / idle->wall_s);
  } else if (idle_s > 0) {
    std::printf("# idle: measurement failed\n");
  }
}

bool WriteJson(const Options& o, const RunFigures& run) {
  std::ofstream out(o.json);
  out << "{\n  \"tool\": \"distbarrier-perf\",\n  \"mode\": " << JsonString(o.mode)
      << ",\n  \"machine\": {\"nproc\": " << run.nproc << ", \"cpu\": " << JsonString(run.cpu) << "},\n"
      << "  \"iterations\": " << o.iterations << ",\n  \"warmup\": " << o.warmup << ",\n  \"repeat\": " << o.repeat
      << ",\n  \"figure\": \"median over rounds of the max over ranks of ns per barrier\",\n"
      << "  \"pingpong_ns\": " << JsonNumber(run.pingpong) << ",\n  \"pingpong_rounds_ns\": [";
  for (size_t i = 0; i < run.pingpong_rounds.size(); ++i) out << (i ? ", " : "") << JsonNumber(run.pingpong_rounds[i]);
  out << "],\n  \"context_switch_ns\": " << JsonNumber(run.context_switch)
      << ",\n  \"launch_ns\": " << JsonNumber(run.launch) << ",\n  \"stage1\": [";
  for (size_t i = 0; i < run.stage1.size(); ++i) {
    const Stage1Figures& row = run.stage1[i];
    out << (i ? ", " : "") << "{\"threads\": " << row.threads << ", \"call_ns\": " << JsonNumber(row.call_ns)
        << ", \"slowest_thread_call_ns\": " << JsonNumber(row.call_ns_max)
        << ", \"with_destroy_ns\": " << JsonNumber(row.with_destroy_ns) << "}";
  }
  out << "],\n  \"idle\": ";
  if (run.idle) {
    out << "{\"streams\": " << run.idle->streams << ", \"wall_s\": " << run.idle->wall_s
        << ", \"cpu_s\": " << run.idle->cpu_s << "}";
  } else {
    out << "null";
  }
  out << ",\n  \"rows\": [\n";
  for (size_t r = 0; r < run.rows.size(); ++r) {
    const Row& row = run.rows[r];
    out << "    {\"ranks\": " << row.ranks;
    for (int impl = 0; impl < kImplCount; ++impl) out << ", \"" << kImplJson[impl] << "\": " << JsonNumber(row.figure[impl]);
    out << ", \"mpi_barrier_ns\": " << JsonNumber(row.mpi) << ", \"rounds\": {";
    for (int impl = 0; impl < kImplCount; ++impl) {
      out << (impl ? ", " : "") << "\"" << kImplJson[impl] << "\": [";
      for (size_t i = 0; i < row.rounds[impl].size(); ++i) out << (i ? ", " : "") << JsonNumber(row.rounds[impl][i]);
      out << "]";
    }
    out << "}}" << (r + 1 < run.rows.size() ? "," : "") << "\n";
  }
  out << "  ]\n}\n";
  if (!out) {
    std::fprintf(stderr, "distbarrier-perf: cannot write %s\n", o.json.c_str());
    return false;
  }
  return true;
}

}  // namespace distbarrier::perf
