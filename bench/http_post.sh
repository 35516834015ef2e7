#!/usr/bin/env bash
# Benchmark: POST 10,000 JSON records to a local nginx, with wrk (the
# physical limit), a plain Python http.client script and keyonce's http
# target (journal on), at 1 and 8 requests in flight. See bench/README.md.
# Prints figures; asserts no speed, but exits 1 when a workload fails or does
# not post every record.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: bench/http_post.sh [options]

  --records N      records posted by Python and keyonce (default 10000)
  --seconds S      how long each wrk run lasts (default 10)
  --repeat R       run the Python and keyonce workloads R times, report the median (default 1)
  --profile        also record keyonce at in_flight 8 with `perf` and print where the time goes
  --keyonce PATH   the keyonce binary (default $KEYONCE, else build/engine/cli/keyonce of
                   this checkout, else keyonce on PATH)
  --keep           keep the temporary directory (its path is printed)
  -h, --help       this text
EOF
}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
records=10000
seconds=10
repeat=1
profile=0
keep=0
keyonce="${KEYONCE:-}"
while (($#)); do
  case "$1" in
    --records) records="$2"; shift ;;
    --seconds) seconds="$2"; shift ;;
    --repeat) repeat="$2"; shift ;;
    --profile) profile=1 ;;
    --keyonce) keyonce="$2"; shift ;;
    --keep) keep=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
if [[ -z "$keyonce" ]]; then
  repo_bin="$here/../${KEYONCE_BUILD_DIR:-build}/engine/cli/keyonce"
  if [[ -x "$repo_bin" ]]; then keyonce="$repo_bin"; else keyonce="$(command -v keyonce || true)"; fi
fi
[[ -x "$keyonce" ]] || { echo "keyonce binary not found; use --keyonce PATH" >&2; exit 2; }
nginx=/usr/sbin/nginx
[[ -x "$nginx" ]] || { echo "nginx not found at $nginx (apt-get install nginx-light)" >&2; exit 2; }
command -v wrk >/dev/null || { echo "wrk not found (apt-get install wrk)" >&2; exit 2; }
if ((profile)); then
  command -v perf >/dev/null || { echo "--profile needs perf (apt-get install linux-perf)" >&2; exit 2; }
fi

# The real interpreter, not a wrapper such as a pyenv shim.
py="$(python3 -c 'import sys; print(sys.executable)')"
helper="$here/http_post_bench.py"
timeit() { "$py" "$here/bench.py" timeit "$@"; }  # RESULTS LABEL N [--log F] -- command

work="$(mktemp -d "${TMPDIR:-/tmp}/keyonce-http-bench.XXXXXX")"
nginx_pid=""
cleanup() {
  if [[ -n "$nginx_pid" ]]; then
    kill "$nginx_pid" 2>/dev/null || true
    wait "$nginx_pid" 2>/dev/null || true
  fi
  if ((keep)); then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

cp "$keyonce" "$work/keyonce"  # a rebuild during the benchmark changes nothing
k="$work/keyonce"
results="$work/results.tsv"
rates="$work/rates.tsv"
: >"$results"
: >"$rates"
failures=0
fail() { echo "    FAIL: $*" >&2; failures=$((failures + 1)); }

echo "keyonce: $keyonce ($("$k" version)), built $(date -r "$keyonce" '+%F %T')" >&2
echo "nginx $("$nginx" -v 2>&1 | sed 's/.*\///'), $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)," \
  "python $("$py" -c 'import platform; print(platform.python_version())')" >&2
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at start; work dir $work" >&2

# nginx on a free loopback port: a canned 201 with a JSON body, keep-alive for
# as many requests as a client sends, no access log.
port="$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
mkdir -p "$work/nginx/tmp"
user_line=""
(($(id -u) == 0)) && user_line="user root;"
cat >"$work/nginx/nginx.conf" <<EOF
$user_line
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 300s;
  client_body_temp_path $work/nginx/tmp/body;
  proxy_temp_path $work/nginx/tmp/proxy;
  fastcgi_temp_path $work/nginx/tmp/fastcgi;
  uwsgi_temp_path $work/nginx/tmp/uwsgi;
  scgi_temp_path $work/nginx/tmp/scgi;
  server {
    listen 127.0.0.1:$port;
    location /cases {
      default_type application/json;
      return 201 '{"id":1}';
    }
  }
}
EOF
"$nginx" -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' >"$work/nginx/stderr.log" 2>&1 &
nginx_pid=$!
for _ in $(seq 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  sleep 0.1
done
(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null ||
  { echo "nginx did not start: $(cat "$work/nginx/stderr.log" "$work/nginx/error.log" 2>/dev/null)" >&2; exit 1; }
url="http://127.0.0.1:$port/cases"
echo "nginx: $url (pid $nginx_pid)" >&2

"$py" "$helper" gen "$records" "$work/data.csv"

# (1) wrk: the physical limit of this machine for this request.
for c in 1 8; do
  t=$((c < 2 ? 1 : 2))
  label="wrk, $c connection$([[ $c == 1 ]] || echo s)"
  echo "== $label ($seconds s)" >&2
  timeit "$results" "$label" 0 --log "$work/wrk-$c.log" -- \
    wrk -t"$t" -c"$c" -d"${seconds}s" -s "$here/http_post_wrk.lua" "$url" || fail "wrk exited $?"
  n=$(awk '/requests in/ {print $1}' "$work/wrk-$c.log")
  rate=$(awk '/^Requests\/sec:/ {print $2}' "$work/wrk-$c.log")
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$work/wrk-$c.log")
  [[ -z "$non2xx" ]] || fail "wrk got $non2xx non-2xx answers"
  printf '%s\t%s\t%s\n' "$label" "${n:-0}" "${rate:-0}" >>"$rates"
done

# (3) keyonce: the CSV into the http target, journal on (state file on disk).
write_recipe() {  # file in_flight
  cat >"$1" <<EOF
recipe: bench-http-post
description: Fravær til et REST-sagssystem (nginx med et fast svar)
source: {type: csv, path: data.csv, delimiter: ","}
key: "{{ record.id }}"
targets:
  - name: cases
    type: http
    method: POST
    url: "$url"
    in_flight: $2
    body:
      id: "{{ record.id }}"
      name: "{{ record.name }}"
      department: "{{ record.department }}"
      from_date: "{{ record.from_date }}"
      hours: "{{ record.hours }}"
      cause: "{{ record.cause }}"
EOF
  "$k" validate "$1" >/dev/null || { echo "recipe $1 does not validate:" >&2; "$k" validate "$1" >&2; exit 1; }
}

check_written() {  # log what
  if grep -qE "^  cases: $records written" "$1"; then
    echo "    ok: $2 wrote $records records" >&2
  else
    fail "$2: summary $(grep -E '^  cases: ' "$1" || tail -3 "$1")"
  fi
}

for ((r = 1; r <= repeat; r++)); do
  ((repeat == 1)) || echo "-- repeat $r of $repeat" >&2
  # (2) Python's http.client, keep-alive, 1 connection and 8 threads.
  for c in 1 8; do
    label="python http.client, $c connection$([[ $c == 1 ]] || echo s)"
    echo "== $label" >&2
    timeit "$results" "$label" "$records" --log "$work/py-$c.log" -- \
      "$py" "$helper" post "$url" "$work/data.csv" --threads "$c" || fail "$label exited $?"
    grep -q "^python http.client: $records records posted (201), 0 errors" "$work/py-$c.log" ||
      fail "$label: $(cat "$work/py-$c.log")"
  done

  for c in 1 8; do
    label="keyonce in_flight $c, $c connection$([[ $c == 1 ]] || echo s)"
    echo "== $label" >&2
    d="$work/keyonce-$c"
    rm -rf "$d" && mkdir -p "$d" && ln -s ../data.csv "$d/data.csv"
    write_recipe "$d/recipe.yaml" "$c"
    (cd "$d" && timeit "$results" "$label" "$records" --log run.log -- \
      "$k" run recipe.yaml --state state.db --no-progress) || fail "$label exited $? (see $d/run.log)"
    check_written "$d/run.log" "$label"
  done
done

# A rerun writes nothing: every record is found in the journal.
d="$work/keyonce-8"
echo "== keyonce rerun (nothing to write)" >&2
(cd "$d" && timeit "$results" "keyonce rerun (no writes)" "$records" --log rerun.log -- \
  "$k" run recipe.yaml --state state.db --no-progress) || fail "keyonce rerun exited $?"
if grep -qE "^  cases: 0 written, $records unchanged" "$d/rerun.log"; then
  echo "    ok: rerun wrote nothing" >&2
else
  fail "rerun summary: $(grep -E '^  cases: ' "$d/rerun.log" || tail -3 "$d/rerun.log")"
fi

if ((profile)); then
  d="$work/profile"
  rm -rf "$d" && mkdir -p "$d" && ln -s ../data.csv "$d/data.csv"
  write_recipe "$d/recipe.yaml" 8
  echo "== perf record of keyonce in_flight 8" >&2
  (cd "$d" && perf record -q -F 1999 -g -o perf.data -- \
    "$k" run recipe.yaml --state state.db --no-progress >run.log 2>&1) || fail "perf run failed"
  echo >&2
  echo "where keyonce's CPU time goes (perf, in_flight 8, self time by shared object, then symbol):" >&2
  # awk, not head: head would end the pipe early (SIGPIPE under pipefail).
  perf report -i "$d/perf.data" --no-children --sort dso --stdio 2>/dev/null |
    awk '/^ +[0-9.]+%/ && n++ < 12 { sub(/ +$/, ""); print }' >&2 || true
  perf report -i "$d/perf.data" --no-children --sort symbol --stdio -g none 2>/dev/null |
    awk '/^ +[0-9.]+%/ && n++ < 25 { sub(/[ -]+$/, ""); print substr($0, 1, 150) }' >&2 || true
fi

echo >&2
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)" >&2
if ((repeat > 1)); then
  # The median of the repeats per workload (wrk ran once).
  "$py" - "$results" <<'EOF'
import sys
runs, order = {}, []
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    if f[0] not in runs:
        runs[f[0]] = []
        order.append(f[0])
    runs[f[0]].append(f)
with open(sys.argv[1], "w") as out:
    for label in order:
        rs = sorted(runs[label], key=lambda f: float(f[2]))
        med = rs[(len(rs) - 1) // 2]
        med[4] = str(max(int(f[4]) for f in rs))
        out.write("\t".join(med) + "\n")
EOF
fi
"$py" "$helper" report "$results" "$rates"
if ((failures)); then
  echo "$failures check(s) FAILED (see above)" >&2
  exit 1
fi
