#!/usr/bin/env bash
# Records keyed per minute into Sagsportalen: keyonce's browser target with 1
# and 3 sessions beside the same flow in Selenium (Debian's python3-selenium).
# Installs python3-selenium (bench only) when missing. See bench/README.md.
# Usage: bench/browser_keying.sh [--records N] [--keyonce PATH] [--skip-selenium]
set -euo pipefail
cd "$(dirname "$0")/.."
if ! dpkg-query -W -f='${Status}' python3-selenium 2>/dev/null | grep -q "install ok installed"; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-selenium
fi
exec /usr/bin/python3 bench/browser_keying.py "$@"
