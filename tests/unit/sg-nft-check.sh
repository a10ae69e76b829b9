#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Usage: sg-nft-check.sh GOLDEN_DIR
# TAP: the kernel accepts every golden security group ruleset (nft --check,
# applied twice in a row to show the replacement is idempotent), in a
# throwaway network namespace, so the golden files cannot drift away from
# what nftables takes.  Needs root and nft; skips otherwise.
set -u
dir=$1
if [ "$(id -u)" != 0 ] || ! command -v nft >/dev/null || ! command -v unshare >/dev/null; then
	echo "1..0 # SKIP needs root, nft and unshare"
	exit 0
fi
n=0
failed=0
for f in "$dir"/*.nft; do
	n=$((n + 1))
	# -f twice in one fresh namespace: the first creates, the second replaces.
	if out=$(unshare --net sh -c 'nft -f "$1" && nft -f "$1" && nft list ruleset >/dev/null' sh "$f" 2>&1); then
		echo "ok $n - nft applies $(basename "$f") twice"
	else
		printf '%s\n' "$out" | sed 's/^/# /'
		echo "not ok $n - nft applies $(basename "$f") twice"
		failed=1
	fi
done
echo "1..$n"
exit $failed
