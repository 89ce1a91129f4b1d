// The MPI_Barrier reference for distbarrier-perf (built only where CMake finds MPI):
//
//   mpirun -np N distbarrier_perf_mpi -n ITER -w WARM [-r ROUNDS]
//
// Each round: a synchronizing MPI_Barrier, WARM barriers, another MPI_Barrier, then ITER timed
// barriers; a rank's figure is its elapsed steady_clock time / ITER, a round's figure is the
// maximum over ranks (as distbarrier-perf reports its own columns). Rank 0 prints one line,
// "ns_per_barrier X", X the median over the rounds.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int iterations = 2000, warmup = 200, rounds = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "-n") == 0) iterations = std::atoi(argv[i + 1]);
    else if (std::strcmp(argv[i], "-w") == 0) warmup = std::atoi(argv[i + 1]);
    else if (std::strcmp(argv[i], "-r") == 0) rounds = std::atoi(argv[i + 1]);
  }
  iterations = std::max(iterations, 1);
  rounds = std::max(rounds, 1);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  std::vector<double> figures;
  for (int round = 0; round < rounds; ++round) {
    MPI_Barrier(MPI_COMM_WORLD);
    for (int i = 0; i < warmup; ++i) MPI_Barrier(MPI_COMM_WORLD);
    MPI_Barrier(MPI_COMM_WORLD);
    auto begin = std::chrono::steady_clock::now();
    for (int i = 0; i < iterations; ++i) MPI_Barrier(MPI_COMM_WORLD);
    double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - begin).count() /
                iterations;
    double max_ns = 0;
    MPI_Reduce(&ns, &max_ns, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
    figures.push_back(max_ns);
  }
  if (rank == 0) {
    std::sort(figures.begin(), figures.end());
    std::printf("ns_per_barrier %.1f\n", figures[figures.size() / 2]);
    std::fflush(stdout);
  }
  MPI_Finalize();
  return 0;
}
