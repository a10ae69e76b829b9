#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Usage: tests/run-unit.sh [BUILD_DIR]      (default: build)
#
# Builds BUILD_DIR, then runs every test of its meson "unit" suite directly
# and passes their plain TAP lines ("ok N - ...", "not ok N - ...", "# ...")
# through to stdout, stderr merged, so sanitizer reports appear next to the
# test that caused them.  A program that exits non-zero without a "not ok"
# line (a crash, a sanitizer abort) gets one "not ok" line of its own, so a
# crash is never counted as a pass.  Ends with "# unit: N passed, N failed";
# exit status 1 if anything failed.
#
# For AddressSanitizer + UBSan:
#   meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false
#   tests/run-unit.sh build-asan
set -uo pipefail

build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)

if [ ! -f "$build/build.ninja" ]; then
	echo "not ok - $build is not a configured meson build directory"
	exit 1
fi
build=$(cd "$build" && pwd)

# One line per unit test: name, ninja target, then NAME=VALUE environment,
# then the command, tab-separated (the environment is tests/meson.build's).
list=$(meson introspect --tests "$build" | python3 -c '
import json, os, sys
for t in json.load(sys.stdin):
    if "unit" in [s.split(":")[-1] for s in t["suite"]]:
        env = [f"{k}={v}" for k, v in (t.get("env") or {}).items()]
        exe = t["cmd"][0]
        # Scripts from the source tree need no building: "-" as target.
        target = os.path.relpath(exe, sys.argv[1]) if exe.startswith(sys.argv[1] + "/") else "-"
        print("\t".join([t["name"], target] + env + t["cmd"]))
' "$build") || { echo "not ok - cannot list the tests of $build"; exit 1; }

# Build only the unit tests, so that another part's broken build does not
# stop them.
mapfile -t targets < <(cut -f2 <<<"$list" | grep -vx -- -)
if ! out=$(ninja -C "$build" "${targets[@]}" 2>&1); then
	printf '%s\n' "$out" | tail -20 | sed 's/^/# /'
	echo "not ok - build of the unit tests in $build failed"
	exit 1
fi

passed=0
failed=0
while IFS=$'\t' read -r -a fields; do
	[ ${#fields[@]} -ge 3 ] || continue
	name=${fields[0]}
	echo "# --- unit/$name"
	out=$(cd "$root" && env "${fields[@]:2}" 2>&1 </dev/null)
	rc=$?
	printf '%s\n' "$out"
	ok=$(grep -c '^ok\b' <<<"$out")
	bad=$(grep -c '^not ok\b' <<<"$out")
	if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
		echo "not ok - unit/$name exited with status $rc without a failing result"
		bad=1
	fi
	passed=$((passed + ok))
	failed=$((failed + bad))
done <<<"$list"

echo "# unit: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
