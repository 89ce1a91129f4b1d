#!/usr/bin/env bash
# mpirun's remote shell for hosts that are network namespaces (run_hosts.sh perf-H):
#
#   mpirun --mca plm_rsh_agent netns_agent.sh --host 198.18.x.1,198.18.x.2,... ...
#
# Called like ssh: `netns_agent.sh [ssh options] HOST COMMAND...`. HOST is a namespace's address
# DBH_SUBNET.<h+1>; the command runs in namespace DBH_PREFIX-<h> through a shell (ssh joins
# its arguments into one command line too). Anything else is refused: no other host is reached.
set -u
while [ $# -gt 0 ] && [ "${1#-}" != "$1" ]; do
  case "$1" in
    -l | -p | -o | -i | -F) shift 2 ;;  # ssh options with a value
    *) shift ;;
  esac
done
host=${1:?netns_agent.sh: no host}
shift
: "${DBH_PREFIX:?netns_agent.sh: DBH_PREFIX not set}" "${DBH_SUBNET:?netns_agent.sh: DBH_SUBNET not set}"
last=${host##*.}
if [ "${host%.*}" != "$DBH_SUBNET" ] || ! [[ "$last" =~ ^[0-9]+$ ]] || [ "$last" -lt 1 ]; then
  echo "netns_agent.sh: $host is not a host of $DBH_SUBNET.0/24" >&2
  exit 255
fi
exec ip netns exec "$DBH_PREFIX-$((last - 1))" /bin/sh -c "$*"
