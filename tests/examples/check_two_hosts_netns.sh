#!/usr/bin/env bash
# A two-host job as a user types it, with two network namespaces standing for the hosts (veth
# pairs on a bridge in a namespace of its own, addresses in 198.18.0.0/15 only): one
# distbarrier-run per "host" starting 2 ranks of process_barrier, (1) joined through node 0's
# launcher (root info), (2) from a rank table naming both hosts, (3) from a rank table naming
# an absent host (refused within the connect timeout, naming the ranks that never came), and
# (4) a launcher with a wrong secret (refused, node 0 unharmed).
#   check_two_hosts_netns.sh DISTBARRIER_RUN PROCESS_BARRIER
# Exit 77 (skip) without root or network namespaces.
set -u
run=$1 program=$2
if [ "$(id -u)" != 0 ]; then echo "SKIP: network namespaces need root"; exit 77; fi
command -v ip >/dev/null || { echo "SKIP: no ip command"; exit 77; }
prefix="dbc-$$"
subnet="198.18.$(( $$ % 250 ))"
work=$(mktemp -d /tmp/dbc-work.XXXXXX)
source "$(dirname "$0")/../hosts/netns.sh"
cleanup() {
  local status=$?
  remove_hosts
  rm -rf "$work"
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM
make_hosts 2

export DISTBARRIER_JOB_SECRET=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
export UCX_TLS=tcp UCX_NET_DEVICES=veth0 DISTBARRIER_CONNECT_TIMEOUT_S=30 HCCL_EXEC_TIMEOUT=30
# UCX's memory hooks crash under the sanitizers' interceptors (README, "Across hosts"): off, as
# for any sanitized program that uses UCX; we register no memory, so nothing needs them.
export UCX_MEM_MALLOC_HOOKS=no UCX_MEM_MMAP_HOOK_MODE=none UCX_MEM_EVENTS=no
on() { local host=$1; shift; ip netns exec "$prefix-$host" "$@"; }
failed=0
expect() {  # expect NAME PATTERN FILE...
  local name=$1 pattern=$2
  shift 2
  if cat "$@" | grep -q -- "$pattern"; then echo "ok: $name"; else echo "FAIL: $name: no '$pattern' in:"; cat "$@"; failed=1; fi
}

# (1) root info through node 0's launcher; node 1 starts first and waits for node 0.
on 1 "$run" --nnodes 2 --node-rank 1 --master-addr "$subnet.1" --master-port 29500 -n 2 --timeout 60 \
  "$program" 200 >"$work/ri1.out" 2>&1 &
on 0 "$run" --nnodes 2 --node-rank 0 --master-addr "$subnet.1" --master-port 29500 -n 2 --timeout 60 \
  "$program" 200 >"$work/ri0.out" 2>&1
wait
expect "root info: 4 ranks ran 200 barriers" "rank  3 .*200 barriers" "$work/ri0.out" "$work/ri1.out"
[ "$(cat "$work/ri0.out" "$work/ri1.out" | grep -c ': 200 barriers in ')" = 4 ] || { echo "FAIL: root info"; failed=1; }

# (2) a rank table naming both hosts.
table() {  # table SECOND_HOST_IP
  cat <<TABLE
{"status": "completed", "version": "1.2", "server_count": "2",
 "server_list": [
  {"server_id": "node_0", "host_ip": "$subnet.1",
   "device": [{"device_id": "0", "rank_id": "0"}, {"device_id": "1", "rank_id": "1"}]},
  {"server_id": "node_1", "host_ip": "$1",
   "device": [{"device_id": "0", "rank_id": "2"}, {"device_id": "1", "rank_id": "3"}]}]}
TABLE
}
table "$subnet.2" >"$work/rank_table.json"
on 1 "$run" --rank-table "$work/rank_table.json" --node-rank 1 --timeout 60 "$program" 200 >"$work/rt1.out" 2>&1 &
on 0 "$run" --rank-table "$work/rank_table.json" --node-rank 0 --timeout 60 "$program" 200 >"$work/rt0.out" 2>&1
wait
[ "$(cat "$work/rt0.out" "$work/rt1.out" | grep -c ': 200 barriers in ')" = 4 ] || {
  echo "FAIL: rank table"; cat "$work/rt0.out" "$work/rt1.out"; failed=1; }
echo "ok: rank table: 4 ranks ran 200 barriers"

# (3) a rank table naming an absent host: node 0's ranks give up naming ranks 2 and 3.
table "$subnet.9" >"$work/absent.json"
DISTBARRIER_CONNECT_TIMEOUT_S=2 on 0 "$run" --rank-table "$work/absent.json" --node-rank 0 --timeout 60 \
  "$program" 200 >"$work/absent.out" 2>&1
expect "absent host: refused" "HcclCommInitClusterInfo" "$work/absent.out"
expect "absent host: names the missing ranks" "2, 3\|2 and 3\|ranks 2" "$work/absent.out"

# (4) a launcher with a wrong secret is refused; the right one after it still joins.
on 0 "$run" --nnodes 2 --node-rank 0 --master-addr "$subnet.1" --master-port 29501 -n 2 --timeout 60 \
  "$program" 200 >"$work/ws0.out" 2>&1 &
DISTBARRIER_JOB_SECRET=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n') on 1 "$run" --nnodes 2 --node-rank 1 \
  --master-addr "$subnet.1" --master-port 29501 -n 2 --timeout 60 "$program" 200 >"$work/ws1-wrong.out" 2>&1
expect "wrong secret: refused" "refused this node: wrong job secret" "$work/ws1-wrong.out"
on 1 "$run" --nnodes 2 --node-rank 1 --master-addr "$subnet.1" --master-port 29501 -n 2 --timeout 60 \
  "$program" 200 >"$work/ws1.out" 2>&1
wait
[ "$(cat "$work/ws0.out" "$work/ws1.out" | grep -c ': 200 barriers in ')" = 4 ] || {
  echo "FAIL: after a wrong secret"; cat "$work/ws0.out" "$work/ws1.out"; failed=1; }
echo "ok: wrong secret refused, the right node joined"

[ $failed = 0 ] && echo "two hosts (namespaces): all cases passed"
exit $failed
