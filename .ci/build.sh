#!/usr/bin/env bash
# Configures and builds keyonce into ./build (warnings are errors).
# Usage: .ci/build.sh [extra cmake args]; KEYONCE_BUILD_TARGET=keyonce builds only the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${KEYONCE_BUILD_DIR:-build}"
# -g1: line tables and function names, enough for a backtrace; full debug info
# (-g) makes the build a third slower and its objects ten times larger.
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG" -DKEYONCE_WERROR=ON "$@" >/dev/null
fi
cmake --build "$BUILD_DIR" -j "$(nproc)" ${KEYONCE_BUILD_TARGET:+--target "$KEYONCE_BUILD_TARGET"}
