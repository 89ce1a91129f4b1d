#!/usr/bin/env bash
# Builds distbarrier and runs the whole test suite. `scripts/test.sh asan` or `tsan` runs it
# under AddressSanitizer+UBSan or ThreadSanitizer instead.
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-default}
bash scripts/install-deps.sh
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset"
ctest --preset "$preset"
