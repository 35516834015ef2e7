#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/) in the shared sanitizer build
# (.ci/asan-build.sh: clang-14, ASan + UBSan, build-asan/) and runs each on a
# copy of its seed corpus and its regressions. Prints the executions and the
# coverage each target reached. A crash, leak, timeout or sanitizer report
# stops that target; its input is copied to tests/fuzz/regressions/<name>/ (so
# that ctest replays it from then on) and the script exits 1 after running the
# remaining targets.
#
# How long a target runs: tests/fuzz/fuzzed.txt records, per target, the hash
# of its sources (every file of the repository its objects are compiled from,
# and its seeds and regressions; see source_hash) at which it was last fuzzed
# for FUZZ_SECONDS >= 60 without a finding. A target whose hash is not the
# recorded one (its code, headers, seeds or regressions changed) runs the full
# FUZZ_SECONDS; an unchanged one gets a smoke run of FUZZ_SMOKE_SECONDS, which
# still executes every seed and regression first.
#   .ci/fuzz.sh --update-record   runs the changed targets in full (all of them
#                                 with FUZZ_FULL=1) and, for each that passes,
#                                 writes its hash to the record; commit it.
#
# Environment: FUZZ_SECONDS (full run per target, default 60),
# FUZZ_SMOKE_SECONDS (default 10), FUZZ_FULL=1 (every target in full),
# FUZZ_TARGETS (space-separated names, default all), FUZZ_BUILD_DIR (default
# build-asan), FUZZ_JOBS (parallel targets, default 1), FUZZ_SKIP_BUILD=1 (use
# the binaries already built).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
FULL_SECONDS="${FUZZ_SECONDS:-60}"
SMOKE_SECONDS="${FUZZ_SMOKE_SECONDS:-10}"
BUILD_DIR="${FUZZ_BUILD_DIR:-build-asan}"
TARGETS="${FUZZ_TARGETS:-recipe_loader template csv_reader json_path xpath cron http_request}"
JOBS="${FUZZ_JOBS:-1}"
RECORD="$ROOT/tests/fuzz/fuzzed.txt"
UPDATE=""
case "${1:-}" in
  --update-record) UPDATE=1 ;;
  "") ;;
  *) echo "usage: .ci/fuzz.sh [--update-record]" >&2; exit 2 ;;
esac
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac

build_targets=()
for t in $TARGETS; do build_targets+=("${t}_fuzzer"); done
if [ -z "${FUZZ_SKIP_BUILD:-}" ]; then
  ASAN_BUILD_DIR="$BUILD_DIR" bash .ci/asan-build.sh "${build_targets[@]}" || exit 1
fi
BUILD_DIR=$(realpath "$BUILD_DIR")

# Symbolized stack traces in the reports (llvm-14).
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ] && [ -x /usr/bin/llvm-symbolizer-14 ]; then
  export ASAN_SYMBOLIZER_PATH=/usr/bin/llvm-symbolizer-14
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/keyonce-fuzz.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# The hash of what target $1 fuzzes: the path and content of every file of the
# repository (or generated into the build) that its objects were compiled from
# (ninja's dependency log: sources and headers, system headers left out), and
# of its seeds and regressions. The same on every machine and in every build
# folder. Fails (prints nothing) unless every object's dependencies are known.
source_hash() {
  local t=$1 objs line p name
  objs=$(cd "$BUILD_DIR" && ninja -t commands "${t}_fuzzer" |
    grep -oE ' -o [^ ]+\.o( |$)' | awk '{print $2}' | sort -u)
  [ -n "$objs" ] || return 1
  # shellcheck disable=SC2086
  (cd "$BUILD_DIR" && ninja -t deps $objs) >"$WORK/$t.deps" || return 1
  [ "$(grep -c '(VALID)$' "$WORK/$t.deps")" -eq "$(wc -w <<<"$objs")" ] || return 1
  {
    sed -n 's/^    //p' "$WORK/$t.deps" | sort -u | while read -r line; do
      p=$(cd "$BUILD_DIR" && realpath -m "$line")
      case "$p" in
        "$BUILD_DIR"/*) name="<build>/${p#"$BUILD_DIR"/}" ;;
        "$ROOT"/*) name=${p#"$ROOT"/} ;;
        *) continue ;;
      esac
      printf '%s  %s\n' "$(sha256sum <"$p" | cut -c1-64)" "$name"
    done
    for d in "tests/fuzz/corpus/$t" "tests/fuzz/regressions/$t"; do
      if [ -d "$d" ]; then find "$d" -type f -print0 | sort -z | xargs -0 -r sha256sum; fi
    done
  } | LC_ALL=C sort -k2 | sha256sum | cut -c1-64
}

recorded_hash() {
  [ -f "$RECORD" ] && awk -v t="$1" '$1 == t { print $2 }' "$RECORD"
}

run_one() {
  local t=$1 seconds=$2 dir="$WORK/$1"
  mkdir -p "$dir/corpus" "$dir/artifacts"
  cp -r "$ROOT/tests/fuzz/corpus/$t/." "$dir/corpus/" 2>/dev/null || true
  if [ -d "$ROOT/tests/fuzz/regressions/$t" ]; then
    cp -r "$ROOT/tests/fuzz/regressions/$t/." "$dir/corpus/" 2>/dev/null || true
  fi
  (cd "$dir" && TMPDIR="$dir" \
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "$BUILD_DIR/tests/fuzz/${t}_fuzzer" -max_total_time="$seconds" \
      -rss_limit_mb=2048 -timeout=10 -max_len=65536 -print_final_stats=1 \
      -artifact_prefix="$dir/artifacts/" "$dir/corpus" >"$dir/log" 2>&1)
  echo $? >"$dir/rc"
}

declare -A hash seconds why
for t in $TARGETS; do
  hash[$t]=$(source_hash "$t") || hash[$t]=""
  if [ -n "${FUZZ_FULL:-}" ]; then
    seconds[$t]=$FULL_SECONDS why[$t]="full (FUZZ_FULL)"
  elif [ -z "${hash[$t]}" ]; then
    seconds[$t]=$FULL_SECONDS why[$t]="full (no source hash)"
  elif [ "${hash[$t]}" != "$(recorded_hash "$t")" ]; then
    seconds[$t]=$FULL_SECONDS why[$t]="full (changed since fuzzed.txt)"
  else
    seconds[$t]=$SMOKE_SECONDS why[$t]="smoke (unchanged)"
  fi
done

# At most JOBS targets at a time, the full runs first.
order=$(for t in $TARGETS; do echo "${seconds[$t]} $t"; done | sort -s -rn -k1,1 | cut -d' ' -f2)
running=0
for t in $order; do
  if [ "$running" -ge "$JOBS" ]; then
    wait -n
    running=$((running - 1))
  fi
  run_one "$t" "${seconds[$t]}" &
  running=$((running + 1))
done
wait

failed=0
printf '%-15s %12s %8s %8s %8s  %-32s %s\n' target executions exec/s coverage corpus run result
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
  elif [ -n "$UPDATE" ] && [ -n "${hash[$t]}" ] && [ "${seconds[$t]}" = "$FULL_SECONDS" ] &&
       [ "$FULL_SECONDS" -ge 60 ]; then
    { grep '^#' "$RECORD" 2>/dev/null
      { grep -v '^#' "$RECORD" 2>/dev/null | awk -v t="$t" '$1 != t'
        echo "$t ${hash[$t]}"; } | LC_ALL=C sort; } >"$WORK/record"
    cp "$WORK/record" "$RECORD"
    result="ok, recorded in tests/fuzz/fuzzed.txt"
  fi
  printf '%-15s %12s %8s %8s %8s  %-32s %s\n' "$t" "${execs:-?}" "${speed:-?}" "${cov:-?}" \
    "${corp:-?}" "${seconds[$t]} s ${why[$t]}" "$result"
done
if [ -n "$UPDATE" ] && [ "$FULL_SECONDS" -lt 60 ]; then
  echo "fuzz: nothing recorded: a full run is at least 60 s (FUZZ_SECONDS=$FULL_SECONDS)" >&2
fi
exit $failed
