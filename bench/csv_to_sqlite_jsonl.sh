#!/usr/bin/env bash
# Benchmark: a municipal absence export (CSV, ';', Windows-1252) into SQLite
# (upsert) and JSONL at once, with keyonce, with plain Python and with the
# sqlite3 CLI's .import. See bench/README.md. Prints figures; asserts no speed,
# but exits 1 when an output is incomplete or differs.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: bench/csv_to_sqlite_jsonl.sh [options]

  --quick          100,000 rows only (skip the 1,000,000-row size)
  --rows N         one size of N rows instead (repeatable)
  --repeat R       run every workload R times and report the median (default 1)
  --breakdown      also time keyonce with only the sqlite target and only the
                   jsonl target (fresh state each), to see which part costs
  --keyonce PATH   the keyonce binary (default $KEYONCE, else
                   build/engine/cli/keyonce of this checkout, else keyonce on PATH)
  --keep           keep the temporary directory (its path is printed)
  -h, --help       this text
EOF
}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
sizes=()
quick=0
repeat=1
breakdown=0
keep=0
keyonce="${KEYONCE:-}"
while (($#)); do
  case "$1" in
    --quick) quick=1 ;;
    --rows) sizes+=("$2"); shift ;;
    --repeat) repeat="$2"; shift ;;
    --breakdown) breakdown=1 ;;
    --keyonce) keyonce="$2"; shift ;;
    --keep) keep=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
if ((${#sizes[@]} == 0)); then
  if ((quick)); then sizes=(100000); else sizes=(100000 1000000); fi
fi
if [[ -z "$keyonce" ]]; then
  repo_bin="$(cd "$(dirname "$0")/.." && pwd)/${KEYONCE_BUILD_DIR:-build}/engine/cli/keyonce"
  if [[ -x "$repo_bin" ]]; then
    keyonce="$repo_bin"
  else
    keyonce="$(command -v keyonce || true)"
  fi
fi
[[ -x "$keyonce" ]] || { echo "keyonce binary not found; use --keyonce PATH" >&2; exit 2; }
command -v sqlite3 >/dev/null || { echo "sqlite3 CLI not found" >&2; exit 2; }

# The real interpreter, not a wrapper such as a pyenv shim (whose start-up
# would be timed with the baseline).
py="$(python3 -c 'import sys; print(sys.executable)')"
bench_py="$here/bench.py"

work="$(mktemp -d "${TMPDIR:-/tmp}/keyonce-bench.XXXXXX")"
cleanup() {
  if ((keep)); then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# A private copy, so a rebuild of the binary during the benchmark changes nothing.
cp "$keyonce" "$work/keyonce"
k="$work/keyonce"
results="$work/results.tsv"
: >"$results"
failures=0

fail() { echo "    FAIL: $*" >&2; failures=$((failures + 1)); }
check_eq() {  # what, got, want
  if [[ "$2" == "$3" ]]; then echo "    ok: $1 = $2" >&2; else fail "$1 = $2, expected $3"; fi
}

echo "keyonce: $keyonce ($("$k" version)), built $(date -r "$keyonce" '+%F %T')" >&2
echo "python:  $py ($("$py" -c 'import platform; print(platform.python_version())')), sqlite3 CLI $(sqlite3 --version | cut -d' ' -f1)" >&2
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at start; work dir $work" >&2

# The recipe: the steps a real one has (CPR normalised, Danish dates to ISO,
# decimal-comma hours to numbers), the person as the audit log's subject,
# then an upsert into SQLite and the whole record into a JSONL audit trail.
# $1: targets to include (payroll audit).
write_recipe() {
  local file="$1"; shift
  cat >"$file" <<'EOF'
recipe: bench-absence
description: Fravær fra vagtplanens eksport til løn (SQLite) og revisionsspor (JSONL)
source: {type: csv, path: data.csv, delimiter: ";", encoding: windows-1252}
steps:
  - set:
      cpr: "{{ record.cpr | cpr }}"
      from_date: "{{ record.from_date | date('dk') }}"
      to_date: "{{ record.to_date | date('dk') }}"
      hours: "{{ record.hours | number(',') }}"
key: "{{ record.cpr }}/{{ record.from_date }}"
subject: "{{ record.cpr }}"
batch_records: 10000
targets:
EOF
  local t
  for t in "$@"; do
    case "$t" in
      payroll) cat >>"$file" <<'EOF'
  - name: payroll
    type: sqlite
    path: out/payroll.db
    table: absence
    create_table: true
    key_columns: [cpr, from_date]
    mode: upsert
    columns:
      cpr: "{{ record.cpr }}"
      from_date: "{{ record.from_date }}"
      to_date: "{{ record.to_date }}"
      hours: "{{ record.hours }}"
      name: "{{ record.name }}"
      department: "{{ record.department }}"
      cause: "{{ record.cause }}"
      note: "{{ record.note }}"
      employee_no: "{{ record.employee_no }}"
      cost_centre: "{{ record.cost_centre }}"
EOF
      ;;
      audit) cat >>"$file" <<'EOF'
  - name: audit
    type: jsonl
    path: out/audit.jsonl
EOF
      ;;
    esac
  done
  "$k" validate "$file" >/dev/null || { echo "recipe $file does not validate" >&2; "$k" validate "$file"; exit 1; }
}

# `keyonce test` of the full recipe on one fixture row: what each target gets.
test_recipe() {  # dir holding recipe.yaml
  cat >"$1/recipe_test.yaml" <<'EOF'
recipe: recipe.yaml
cases:
  - name: CPR without dash, empty end date, thousands point, quoted note
    input:
      - {cpr: "0101851233", name: "Åse Ærø", department: "KØKKEN", from_date: "02-11-2026",
         to_date: "", hours: "1.110,5", cause: "Sygdom", note: 'Sagt: "ryg; kan ikke løfte"',
         employee_no: "100007", cost_centre: "4600", position: "Økonoma",
         registered_at: "03-11-2026 07:15"}
    expect:
      payroll:
        - table: absence
          op: upsert
          values: {cpr: "0101851233", from_date: "2026-11-02", to_date: null, hours: 1110.5,
                   name: "Åse Ærø", department: "KØKKEN", cause: "Sygdom",
                   note: 'Sagt: "ryg; kan ikke løfte"', employee_no: "100007", cost_centre: "4600"}
      audit:
        - {cpr: "0101851233", name: "Åse Ærø", department: "KØKKEN", from_date: "2026-11-02",
           to_date: null, hours: 1110.5, cause: "Sygdom", note: 'Sagt: "ryg; kan ikke løfte"',
           employee_no: "100007", cost_centre: "4600", position: "Økonoma",
           registered_at: "03-11-2026 07:15"}
EOF
  if "$k" test "$1/recipe_test.yaml" >"$1/recipe_test.log" 2>&1; then
    echo "    ok: keyonce test of the recipe passes" >&2
  else
    fail "keyonce test of the recipe: $(cat "$1/recipe_test.log")"
  fi
}

# Every target line of a run summary must say "0 written, N unchanged".
check_rerun_log() {  # log, rows
  local lines zero
  lines=$(grep -cE '^  [a-z]+: ' "$1" || true)
  zero=$(grep -cE "^  [a-z]+: 0 written, $2 unchanged\$" "$1" || true)
  if ((lines > 0 && lines == zero)); then
    echo "    ok: rerun wrote nothing ($zero targets: 0 written, $2 unchanged)" >&2
  else
    fail "rerun summary: $(grep -E '^  [a-z]+: ' "$1" | tr '\n' ' ')"
  fi
}

for rows in "${sizes[@]}"; do
  d="$work/$rows"
  mkdir -p "$d"
  echo >&2
  echo "== $rows rows" >&2
  t0=$EPOCHREALTIME
  "$py" "$bench_py" gen "$rows" "$d/data.csv"
  # The sqlite3 CLI reads UTF-8 only: convert outside the timing.
  iconv -f WINDOWS-1252 -t UTF-8 "$d/data.csv" >"$d/data-utf8.csv"
  echo "    generated $(du -h "$d/data.csv" | cut -f1) CSV in $("$py" -c "print('%.1f' % ($EPOCHREALTIME - $t0))") s" >&2
  write_recipe "$d/recipe.yaml" payroll audit
  test_recipe "$d"
  if ((breakdown)); then
    write_recipe "$d/recipe-sqlite.yaml" payroll
    write_recipe "$d/recipe-jsonl.yaml" audit
  fi

  for ((r = 1; r <= repeat; r++)); do
    ((repeat == 1)) || echo "  -- repeat $r of $repeat" >&2
    cd "$d"

    # keyonce: fresh state DB and outputs.
    rm -rf out state.db state.db-wal state.db-shm && mkdir out
    "$py" "$bench_py" timeit "$results" "keyonce sqlite+jsonl" "$rows" --log run1.log -- \
      "$k" run recipe.yaml --state state.db --no-progress || fail "keyonce exited $? (see $d/run1.log)"
    check_eq "keyonce sqlite rows" "$("$py" "$bench_py" count-sqlite out/payroll.db absence)" "$rows"
    check_eq "keyonce jsonl lines" "$("$py" "$bench_py" count-lines out/audit.jsonl)" "$rows"
    sum_before=$(cksum <out/audit.jsonl)

    # The same again on the same state: every record is journalled, nothing is written.
    "$py" "$bench_py" timeit "$results" "keyonce rerun (no writes)" "$rows" --log run2.log -- \
      "$k" run recipe.yaml --state state.db --no-progress || fail "keyonce rerun exited $? (see $d/run2.log)"
    check_rerun_log run2.log "$rows"
    check_eq "after rerun, sqlite rows" "$("$py" "$bench_py" count-sqlite out/payroll.db absence)" "$rows"
    if [[ "$(cksum <out/audit.jsonl)" == "$sum_before" ]]; then
      echo "    ok: jsonl unchanged by the rerun" >&2
    else
      fail "the rerun changed out/audit.jsonl"
    fi

    # Plain Python, same work.
    rm -f py.db py.db-wal py.db-shm py.jsonl
    "$py" "$bench_py" timeit "$results" "python sqlite+jsonl" "$rows" -- \
      "$py" "$bench_py" baseline data.csv py.db py.jsonl || fail "python baseline exited $?"
    check_eq "python sqlite rows" "$("$py" "$bench_py" count-sqlite py.db absence)" "$rows"
    check_eq "python jsonl lines" "$("$py" "$bench_py" count-lines py.jsonl)" "$rows"
    if ((r == 1)); then
      check_eq "sqlite rows keyonce-only, python-only" "$("$py" "$bench_py" compare out/payroll.db py.db absence)" "0 0"
      check_eq "jsonl records differing keyonce vs python" "$("$py" "$bench_py" compare-jsonl out/audit.jsonl py.jsonl)" "0"
    fi

    # Physical reference: the sqlite3 CLI's .import of the UTF-8 copy, no conversion, no key.
    rm -f import.db
    "$py" "$bench_py" timeit "$results" "sqlite3 .import (reference)" "$rows" -- \
      sqlite3 import.db ".mode csv" ".separator ;" ".import data-utf8.csv absence" \
      || fail "sqlite3 .import exited $?"
    check_eq "sqlite3 .import rows" "$("$py" "$bench_py" count-sqlite import.db absence)" "$rows"

    if ((breakdown)); then
      rm -rf out state.db state.db-wal state.db-shm && mkdir out
      "$py" "$bench_py" timeit "$results" "keyonce sqlite only" "$rows" --log run-sqlite.log -- \
        "$k" run recipe-sqlite.yaml --state state.db --no-progress || fail "keyonce (sqlite only) exited $?"
      check_eq "keyonce sqlite-only rows" "$("$py" "$bench_py" count-sqlite out/payroll.db absence)" "$rows"
      rm -rf out state.db state.db-wal state.db-shm && mkdir out
      "$py" "$bench_py" timeit "$results" "keyonce jsonl only" "$rows" --log run-jsonl.log -- \
        "$k" run recipe-jsonl.yaml --state state.db --no-progress || fail "keyonce (jsonl only) exited $?"
      check_eq "keyonce jsonl-only lines" "$("$py" "$bench_py" count-lines out/audit.jsonl)" "$rows"
    fi
    cd "$work"
  done
  # The big files are not needed any more.
  ((keep)) || rm -rf "$d"
done

echo >&2
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)" >&2
"$py" "$bench_py" report "$results"
if ((failures)); then
  echo "$failures correctness check(s) FAILED (see above)" >&2
  exit 1
fi
