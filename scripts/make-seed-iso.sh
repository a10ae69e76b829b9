#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# make-seed-iso.sh OUT.iso HOSTNAME [USER_DATA_FILE]
#
# Create a NoCloud seed ISO (iso9660 + Joliet + Rock Ridge, volume id
# "cidata") holding meta-data (instance-id, local-hostname) and user-data.
# Without USER_DATA_FILE an empty "#cloud-config" user-data is written.
# The instance id is "iid-HOSTNAME" unless INSTANCE_ID is set.
# Works with the kctest image (scripts/build-test-image.sh) and cloud-init.
set -euo pipefail

usage() { echo "usage: $0 OUT.iso HOSTNAME [USER_DATA_FILE]" >&2; exit 2; }
if [ $# -lt 2 ] || [ $# -gt 3 ]; then usage; fi
OUT=$1
HOST=$2
USER_DATA=${3:-}

case "$HOST" in
    ""|-*|*[!A-Za-z0-9.-]*) echo "make-seed-iso: invalid hostname '$HOST'" >&2; exit 2 ;;
esac
if [ -n "$USER_DATA" ] && [ ! -f "$USER_DATA" ]; then
    echo "make-seed-iso: $USER_DATA: no such file" >&2
    exit 2
fi
command -v xorriso >/dev/null || { echo "make-seed-iso: xorriso not found" >&2; exit 1; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir "$TMP/seed"
printf 'instance-id: %s\nlocal-hostname: %s\n' "${INSTANCE_ID:-iid-$HOST}" "$HOST" > "$TMP/seed/meta-data"
if [ -n "$USER_DATA" ]; then
    cp "$USER_DATA" "$TMP/seed/user-data"
else
    printf '#cloud-config\n{}\n' > "$TMP/seed/user-data"
fi

OUT_DIR=$(dirname "$OUT")
PART=$(mktemp "$OUT_DIR/.seed.XXXXXX")
trap 'rm -rf "$TMP" "$PART"' EXIT
xorriso -as mkisofs -quiet -volid cidata -joliet -rock -output "$PART" "$TMP/seed" 2>"$TMP/log" ||
    { cat "$TMP/log" >&2; exit 1; }
chmod 644 "$PART"
mv -f "$PART" "$OUT"
