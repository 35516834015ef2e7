#!/usr/bin/env bash
# Benchmark: an absence export kept as an Excel sheet (100,000 rows) into
# SQLite (upsert), with keyonce's xlsx source and with openpyxl (read-only
# mode), the library a Python user reaches for. See bench/README.md. Prints
# records/s and peak RSS; asserts no speed, but exits 1 when an output is
# incomplete or the two tables differ.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: bench/xlsx_to_sqlite.sh [options]

  --rows N         rows of the sheet (default 100000; repeatable)
  --repeat R       run every workload R times and report the median (default 1)
  --keyonce PATH   the keyonce binary (default $KEYONCE, else
                   build/engine/cli/keyonce of this checkout, else keyonce on PATH)
  --keep           keep the temporary directory (its path is printed)
  -h, --help       this text
USAGE
}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
sizes=()
repeat=1
keep=0
keyonce="${KEYONCE:-}"
while (($#)); do
  case "$1" in
    --rows) sizes+=("$2"); shift ;;
    --repeat) repeat="$2"; shift ;;
    --keyonce) keyonce="$2"; shift ;;
    --keep) keep=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
((${#sizes[@]})) || sizes=(100000)
if [[ -z "$keyonce" ]]; then
  repo_bin="$here/../${KEYONCE_BUILD_DIR:-build}/engine/cli/keyonce"
  if [[ -x "$repo_bin" ]]; then keyonce="$repo_bin"; else keyonce="$(command -v keyonce || true)"; fi
fi
[[ -x "$keyonce" ]] || { echo "keyonce binary not found; use --keyonce PATH" >&2; exit 2; }
# openpyxl is Debian's python3-openpyxl: Debian's interpreter, not one on PATH without it.
py=/usr/bin/python3
"$py" -c 'import openpyxl' 2>/dev/null || { echo "python3-openpyxl is not installed" >&2; exit 2; }
bench_py="$here/bench.py"
xlsx_py="$here/xlsx_bench.py"

work="$(mktemp -d "${TMPDIR:-/tmp}/keyonce-xlsx-bench.XXXXXX")"
cleanup() { if ((keep)); then echo "kept $work" >&2; else rm -rf "$work"; fi; }
trap cleanup EXIT
cp "$keyonce" "$work/keyonce"
k="$work/keyonce"
results="$work/results.tsv"
: >"$results"
failures=0
fail() { echo "    FAIL: $*" >&2; failures=$((failures + 1)); }
check_eq() {  # what, got, want
  if [[ "$2" == "$3" ]]; then echo "    ok: $1 = $2" >&2; else fail "$1 = $2, expected $3"; fi
}

echo "keyonce: $keyonce ($("$k" version)); python $("$py" -c 'import platform, openpyxl; print(platform.python_version(), "openpyxl", openpyxl.__version__)')" >&2
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at start; work dir $work" >&2

for rows in "${sizes[@]}"; do
  d="$work/$rows"
  mkdir -p "$d"
  cd "$d"
  echo >&2
  echo "== $rows rows" >&2
  t0=$EPOCHREALTIME
  "$py" "$xlsx_py" gen "$rows" data.xlsx
  echo "    generated $(du -h data.xlsx | cut -f1) xlsx in $("$py" -c "print('%.1f' % ($EPOCHREALTIME - $t0))") s" >&2
  # The same table as the csv benchmark's payroll target; the sheet holds real
  # dates and numbers, so no conversion steps are needed.
  cat >recipe.yaml <<'YAML'
recipe: bench-absence-xlsx
source: {type: xlsx, path: data.xlsx, sheet: Fravær}
key: "{{ record.cpr }}/{{ record.from_date }}"
subject: "{{ record.cpr }}"
targets:
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
YAML
  "$k" validate recipe.yaml >/dev/null || { "$k" validate recipe.yaml; exit 1; }
  for ((r = 1; r <= repeat; r++)); do
    ((repeat == 1)) || echo "  -- repeat $r of $repeat" >&2
    rm -rf out state.db state.db-wal state.db-shm && mkdir out
    "$py" "$bench_py" timeit "$results" "keyonce xlsx -> sqlite" "$rows" --log run.log -- \
      "$k" run recipe.yaml --state state.db --no-progress || fail "keyonce exited $? (see $d/run.log)"
    check_eq "keyonce sqlite rows" "$("$py" "$bench_py" count-sqlite out/payroll.db absence)" "$rows"
    rm -f py.db py.db-wal py.db-shm
    "$py" "$bench_py" timeit "$results" "openpyxl -> sqlite" "$rows" -- \
      "$py" "$xlsx_py" baseline data.xlsx py.db || fail "openpyxl baseline exited $?"
    check_eq "openpyxl sqlite rows" "$("$py" "$bench_py" count-sqlite py.db absence)" "$rows"
    if ((r == 1)); then
      check_eq "rows keyonce-only, openpyxl-only (values and types)" \
        "$("$py" "$bench_py" compare out/payroll.db py.db absence)" "0 0"
    fi
  done
  cd "$work"
  ((keep)) || rm -rf "$d"
done

echo >&2
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)" >&2
"$py" "$bench_py" report "$results"
"$py" - "$results" <<'PY'
import collections, sys
med = collections.defaultdict(list)
for line in open(sys.argv[1]):
    label, rows, secs = line.split("\t")[:3]
    med[(label, int(rows))].append(float(secs))
for rows in sorted({k[1] for k in med}):
    k = sorted(med.get(("keyonce xlsx -> sqlite", rows), []))
    p = sorted(med.get(("openpyxl -> sqlite", rows), []))
    if k and p:
        print("%d rows: keyonce/openpyxl records/s = %.2f (goal: 5)"
              % (rows, p[(len(p) - 1) // 2] / k[(len(k) - 1) // 2]))
PY
if ((failures)); then
  echo "$failures correctness check(s) FAILED (see above)" >&2
  exit 1
fi
