#!/bin/bash
# The deployment example in examples/deploy/ works as shipped:
#  - keyonce.yaml with tokens.yaml.example and a recipe loads
#    (`keyonce serve --config ... --check` exits 0 and names what it found),
#    with /etc/keyonce and /var/lib/keyonce moved into a temp folder;
#  - the same with the commented tls block switched on;
#  - a config with a misspelled key is refused with exit code 2 and file:line:column;
#  - keyonce.service bounds memory (MemoryMax=, LimitAS= no larger) with the size
#    docs/operations.md documents;
#  - keyonce.service passes `systemd-analyze verify` without a warning
#    (skipped when systemd-analyze is not installed).
# usage: deploy_check.sh KEYONCE_BINARY EXAMPLES_DEPLOY_DIR
set -euo pipefail
keyonce=$1
deploy=$2
src=$(cd "$deploy/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

mkdir -p "$tmp/etc/recipes" "$tmp/var"
sed -e "s#/etc/keyonce#$tmp/etc#g" -e "s#/var/lib/keyonce#$tmp/var#g" \
  "$deploy/keyonce.yaml" > "$tmp/etc/keyonce.yaml"
cp "$deploy/tokens.yaml.example" "$tmp/etc/tokens.yaml"
cp "$src/examples/sick_leave/recipe.yaml" "$tmp/etc/recipes/sick-leave.yaml"
cp -r "$src/examples/sick_leave/data" "$tmp/etc/recipes/data"

set +e
out=$("$keyonce" serve --config "$tmp/etc/keyonce.yaml" --check 2>&1)
rc=$?
set -e
echo "$out"
[ "$rc" = 0 ] || fail "keyonce serve --check exited $rc for the example config"
grep -q "sick-leave-to-payroll" <<<"$out" || fail "--check did not name the recipe it found"

# The commented TLS block works when switched on (with a test certificate).
if command -v openssl >/dev/null; then
  mkdir -p "$tmp/etc/tls"
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
    -keyout "$tmp/etc/tls/keyonce.key" -out "$tmp/etc/tls/keyonce.crt" 2>/dev/null
  sed -e 's/^# tls:/tls:/' -e 's/^#   cert:/  cert:/' -e 's/^#   key:/  key:/' \
    "$tmp/etc/keyonce.yaml" > "$tmp/etc/tls.yaml"
  grep -q '^tls:' "$tmp/etc/tls.yaml" || fail "the example config has no commented tls block"
  set +e
  out=$("$keyonce" serve --config "$tmp/etc/tls.yaml" --check 2>&1)
  rc=$?
  set -e
  echo "$out"
  [ "$rc" = 0 ] || fail "keyonce serve --check exited $rc with the tls block switched on"
fi

# The commented http block works when switched on; a misspelled limit is refused with a hint.
sed -e 's/^# http:/http:/' -e 's/^#   header_timeout_seconds:/  header_timeout_seconds:/' \
  -e 's/^#   max_connections_per_client:/  max_connections_per_client:/' \
  "$tmp/etc/keyonce.yaml" > "$tmp/etc/http.yaml"
grep -q '^http:' "$tmp/etc/http.yaml" || fail "the example config has no commented http block"
set +e
out=$("$keyonce" serve --config "$tmp/etc/http.yaml" --check 2>&1)
rc=$?
set -e
echo "$out"
[ "$rc" = 0 ] || fail "keyonce serve --check exited $rc with the http block switched on"
grep -q "http: headers within 10 s" <<<"$out" || fail "--check did not print the http limits"
sed 's/^  header_timeout_seconds:/  header_timout_seconds:/' "$tmp/etc/http.yaml" > "$tmp/etc/bad_http.yaml"
set +e
out=$("$keyonce" serve --config "$tmp/etc/bad_http.yaml" --check 2>&1)
rc=$?
set -e
echo "$out"
[ "$rc" = 2 ] || fail "a misspelled http limit gave exit code $rc, not 2"
grep -q "did you mean 'header_timeout_seconds'" <<<"$out" || fail "no hint for the misspelled http limit"

# A misspelled key: refused, exit code 2, with the place.
sed 's/^max_concurrent_runs:/max_concurent_runs:/' "$tmp/etc/keyonce.yaml" > "$tmp/etc/bad.yaml"
set +e
out=$("$keyonce" serve --config "$tmp/etc/bad.yaml" --check 2>&1)
rc=$?
set -e
echo "$out"
[ "$rc" = 2 ] || fail "a misspelled config key gave exit code $rc, not 2"
line=$(grep -n '^max_concurent_runs:' "$tmp/etc/bad.yaml" | cut -d: -f1)
grep -q "bad.yaml:$line:1" <<<"$out" || fail "the error does not say bad.yaml:$line:1"

# Memory is bounded: the unit sets MemoryMax= and LimitAS= (no larger), and the operations guide
# documents the same size.
unit="$deploy/keyonce.service"
memory_max=$(sed -n 's/^MemoryMax=//p' "$unit")
limit_as=$(sed -n 's/^LimitAS=//p' "$unit")
[ -n "$memory_max" ] || fail "keyonce.service sets no MemoryMax="
[ -n "$limit_as" ] || fail "keyonce.service sets no LimitAS="
bytes() { numfmt --from=iec "$1"; }
[ "$(bytes "$limit_as")" -le "$(bytes "$memory_max")" ] ||
  fail "LimitAS=$limit_as is larger than MemoryMax=$memory_max"
grep -q "MemoryMax=$memory_max" "$src/docs/operations.md" ||
  fail "docs/operations.md does not document MemoryMax=$memory_max"

if command -v systemd-analyze >/dev/null; then
  sed -e "s#^ExecStart=/usr/local/bin/keyonce #ExecStart=$keyonce #" \
    "$deploy/keyonce.service" > "$tmp/keyonce.service"
  set +e
  out=$(systemd-analyze verify "$tmp/keyonce.service" 2>&1)
  rc=$?
  set -e
  echo "systemd-analyze verify: exit $rc"
  echo "$out"
  [ "$rc" = 0 ] || fail "systemd-analyze verify failed"
  if grep -q "keyonce.service" <<<"$out"; then fail "systemd-analyze verify warned about the unit"; fi
else
  echo "systemd-analyze is not installed: the unit file was not verified"
fi
echo "deploy example: ok"
