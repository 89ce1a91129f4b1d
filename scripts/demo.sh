#!/usr/bin/env bash
# Builds distbarrier, installs it into ./install, builds the vendor document's sample
# (MoE dispatch -> barrier -> combine, EP 8 x TP 2) with the plain CANN link line against that
# install, and runs it on 16 simulated devices.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake --preset default >/dev/null
cmake --build --preset default
cmake --install build --prefix "$PWD/install" >/dev/null
P="$PWD/install"
g++ examples/seed_sample/main.cpp -o build/seed_demo -I"$P/include" -I"$P/include/aclnnop" -L"$P/lib64" \
  -lascendcl -lnnopbase -lopapi -lop_common -lhccl -lpthread
# shellcheck disable=SC1091
source "$P/bin/setenv.bash"
./build/seed_demo
