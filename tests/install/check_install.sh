#!/usr/bin/env bash
# Installs the build into a fresh prefix P shaped like a CANN toolkit and checks what a CANN
# user meets there: headers that compile on their own (acl.h and hccl.h also as C), the paths
# other samples use (runtime/include, runtime/lib64/stub, -lacl_rt, set_env.sh), the
# vendor's sample built with the plain CANN g++ link line and run on 16 devices, setenv.bash,
# an HCCL AllReduce program (examples/hccl_allreduce) built with the g++ line, an HCCL program
# with its own Makefile (examples/hccl_collectives) built by `make` in a shell that only
# sourced setenv.bash, as CANN's HCCL examples are, and find_package(distbarrier).
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

# Each public header on its own: acl.h and hccl.h as C too; every one as C++11 through C++20
# (the official HCCL examples build with -std=c++14 -Werror).
for header in acl/acl.h hccl/hccl.h; do
  printf '#include "%s"\nint main(void) { return 0; }\n' "$header" >"$work/alone.c"
  for std in c99 c11; do
    cc -std=$std -Wall -Wextra -Werror -pedantic -I"$P/include" -c "$work/alone.c" -o "$work/alone_c.o"
  done
done
for header in $(cd "$P/include" && find acl hccl aclnn aclnnop distbarrier -name '*.h' | sort); do
  printf '#include "%s"\nint main() { return 0; }\n' "$header" >"$work/alone.cpp"
  for std in c++11 c++14 c++17 c++20; do
    c++ -std=$std -Wall -Wextra -Werror -I"$P/include" -c "$work/alone.cpp" -o "$work/alone_cpp.o"
  done
done
echo "headers: each compiles on its own (C99/C11 for acl.h and hccl.h, C++11..C++20 for all)"

for lib in ascendcl acl_rt nnopbase opapi op_common hccl; do
  test -e "$P/lib64/lib$lib.so" || { echo "missing $P/lib64/lib$lib.so"; exit 1; }
done
# The older layout of Ascend's classic samples (runtime/include, runtime/lib64/stub), and the
# runtime's newer library name (-lacl_rt).
printf '#include "acl/acl.h"\nint main() { uint32_t n = 0; return aclrtGetDeviceCount(&n) == ACL_SUCCESS && n > 0 ? 0 : 1; }\n' >"$work/layout.cpp"
g++ "${extra[@]}" "$work/layout.cpp" -o "$work/layout" -I"$P/runtime/include" -L"$P/runtime/lib64/stub" -lacl_rt
LD_LIBRARY_PATH="$P/lib64" "$work/layout"
# set_env.sh at the top, where CANN's documents source it, sets what bin/setenv.bash sets.
test "$(env -i PATH=/usr/bin:/bin bash -c "source '$P/set_env.sh' && echo \$ASCEND_HOME_PATH")" = "$(cd "$P" && pwd)"
echo "layout: lib64/libacl_rt.so, runtime/include, runtime/lib64/stub, set_env.sh"

# The tools a user runs from P/bin.
for tool in distbarrier-run distbarrier-status; do
  "$P/bin/$tool" --help >/dev/null || { echo "$P/bin/$tool --help failed"; exit 1; }
done

# The CANN link line, unchanged.
g++ "${extra[@]}" "$source_dir/examples/seed_barrier/main.cpp" -o "$work/demo" -I"$P/include" -I"$P/include/aclnnop" \
  -L"$P/lib64" -lascendcl -lnnopbase -lopapi -lop_common -lhccl -lpthread
# shellcheck disable=SC1091
source "$P/bin/setenv.bash"
"$work/demo" >"$work/demo.out" 2>&1 || { cat "$work/demo.out"; exit 1; }
tail -n 1 "$work/demo.out"
grep -q "^16/16 devices passed aclnnDistributeBarrier: SUCCESS$" "$work/demo.out"

# The Python package, where it was built: importable by /usr/bin/python3 after setenv.bash alone.
if [ -d "$P/lib64/python/distbarrier" ]; then
  (cd "$work" && /usr/bin/python3 - <<'PY'
import os, threading
import distbarrier
assert distbarrier.__file__.startswith(os.environ["DISTBARRIER_HOME"]), distbarrier.__file__
comms = distbarrier.init_all([0, 1])
def rank_main(rank):
    distbarrier.set_device(rank)
    for _ in range(10):
        distbarrier.barrier(comms[rank], time_out=10_000_000)
    distbarrier.synchronize()
threads = [threading.Thread(target=rank_main, args=(rank,)) for rank in (0, 1)]
[thread.start() for thread in threads]
[thread.join() for thread in threads]
distbarrier.set_device(0)
assert distbarrier.last_barrier(comms[0]).sequence == 10
print(f"python: distbarrier {distbarrier.__version__} from {os.path.dirname(distbarrier.__file__)}: 10 barriers on 2 devices")
PY
  )
fi

# An HCCL program as CANN's examples are written and built: C++14, -Werror, -lascendcl -lhccl.
g++ -std=c++14 -Wall -Wextra -Werror "${extra[@]}" "$source_dir/examples/hccl_allreduce/main.cpp" \
  -o "$work/hccl_allreduce" -I"$ASCEND_HOME_PATH/include" -L"$ASCEND_HOME_PATH/lib64" -lascendcl -lhccl -lpthread
"$work/hccl_allreduce" 8 262147 >"$work/hccl.out" 2>&1 || { cat "$work/hccl.out"; exit 1; }
tail -n 1 "$work/hccl.out"
grep -q "^8/8 devices: HcclAllReduce of 262147 floats matches the host sum$" "$work/hccl.out"

# An HCCL program with its own Makefile, built and run as CANN's HCCL examples are (`make`,
# `make test`) in a shell that has nothing but what setenv.bash exports (and the sanitizer
# settings of an instrumented build).
cp -r "$source_dir/examples/hccl_collectives" "$work/hccl_collectives"
env -i HOME="$HOME" PATH=/usr/bin:/bin EXTRA_CXXFLAGS="${EXTRA_CXXFLAGS:-}" \
  ASAN_OPTIONS="${ASAN_OPTIONS:-}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-}" TSAN_OPTIONS="${TSAN_OPTIONS:-}" \
  bash -c "source '$P/bin/setenv.bash' && make -s -C '$work/hccl_collectives' && make -s -C '$work/hccl_collectives' test" \
  >"$work/make.out" 2>&1 || { cat "$work/make.out"; exit 1; }
tail -n 1 "$work/make.out"
grep -q "^8/8 ranks: HcclAllReduce, HcclBroadcast and a HcclSend/HcclRecv ring of 65537 elements match the host$" "$work/make.out"

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
