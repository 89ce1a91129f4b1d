#!/usr/bin/env bash
# Two "nodes" on this host, as a user types a two-host job: one distbarrier-run per node, each
# starting 2 ranks of process_barrier, joined through node 0's launcher (root-info) or from a
# rank table (rank-table). Checks that both nodes' 4 ranks ran their barriers.
#   check_two_nodes.sh DISTBARRIER_RUN PROCESS_BARRIER root-info|rank-table
set -euo pipefail
run=$1 program=$2 mode=$3
work=$(mktemp -d /tmp/db-two-nodes.XXXXXX)
trap 'rm -rf "$work"' EXIT
export DISTBARRIER_JOB_SECRET=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
port=$((20000 + $$ % 20000))
if [[ $mode == root-info ]]; then
  node() { "$run" --nnodes 2 --node-rank "$1" --master-addr 127.0.0.1 --master-port "$port" -n 2 --timeout 120 \
      "$program" 200; }
else
  cat >"$work/rank_table.json" <<TABLE
{"status": "completed", "version": "1.2", "server_count": "2",
 "server_list": [
  {"server_id": "node_0", "host_ip": "127.0.0.1",
   "device": [{"device_id": "0", "rank_id": "0"}, {"device_id": "1", "rank_id": "1"}]},
  {"server_id": "node_1", "host_ip": "127.0.0.1",
   "device": [{"device_id": "0", "rank_id": "2"}, {"device_id": "1", "rank_id": "3"}]}]}
TABLE
  export HCCL_IF_BASE_PORT=$port
  node() { "$run" --rank-table "$work/rank_table.json" --node-rank "$1" --timeout 120 "$program" 200; }
fi
node 1 >"$work/node1.out" 2>&1 &
node1=$!
status=0
node 0 >"$work/node0.out" 2>&1 || status=$?
wait "$node1" || status=$?
cat "$work/node0.out" "$work/node1.out"
[[ $status -eq 0 ]] || { echo "a node failed (exit $status)"; exit 1; }
ranks=$(cat "$work/node0.out" "$work/node1.out" | grep -c ": 200 barriers in " || true)
[[ $ranks -eq 4 ]] || { echo "expected 4 ranks with 200 barriers, got $ranks"; exit 1; }
echo "two nodes ($mode): 4/4 ranks ran 200 barriers"
