#!/usr/bin/env bash
# The README's test command: installs what is needed, builds, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/install-deps.sh
bash .ci/build.sh
cd "${KEYONCE_BUILD_DIR:-build}"
ctest --output-on-failure -j "$(nproc)" --timeout 600
