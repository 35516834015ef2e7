#!/usr/bin/env bash
# keyonce serve with the sick-leave recipe: the API a caseworker's page uses, the quarantine
# inbox an operator works from, metrics, and the audit log for one person.
#
# Usage: bash examples/serve/run.sh          (installs what is missing, builds, runs, stops)
#        bash examples/serve/run.sh --keep   (keeps the service running: open the page it prints)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# KEYONCE=/path/to/keyonce (as the test suite does) skips installing and building.
if [ -z "${KEYONCE:-}" ]; then
  bash "$root/.ci/install-deps.sh"
  KEYONCE_BUILD_TARGET=keyonce bash "$root/.ci/build.sh"
fi
keyonce="${KEYONCE:-$root/${KEYONCE_BUILD_DIR:-build}/engine/cli/keyonce}"
keep=false
[ "${1:-}" = "--keep" ] && keep=true

work="$(mktemp -d /tmp/keyonce-serve.XXXXXX)"
pid=""
cleanup() {
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

mkdir -p "$work/recipes"
cp -r "$root/examples/sick_leave/recipe.yaml" "$root/examples/sick_leave/data" "$work/recipes/"
caseworker="$("$keyonce" token new --name anna --role caseworker --recipe sick-leave-to-payroll)"
operator="$("$keyonce" token new --name olga --role operator)"
{
  echo "tokens:"
  echo "$caseworker" | tail -n +3
  echo "$operator" | tail -n +3
} > "$work/tokens.yaml"
anna="$(echo "$caseworker" | head -1)"
olga="$(echo "$operator" | head -1)"

say "Start the service (state file, recipes folder, tokens; a free port on 127.0.0.1)"
"$keyonce" serve --recipes "$work/recipes" --state "$work/state.db" --tokens "$work/tokens.yaml" \
  --listen 127.0.0.1:0 2> "$work/serve.log" &
pid=$!
for _ in $(seq 1 100); do
  grep -q "listening on" "$work/serve.log" 2>/dev/null && break
  sleep 0.1
done
url="$(grep -o 'http://127.0.0.1:[0-9]*' "$work/serve.log" | head -1)"
cat "$work/serve.log"

api() {  # api TOKEN METHOD PATH [JSON]
  local args=(-sS -X "$2" -H "Authorization: Bearer $1")
  [ $# -ge 4 ] && args+=(-H "Content-Type: application/json" -d "$4")
  curl "${args[@]}" "$url$3"
}
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

say "The recipes Anna (caseworker) may start, with the next scheduled run"
api "$anna" GET /api/v1/recipes | field '"\n".join(r["label"] + " — params: " + ", ".join(p["label"] for p in r["params"]) + " — next run: " + r["schedule"]["next_run"] for r in d)'

say "Anna starts it with a parameter that is wrong, then with the right one"
api "$anna" POST /api/v1/recipes/sick-leave-to-payroll/runs '{"params":{"fil":"data/sygefravaer.csv"}}'; echo
run="$(api "$anna" POST /api/v1/recipes/sick-leave-to-payroll/runs '{"params":{"file":"data/sygefravaer.csv"}}' | field 'd["id"]')"
for _ in $(seq 1 100); do
  status="$(api "$anna" GET "/api/v1/runs/$run" | field 'd["status"]')"
  [ "$status" != queued ] && [ "$status" != running ] && break
  sleep 0.2
done
api "$anna" GET "/api/v1/runs/$run" | field '"status: " + d["status"] + "\n" + d["outcome"] + "\n" + "\n".join("  inbox: " + (q["ref"] or q["position"]) + " — " + q["reason"] for q in d["quarantined"])'

say "Olga (operator) fixes the record whose hours were 'mange' and retries it"
item="$(api "$olga" GET "/api/v1/quarantine?recipe=sick-leave-to-payroll" | field '[q["id"] for q in d if "Timer" in q["reason"]][0]')"
api "$olga" PATCH "/api/v1/quarantine/$item" '{"fields":{"Timer":"7,5"}}' > /dev/null
retry="$(api "$olga" POST "/api/v1/quarantine/$item/retry" | field 'd["id"]')"
for _ in $(seq 1 100); do
  status="$(api "$olga" GET "/api/v1/runs/$retry" | field 'd["status"]')"
  [ "$status" != queued ] && [ "$status" != running ] && break
  sleep 0.2
done
api "$olga" GET "/api/v1/runs/$retry" | field '"retry run: " + d["status"] + " — " + d["outcome"]'
echo "still in the inbox:"
api "$olga" GET "/api/v1/quarantine?recipe=sick-leave-to-payroll" | field '"\n".join("  " + (q["ref"] or q["position"]) + " — " + q["reason"] for q in d)'

say "Metrics (Prometheus)"
api "$olga" GET /metrics | grep -E '^keyonce_(runs_total|records_read_total|records_written_total\{.*payroll|records_quarantined_total)'

say "A citizen asks what was done with their data: keyonce audit --subject (CPR from stdin)"
echo "010185-1233" | "$keyonce" audit --subject - --state "$work/state.db"

if $keep; then
  say "The service keeps running: open $url/ and log in with a token (Ctrl-C stops it)"
  echo "caseworker token: $anna"
  echo "operator token:   $olga"
  wait "$pid"
else
  say "Stop it (SIGTERM): runs in flight stop at a batch boundary and resume at the next start"
  kill -TERM "$pid"
  wait "$pid" && echo "the service stopped cleanly (exit 0)"
  pid=""
  tail -2 "$work/serve.log"
fi
