// The MPI reference of distbarrier-perf's collectives mode (built only where CMake finds MPI):
//
//   mpirun -np N distbarrier_perf_mpi_coll allreduce|alltoall -b MIN -e MAX -f F -n ITER -w WARM -r ROUNDS
//
// For each size (bytes of a rank's send buffer, floats): per round, WARM untimed calls, an
// MPI_Barrier, ITER timed calls; a rank's figure is its elapsed time / ITER, a round's the
// maximum over ranks. Rank 0 prints "size S us MEDIAN MIN MAX" per size.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  const bool alltoall = argc > 1 && std::strcmp(argv[1], "alltoall") == 0;
  unsigned long long min_bytes = 8, max_bytes = 1 << 20, factor = 2;
  int iterations = 20, warmup = 5, rounds = 1;
  for (int i = 2; i + 1 < argc; i += 2) {
    const unsigned long long value = std::strtoull(argv[i + 1], nullptr, 10);
    if (std::strcmp(argv[i], "-b") == 0)
      min_bytes = value;
    else if (std::strcmp(argv[i], "-e") == 0)
      max_bytes = value;
    else if (std::strcmp(argv[i], "-f") == 0)
      factor = std::max(value, 2ull);
    else if (std::strcmp(argv[i], "-n") == 0)
      iterations = std::max(static_cast<int>(value), 1);
    else if (std::strcmp(argv[i], "-w") == 0)
      warmup = static_cast<int>(value);
    else if (std::strcmp(argv[i], "-r") == 0)
      rounds = std::max(static_cast<int>(value), 1);
  }
  int rank = 0, ranks = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  for (unsigned long long bytes = min_bytes; bytes <= max_bytes; bytes *= factor) {
    const size_t count = bytes / sizeof(float);
    const int per_peer = static_cast<int>(count / static_cast<size_t>(ranks));
    std::vector<float> send(std::max<size_t>(count, 1), 1.0f), recv(std::max<size_t>(count, 1), 0.0f);
    auto call = [&] {
      if (alltoall) {
        MPI_Alltoall(send.data(), per_peer, MPI_FLOAT, recv.data(), per_peer, MPI_FLOAT, MPI_COMM_WORLD);
      } else {
        MPI_Allreduce(send.data(), recv.data(), static_cast<int>(count), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      }
    };
    std::vector<double> figures;
    for (int round = 0; round < rounds; ++round) {
      for (int i = 0; i < warmup; ++i) call();
      MPI_Barrier(MPI_COMM_WORLD);
      const auto begin = std::chrono::steady_clock::now();
      for (int i = 0; i < iterations; ++i) call();
      double us =
          std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - begin).count() / iterations;
      double max_us = 0;
      MPI_Reduce(&us, &max_us, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
      figures.push_back(max_us);
    }
    if (rank == 0) {
      std::sort(figures.begin(), figures.end());
      std::printf("size %llu us %.3f %.3f %.3f\n", bytes, figures[figures.size() / 2], figures.front(), figures.back());
      std::fflush(stdout);
    }
  }
  MPI_Finalize();
  return 0;
}
