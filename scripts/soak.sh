#!/usr/bin/env bash
# Soak: builds tools/soak (into build-soak/) and runs 10^6 barriers over 16 ranks as threads,
# then 10^5 barriers over 8 ranks as processes, with small random jitter, checking the barrier
# property on every barrier and sampling peak RSS at start, middle and end; then 10^6 barriers
# over 2 threads launched without a synchronize, whose RSS must stay flat (bounded stream
# queues). Exits non-zero on any violation or failure.
#
#   bash scripts/soak.sh [THREAD_BARRIERS=1000000] [PROCESS_BARRIERS=100000]
#   SOAK_THREAD_RANKS=16 SOAK_PROCESS_RANKS=8 set the rank counts; SOAK_JOBS the build's parallelism.
set -euo pipefail
cd "$(dirname "$0")/.."
thread_barriers=${1:-1000000}
process_barriers=${2:-100000}
bash scripts/install-deps.sh
cmake -S tools/soak -B build-soak -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-soak -j "${SOAK_JOBS:-2}"
status=0
build-soak/distbarrier_soak threads "$thread_barriers" "${SOAK_THREAD_RANKS:-16}" || status=1
build-soak/distbarrier_soak procs "$process_barriers" "${SOAK_PROCESS_RANKS:-8}" || status=1
build-soak/distbarrier_soak flood "${SOAK_FLOOD_BARRIERS:-1000000}" 2 || status=1  # no synchronize: RSS must stay flat
[ "$status" -eq 0 ] && echo "soak: ok" || echo "soak: FAILED"
exit "$status"
