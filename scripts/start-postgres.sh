#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# start-postgres.sh DIR PORT      start (creating if needed) a private PostgreSQL
# start-postgres.sh stop DIR      stop it
#
# A throw-away PostgreSQL server for tests and development, not a
# production set-up.  Idempotent: an existing cluster in DIR is reused and
# a running one left running.  It listens on 127.0.0.1:PORT (password
# authentication) and on a unix socket in DIR (trust, but DIR is 0700 and
# belongs to the server's user).  It creates the role and database
# "kctest" (owner kctest, random password kept in DIR/kctest.password) and
# prints the connection URI on stdout, e.g.
#   postgresql://kctest:5f0c...@127.0.0.1:55432/kctest
#
# Run as root, the server runs as the "postgres" user and DIR is handed to
# it (chown); otherwise it runs as the caller.
set -eu

PGBIN=${PGBIN:-}
if [ -z "$PGBIN" ]; then
	for d in /usr/lib/postgresql/*/bin; do
		[ -x "$d/initdb" ] && PGBIN=$d
	done
fi
if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/initdb" ]; then
	echo "start-postgres.sh: PostgreSQL server binaries not found (apt-get install postgresql)" >&2
	exit 3
fi

as_pg() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

usage() {
	echo "usage: $0 DIR PORT | $0 stop DIR" >&2
	exit 2
}

if [ "${1:-}" = stop ]; then
	[ $# = 2 ] || usage
	DIR=$(realpath "$2")
	if [ -f "$DIR/data/postmaster.pid" ]; then
		as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null
	fi
	exit 0
fi

[ $# = 2 ] || usage
case "$2" in
'' | *[!0-9]*) usage ;;
esac
PORT=$2
mkdir -p "$1"
DIR=$(realpath "$1")
chmod 0700 "$DIR"
if [ "$(id -u)" = 0 ]; then
	chown postgres: "$DIR"
	if ! runuser -u postgres -- test -x "$DIR"; then
		echo "start-postgres.sh: user postgres cannot reach $DIR (a parent folder is private)" >&2
		exit 1
	fi
fi

if [ ! -f "$DIR/data/PG_VERSION" ]; then
	as_pg "$PGBIN/initdb" -D "$DIR/data" -U postgres --auth-local=trust \
		--auth-host=scram-sha-256 --no-sync -E UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 || {
		cat "$DIR/initdb.log" >&2
		exit 1
	}
fi

if ! as_pg "$PGBIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
	as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
		-o "-c listen_addresses=127.0.0.1 -p $PORT -c unix_socket_directories=$DIR -c max_connections=200" \
		start >/dev/null || {
		tail -n 20 "$DIR/server.log" >&2
		exit 1
	}
fi

# The port it really listens on (a reused cluster keeps its own).
PORT=$(sed -n 4p "$DIR/data/postmaster.pid")
psql_pg() {
	as_pg "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$DIR" -p "$PORT" -U postgres -d postgres "$@"
}

if [ ! -s "$DIR/kctest.password" ]; then
	(umask 077 && od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$DIR/kctest.password")
fi
PASS=$(cat "$DIR/kctest.password")
# The password is hex, so it needs no quoting in SQL or in the URI.
if [ "$(psql_pg -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'kctest'")" != 1 ]; then
	psql_pg -c "CREATE ROLE kctest LOGIN PASSWORD '$PASS'"
else
	psql_pg -c "ALTER ROLE kctest PASSWORD '$PASS'"
fi
if [ "$(psql_pg -tAc "SELECT 1 FROM pg_database WHERE datname = 'kctest'")" != 1 ]; then
	psql_pg -c "CREATE DATABASE kctest OWNER kctest"
fi
echo "postgresql://kctest:$PASS@127.0.0.1:$PORT/kctest"
