#!/usr/bin/env bash
# Installs the Debian packages the build and tests need (as root, or with sudo), skipping
# the network when they are all present already. With arguments, installs those instead.
set -euo pipefail
default_packages=(cmake ninja-build g++ make libfmt-dev libgtest-dev libgmock-dev googletest libcli11-dev python3 python3-matplotlib libopenmpi-dev openmpi-bin python3-dev pybind11-dev python3-pytest python3-torch nlohmann-json3-dev libucx-dev pkg-config)
if [ $# -gt 0 ]; then packages=("$@"); else packages=("${default_packages[@]}"); fi
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
