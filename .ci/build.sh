#!/usr/bin/env bash
# Configures and builds keyonce into ./build (warnings are errors).
# Usage: .ci/build.sh [extra cmake args]; KEYONCE_BUILD_TARGET=keyonce builds only the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${KEYONCE_BUILD_DIR:-build}"
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKEYONCE_WERROR=ON "$@" >/dev/null
fi
cmake --build "$BUILD_DIR" -j "$(nproc)" ${KEYONCE_BUILD_TARGET:+--target "$KEYONCE_BUILD_TARGET"}
