#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# A userspace iSCSI target for tests: tgtd (Debian "tgt") with one target
# whose LUN 1 is a sparse file.  No kernel initiator or target is involved:
# libvirt's iscsi-direct pool and QEMU's iscsi:// driver use libiscsi.
#
#   start-tgt.sh start IQN FILE SIZE   tgtd on 127.0.0.1:13260 (control
#                                      port 7, so a system tgtd is not
#                                      disturbed); target IQN (tid 1) with
#                                      FILE (made sparse at SIZE, e.g. 1G,
#                                      if missing) as LUN 1; any initiator
#                                      on this machine may log in
#   start-tgt.sh stop
#   start-tgt.sh status
# Idempotent: start with the same IQN and FILE while running does nothing.
# State in /var/tmp/kvmcloud-tgt.
set -euo pipefail

STATE=/var/tmp/kvmcloud-tgt
PIDFILE=$STATE/tgtd.pid
LOG=$STATE/tgtd.log
PORTAL=127.0.0.1:13260
CTL=7

[ "$(id -u)" -eq 0 ] || { echo "start-tgt.sh: must run as root" >&2; exit 1; }

. "$(dirname "$0")/pidfile.sh"
adm() { tgtadm -C "$CTL" --lld iscsi "$@"; }

start() {
	local iqn=$1 file=$2 size=$3
	if running && adm --op show --mode target 2>/dev/null | grep -q "^Target 1: $iqn\$" &&
		adm --op show --mode target 2>/dev/null | grep -qF "Backing store path: $file"; then
		echo "iscsi://$PORTAL/$iqn/1"
		return 0
	fi
	stop
	mkdir -p "$STATE" "$(dirname "$file")"
	[ -e "$file" ] || truncate -s "$size" "$file"
	: >"$LOG"
	# -f: foreground, so that $! is its pid; setsid: out of the caller's
	# process group.
	setsid tgtd -f -C "$CTL" --iscsi "portal=$PORTAL" </dev/null >>"$LOG" 2>&1 &
	echo $! >"$PIDFILE"
	for _ in $(seq 1 100); do
		adm --op show --mode sys >/dev/null 2>&1 && break
		running || break
		sleep 0.1
	done
	if ! adm --op new --mode target --tid 1 -T "$iqn" ||
		! adm --op new --mode logicalunit --tid 1 --lun 1 -b "$file" ||
		! adm --op bind --mode target --tid 1 -I 127.0.0.1; then
		echo "start-tgt: tgtd did not take the target (see $LOG)" >&2
		stop
		exit 1
	fi
	echo "iscsi://$PORTAL/$iqn/1"
}

case "${1:-}" in
start) [ $# -eq 4 ] || { echo "usage: $0 start IQN FILE SIZE" >&2; exit 2; }; start "$2" "$3" "$4" ;;
stop) stop ;;
status) if running; then echo running; else echo stopped; exit 1; fi ;;
*) echo "usage: $0 start IQN FILE SIZE | stop | status" >&2; exit 2 ;;
esac
