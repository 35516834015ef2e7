#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for demos and benchmarks, with the same
# settings as the tests' fixture (tests/support/postgres.cc):
#
#   pg_cluster.sh start DIR PORT [PASSWORD]   # initdb into DIR if needed, start on 127.0.0.1:PORT
#   pg_cluster.sh stop DIR                    # immediate shutdown (DIR is kept)
#
# start prints the connection string of user `keyonce` (database `keyonce`,
# password PASSWORD, default "keyonce") on stdout. As root the cluster is run
# by the `postgres` system user, since initdb refuses root.
set -euo pipefail
BIN=/usr/lib/postgresql/15/bin
cmd=${1:-}; dir=${2:-}
[[ -n "$cmd" && -n "$dir" ]] || { echo "usage: $0 start DIR PORT [PASSWORD] | stop DIR" >&2; exit 2; }
[[ -x $BIN/initdb ]] || { echo "PostgreSQL 15 is not installed ($BIN/initdb missing)" >&2; exit 1; }
as_owner() { if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

case "$cmd" in
  start)
    port=${3:?PORT missing}; password=${4:-keyonce}
    mkdir -p "$dir"; dir=$(cd "$dir" && pwd)
    [[ $(id -u) == 0 ]] && chown postgres:postgres "$dir"
    fresh=0
    if [[ ! -f "$dir/data/PG_VERSION" ]]; then
      as_owner "$BIN/initdb" -D "$dir/data" -U postgres -E UTF8 --no-locale \
        --auth-local=trust --auth-host=scram-sha-256 --no-sync >"$dir/initdb.log" 2>&1
      fresh=1
    fi
    # Settings (port included) go last in postgresql.conf: later lines win.
    cat >>"$dir/data/postgresql.conf" <<CONF

# keyonce demo cluster
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = off
full_page_writes = off
password_encryption = 'scram-sha-256'
CONF
    as_owner "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 120 start >/dev/null
    if [[ $fresh == 1 ]]; then
      psql() { "$BIN/psql" -X -q -h "$dir" -p "$port" -U postgres -v ON_ERROR_STOP=1 "$@"; }
      psql -d postgres -c "CREATE ROLE keyonce LOGIN PASSWORD '$password'" >/dev/null
      psql -d postgres -c "CREATE DATABASE keyonce OWNER keyonce" >/dev/null
    fi
    echo "host=127.0.0.1 port=$port dbname=keyonce user=keyonce"
    ;;
  stop)
    [[ -f "$dir/data/postmaster.pid" ]] || exit 0
    as_owner "$BIN/pg_ctl" -D "$dir/data" -m immediate -w -t 60 stop >/dev/null
    ;;
  *) echo "usage: $0 start DIR PORT [PASSWORD] | stop DIR" >&2; exit 2 ;;
esac
