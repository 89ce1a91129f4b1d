#!/usr/bin/env bash
# Runs the vendor document's sample (examples/seed_sample) and checks what the document
# promises: every one of the 16 devices reports success, and the last line is aclFinalize's.
set -euo pipefail
out=$(mktemp /tmp/db-seed-sample.XXXXXX)
trap 'rm -f "$out"' EXIT
"$1" >"$out" 2>&1 || { cat "$out"; echo "seed sample exited $?"; exit 1; }
successes=$(grep -c "aclnnMoeDistributeDispatchV2 and aclnnMoeDistributeCombineV2 .*execute successfully" "$out" || true)
last=$(tail -n 1 "$out")
if [[ $successes -ne 16 || $last != "[INFO] aclFinalize success" ]]; then
  cat "$out"
  echo "expected 16 successes and a last line '[INFO] aclFinalize success'; got $successes and '$last'"
  exit 1
fi
echo "16/16 devices: dispatch, barrier, combine succeeded; $last"
