#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# 10-lifecycle.sh again, with the server on PostgreSQL: a private
# PostgreSQL (scripts/start-postgres.sh) in a temporary folder, handed to
# the server through KC_E2E_DB (lib.sh), stopped and removed at the end.
# The TAP lines are 10-lifecycle.sh's own.
set -u
: "${KC_E2E_DATA:?}"
root=$(cd "$(dirname "$0")/../.." && pwd)
pgdir=$(mktemp -d /var/tmp/kce2e-pg.XXXXXX)
pg_cleanup() { "$root/scripts/start-postgres.sh" stop "$pgdir" >/dev/null 2>&1; rm -rf "$pgdir"; }
trap pg_cleanup EXIT
if ! KC_E2E_DB=$("$root/scripts/start-postgres.sh" "$pgdir" $((25432 + RANDOM % 1000)) 2>"$pgdir.err"); then
	echo "not ok 1 - PostgreSQL starts"
	sed 's/^/# /' "$pgdir.err"; rm -f "$pgdir.err"
	echo "1..1"
	exit 1
fi
rm -f "$pgdir.err"
echo "# PostgreSQL in $pgdir"
export KC_E2E_DB
bash "$(dirname "$0")/10-lifecycle.sh"
