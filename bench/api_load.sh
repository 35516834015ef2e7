#!/usr/bin/env bash
# Benchmark: `keyonce serve`'s JSON API under load. Starts the service on a
# free loopback port in a temporary directory (a token, a small recipe run a
# few times so the history is not empty), then sends N GET requests from C
# kept-alive connections with tests/service/api_load.cc (keyonce_api_load)
# and prints requests/s, p50/p90/p99 latency and errors. Asserts no speed;
# exits 1 when any request fails.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: bench/api_load.sh [options]

  --requests N     requests in all (default 20000)
  --connections C  kept-alive connections (default 50)
  --path P         what to GET (default /api/v1/runs?limit=20; e.g. /api/v1/recipes, /health)
  --build DIR      the build directory with engine/cli/keyonce and
                   tests/service/keyonce_api_load (default $KEYONCE_BUILD, else build/)
  --keep           keep the temporary directory (its path is printed)
  -h, --help       this text
USAGE
}

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$(cd "$here/.." && pwd)"
requests=20000
connections=50
path='/api/v1/runs?limit=20'
build="${KEYONCE_BUILD:-$src/build}"
keep=0
while (($#)); do
  case "$1" in
    --requests) requests="$2"; shift ;;
    --connections) connections="$2"; shift ;;
    --path) path="$2"; shift ;;
    --build) build="$2"; shift ;;
    --keep) keep=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

keyonce="$build/engine/cli/keyonce"
load="$build/tests/service/keyonce_api_load"
for f in "$keyonce" "$load"; do
  [ -x "$f" ] || { echo "missing $f: build it with ninja -C $build keyonce keyonce_api_load" >&2; exit 2; }
done

work="$(mktemp -d "${TMPDIR:-/tmp}/keyonce-api-load.XXXXXX")"
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  if [ "$keep" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# A token (only its hash is written) and the service test's forms recipe.
token="ko_$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')"
hash="$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)"
printf 'tokens:\n  - name: bench\n    role: operator\n    sha256: %s\n' "$hash" > "$work/tokens.yaml"
mkdir -p "$work/recipes/data"
cp "$src/tests/service/fixtures/recipes/forms.yaml" "$work/recipes/"
cp "$src/tests/service/fixtures/recipes/data/people.csv" "$work/recipes/data/"
# The operator token may not start runs: a second, admin token for that.
admin="ko_$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf '  - name: bench-admin\n    role: admin\n    sha256: %s\n' \
  "$(printf '%s' "$admin" | sha256sum | cut -d' ' -f1)" >> "$work/tokens.yaml"

"$keyonce" serve --recipes "$work/recipes" --state "$work/state.db" --tokens "$work/tokens.yaml" \
  --listen 127.0.0.1:0 2> "$work/serve.log" &
pid=$!
port=""
for _ in $(seq 1 600); do
  port="$(grep -o 'listening on http://127\.0\.0\.1:[0-9]*' "$work/serve.log" | head -1 | sed 's/.*://')" || true
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/serve.log" >&2; echo "keyonce serve exited" >&2; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { cat "$work/serve.log" >&2; echo "keyonce serve did not start" >&2; exit 1; }
base="http://127.0.0.1:$port"

for i in 1 2 3; do
  curl -sf --noproxy '*' -o /dev/null -X POST -H "Authorization: Bearer $admin" \
    -H 'Content-Type: application/json' -d '{"params":{"count":1}}' \
    "$base/api/v1/recipes/forms/runs"
done
sleep 2

echo "keyonce serve $("$keyonce" --version 2>/dev/null || true) on $base, GET $path"
echo "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$load" --url "$base$path" --token "$token" --requests "$requests" --connections "$connections"
