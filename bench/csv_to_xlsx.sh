#!/usr/bin/env bash
# Benchmark: the municipal absence CSV (bench.py gen, 100,000 rows by
# default) into an Excel workbook with keyonce's xlsx target (libxlsxwriter,
# constant-memory mode), beside openpyxl in write-only mode (the library a
# Python user reaches for). See bench/README.md. Prints records/s and peak
# RSS for each size, and the same recipe into a jsonl file in mode replace as
# the engine's reference (both targets keep every batch pending until the
# final rename). Asserts no speed, but exits 1 when a workbook does not hold
# every row, the two workbooks' cells differ, or a rerun writes anything.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: bench/csv_to_xlsx.sh [options]

  --rows N         rows of the CSV (default 100000 and 400000, to show the
                   flat memory; repeatable)
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
((${#sizes[@]})) || sizes=(100000 400000)
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

work="$(mktemp -d "${TMPDIR:-/tmp}/keyonce-csv-xlsx-bench.XXXXXX")"
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
  "$py" "$bench_py" gen "$rows" data.csv
  # Dates and hours converted from the Danish text as in the csv benchmark;
  # cpr and employee_no stay text (leading zeros), hours a number, the dates
  # real Excel dates.
  cat >recipe.yaml <<'YAML'
recipe: bench-absence-to-xlsx
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
  - name: sheet
    type: xlsx
    path: out/fravaer.xlsx
    sheet: Fravær
    autofilter: true
    columns:
      - {field: cpr, header: CPR, type: text}
      - {field: name, header: Navn}
      - {field: department, header: Afdeling}
      - {field: from_date, header: Fra dato, type: date}
      - {field: to_date, header: Til dato, type: date}
      - {field: hours, header: Timer, type: number}
      - {field: cause, header: Årsag}
      - {field: note, header: Note, type: text}
      - {field: employee_no, header: Medarbejdernr, type: text}
      - {field: cost_centre, header: Omkostningssted, type: text}
YAML
  # The engine's reference: the same run into a jsonl file replaced at the end.
  sed -e 's/^recipe: bench-absence-to-xlsx/recipe: bench-absence-to-jsonl/' \
    -e '/^targets:/,$d' recipe.yaml >recipe-jsonl.yaml
  printf 'targets:\n  - {name: sheet, type: jsonl, mode: replace, path: out/fravaer.jsonl}\n' \
    >>recipe-jsonl.yaml
  "$k" validate recipe.yaml >/dev/null || { "$k" validate recipe.yaml; exit 1; }
  "$k" validate recipe-jsonl.yaml >/dev/null || { "$k" validate recipe-jsonl.yaml; exit 1; }
  for ((r = 1; r <= repeat; r++)); do
    ((repeat == 1)) || echo "  -- repeat $r of $repeat" >&2
    rm -rf out state.db state.db-wal state.db-shm && mkdir out
    "$py" "$bench_py" timeit "$results" "keyonce csv -> xlsx" "$rows" --log run.log -- \
      "$k" run recipe.yaml --state state.db --no-progress || fail "keyonce exited $? (see $d/run.log)"
    # A rerun finds every record journaled: it writes nothing, the workbook stays as it is.
    sum_before=$(cksum <out/fravaer.xlsx)
    "$k" run recipe.yaml --state state.db --no-progress >rerun.log 2>&1 || fail "rerun exited $?"
    if grep -qE "^  sheet: 0 written, $rows unchanged\$" rerun.log &&
      [[ "$(cksum <out/fravaer.xlsx)" == "$sum_before" ]]; then
      echo "    ok: rerun wrote nothing, the workbook is unchanged" >&2
    else
      fail "rerun: $(grep -E '^  sheet: ' rerun.log)"
    fi
    rm -rf state-jsonl.db*
    "$py" "$bench_py" timeit "$results" "keyonce csv -> jsonl replace" "$rows" --log run-jsonl.log -- \
      "$k" run recipe-jsonl.yaml --state state-jsonl.db --no-progress || fail "keyonce (jsonl) exited $?"
    rm -f py.xlsx
    "$py" "$bench_py" timeit "$results" "openpyxl write-only" "$rows" -- \
      "$py" "$xlsx_py" write data.csv py.xlsx || fail "openpyxl baseline exited $?"
    if ((r == 1)); then
      check_eq "keyonce workbook rows, openpyxl workbook rows, cells differing" \
        "$("$py" "$xlsx_py" compare-xlsx out/fravaer.xlsx py.xlsx)" "$rows $rows 0"
    fi
  done
  cd "$work"
  ((keep)) || rm -rf "$d"
done

echo >&2
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)" >&2
"$py" "$bench_py" report "$results"
if ((failures)); then
  echo "$failures correctness check(s) FAILED (see above)" >&2
  exit 1
fi
