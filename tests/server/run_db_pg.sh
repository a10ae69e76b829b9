#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# run_db_pg.sh START_POSTGRES TEST_DB: starts a private PostgreSQL in a
# temporary folder (scripts/start-postgres.sh), runs the database tests
# against it (KC_TEST_PG_URL) and stops it again, whatever happens.
# Output is the test's TAP; "1..0 # SKIP" without PostgreSQL installed.
set -u
start=$1
test_db=$2

tmp=$(mktemp -d /tmp/kcsrv-pg-XXXXXX) || {
	echo "Bail out! cannot make a temporary folder"
	exit 1
}
# The server runs as another user (postgres) when we are root: it must
# be able to pass through, not list.
chmod 0711 "$tmp"
cleanup() {
	"$start" stop "$tmp/pg" >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
child=
# `wait` returns at once on a signal (a foreground child would delay the
# trap until it ends): stop the test, then PostgreSQL via the EXIT trap.
trap '[ -n "$child" ] && kill "$child" 2>/dev/null; exit 130' INT TERM HUP

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=$("$start" "$tmp/pg" "$port" 2>"$tmp/start.err")
rc=$?
if [ $rc = 3 ]; then
	echo "1..0 # SKIP PostgreSQL is not installed"
	exit 0
fi
if [ $rc != 0 ] || [ -z "$url" ]; then
	sed 's/^/# /' "$tmp/start.err"
	echo "Bail out! PostgreSQL did not start"
	exit 1
fi
KC_TEST_PG_URL=$url "$test_db" &
child=$!
wait "$child"
