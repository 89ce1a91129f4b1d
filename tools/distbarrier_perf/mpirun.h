// The MPI_Barrier column: distbarrier_perf_mpi run with mpirun (processes mode, MPI installed).
#pragma once

#include <string>

#include "common.h"

namespace distbarrier::perf {

// The MPI program next to this executable (installed) or at its build path; "" if neither.
std::string MpiProgram();

// `name` in $PATH (or /usr/bin:/bin); "" if not found.
std::string FindInPath(const char* name);

// ns per MPI_Barrier over `ranks` processes, as the program reports it; NAN if mpirun fails.
double MeasureMpi(const Options& o, int ranks, const std::string& mpirun, const std::string& program);

}  // namespace distbarrier::perf
