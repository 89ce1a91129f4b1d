#!/usr/bin/env bash
# Builds the libFuzzer harnesses of fuzz/ with clang (ASan + UBSan, into build-fuzz/), replays
# the saved bug inputs of fuzz/regressions/, then runs each fuzzer for SECONDS (default 60)
# starting from its seeds in fuzz/corpus/<name>/. Exits non-zero on any crash, sanitizer
# report, leak, failed property or timeout (artifacts in build-fuzz/artifacts/<name>/).
#
#   bash scripts/fuzz.sh [SECONDS]     e.g. CI: bash scripts/fuzz.sh 30
#
# FUZZ_JOBS sets the build's parallelism (default 2). See fuzz/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
fuzzers=(stage1 root_info hello rank_table)

bash scripts/install-deps.sh clang libclang-rt-14-dev libfmt-dev cmake ninja-build
cxx=$(command -v clang++ || command -v clang++-14)

cmake -S fuzz -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j "${FUZZ_JOBS:-2}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()

# 1. The saved inputs of bugs found earlier: each must run clean.
for input in fuzz/regressions/*; do
  [ -f "$input" ] || continue
  base=$(basename "$input")
  name=""
  for fuzzer in "${fuzzers[@]}"; do
    case "$base" in "$fuzzer"-*) name=$fuzzer ;; esac
  done
  [ -n "$name" ] || continue
  if timeout 120 "build-fuzz/fuzz_$name" "$input" >"build-fuzz/regression-$base.log" 2>&1; then
    echo "regression $base: ok"
  else
    echo "regression $base: FAILS (log: build-fuzz/regression-$base.log)"
    grep -m3 -E "ERROR|runtime error|FUZZ_CHECK|SUMMARY" "build-fuzz/regression-$base.log" | sed 's/^/    /' || true
    failed+=("regression $base")
  fi
done

# 2. Fuzzing: new inputs go to build-fuzz/corpus/<name>/ (kept between runs), seeds are read
#    from fuzz/corpus/<name>/.
for name in "${fuzzers[@]}"; do
  mkdir -p "build-fuzz/corpus/$name" "build-fuzz/artifacts/$name"
  log="build-fuzz/fuzz_$name.log"
  status=0
  timeout $((seconds + 120)) "build-fuzz/fuzz_$name" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="build-fuzz/artifacts/$name/" \
    "build-fuzz/corpus/$name" "fuzz/corpus/$name" >"$log" 2>&1 || status=$?
  execs=$(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  cov=$(grep -E '^#[0-9]+' "$log" | tail -1 | grep -o 'cov: [0-9]* ft: [0-9]* corp: [0-9]*/[0-9a-zA-Z]*' || echo "?")
  if [ "$status" -eq 0 ]; then
    echo "fuzz_$name: ok, $execs runs in ${seconds} s, $cov"
  else
    echo "fuzz_$name: FAILED (exit $status), $execs runs; log $log, input in build-fuzz/artifacts/$name/"
    grep -m5 -E "ERROR|runtime error|FUZZ_CHECK|SUMMARY|Test unit written" "$log" | sed 's/^/    /' || true
    failed+=("fuzz_$name")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]}"
  exit 1
fi
echo "fuzz: all clean"
