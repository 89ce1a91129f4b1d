#!/usr/bin/env bash
# Groups across hosts, with network namespaces standing for hosts.
#
#   run_hosts.sh HOSTS_RANK CASE
#
# Makes HOSTS namespaces dbh-<pid>-<h> (each with veth0 at 198.18.<pid-derived>.<h+1>/24) whose
# veth peers are joined by a bridge in a namespace of its own (dbh-<pid>-br): nothing in the
# root namespace is touched, and no traffic leaves 198.18.0.0/15. UCX runs over TCP on veth0.
# Runs the ranks of CASE with `ip netns exec`, checks the outcome, and on every exit path
# kills what it started and removes the namespaces; then checks nothing is left (namespaces,
# processes, /dev/shm entries). Exit 77 (ctest SKIP_RETURN_CODE) when not root or when
# `ip netns` cannot work here.
#
# Cases: 2x4 and 4x2 (1000 barriers with jitter, barrier property), wrong-secret,
# kill-host, link-down, elastic (kill-host, then the survivors go on), kill-rank (one process
# of host 1 killed; the survivors go on), elastic-4 (4 hosts x 2, the last killed
# while the live hosts hold different parts of the barrier in flight), slow-rank, hang-warning,
# rank-table (root info from an address, comm::CreateRootInfoAt), status (distbarrier-status on
# one host names a stopped rank of another), perf-H (timings only), collectives-HxR (every
# HCCL collective, send/receive and MoE checked against a host reference), collectives-kill and
# collectives-kill-rank (host 1, or rank 3 alone, dies during AllReduces: the others fail with
# 507057 naming the dead).
set -u
binary=$1
case_name=$2

if [ "$(id -u)" != 0 ]; then echo "SKIP: network namespaces need root"; exit 77; fi
command -v ip >/dev/null || { echo "SKIP: no ip command (iproute2)"; exit 77; }

prefix="dbh-$$"
work=$(mktemp -d /tmp/dbh-work.XXXXXX)
shm_before=$(ls /dev/shm | sort)
pids=()
subnet="198.18.$(( $$ % 250 ))"  # from our pid: concurrent runs stay apart in logs (bridges are separate anyway)
source "$(dirname "$0")/netns.sh"

cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null; done
  remove_hosts
  local left=""
  for ns in "${namespaces[@]}"; do
    ip netns list | grep -qw "$ns" && left="$left namespace $ns;"
  done
  pgrep -f "$work" >/dev/null && left="$left processes of $work;"
  local shm_new
  # New entries of the kinds our processes make (OpenMPI's only where this run started MPI) that
  # no live process maps: ours are all killed by now, so an entry still mapped belongs to a
  # program running beside this one, not to us.
  local kinds='ucx|distbarrier|hccl'
  [ -n "${PERF_MPI_PROGRAM:-}" ] && kinds="$kinds|vader|pmix|ompi"
  shm_new=$(comm -13 <(echo "$shm_before") <(ls /dev/shm | sort) | grep -Ei "$kinds" |
    while read -r entry; do grep -qsF "/dev/shm/$entry" /proc/[0-9]*/maps || echo "$entry"; done)
  [ -n "$shm_new" ] && left="$left /dev/shm entries: $shm_new;"
  rm -rf "$work"
  if [ -n "$left" ]; then
    echo "FAIL: left behind:$left"
    exit 1
  fi
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_rank HOST RANK ARGS...: one rank process in host HOST's namespace, output in rank<RANK>.log
start_rank() {
  local host=$1 rank=$2
  shift 2
  # UCX's memory hooks (for registration caches we never use) crash under the sanitizers' own
  # interceptors: off, here as for any sanitized program using UCX.
  ip netns exec "$prefix-$host" env UCX_TLS=tcp UCX_NET_DEVICES=veth0 UCX_MEM_MALLOC_HOOKS=no \
    UCX_MEM_MMAP_HOOK_MODE=none UCX_MEM_EVENTS=no DISTBARRIER_CONNECT_TIMEOUT_S=60 \
    HCCL_EXEC_TIMEOUT=60 ${extra_env[@]+"${extra_env[@]}"} "$binary" "$@" >"$work/rank$rank.log" 2>&1 &
  pids+=($!)
  rank_pids[$rank]=$!
}
declare -A rank_pids
extra_env=()

# wait_all SECONDS: waits for every rank; fails naming those still running after SECONDS.
wait_all() {
  local limit=$(( $(date +%s) + $1 )) failed=0
  for rank in "${!rank_pids[@]}"; do
    local pid=${rank_pids[$rank]}
    while kill -0 "$pid" 2>/dev/null; do
      if [ "$(date +%s)" -ge "$limit" ]; then echo "FAIL: rank $rank still running after $1 s"; failed=1; break; fi
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null || wait "$pid" 2>/dev/null || true  # one still running is the caller's to stop
  done
  return $failed
}

show_logs() { for f in "$work"/rank*.log; do echo "--- $(basename "$f")"; cat "$f"; done; }

# run_barriers HOSTS RANKS_PER_HOST: 1000 barriers with jitter, then the barrier property.
run_barriers() {
  local hosts=$1 per_host=$2 ranks=$(( $1 * $2 )) barriers=1000
  make_hosts "$hosts"
  for ((r = 0; r < ranks; ++r)); do start_rank $(( r / per_host )) "$r" run "$ranks" "$r" "$work" "$barriers"; done
  wait_all 150 || { show_logs; exit 1; }
  show_logs
  local ok
  ok=$(cat "$work"/rank*.log | grep -c ': OK ')
  [ "$ok" = "$ranks" ] || { echo "FAIL: $ok of $ranks ranks finished"; exit 1; }
  "$binary" check "$ranks" "$work" "$barriers" || exit 1
}

# wait_running RANKS...: until each named rank said its group runs.
wait_running() {
  local limit=$(( $(date +%s) + 60 ))
  for rank in "$@"; do
    while [ ! -e "$work/running.$rank" ]; do
      [ "$(date +%s)" -ge "$limit" ] && { echo "FAIL: rank $rank never started"; show_logs; exit 1; }
      sleep 0.05
    done
  done
}

# wait_survivors SECONDS RANKS...: until each named rank's process has ended; past SECONDS the
# case fails (a hang), with the logs.
wait_survivors() {
  local limit=$(( $(date +%s) + $1 ))
  shift
  for rank in "$@"; do
    while kill -0 "${rank_pids[$rank]}" 2>/dev/null; do
      [ "$(date +%s)" -ge "$limit" ] && { echo "FAIL: rank $rank did not finish (hangs)"; show_logs; exit 1; }
      sleep 0.05
    done
  done
}

# death CUT ELASTIC [HOSTS]: 8 ranks on HOSTS hosts (default 2); the last host is killed
# (CUT=kill) or cut off (CUT=link), or only its second rank, a process that is not its host's
# leader, is killed (CUT=rank). The survivors must fail with 507057 naming the dead ranks within
# 3 s (and go on without them, elastic).
death() {
  local cut=$1 elastic=$2 hosts=${3:-2}
  local per_host=$(( 8 / hosts )) last=$(( hosts - 1 ))
  local victims=()
  for ((r = last * per_host; r < 8; ++r)); do victims+=("$r"); done
  [ "$cut" = rank ] && victims=($(( last * per_host + 1 )))
  make_hosts "$hosts"
  local dead_arg=()
  [ "$elastic" = 1 ] && dead_arg=("$(IFS=,; echo "${victims[*]}")")
  for ((r = 0; r < 8; ++r)); do start_rank $(( r / per_host )) "$r" until-failure 8 "$r" "$work" "${dead_arg[@]}"; done
  wait_running 0 1 2 3 4 5 6 7
  sleep 0.3  # let barriers run a while (pacing, not synchronization)
  local cut_at
  cut_at=$(date +%s%N)
  case "$cut" in
    kill) for pid in $(ip netns pids "$prefix-$last"); do kill -9 "$pid"; done ;;
    link) ip -n "$prefix-$last" link set veth0 down ;;
    rank) kill -9 "${rank_pids[${victims[0]}]}" ;;
  esac
  local survivors=()
  for ((r = 0; r < 8; ++r)); do [[ " ${victims[*]} " == *" $r "* ]] || survivors+=("$r"); done
  wait_survivors 60 "${survivors[@]}"
  [ "$cut" = link ] && for victim in "${victims[@]}"; do kill -9 "${rank_pids[$victim]}" 2>/dev/null; done
  show_logs
  # Every survivor fails the same barrier: one that passed a barrier another failed would count
  # its barriers differently from then on (an elastic restart would never meet).
  local counts
  counts=$(for rank in "${survivors[@]}"; do grep -o "after [0-9]* barriers" "$work/rank$rank.log"; done | sort -u)
  [ "$(echo "$counts" | wc -l)" = 1 ] || { echo "FAIL: the survivors failed different barriers: $counts"; exit 1; }
  for rank in "${survivors[@]}"; do
    local line
    line=$(grep "FAILED status" "$work/rank$rank.log") || { echo "FAIL: rank $rank did not fail"; exit 1; }
    echo "$line" | grep -q "status=507057" || { echo "FAIL: rank $rank: not 507057"; exit 1; }
    for victim in "${victims[@]}"; do
      echo "$line" | grep -Eq "[ ,]$victim \(pid" || { echo "FAIL: rank $rank does not name rank $victim"; exit 1; }
    done
    local at ms
    at=$(echo "$line" | sed -E 's/.*at_ns=([0-9]+).*/\1/')
    ms=$(( (at - cut_at) / 1000000 ))
    echo "rank $rank failed $ms ms after the cut"
    [ "$ms" -le 3000 ] || { echo "FAIL: rank $rank took $ms ms (> 3000) to see the dead ranks"; exit 1; }
    if [ "$elastic" = 1 ]; then
      grep -q "ELASTIC OK" "$work/rank$rank.log" || { echo "FAIL: rank $rank did not go on elastically"; exit 1; }
    fi
  done
}

# run_collectives HOSTS RANKS_PER_HOST: the collectives mode on every rank; all must say OK.
run_collectives() {
  local hosts=$1 per_host=$2 ranks=$(( $1 * $2 ))
  make_hosts "$hosts"
  extra_env=("HCCL_BUFFSIZE=1")  # 1 MB: the 1 MB cases take several exchanges
  for ((r = 0; r < ranks; ++r)); do start_rank $(( r / per_host )) "$r" collectives "$ranks" "$r" "$work"; done
  wait_all 120 || { show_logs; exit 1; }
  show_logs
  [ "$(cat "$work"/rank*.log | grep -c ': OK ')" = "$ranks" ] || { echo "FAIL: not every rank passed"; exit 1; }
}

# collectives_death VICTIM: 2 hosts x 2 ranks in AllReduces; VICTIM=host kills host 1 (ranks 2
# and 3), VICTIM=rank kills rank 3 only (not its host's leader). The survivors fail with 507057
# naming a victim within 3 s: no hang.
collectives_death() {
  local victim=$1 survivors victims
  make_hosts 2
  extra_env=("HCCL_BUFFSIZE=1")
  for ((r = 0; r < 4; ++r)); do start_rank $(( r / 2 )) "$r" collectives-until-failure 4 "$r" "$work"; done
  wait_running 0 1 2 3
  sleep 0.3  # let AllReduces run a while (pacing, not synchronization)
  local cut_at
  cut_at=$(date +%s%N)
  if [ "$victim" = host ]; then
    survivors=(0 1) victims="2|3"
    for pid in $(ip netns pids "$prefix-1"); do kill -9 "$pid"; done
  else
    survivors=(0 1 2) victims="3"
    kill -9 "${rank_pids[3]}"
  fi
  wait_survivors 30 "${survivors[@]}"
  show_logs
  for rank in "${survivors[@]}"; do
    local line at ms
    line=$(grep "FAILED status" "$work/rank$rank.log") || { echo "FAIL: rank $rank did not fail"; exit 1; }
    echo "$line" | grep -q "status=507057" || { echo "FAIL: rank $rank: not 507057"; exit 1; }
    echo "$line" | grep -Eq "ranks? \[?($victims)\b|\[($victims)(, ($victims))?\]" ||
      { echo "FAIL: rank $rank names no killed rank ($victims)"; exit 1; }
    at=$(echo "$line" | sed -E 's/.*at_ns=([0-9]+).*/\1/')
    ms=$(( (at - cut_at) / 1000000 ))
    echo "rank $rank failed $ms ms after the kill"
    [ "$ms" -le 3000 ] || { echo "FAIL: rank $rank took $ms ms (> 3000) to see the death"; exit 1; }
  done
}

case "$case_name" in
  collectives-[0-9]*x[0-9]*)
    shape=${case_name#collectives-}
    run_collectives "${shape%x*}" "${shape#*x}"
    ;;
  collectives-kill) collectives_death host ;;
  collectives-kill-rank) collectives_death rank ;;
  [0-9]*x[0-9]*) run_barriers "${case_name%x*}" "${case_name#*x}" ;;  # HOSTSxRANKS_PER_HOST
  wrong-secret)
    # 2 hosts x 2 ranks, and an intruder on host 1 claiming rank 3 with a wrong secret first.
    make_hosts 2
    start_rank 0 0 run 4 0 "$work" 50
    start_rank 1 9 wrong-secret 4 3 "$work"
    intruder=${rank_pids[9]}
    unset 'rank_pids[9]'
    wait "$intruder"
    start_rank 0 1 run 4 1 "$work" 50
    start_rank 1 2 run 4 2 "$work" 50
    start_rank 1 3 run 4 3 "$work" 50
    wait_all 60 || { show_logs; exit 1; }
    show_logs
    grep -q "REFUSED as expected" "$work/rank9.log" || { echo "FAIL: the wrong secret was not refused"; exit 1; }
    [ "$(cat "$work"/rank[0-3].log | grep -c ': OK ')" = 4 ] || { echo "FAIL: the group did not complete"; exit 1; }
    "$binary" check 4 "$work" 50 || exit 1
    ;;
  kill-host) death kill 0 ;;
  link-down) death link 0 ;;
  elastic) death kill 1 ;;
  kill-rank) death rank 1 ;;
  elastic-4)
    # Host 2 is the slow one: host 3 then dies mostly between its two dissemination rounds, so
    # host 0 has its arrivals and host 1 does not (the live hosts must agree, not each decide).
    extra_env=("HOSTS_SLOW_RANK=4")
    death kill 1 4
    ;;
  slow-rank)
    # 2 hosts x 2 ranks; rank 3 (host 1) arrives 5 ms late: rank 0's statistics must name it.
    # Traces: host 1's say how well its clock is aligned with host 0's.
    make_hosts 2
    extra_env=("DISTBARRIER_TRACE=$work/trace.%p.json")
    for ((r = 0; r < 4; ++r)); do start_rank $(( r / 2 )) "$r" slow 4 "$r" "$work" 3; done
    wait_all 60 || { show_logs; exit 1; }
    show_logs
    grep -q "SLOWEST 3 " "$work/rank0.log" || { echo "FAIL: rank 0's statistics do not name rank 3"; exit 1; }
    clock=$(grep -ho '"name":"clock"[^}]*"host":1[^}]*}' "$work"/trace.*.json | head -1)
    [ -n "$clock" ] || { echo "FAIL: no clock alignment record from host 1 in the traces"; exit 1; }
    echo "host 1's clock record: $clock"
    ;;
  rank-table)
    # 2 hosts x 2 ranks from a rank table's addresses: rank 0 listens at host 0's address; rank 1
    # (same host) and ranks 2, 3 (host 1) come over TCP; rank 1 gets its memory from rank 0.
    make_hosts 2
    for ((r = 0; r < 4; ++r)); do start_rank $(( r / 2 )) "$r" table 4 "$r" "$work" "$subnet.1" 61000; done
    wait_all 60 || { show_logs; exit 1; }
    show_logs
    [ "$(cat "$work"/rank*.log | grep -c ': OK 50 barriers from a rank table')" = 4 ] || { echo "FAIL: not every rank joined"; exit 1; }
    ;;
  status)
    # 2 hosts x 2 ranks; rank 3 (host 1, not its host's leader) is stopped: distbarrier-status
    # run on host 0 sees only host 0's processes, yet names rank 3, its host and the barrier
    # that waits for it (host 1's agent reports its ranks' barriers in its heartbeats).
    status_tool=${DISTBARRIER_STATUS_TOOL:?set DISTBARRIER_STATUS_TOOL to distbarrier-status}
    make_hosts 2
    for ((r = 0; r < 4; ++r)); do start_rank $(( r / 2 )) "$r" until-failure 4 "$r" "$work"; done
    wait_running 0 1 2 3
    kill -STOP "${rank_pids[3]}"
    limit=$(( $(date +%s) + 20 ))
    found=""
    while [ "$(date +%s)" -lt "$limit" ]; do
      ip netns exec "$prefix-0" "$status_tool" --json >"$work/status.json" 2>"$work/status.err"
      if python3 - "$work/status.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
for comm in doc["communicators"]:
    rows = {row["rank"]: row for row in comm["ranks"]}
    if len(rows) != 4: continue
    three, zero = rows[3], rows[0]
    ok = (three["host"] == "host 1" and three.get("blocks") is not None and zero["state"] == "waiting"
          and zero.get("missing") == [3] and zero["barrier"] == three["blocks"]
          and three["last_seq"] == three["blocks"] - 1)
    if ok:
        print("status on host 0:", json.dumps(three), json.dumps(zero))
        sys.exit(0)
sys.exit(1)
PY
      then found=1; break; fi
      sleep 0.2  # polling the status of a job that is stuck by construction
    done
    kill -CONT "${rank_pids[3]}"
    for ((r = 0; r < 4; ++r)); do kill -9 "${rank_pids[$r]}" 2>/dev/null; done
    if [ -z "$found" ]; then
      echo "FAIL: host 0's status never named rank 3 of host 1 as what its barrier waits for"
      cat "$work/status.json" "$work/status.err"; show_logs; exit 1
    fi
    "$status_tool" --help >/dev/null  # (the tool itself ran in host 0's namespace above)
    ;;
  hang-warning)
    # 2 hosts x 2 ranks; rank 3 (host 1) comes 2.5 s late: the warning after 1 s names it and
    # its host.
    make_hosts 2
    extra_env=("DISTBARRIER_WARN_S=1")
    for ((r = 0; r < 4; ++r)); do start_rank $(( r / 2 )) "$r" late 4 "$r" "$work" 3; done
    wait_all 60 || { show_logs; exit 1; }
    show_logs
    grep -Eq "has waited .* for ranks \[.*3 \(on host 1" "$work/rank0.log" "$work/rank1.log" ||
      { echo "FAIL: no hang warning on host 0 naming rank 3 and its host"; exit 1; }
    [ "$(cat "$work"/rank*.log | grep -c ': OK ')" = 4 ] || { echo "FAIL: the late rank's barriers did not complete"; exit 1; }
    ;;
  perf-*)
    # perf-H: one rank per host, H hosts, PERF_ROUNDS rounds (default 1) of PERF_ITERS (2000):
    # the barrier round trip next to the UCX round trip of hosts 0 and 1 (both in this run's
    # namespaces, same transport: UCX over TCP on veth0) and, with PERF_MPI_PROGRAM set (the
    # distbarrier_perf_mpi program), MPI_Barrier over TCP across the same namespaces: mpirun in
    # host 0's namespace reaches the others through netns_agent.sh (PERF_MPI_ITERS barriers, default
    # PERF_ITERS: with more spinning ranks than cores each MPI barrier takes milliseconds, and
    # mpi_yield_when_idle, which OpenMPI sets itself when it sees a host oversubscribed, is on
    # because it cannot see that the namespaces share the cores). One line per round:
    # "hosts=H round=R barrier_us=X ucx_round_trip_us=Y ucx_dissemination_us=F mpi_barrier_us=Z"
    # (Z "-" without MPI). F: H processes, one per host, running a dissemination barrier of bare
    # UCX active messages (hosts_pingpong with HOSTS), polling with a yield as MPI does here.
    hosts=${case_name#perf-}
    rounds=${PERF_ROUNDS:-1}
    iterations=${PERF_ITERS:-2000}
    mpi_iterations=${PERF_MPI_ITERS:-$iterations}
    make_hosts "$hosts"
    mpi_hosts=""
    for ((h = 0; h < hosts; ++h)); do mpi_hosts="$mpi_hosts${mpi_hosts:+,}$subnet.$((h + 1))"; done
    for ((round = 0; round < rounds; ++round)); do
      rank_pids=()
      binary_for_pingpong=$binary
      binary="$(dirname "$binary")/hosts_pingpong"
      start_rank 0 100 0 "$work" "$iterations"
      start_rank 1 101 1 "$work" "$iterations"
      wait_all 60 || { show_logs; exit 1; }
      rm -f "$work"/pp.*
      rank_pids=()
      for ((r = 0; r < hosts; ++r)); do start_rank "$r" $(( 300 + r )) "$r" "$work" "$iterations" "$hosts"; done
      binary=$binary_for_pingpong
      wait_all 120 || { show_logs; exit 1; }
      rank_pids=()
      for ((r = 0; r < hosts; ++r)); do start_rank "$r" "$r" perf "$hosts" "$r" "$work" "$iterations"; done
      wait_all 120 || { show_logs; exit 1; }
      rtt=$(grep -ho 'PINGPONG [0-9.]*' "$work/rank101.log" | cut -d' ' -f2)
      floor=$(grep -ho 'DISSEMINATION [0-9.]*' "$work/rank300.log" | cut -d' ' -f2)
      barrier=$(grep -ho 'PERF [0-9.]*' "$work/rank0.log" | cut -d' ' -f2)
      [ -n "$rtt" ] && [ -n "$floor" ] && [ -n "$barrier" ] || { show_logs; exit 1; }
      rm -f "$work"/root.bin "$work"/tickets "$work"/running.* "$work"/pp.*  # the next round starts afresh
      mpi=-
      if [ -n "${PERF_MPI_PROGRAM:-}" ]; then
        # OpenMPI's session directories go to $work (removed on exit); TCP only, on the veth
        # subnet only, for its daemons (oob) as for its messages (btl).
        ip netns exec "$prefix-0" env DBH_PREFIX="$prefix" DBH_SUBNET="$subnet" TMPDIR="$work" \
          OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
          mpirun --allow-run-as-root --oversubscribe --host "$mpi_hosts" -np "$hosts" \
          --mca plm_rsh_agent "$(dirname "$0")/netns_agent.sh" --mca plm_rsh_no_tree_spawn 1 \
          --bind-to none --mca mpi_yield_when_idle 1 \
          --mca btl tcp,self --mca btl_tcp_if_include "$subnet.0/24" --mca oob_tcp_if_include "$subnet.0/24" \
          "$PERF_MPI_PROGRAM" -n "$mpi_iterations" -w $(( mpi_iterations / 10 )) -r 1 >"$work/mpi.log" 2>&1 &
        pids+=($!)
        rank_pids=([200]=$!)
        # MPI failing is not our barrier failing: its column stays "-", its log goes to stderr.
        if ! wait_all 120 >&2; then
          for ((h = 0; h < hosts; ++h)); do
            for pid in $(ip netns pids "$prefix-$h"); do kill -9 "$pid" 2>/dev/null; done
          done
          wait "${rank_pids[200]}" 2>/dev/null
        fi
        ns=$(grep -ho 'ns_per_barrier [0-9.]*' "$work/mpi.log" | cut -d' ' -f2)
        if [ -n "$ns" ]; then mpi=$(awk -v ns="$ns" 'BEGIN { printf "%.2f", ns / 1000 }'); else cat "$work/mpi.log" >&2; fi
      fi
      echo "hosts=$hosts round=$round barrier_us=$barrier ucx_round_trip_us=$rtt ucx_dissemination_us=$floor mpi_barrier_us=$mpi"
    done
    ;;
  *) echo "unknown case $case_name"; exit 2 ;;
esac
if grep -l -E "WARNING: ThreadSanitizer|ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:" "$work"/rank*.log; then
  echo "FAIL: a sanitizer reported in the logs above"
  exit 1
fi
echo "PASS: $case_name"
