#!/usr/bin/env bash
# A web robot: housing-benefit applications from a CSV export are keyed into
# Sagsportalen (a web application with only a web page: login, form,
# confirmation page with the case number) in headless chromium, and the case
# numbers are written back to a SQLite table. The second run keys nothing
# twice. Sagsportalen is the test application in tests/servers/webapp/,
# started here on 127.0.0.1.
#
# Usage: bash examples/web_robot/run.sh   (installs what is missing, builds keyonce)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# KEYONCE=/path/to/keyonce (as the test suite does) skips installing and building.
if [ -z "${KEYONCE:-}" ]; then
  bash "$root/.ci/install-deps.sh"
  KEYONCE_BUILD_TARGET=keyonce bash "$root/.ci/build.sh"
fi
keyonce="${KEYONCE:-$root/${KEYONCE_BUILD_DIR:-build}/engine/cli/keyonce}"

# chromium keeps sockets below TMPDIR, whose paths may not exceed 107 bytes.
work="$(mktemp -d /tmp/keyonce-web-robot.XXXXXX)"
export TMPDIR="$work"
portal_pid=""
cleanup() {
  [ -n "$portal_pid" ] && kill "$portal_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The robot's account; from the environment, never from the recipe.
export PORTAL_USER=robot
export PORTAL_PASSWORD="robot-$(head -c 9 /dev/urandom | od -An -tx1 | tr -d ' \n')"

echo "== Starting Sagsportalen on 127.0.0.1"
node "$root/tests/servers/webapp/server.js" --port 0 --user "$PORTAL_USER" \
  --password "$PORTAL_PASSWORD" >"$work/portal.log" 2>&1 &
portal_pid=$!
url=""
for _ in $(seq 1 100); do
  url=$(sed -n 's/^listening on //p' "$work/portal.log" | head -1)
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { echo "Sagsportalen did not start:" >&2; cat "$work/portal.log" >&2; exit 1; }
echo "Sagsportalen: $url"

cd "$here"
rm -rf out && mkdir -p out
export KEYONCE_STATE="$PWD/out/keyonce-state.db"

echo; echo "== What each record's actions look like (a dry run opens no browser)"
"$keyonce" run recipe.yaml --param "portal=$url" --dry-run --no-progress >"$work/dry.txt"
head -c 700 "$work/dry.txt"; echo " ..."

echo; echo "== Key the applications into Sagsportalen (2 browsers side by side)"
"$keyonce" run recipe.yaml --param "portal=$url" --no-progress

echo; echo "== Run again: nothing is keyed twice"
"$keyonce" run recipe.yaml --param "portal=$url" --no-progress

echo; echo "== The case numbers, written back to out/sager.db"
sqlite3 -header -column out/sager.db \
  "SELECT substr(cpr, 1, 6) || '-****' AS cpr, ansoegningsdato, ydelse, sagsnummer
   FROM boligstoette ORDER BY sagsnummer"

echo; echo "== The audit log: each submit is a row (system, operation, the person's pseudonym)"
"$keyonce" audit --recipe boligstoette-til-sagsportal --run 1 | grep -E ' (sagsportal|time) '
submits=$("$keyonce" audit --recipe boligstoette-til-sagsportal --log-format json |
  grep -c '"system":"sagsportal","operation":"create"' || true)
[ "$submits" = 5 ] || { echo "expected 5 cases: 5 audited submits, found $submits" >&2; exit 1; }

echo; echo "== What Sagsportalen holds"
cases=$(curl -s "$url/_test/cases")
python3 - "$cases" <<'PY'
import json, sys
cases = json.loads(sys.argv[1])
print(f"{len(cases)} cases, {len({c['cpr'] for c in cases})} people")
for c in cases:
    print(f"  {c['sagsnummer']}  {c['cpr'][:6]}-****  {c['ydelse']}")
if len(cases) != 5 or len({c['cpr'] for c in cases}) != 5:
    sys.exit("expected 5 cases, one per application")
PY
