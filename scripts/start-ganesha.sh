#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# A userspace NFS server for tests: nfs-ganesha (FSAL VFS) exporting one
# folder, with rpcbind (QEMU's nfs:// driver and libnfs find the NFS and
# MOUNT services through the portmapper, as real clients do).  No kernel
# NFS server or client is involved.
#
#   start-ganesha.sh start DIR   export DIR (made if missing), NFSv3+v4 over
#                                TCP on 127.0.0.1 only, ports NFS 20490,
#                                MOUNT 20048; prints "nfs://127.0.0.1DIR"
#   start-ganesha.sh stop        stops ganesha (rpcbind is left running:
#                                it holds nothing)
#   start-ganesha.sh status
# Idempotent: start with the same DIR while running does nothing; with
# another DIR it restarts ganesha.  State in /var/tmp/kvmcloud-ganesha.
#
# Security: root is not squashed (the agent writes volumes as root, as it
# does in local pools); everything listens on 127.0.0.1 except rpcbind,
# which has no way to bind TCP to loopback alone (it answers only
# registrations of local services; Debian 12's aborts with -h).
set -euo pipefail

STATE=/var/tmp/kvmcloud-ganesha
CONF=$STATE/ganesha.conf
PIDFILE=$STATE/ganesha.pid
LOG=$STATE/ganesha.log
NFS_PORT=20490
MNT_PORT=20048

[ "$(id -u)" -eq 0 ] || { echo "start-ganesha.sh: must run as root" >&2; exit 1; }

. "$(dirname "$0")/pidfile.sh"

# Answers once ganesha has registered NFS v3 with the portmapper.
registered() { rpcinfo -p 127.0.0.1 2>/dev/null | grep -qE "^ +100003 +3 +tcp +$NFS_PORT "; }

start_rpcbind() {
	if ! rpcinfo -p 127.0.0.1 >/dev/null 2>&1; then
		mkdir -p /run/rpcbind
		# Not "-h 127.0.0.1": Debian 12's rpcbind 1.2.6 aborts with it
		# (double free).
		rpcbind -w
		for _ in $(seq 1 50); do rpcinfo -p 127.0.0.1 >/dev/null 2>&1 && return 0; sleep 0.1; done
		echo "start-ganesha: rpcbind does not answer" >&2
		exit 1
	fi
}

start() {
	local dir=$1
	case "$dir" in /*) ;; *) echo "start-ganesha: DIR must be absolute" >&2; exit 2 ;; esac
	if running && registered && grep -qxF "  Path = \"$dir\";" "$CONF" 2>/dev/null; then
		echo "nfs://127.0.0.1$dir"
		return 0
	fi
	stop
	mkdir -p "$STATE" "$dir" /var/run/ganesha /var/lib/nfs/ganesha
	cat >"$CONF" <<EOF
NFS_CORE_PARAM {
  Bind_addr = 127.0.0.1;
  NFS_Port = $NFS_PORT;
  MNT_Port = $MNT_PORT;
  Protocols = 3, 4;
  Enable_NLM = false;
  Enable_RQUOTA = false;
}
NFSV4 {
  Graceless = true;
}
EXPORT {
  Export_Id = 1;
  Path = "$dir";
  Pseudo = "/kvmcloud";
  Access_Type = RW;
  Squash = No_Root_Squash;
  Protocols = 3, 4;
  Transports = TCP;
  SecType = sys;
  FSAL {
    Name = VFS;
  }
}
LOG {
  Default_Log_Level = WARN;
}
EOF
	start_rpcbind
	: >"$LOG"
	# -F: foreground, so that $! is its pid; setsid keeps it out of the
	# caller's process group (a test's clean-up kills its own group).
	setsid ganesha.nfsd -F -f "$CONF" -L "$LOG" -p "$STATE/ganesha.nfsd.pid" \
		</dev/null >>"$LOG" 2>&1 &
	echo $! >"$PIDFILE"
	for _ in $(seq 1 150); do
		if registered; then
			echo "nfs://127.0.0.1$dir"
			return 0
		fi
		running || break
		sleep 0.2
	done
	echo "start-ganesha: ganesha did not register NFS v3 on port $NFS_PORT (see $LOG)" >&2
	tail -5 "$LOG" >&2 || true
	stop
	exit 1
}

case "${1:-}" in
start) [ $# -eq 2 ] || { echo "usage: $0 start DIR" >&2; exit 2; }; start "$2" ;;
stop) stop ;;
status) if running && registered; then echo running; else echo stopped; exit 1; fi ;;
*) echo "usage: $0 start DIR | stop | status" >&2; exit 2 ;;
esac
