#!/usr/bin/env bash
# The municipal case flow, end to end, with its demo systems on loopback:
#
#   CSV export -> folkeregister lookup (REST, json-server) -> case created over SOAP (the npm
#   `soap` case system) -> payment row with the case id in PostgreSQL -> summary mail (smtp-server)
#
# Usage: bash examples/case_flow/run.sh   (installs what is missing, builds keyonce, runs twice)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# KEYONCE=/path/to/keyonce (as the test suite does) skips installing and building.
if [ -z "${KEYONCE:-}" ]; then
  bash "$root/.ci/install-deps.sh"
  KEYONCE_BUILD_TARGET=keyonce bash "$root/.ci/build.sh"
fi
keyonce="${KEYONCE:-$root/${KEYONCE_BUILD_DIR:-build}/engine/cli/keyonce}"

work="$(mktemp -d /tmp/keyonce-case-flow.XXXXXX)"
chmod 755 "$work"   # PostgreSQL runs as its own user when we are root
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  bash "$root/tests/support/pg_cluster.sh" stop "$work/pg" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
# N distinct free ports: all sockets stay bound until every port is chosen (ports picked one
# at a time can come back twice, and two demo systems would then race for one port).
free_ports() {
  python3 -c 'import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])' "$1"
}
# wait_port PORT NAME PID: the system NAME (process PID) answers on PORT; a system that exited
# (e.g. it could not bind its port) is reported with its log at once, not mistaken for another.
wait_port() {
  for _ in $(seq 1 200); do
    kill -0 "$3" 2>/dev/null || break
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && kill -0 "$3" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$2 did not start; its log:" >&2; cat "$work/$2.log" >&2; exit 1
}

# Secrets come from the environment, never from the recipe; fresh ones for every demo.
export CASE_PASSWORD="case-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export BENEFITS_DB_PASSWORD="db-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"

echo "== Starting the demo systems on 127.0.0.1"
read -r register_port case_port db_port mail_port < <(free_ports 4)
cp "$here/data/register.json" "$work/register.json"
"$root/tests/node_modules/.bin/json-server" --host 127.0.0.1 --port "$register_port" --quiet \
  "$work/register.json" >"$work/register.log" 2>&1 &
register_pid=$!; pids+=($!)
node "$root/tests/servers/soap/server.js" --port "$case_port" --wsse "keyonce:$CASE_PASSWORD" \
  >"$work/case.log" 2>&1 &
case_pid=$!; pids+=($!)
mkdir -p "$work/mail"
node "$root/tests/servers/mail/server.js" --port "$mail_port" --out "$work/mail" >"$work/mail.log" 2>&1 &
mail_pid=$!; pids+=($!)
bash "$root/tests/support/pg_cluster.sh" start "$work/pg" "$db_port" "$BENEFITS_DB_PASSWORD" >/dev/null
wait_port "$register_port" register "$register_pid"
wait_port "$case_port" case "$case_pid"
wait_port "$mail_port" mail "$mail_pid"
echo "   folkeregister (REST)   http://127.0.0.1:$register_port/residents"
echo "   sagssystem (SOAP)      http://127.0.0.1:$case_port/case11?wsdl"
echo "   ydelsesdatabase (SQL)  postgresql://keyonce@127.0.0.1:$db_port/keyonce"
echo "   mail (SMTP)            smtp://127.0.0.1:$mail_port"

run() {
  set +e
  (cd "$here" && "$keyonce" run recipe.yaml --state "$work/state.db" \
    --param "register_url=http://127.0.0.1:$register_port" \
    --param "case_url=http://127.0.0.1:$case_port" \
    --param "db_port=$db_port" --param "smtp_url=smtp://127.0.0.1:$mail_port")
  code=$?
  set -e
  echo "   exit code $code (3: the run completed and some records wait in the quarantine)"
}

echo
echo "== First run"
run
echo
echo "== Cases in the case system"
curl -s "http://127.0.0.1:$case_port/cases" |
  python3 -c 'import json,sys; [print("  ", c["CaseId"], c["ExternalId"], c["Title"]) for c in json.load(sys.stdin)]'
echo
echo "== Payments in PostgreSQL (with the case id from the SOAP reply)"
PGPASSWORD="$BENEFITS_DB_PASSWORD" psql -X -q "host=127.0.0.1 port=$db_port dbname=keyonce user=keyonce" \
  -c "SELECT application_id, case_id, amount, received FROM payments ORDER BY application_id"
echo "== The summary mail"
shopt -s nullglob
for f in "$work"/mail/*.json; do
  python3 - "$f" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
print("   Subject:", m["subject"])
print("   To:", m["to"])
print("   " + m["text"].strip().replace("\n", "\n   "))
for a in m.get("attachments", []):
    print("   Attachment:", a["filename"], a["contentType"], a["size"], "bytes")
PY
done
echo
echo "== The quarantine (references and reasons, no personal data)"
"$keyonce" quarantine --state "$work/state.db"
echo
echo "== Second run: nothing is written twice"
run
count=$(curl -s "http://127.0.0.1:$case_port/cases" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
echo "   cases in the case system after two runs: $count"
[ "$count" = 4 ] || { echo "expected 4 cases" >&2; exit 1; }
