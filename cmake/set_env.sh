# Where CANN's documentation says `source <install>/set_env.sh`: the same as bin/setenv.bash.
# shellcheck disable=SC1091
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/bin/setenv.bash"
