#!/usr/bin/env bash
# Installs everything keyonce needs to build, test and run its demo on Debian 12.
# Used by the README's two commands, examples/demo.sh and .ci/run.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  libboost1.81-dev libyaml-cpp-dev libsqlite3-dev libssl-dev
  libgtest-dev libhowardhinnant-date-dev tzdata
  sqlite3 python3
  # Network connectors (issue 3)
  libcurl4-openssl-dev libpugixml-dev libpq-dev
  # Real servers the integration tests and demos start on loopback
  postgresql nginx-light openssh-server openssh-client openssl wrk curl
  # The caseworkers' page is tested end to end in a real browser (issue 4); the
  # browser connector drives it too, headed under Xvfb in one test (issue 12)
  chromium chromium-driver xvfb
  # Fuzzing (issue 5): clang with libFuzzer (libclang_rt.fuzzer is in
  # libclang-rt-14-dev; libfuzzer-14-dev is not needed), llvm-symbolizer
  clang-14 libclang-rt-14-dev llvm-14
  # Spreadsheets (issue 14): libzip opens xlsx and ods files, libfreexl reads
  # xls, libxlsxwriter writes xlsx; openpyxl and LibreOffice Calc (headless)
  # make the test workbooks and read the xlsx target's files back
  libzip-dev libfreexl-dev libxlsxwriter-dev python3-openpyxl libreoffice-calc-nogui
  # Mailboxes (issue 14): libcurl speaks IMAP, vmime reads MIME (multipart,
  # charsets, RFC 2047/2231); the tests read from a real Dovecot on loopback
  libvmime-dev dovecot-imapd
)
# Node.js for the npm test servers: Debian's nodejs + npm, unless a Node.js
# with its own npm (e.g. NodeSource's, which conflicts with Debian's npm) is
# already there.
command -v npm >/dev/null 2>&1 || PACKAGES+=(nodejs npm)

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
  # The tests start their own Dovecot; the system-wide one the package may
  # have started (listening on 143 and 993) is stopped and left disabled.
  if [[ " ${missing[*]} " == *" dovecot-imapd "* ]] && command -v systemctl >/dev/null 2>&1; then
    $SUDO systemctl disable --now dovecot >/dev/null 2>&1 || true
  fi
fi

# Test and demo servers from npm (pinned by tests/package-lock.json).
if [ -f "$(dirname "$0")/../tests/package-lock.json" ]; then
  tests_dir="$(cd "$(dirname "$0")/../tests" && pwd)"
  if [ ! -f "$tests_dir/node_modules/.package-lock.json" ] ||
     [ "$tests_dir/package-lock.json" -nt "$tests_dir/node_modules/.package-lock.json" ]; then
    echo "Installing test servers from npm (tests/package-lock.json)"
    (cd "$tests_dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
