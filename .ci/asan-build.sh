#!/usr/bin/env bash
# The sanitizer build .ci/sanitize.sh and .ci/fuzz.sh share, in build-asan/:
# clang-14, AddressSanitizer + UndefinedBehaviorSanitizer with every report
# fatal, warnings are errors. Every object is also compiled with
# -fsanitize=fuzzer-no-link (coverage for libFuzzer; a no-op outside a fuzzer),
# so the same objects link into the test binaries and into the libFuzzer
# targets (KEYONCE_FUZZ): one build serves both passes.
# -O0 with line tables only (-gline-tables-only: file and line in every report,
# no variable info): the quickest to compile by far (the service's HTTP server:
# 38 s against 96 s at -O1 -g), and the tests run fast enough. NDEBUG as in the
# build we ship, because Boost 1.81's Beast has an assertion that is wrong
# (basic_parser.ipp, parse_chunk_header: n >= 5; boostorg/beast#2861) and that
# the http_request fuzzer reaches in a minute. keyonce's own code has no assert().
# Usage: .ci/asan-build.sh [target...]   (default: everything)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${ASAN_BUILD_DIR:-build-asan}"
# Configured every time (a few seconds): a build-asan/ left by an older gcc
# configuration is then reconfigured for clang instead of silently reused.
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_CXX_COMPILER=clang++-14 \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O0 -gline-tables-only -DNDEBUG" \
  -DKEYONCE_WERROR=ON -DKEYONCE_SANITIZE=address,undefined -DKEYONCE_FUZZ=ON \
  "-DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link -fno-sanitize-recover=all" >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" ${1:+--target "$@"}
