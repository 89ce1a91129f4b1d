// The MPI columns: distbarrier_perf_mpi (MPI_Barrier) and distbarrier_perf_mpi_coll
// (MPI_Allreduce, MPI_Alltoall) run with mpirun, where MPI is installed.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common.h"

namespace distbarrier::perf {

// The MPI program next to this executable (installed) or at its build path; "" if neither.
std::string MpiProgram();
// The same for the collectives' MPI program.
std::string MpiCollectivesProgram();

// Runs argv, returns its stdout (stderr passes through) or nullopt if it failed.
std::optional<std::string> CaptureOutput(const std::vector<std::string>& args);

// `name` in $PATH (or /usr/bin:/bin); "" if not found.
std::string FindInPath(const char* name);

// ns per MPI_Barrier over `ranks` processes, as the program reports it; NAN if mpirun fails.
double MeasureMpi(const Options& o, int ranks, const std::string& mpirun, const std::string& program);

}  // namespace distbarrier::perf
