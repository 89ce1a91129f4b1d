#!/usr/bin/env bash
# Installs the build into a fresh prefix P shaped like a CANN toolkit and checks what a CANN
# user meets there: headers that compile on their own (acl.h and hccl.h also as C), the
# vendor's sample built with the plain CANN g++ link line and run on 16 devices, setenv.bash,
# and find_package(distbarrier).
# EXTRA_CXXFLAGS carries the build's sanitizer flags, which a program linked against an
# instrumented library needs; it is empty for a normal build.
set -euo pipefail
read -r -a extra <<<"${EXTRA_CXXFLAGS:-}"
build_dir=$1
source_dir=$2
work=$(mktemp -d /tmp/db-install-check.XXXXXX)
trap 'rm -rf "$work"' EXIT
P=$work/P
cmake --install "$build_dir" --prefix "$P" >/dev/null

for header in acl/acl.h hccl/hccl.h; do
  printf '#include "%s"\nint main(void) { return 0; }\n' "$header" >"$work/alone.c"
  cc -std=c99 -Wall -Wextra -Werror -pedantic -I"$P/include" -c "$work/alone.c" -o "$work/alone_c.o"
done
for header in acl/acl.h hccl/hccl.h aclnn/aclnn_base.h aclnnop/aclnn_distribute_barrier.h \
  aclnnop/aclnn_distribute_barrier_v2.h aclnnop/aclnn_moe_distribute_dispatch_v2.h \
  aclnnop/aclnn_moe_distribute_combine_v2.h distbarrier/distbarrier.h; do
  printf '#include "%s"\nint main() { return 0; }\n' "$header" >"$work/alone.cpp"
  c++ -std=c++11 -Wall -Wextra -Werror -I"$P/include" -c "$work/alone.cpp" -o "$work/alone_cpp.o"
done
echo "headers: each compiles on its own"

for lib in ascendcl nnopbase opapi op_common hccl; do
  test -e "$P/lib64/lib$lib.so" || { echo "missing $P/lib64/lib$lib.so"; exit 1; }
done

# The CANN link line, unchanged.
g++ "${extra[@]}" "$source_dir/examples/seed_barrier/main.cpp" -o "$work/demo" -I"$P/include" -I"$P/include/aclnnop" \
  -L"$P/lib64" -lascendcl -lnnopbase -lopapi -lop_common -lhccl -lpthread
# shellcheck disable=SC1091
source "$P/bin/setenv.bash"
"$work/demo" >"$work/demo.out" 2>&1 || { cat "$work/demo.out"; exit 1; }
tail -n 1 "$work/demo.out"
grep -q "^16/16 devices passed aclnnDistributeBarrier: SUCCESS$" "$work/demo.out"

# A CMake consumer.
mkdir -p "$work/consumer"
cat >"$work/consumer/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.22)
project(consumer CXX)
find_package(distbarrier REQUIRED)
add_executable(elastic "$source_dir/examples/elastic_barrier/main.cpp")
target_link_libraries(elastic PRIVATE distbarrier::distbarrier)
CMAKE
cmake -S "$work/consumer" -B "$work/consumer/build" -DCMAKE_PREFIX_PATH="$P" -DCMAKE_CXX_FLAGS="${EXTRA_CXXFLAGS:-}" >/dev/null
cmake --build "$work/consumer/build" >/dev/null
"$work/consumer/build/elastic" >"$work/elastic.out" 2>&1 || { cat "$work/elastic.out"; exit 1; }
tail -n 1 "$work/elastic.out"
echo "install: OK"
