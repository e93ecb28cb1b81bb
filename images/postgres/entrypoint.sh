#!/bin/sh
# The entrypoint of executor/postgres (images/build.sh): Debian's PostgreSQL 15, started
# as the official postgres image starts, so either runs deploy/compose.yaml's `db`:
# POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB make the first start's cluster and
# database in PGDATA (a volume); later starts use what is there.
set -eu
: "${PGDATA:=/var/lib/postgresql/data}"
BIN=/usr/lib/postgresql/15/bin

if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /run/postgresql
  chown postgres:postgres "$PGDATA" /run/postgresql
  chmod 700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  user=${POSTGRES_USER:-postgres}
  db=${POSTGRES_DB:-$user}
  password=$(mktemp)
  printf '%s\n' "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}" >"$password"
  # Local connections (the health check's, in the container) are trusted; the network's
  # need the password (SCRAM).
  "$BIN/initdb" -D "$PGDATA" -U "$user" --pwfile="$password" -E UTF8 --no-locale \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$password"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
  if [ "$db" != postgres ]; then
    # Single-user mode: the database exists before the server first listens.
    printf 'CREATE DATABASE "%s" OWNER "%s";\n' "$db" "$user" \
      | "$BIN/postgres" --single -D "$PGDATA" -j postgres >/dev/null
  fi
  echo "postgres: cluster made in $PGDATA (user $user, database $db)"
fi
exec "$BIN/postgres" -D "$PGDATA" "$@"
