// The collectives mode of distbarrier-perf, in the style of nccl-tests:
//
//   distbarrier-perf --coll allreduce|alltoall [-g 8] [-b 8] [-e 128M] [-f 2] [-n 20] [-w 5]
//                    [--repeat 5] [--mode threads|processes] [--timeout S]
//
// One row per size (bytes of each rank's send buffer): HCCL's time per call and its algbw and
// busbw (nccl-tests' definitions: busbw = algbw x 2(n-1)/n for AllReduce, x (n-1)/n for
// AlltoAll), a single-core memcpy of the same bytes, and MPI_Allreduce / MPI_Alltoall (float
// sum) measured in the same run with mpirun. A time is the maximum over ranks of a rank's
// (n calls enqueued back to back + aclrtSynchronizeStream) / n; each figure is the median of
// --repeat rounds, with the rounds' minimum and maximum.
#pragma once

namespace distbarrier::perf {

// True when argv asks for the collectives mode (--coll).
bool WantsCollectives(int argc, char** argv);
int RunCollectives(int argc, char** argv);

}  // namespace distbarrier::perf
