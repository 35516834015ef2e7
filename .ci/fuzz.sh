#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/) with clang-14, ASan and UBSan,
# and runs each for FUZZ_SECONDS (default 60) on a copy of its seed corpus.
# Prints the executions and the coverage each target reached. A crash, leak,
# timeout or sanitizer report stops that target; its input is copied to
# tests/fuzz/regressions/<name>/ (so that ctest replays it from then on) and
# the script exits 1 after running the remaining targets.
#
# Environment: FUZZ_SECONDS (per target), FUZZ_TARGETS (space-separated names,
# default all), FUZZ_BUILD_DIR (default build-fuzz), FUZZ_JOBS (parallel
# targets, default 1), FUZZ_SKIP_BUILD=1 (use the binaries already built).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_PER_TARGET="${FUZZ_SECONDS:-60}"
BUILD_DIR="${FUZZ_BUILD_DIR:-build-fuzz}"
TARGETS="${FUZZ_TARGETS:-recipe_loader template csv_reader json_path xpath cron http_request}"
JOBS="${FUZZ_JOBS:-1}"
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac

if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  CC=clang-14 CXX=clang++-14 cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DKEYONCE_WERROR=ON -DKEYONCE_FUZZ=ON -DKEYONCE_TESTS=OFF -DKEYONCE_SANITIZE=address,undefined \
    "-DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link -fno-sanitize-recover=all" >/dev/null || exit 1
fi
build_targets=()
for t in $TARGETS; do build_targets+=("${t}_fuzzer"); done
if [ -z "${FUZZ_SKIP_BUILD:-}" ]; then
  cmake --build "$BUILD_DIR" -j "$(nproc)" --target "${build_targets[@]}" || exit 1
fi

# Symbolized stack traces in the reports (llvm-14).
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ] && [ -x /usr/bin/llvm-symbolizer-14 ]; then
  export ASAN_SYMBOLIZER_PATH=/usr/bin/llvm-symbolizer-14
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/keyonce-fuzz.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

run_one() {
  local t=$1 dir="$WORK/$1"
  mkdir -p "$dir/corpus" "$dir/artifacts"
  cp -r "$ROOT/tests/fuzz/corpus/$t/." "$dir/corpus/" 2>/dev/null || true
  if [ -d "$ROOT/tests/fuzz/regressions/$t" ]; then
    cp -r "$ROOT/tests/fuzz/regressions/$t/." "$dir/corpus/" 2>/dev/null || true
  fi
  (cd "$dir" && TMPDIR="$dir" \
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "$BUILD_DIR/tests/fuzz/${t}_fuzzer" -max_total_time="$SECONDS_PER_TARGET" \
      -rss_limit_mb=2048 -timeout=10 -max_len=65536 -print_final_stats=1 \
      -artifact_prefix="$dir/artifacts/" "$dir/corpus" >"$dir/log" 2>&1)
  echo $? >"$dir/rc"
}

i=0
for t in $TARGETS; do
  run_one "$t" &
  i=$((i + 1))
  if [ $((i % JOBS)) -eq 0 ]; then wait; fi
done
wait

failed=0
printf '%-15s %12s %8s %8s %8s  %s\n' target executions exec/s coverage corpus result
for t in $TARGETS; do
  dir="$WORK/$t"
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/log" | tail -1)
  cov=$(grep -Eo 'cov: [0-9]+' "$dir/log" | tail -1 | cut -d' ' -f2)
  corp=$(grep -Eo 'corp: [0-9]+' "$dir/log" | tail -1 | cut -d' ' -f2)
  result=ok
  if [ "$(cat "$dir/rc")" != 0 ] || [ -n "$(ls -A "$dir/artifacts")" ]; then
    result=FAILED
    failed=1
    mkdir -p "tests/fuzz/regressions/$t"
    for a in "$dir"/artifacts/*; do
      [ -f "$a" ] || continue
      cp "$a" "tests/fuzz/regressions/$t/"
      result="$result: saved tests/fuzz/regressions/$t/$(basename "$a")"
    done
    echo "---- $t log (last 60 lines) ----" >&2
    tail -60 "$dir/log" >&2
  fi
  printf '%-15s %12s %8s %8s %8s  %s\n' "$t" "${execs:-?}" "${speed:-?}" "${cov:-?}" "${corp:-?}" "$result"
done
exit $failed
