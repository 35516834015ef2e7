#!/usr/bin/env bash
# The README's demo: installs what is needed, builds keyonce, and runs the
# sick-leave example twice: the second run shows that nothing is written twice.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/install-deps.sh
KEYONCE_BUILD_TARGET=keyonce bash .ci/build.sh   # the binary only; the tests build with .ci/test.sh
KEYONCE="$PWD/${KEYONCE_BUILD_DIR:-build}/engine/cli/keyonce"

cd examples/sick_leave
rm -rf out && mkdir -p out
export KEYONCE_STATE="$PWD/out/keyonce-state.db"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "1. Validate the recipe"
"$KEYONCE" validate recipe.yaml

say "2. Test it against fixture rows (writes nothing)"
"$KEYONCE" test sick_leave_test.yaml

say "3. Run it: a Windows-1252, semicolon CSV export -> payroll (SQLite), rota (CSV), audit (JSONL)"
"$KEYONCE" run recipe.yaml --no-progress || true   # exit 3: some rows need a person

say "4. Run it again: nothing is written twice"
"$KEYONCE" run recipe.yaml --no-progress || true

say "5. What needs a person (no CPR numbers or names are shown)"
"$KEYONCE" quarantine sick-leave-to-payroll

say "6. Run history"
"$KEYONCE" history

say "7. What the systems received"
echo "payroll (out/payroll.db, table absence):"
sqlite3 -header -column out/payroll.db "SELECT from_date, to_date, hours, cost_centre FROM absence ORDER BY from_date"
echo; echo "rota (out/rota.csv):"; cat out/rota.csv
echo; echo "audit (out/audit.jsonl):"; cat out/audit.jsonl

say "8. Across network systems: CSV -> REST lookup -> SOAP case -> PostgreSQL -> summary mail"
cd ../..
bash examples/case_flow/run.sh

say "9. As a service: schedules, the API a caseworker's page uses, the inbox, the audit log"
KEYONCE="$KEYONCE" bash examples/serve/run.sh

say "10. A web robot: applications keyed into a web application in chromium, case numbers kept"
KEYONCE="$KEYONCE" bash examples/web_robot/run.sh

say "11. A shared mailbox: mails with a sheet attached -> the sheet's rows -> SQLite and a summary sheet"
KEYONCE="$KEYONCE" bash examples/mailbox_to_sheet/run.sh
