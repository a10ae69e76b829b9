#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Usage: schema-golden.sh GOLDEN_DIR [SCHEMA]
# TAP: every golden XML validates against libvirt's own SCHEMA (default
# domain; storagepool for tests/golden/pool), so the golden files cannot
# drift away from what libvirt accepts.
set -u
dir=$1
schema=${2:-domain}
if ! command -v virt-xml-validate >/dev/null; then
	echo "1..0 # SKIP virt-xml-validate not installed (Debian: libvirt-clients)"
	exit 0
fi
n=0
failed=0
for f in "$dir"/*.xml; do
	n=$((n + 1))
	if out=$(virt-xml-validate "$f" "$schema" 2>&1); then
		echo "ok $n - libvirt schema accepts $(basename "$f")"
	else
		printf '%s\n' "$out" | sed 's/^/# /'
		echo "not ok $n - libvirt schema accepts $(basename "$f")"
		failed=1
	fi
done
echo "1..$n"
exit $failed
