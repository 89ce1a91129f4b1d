// --hosts H [H ...]: the barrier across hosts, with network namespaces standing for hosts. The
// namespaces, their addresses (198.18.0.0/15 only) and their removal on every exit path are
// tests/hosts/run_hosts.sh's (case perf-H); this room runs it and makes the table.
#pragma once

#include <vector>

#include "common.h"

namespace distbarrier::perf {

// One row per host count: the barrier (median and range of o.repeat rounds of o.iterations),
// the UCX round trip between the same namespaces, ceil(log2 H), barrier / (ceil(log2 H) x RTT)
// next to the goal 1.5, and MPI_Barrier over TCP on the same namespaces where mpirun is found.
// Not root, or no namespaces here: one "# hosts: skipped" line and 0. A failed run: 1.
int RunHosts(const Options& o, const std::vector<int>& hosts);

}  // namespace distbarrier::perf
