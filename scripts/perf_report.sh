#!/usr/bin/env bash
# Regenerates the barrier figures of docs/PERFORMANCE.md (the part between the perf_report
# markers) from RUNS runs of distbarrier-perf per mode: the median and the spread (min-max) over
# runs of each same-run ratio, which runs met each target, and the machine it ran on.
#
#   scripts/perf_report.sh                 # 5 runs per mode; about 6-10 minutes on 2 vCPUs
#   RUNS=7 BUILD=build scripts/perf_report.sh
#
# Needs a built build/bin/distbarrier-perf (cmake --build build --target distbarrier-perf);
# MPI_Barrier figures need mpirun and distbarrier_perf_mpi (built when CMake finds MPI).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
BUILD=${BUILD:-build}
PERF="$BUILD/bin/distbarrier-perf"
OUT="$BUILD/perf_report"
[ -x "$PERF" ] || { echo "perf_report: $PERF missing: cmake --build $BUILD --target distbarrier-perf" >&2; exit 1; }
rm -rf "$OUT"
mkdir -p "$OUT"
start=$(date +%s)
# The two modes alternate, so a load spike on the machine hits both rather than one.
for run in $(seq 1 "$RUNS"); do
  echo "perf_report: run $run of $RUNS (threads)" >&2
  "$PERF" -g 2 4 8 16 --mode threads --launch --stage1 --timeout 300 --json "$OUT/threads_$run.json" \
    > "$OUT/threads_$run.txt"
  echo "perf_report: run $run of $RUNS (processes)" >&2
  "$PERF" -g 2 4 8 16 --mode processes --timeout 300 --json "$OUT/processes_$run.json" > "$OUT/processes_$run.txt"
done
elapsed=$(( $(date +%s) - start ))
python3 scripts/perf_report.py --runs "$RUNS" --dir "$OUT" --elapsed "$elapsed" --doc docs/PERFORMANCE.md
echo "perf_report: $RUNS runs per mode in ${elapsed} s; docs/PERFORMANCE.md updated (raw output in $OUT)" >&2
