#!/usr/bin/env bash
# Installs everything keyonce needs to build, test and run its demo on Debian 12.
# Used by the README's two commands, examples/demo.sh and .ci/run.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  libboost1.81-dev libyaml-cpp-dev libsqlite3-dev libssl-dev
  libgtest-dev libhowardhinnant-date-dev tzdata
  sqlite3 python3
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "Installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
