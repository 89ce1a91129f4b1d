# Sourced by the tests that stand network namespaces in for hosts (run_hosts.sh,
# examples/check_two_hosts_netns.sh). The caller sets `prefix` (namespace names) and `subnet`
# (three bytes inside 198.18.0.0/15) first.
#
# make_hosts COUNT: namespaces $prefix-0 .. $prefix-(COUNT-1), each with veth0 at
# $subnet.<h+1>/24, whose veth peers are joined by a bridge in a namespace of its own
# ($prefix-br): nothing in the root namespace is touched, and no traffic leaves the subnet.
# Exits 77 (ctest's skip) where namespaces, bridges or veth pairs cannot be made.
# remove_hosts: kills every process in those namespaces and deletes them.
namespaces=()

make_hosts() {
  local count=$1
  ip netns add "$prefix-br" 2>/dev/null || { echo "SKIP: ip netns add failed (no namespace support here)"; namespaces=(); exit 77; }
  namespaces+=("$prefix-br")
  ip -n "$prefix-br" link add br0 type bridge && ip -n "$prefix-br" link set br0 up || { echo "SKIP: no bridge support"; exit 77; }
  for ((h = 0; h < count; ++h)); do
    local ns="$prefix-$h"
    ip netns add "$ns" || exit 1
    namespaces+=("$ns")
    ip -n "$ns" link add veth0 type veth peer name "b$h" netns "$prefix-br" || { echo "SKIP: no veth support"; exit 77; }
    ip -n "$prefix-br" link set "b$h" master br0 up
    ip -n "$ns" addr add "$subnet.$((h + 1))/24" dev veth0
    ip -n "$ns" link set veth0 up
    ip -n "$ns" link set lo up
  done
}

remove_hosts() {
  local ns pid
  for ns in "${namespaces[@]}"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
  done
  wait 2>/dev/null
  for ns in "${namespaces[@]}"; do ip netns del "$ns" 2>/dev/null; done
}
