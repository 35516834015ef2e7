#!/usr/bin/env bash
# A shared mailbox receives applications for childcare with an Excel sheet
# attached. keyonce reads the mails once (each mail is moved to "Behandlet"
# only after it is registered), reads each attached sheet's rows into the
# placement office's database (SQLite), and makes a summary sheet of the new
# applications (xlsx). A second round with one new mail registers only that
# one. The mail server is Dovecot, started here on 127.0.0.1 with a throwaway
# configuration; the families' sheets are made by keyonce's xlsx target.
#
# Usage: bash examples/mailbox_to_sheet/run.sh   (installs what is missing, builds keyonce)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# KEYONCE=/path/to/keyonce (as the test suite does) skips installing and building.
if [ -z "${KEYONCE:-}" ]; then
  bash "$root/.ci/install-deps.sh"
  KEYONCE_BUILD_TARGET=keyonce bash "$root/.ci/build.sh"
fi
keyonce="${KEYONCE:-$root/${KEYONCE_BUILD_DIR:-build}/engine/cli/keyonce}"

# Dovecot keeps sockets in its base_dir, whose paths must be short: /tmp.
work="$(mktemp -d /tmp/keyonce-mail.XXXXXX)"
dovecot_pid=""
cleanup() {
  [ -n "$dovecot_pid" ] && kill "$dovecot_pid" 2>/dev/null || true
  [ -n "$dovecot_pid" ] && wait "$dovecot_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The mailbox's password; from the environment, never from the recipe.
user=pasning@kommune.dk
export IMAP_PASSWORD="pasning-$(head -c 9 /dev/urandom | od -An -tx1 | tr -d ' \n')"

echo "== Starting the municipality's mail server (Dovecot) on 127.0.0.1"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
chmod 755 "$work"
mkdir -p "$work/run" "$work/mail"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" -out "$work/cert.pem" -days 2 \
  -subj /CN=localhost -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" 2>/dev/null
chmod 644 "$work/key.pem"
printf '%s:{PLAIN}%s::::::\n' "$user" "$IMAP_PASSWORD" >"$work/users"
if [ "$(id -u)" -eq 0 ]; then
  # Dovecot never runs its login processes as root: Debian's dovecot users.
  internal=dovecot login=dovenull mail_user=dovecot
  chown dovecot:dovecot "$work/mail"
else
  internal=$(id -un) login=$(id -un) mail_user=$(id -un)
fi
cat >"$work/dovecot.conf" <<CONF
base_dir = $work/run
state_dir = $work/run
log_path = /dev/stderr
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <$work/cert.pem
ssl_key = <$work/key.pem
disable_plaintext_auth = yes
auth_mechanisms = plain
mail_location = maildir:$work/mail/%u
first_valid_uid = 0
default_internal_user = $internal
default_login_user = $login
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $work/users
}
userdb {
  driver = static
  args = uid=$mail_user gid=$mail_user home=$work/mail/%u
}
service imap-login {
  chroot =
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    port = $port
    ssl = yes
  }
}
service anvil {
  chroot =
}
CONF
/usr/sbin/dovecot -F -c "$work/dovecot.conf" >"$work/dovecot.log" 2>&1 &
dovecot_pid=$!
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  kill -0 "$dovecot_pid" 2>/dev/null || { cat "$work/dovecot.log" >&2; exit 1; }
  sleep 0.1
done
imap="imaps://127.0.0.1:$port"
echo "Mail server: $imap (mailbox $user)"

cd "$here"
rm -rf out && mkdir -p out
export KEYONCE_STATE="$PWD/out/keyonce-state.db"
# The mail server's certificate, trusted by the recipe (ca_file).
cp "$work/cert.pem" out/mailserver-ca.pem

# A family's mail: the application sheet attached (the xlsx made by keyonce
# from data/skemaer.csv), or a question without one. Put in the mailbox the
# way a mail server delivers it (IMAP APPEND), unread.
mail() {
  local family="$1" subject="$2" sheet="${3:-}"
  python3 - "$family" "$subject" "$sheet" >"$work/mail.eml" <<'PY'
import sys
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
family, subject, sheet = sys.argv[1:4]
m = EmailMessage()
m["From"] = f"Familien Ålund-Sørensen {family} <familie{family}@example.dk>"
m["To"] = "pasning@kommune.dk"
m["Subject"] = subject
m["Date"] = formatdate(localtime=True)
m["Message-ID"] = make_msgid(domain="example.dk")
m.set_content("Kære pladsanvisning\n\nHer er vores ansøgning.\n\nVenlig hilsen\nFamilien\n",
              charset="iso-8859-1")
if sheet:
    with open(sheet, "rb") as f:
        m.add_attachment(f.read(), maintype="application",
                         subtype="vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                         filename="Ansøgning om pasning.xlsx")
sys.stdout.buffer.write(bytes(m))
PY
  curl -s --cacert "$work/cert.pem" -u "$user:$IMAP_PASSWORD" -T "$work/mail.eml" "$imap/INBOX"
  # libcurl appends as read; a delivered mail is unread.
  curl -s --cacert "$work/cert.pem" -u "$user:$IMAP_PASSWORD" "$imap/INBOX" \
    -X 'UID STORE 1:* -FLAGS (\Seen)' >/dev/null
}
sheet() {  # the family's application sheet, made from data/skemaer.csv
  "$keyonce" run skema.yaml --param "familie=$1" --param "fil=out/skemaer/ansoegning-$1.xlsx" \
    --state "$work/skema-state.db" --no-progress >"$work/skema.log" 2>&1 ||
    { cat "$work/skema.log" >&2; exit 1; }
  echo "out/skemaer/ansoegning-$1.xlsx"
}

echo; echo "== Three families write to the mailbox: two sheets attached, one question"
mail 1 "Ansøgning om pasning – familie 1" "$(sheet 1)"
mail 2 "Spørgsmål om åbningstider"
mail 3 "Ansøgning om pasning – tvillinger" "$(sheet 3)"

# Round: the mails, then each new sheet's rows, then the summary sheet.
round() {
  "$keyonce" run postkasse.yaml --param "imap_url=$imap" --param "ca_file=out/mailserver-ca.pem" \
    --no-progress
  sqlite3 out/pasning.db "SELECT ark_sti || '|' || message_id FROM mails WHERE ark_sti <> ''" |
    while IFS='|' read -r path id; do
      [ -f "$path" ] || continue
      # The sheet moves to out/laest once its rows are registered (move_to).
      "$keyonce" run ark.yaml --param "fil=$path" --param "mail=$id" --no-progress
    done
  "$keyonce" run oversigt.yaml --no-progress
}

echo; echo "== Round 1: read the mailbox, then each attached sheet, then the summary"
round

echo; echo "== The mails, registered once (the sheets saved under names no sender chose)"
sqlite3 -header -column out/pasning.db "SELECT afsender, emne, ark_navn FROM mails ORDER BY afsender"
echo; echo "== The children, from the sheets (CPR numbers shortened here)"
sqlite3 -header -column out/pasning.db \
  "SELECT substr(cpr, 1, 6) || '-****' AS cpr, barn, institution, start, timer FROM tilmeldinger
   ORDER BY institution, barn"

echo; echo "== A new mail arrives; round 2 registers only that one"
mail 2 "Ansøgning om pasning – familie 2" "$(sheet 2)"
round

count() { sqlite3 out/pasning.db "SELECT count(*) FROM $1"; }
mails=$(count mails) children=$(count tilmeldinger)
echo; echo "== In the database: $mails mails, $children children"
[ "$mails" = 4 ] || { echo "expected 4 mails registered once each, found $mails" >&2; exit 1; }
[ "$children" = 5 ] || { echo "expected 5 children registered once each, found $children" >&2; exit 1; }

echo; echo "== The mailbox: every mail moved to Behandlet once it was registered"
inbox=$(curl -s --cacert "$work/cert.pem" -u "$user:$IMAP_PASSWORD" "$imap/INBOX" -X 'UID SEARCH ALL')
done_=$(curl -s --cacert "$work/cert.pem" -u "$user:$IMAP_PASSWORD" "$imap/Behandlet" -X 'UID SEARCH ALL')
echo "INBOX:$(echo "$inbox" | sed 's/^\* SEARCH//' | tr -d '\r')   Behandlet:$(echo "$done_" | sed 's/^\* SEARCH//' | tr -d '\r')"
[ -z "$(echo "$inbox" | sed 's/^\* SEARCH//' | tr -d ' \r\n')" ] || { echo "mails left in INBOX" >&2; exit 1; }

echo; echo "== The summary sheet of the last round (out/oversigt.xlsx), read back by keyonce"
cat >"$work/read.yaml" <<YAML
recipe: laes-oversigt
source: {type: xlsx, path: $here/out/oversigt.xlsx, sheet: Nye tilmeldinger}
key: "{{ record.CPR }}"
targets:
  - {name: out, type: jsonl, path: $work/oversigt.jsonl}
YAML
"$keyonce" run "$work/read.yaml" --state "$work/read-state.db" --no-progress >/dev/null
sed -E 's/"CPR":"([0-9]{6})-?[0-9]{4}"/"CPR":"\1-****"/' "$work/oversigt.jsonl"
