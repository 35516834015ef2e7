#!/usr/bin/env bash
# The whole test suite again, in the sanitizer build (.ci/asan-build.sh: clang-14,
# AddressSanitizer with leak checks + UndefinedBehaviorSanitizer, build-asan/, the
# same objects .ci/fuzz.sh links its fuzzers from); any report fails the run. CI
# runs it after the ordinary test command. Tests labelled slow_e2e are left out:
# randomized kill -9 loops that are slow here and check recovery, not memory
# (proven in the ordinary pass; docs/development.md lists them and why).
# Extra arguments go to ctest, e.g. .ci/sanitize.sh -R 'CsvReader\.'
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=build-asan
start=$(date +%s)
ASAN_BUILD_DIR=$BUILD_DIR bash .ci/asan-build.sh
echo "sanitize: build took $(($(date +%s) - start)) s"
cd "$BUILD_DIR"
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ] && [ -x /usr/bin/llvm-symbolizer-14 ]; then
  export ASAN_SYMBOLIZER_PATH=/usr/bin/llvm-symbolizer-14
fi
start=$(date +%s)
# The hostile corpus limits each command's address space; ASan reserves far more.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
KEYONCE_HOSTILE_MEMORY_LIMIT_MB=0 \
  ctest --output-on-failure -j "$(nproc)" --timeout 900 -LE slow_e2e "$@"
echo "sanitize: tests took $(($(date +%s) - start)) s"
