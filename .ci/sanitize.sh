#!/usr/bin/env bash
# The whole test suite again, built with AddressSanitizer (with leak checks) and
# UndefinedBehaviorSanitizer; any report fails the run. CI runs it after the
# ordinary test command.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=build-asan
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DKEYONCE_WERROR=ON \
    -DKEYONCE_SANITIZE=address,undefined >/dev/null
fi
cmake --build "$BUILD_DIR" -j "$(nproc)"
cd "$BUILD_DIR"
# The hostile corpus limits each command's address space; ASan reserves far more.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
KEYONCE_HOSTILE_MEMORY_LIMIT_MB=0 \
  ctest --output-on-failure -j "$(nproc)" --timeout 900
