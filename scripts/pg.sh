#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for local runs and tests, unless
# DATABASE_URL already points at a reachable server. Prints the URL to use.
# Usage: scripts/pg.sh start|stop|url
set -euo pipefail
cmd=${1:-start}
root=$(cd "$(dirname "$0")/.." && pwd)
PGPORT=${DSPIPE_PGPORT:-55432}
PGDATA=${DSPIPE_PGDATA:-$root/.pgdata}
url="postgres://postgres@127.0.0.1:$PGPORT/postgres?sslmode=disable"
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

case "$cmd" in
url) echo "$url" ;;
stop) [ -d "$PGDATA" ] && as_pg "$bindir/pg_ctl" -D "$PGDATA" -m fast stop >/dev/null 2>&1 || true ;;
start)
  if "$bindir/pg_isready" -q -h 127.0.0.1 -p "$PGPORT"; then echo "$url"; exit 0; fi
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    mkdir -p "$PGDATA"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$PGDATA"
    as_pg "$bindir/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 >/dev/null
  fi
  sock=/tmp/dspipe-pg-$PGPORT
  mkdir -p "$sock"; [ "$(id -u)" = 0 ] && chown postgres:postgres "$sock"
  as_pg "$bindir/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w -t 60 \
    -o "-p $PGPORT -k $sock -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" start >/dev/null
  echo "$url"
  ;;
*) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac
