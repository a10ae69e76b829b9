#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# simhost.sh: several simulated KVM hosts on this one machine, for cluster
# tests.  Each simulated host is its own virtlogd + libvirtd in
#   - its own network namespace "kcsim-NAME" (ip netns), address
#     10.251.0.INDEX/24 on a veth pair whose other end is on the bridge
#     kcsimbr0 (10.251.0.254/24) in the root namespace; no default route,
#     so nothing a simulated host sends can leave 10.251.0.0/24;
#   - its own mount namespace (private propagation), kept alive by a bind of
#     its nsfs file at /run/kcsim/NAME.mnt, with the folders of
#     /var/lib/kvmcloud-sim/NAME bound over /run, /etc/libvirt,
#     /var/lib/libvirt, /var/log/libvirt and /var/cache/libvirt.
# /var/lib/kvmcloud-sim/shared is not bound over, so every simulated host
# sees it at the same path: put disks there to live-migrate.
#
#   simhost.sh start NAME [INDEX]   start (or find running) host; prints "NAME URI"
#   simhost.sh stop NAME [--purge]  destroy its domains, stop its daemons, remove
#                                   its namespaces; --purge also removes its state
#   simhost.sh stop --all [--purge] the same for every simulated host
#   simhost.sh exec NAME CMD...     run CMD inside the host's namespaces
#   simhost.sh ovs NAME             start (or find running) Open vSwitch inside
#                                   the host: ovsdb-server + ovs-vswitchd with
#                                   their database in the host's state folder,
#                                   sockets in its private /run/openvswitch;
#                                   bridges must use datapath_type=netdev
#                                   (this kernel has no openvswitch module)
#   simhost.sh uri NAME             print the URI for use from outside
#   simhost.sh list                 NAME INDEX ADDRESS STATE URI, one host a line
#                                   (STATE: running, down = namespaces but no
#                                   libvirtd answering, stopped)
#
# Security: the daemons listen on their UNIX sockets only (mode 0700, root);
# libvirtd is started without --listen, so no TCP listener exists at all.
# Live migration (p2p) goes over the destination's UNIX socket (visible to
# the source daemon because /var/lib/kvmcloud-sim is not bound over); only
# QEMU's migration stream uses TCP, on the destination's own 10.251.0.INDEX.
# The root namespace's libvirtd, /etc/libvirt and /run/libvirt are never
# touched: every process this script stops is checked to live in the
# simulated host's mount namespace first.
set -euo pipefail

SIM_ROOT=/var/lib/kvmcloud-sim
NS_DIR=/run/kcsim
BRIDGE=kcsimbr0
BRIDGE_ADDR=10.251.0.254
NET_PREFIX=10.251.0
MAX_INDEX=50
WAIT_SECS=30
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

die() { echo "simhost: $*" >&2; exit 1; }
usage() {
	sed -n '/^#   simhost.sh/s/^#   //p' "$0" >&2
	exit 2
}

[ "$(id -u)" -eq 0 ] || die "must run as root"
for t in ip unshare nsenter virsh libvirtd virtlogd flock; do
	command -v "$t" >/dev/null || die "$t not found"
done

valid_name() { [[ $1 =~ ^[a-z0-9-]{1,20}$ ]] && [ "$1" != shared ]; }
state_dir() { echo "$SIM_ROOT/$1"; }
sock_path() { echo "$SIM_ROOT/$1/run/libvirt/libvirt-sock"; }
uri_of() { echo "qemu+unix:///system?socket=$(sock_path "$1")"; }
netns_of() { echo "kcsim-$1"; }
mntns_of() { echo "$NS_DIR/$1.mnt"; }

# Serialises start/stop.  The lock fd is closed for every daemon we start,
# or the daemon would hold the lock for its whole life.
lock() {
	mkdir -p "$SIM_ROOT"
	chmod 0755 "$SIM_ROOT"
	exec 9>"$SIM_ROOT/.lock"
	flock -w 120 9 || die "another simhost.sh holds $SIM_ROOT/.lock"
}

is_mounted() { awk -v p="$1" '$5 == p { f = 1 } END { exit !f }' /proc/self/mountinfo; }

# Inode of a namespace file, or empty.
ns_inode() { stat -L -c %i "$1" 2>/dev/null || true; }

mntns_alive() { is_mounted "$(mntns_of "$1")"; }
netns_alive() { [ -e "/run/netns/$(netns_of "$1")" ]; }

# PIDs of every process in NAME's mount or network namespace.
ns_pids() {
	local mi ni p pid
	mi=$(mntns_alive "$1" && ns_inode "$(mntns_of "$1")" || true)
	ni=$(netns_alive "$1" && ns_inode "/run/netns/$(netns_of "$1")" || true)
	[ -n "$mi$ni" ] || return 0
	for p in /proc/[0-9]*; do
		pid=${p#/proc/}
		[ "$pid" != $$ ] || continue
		if { [ -n "$mi" ] && [ "$(ns_inode "$p/ns/mnt")" = "$mi" ]; } ||
			{ [ -n "$ni" ] && [ "$(ns_inode "$p/ns/net")" = "$ni" ]; }; then
			echo "$pid"
		fi
	done
}

# PID from NAME's pid file if that process runs in NAME's mount namespace.
daemon_pid() {
	local f pid
	f="$(state_dir "$1")/run/$2.pid"
	[ -r "$f" ] || return 1
	pid=$(tr -dc 0-9 <"$f")
	[ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
	mntns_alive "$1" || return 1
	[ "$(ns_inode "/proc/$pid/ns/mnt")" = "$(ns_inode "$(mntns_of "$1")")" ] || return 1
	echo "$pid"
}

socket_answers() { timeout 5 virsh -q -c "$(uri_of "$1")" version >/dev/null 2>&1; }

# Runs a command inside NAME's namespaces, with a clean environment.
in_host() {
	local name=$1; shift
	nsenter --net="/run/netns/$(netns_of "$name")" --mount="$(mntns_of "$name")" -- \
		env -i PATH="$PATH" HOME=/root LANG=C.UTF-8 "$@" 9>&-
}

index_in_use_by() {
	local f
	for f in "$SIM_ROOT"/*/index; do
		[ -e "$f" ] || continue
		if [ "$(cat "$f")" = "$1" ]; then basename "$(dirname "$f")"; return 0; fi
	done
	return 1
}

write_configs() {
	local name=$1 idx=$2 s addr
	s=$(state_dir "$name")
	addr=$NET_PREFIX.$idx
	# A real random UUID, kept across restarts (libvirt rejects made-up ones
	# such as all ones; migration refuses two hosts with the same UUID).
	[ -s "$s/host-uuid" ] || cat /proc/sys/kernel/random/uuid >"$s/host-uuid"
	cat >"$s/etc-libvirt/libvirtd.conf" <<-EOF
		# Written by simhost.sh for simulated host $name (index $idx).
		host_uuid = "$(cat "$s/host-uuid")"
		# UNIX socket only: libvirtd runs without --listen; these ports only
		# keep the hosts apart should someone add --listen by hand.
		listen_tls = 0
		listen_tcp = 0
		tcp_port = "$((16600 + idx))"
		tls_port = "$((16700 + idx))"
		unix_sock_group = "root"
		unix_sock_ro_perms = "0700"
		unix_sock_rw_perms = "0700"
		unix_sock_admin_perms = "0700"
		auth_unix_ro = "none"
		auth_unix_rw = "none"
		log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
	EOF
	cat >"$s/etc-libvirt/virtlogd.conf" <<-EOF
		log_outputs = "3:file:/var/log/libvirt/virtlogd.log"
	EOF
	# dynamic_ownership and user/group stay at their defaults.  cgroups are
	# off: every libvirtd names a guest's cgroup after its own domain ID
	# (machine/qemu-ID-NAME), so two hosts would share one during migration.
	cat >"$s/etc-libvirt/qemu.conf" <<-EOF
		# Written by simhost.sh for simulated host $name (index $idx).
		vnc_listen = "127.0.0.1"
		spice_listen = "127.0.0.1"
		remote_display_port_min = $((20000 + (idx - 1) * 100))
		remote_display_port_max = $((20000 + (idx - 1) * 100 + 99))
		remote_websocket_port_min = $((26000 + (idx - 1) * 100))
		remote_websocket_port_max = $((26000 + (idx - 1) * 100 + 99))
		migration_address = "$addr"
		migration_host = "$addr"
		migration_port_min = $((49152 + (idx - 1) * 20))
		migration_port_max = $((49152 + (idx - 1) * 20 + 19))
		cgroup_controllers = [ ]
	EOF
}

ensure_bridge() {
	if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
		ip link add "$BRIDGE" type bridge
		ip addr add "$BRIDGE_ADDR/24" dev "$BRIDGE"
	fi
	ip link set "$BRIDGE" up
}

ensure_netns() {
	local name=$1 idx=$2 ns veth
	ns=$(netns_of "$name")
	veth=kcsv$idx
	ensure_bridge
	if ! netns_alive "$name"; then
		ip netns add "$ns"
		ip link del "$veth" 2>/dev/null || true
		ip link add "$veth" type veth peer name eth0 netns "$ns"
		ip link set "$veth" master "$BRIDGE" up
		ip -n "$ns" addr add "$NET_PREFIX.$idx/24" dev eth0
		ip -n "$ns" link set eth0 up
		ip -n "$ns" link set lo up
	fi
}

# The mount namespace file must sit on a private mount, or unshare cannot
# bind it (the same reason ip netns keeps /run/netns a mount of its own).
ensure_ns_dir() {
	mkdir -p "$NS_DIR"
	if ! is_mounted "$NS_DIR"; then
		mount --bind "$NS_DIR" "$NS_DIR"
		mount --make-private "$NS_DIR"
	fi
}

ensure_mntns() {
	local name=$1 s f
	s=$(state_dir "$name")
	f=$(mntns_of "$name")
	mntns_alive "$name" && return 0
	ensure_ns_dir
	: >"$f"
	# Inside the new namespace: first drop our copies of the other hosts'
	# namespace files (they would keep those namespaces alive after their
	# stop), then give the host its private folders.
	nsenter --net="/run/netns/$(netns_of "$name")" -- \
		unshare --mount="$f" --propagation private -- /bin/bash -euc '
			s=$1
			for m in /run/kcsim /run/netns; do
				if awk -v p="$m" '"'"'$5 == p { f = 1 } END { exit !f }'"'"' /proc/self/mountinfo; then
					umount -R -l "$m"
				fi
			done
			mount --bind "$s/run" /run
			mount --bind "$s/etc-libvirt" /etc/libvirt
			mount --bind "$s/var-lib-libvirt" /var/lib/libvirt
			mount --bind "$s/log" /var/log/libvirt
			mount --bind "$s/cache-libvirt" /var/cache/libvirt
		' _ "$s" 9>&- || { umount "$f" 2>/dev/null || true; rm -f "$f"; die "cannot set up the mount namespace of $name"; }
}

cmd_start() {
	local name=${1:-} idx=${2:-} s other
	valid_name "$name" || die "bad name '$name' (want [a-z0-9-]{1,20}, not 'shared')"
	lock
	s=$(state_dir "$name")
	if [ -s "$s/index" ]; then
		[ -z "$idx" ] || [ "$idx" = "$(cat "$s/index")" ] ||
			die "$name has index $(cat "$s/index"); stop it with --purge to change it"
		idx=$(cat "$s/index")
	elif [ -z "$idx" ]; then
		for idx in $(seq 1 $MAX_INDEX); do index_in_use_by "$idx" >/dev/null || break; done
		! index_in_use_by "$idx" >/dev/null || die "all $MAX_INDEX indexes are in use"
	fi
	[[ $idx =~ ^[0-9]+$ ]] && [ "$idx" -ge 1 ] && [ "$idx" -le $MAX_INDEX ] ||
		die "bad index '$idx' (want 1..$MAX_INDEX)"
	if other=$(index_in_use_by "$idx") && [ "$other" != "$name" ]; then
		die "index $idx is used by simulated host $other"
	fi

	if daemon_pid "$name" libvirtd >/dev/null && socket_answers "$name"; then
		echo "$name $(uri_of "$name")"
		return 0
	fi

	mkdir -p "$SIM_ROOT/shared" "$s"/{etc-libvirt,var-lib-libvirt,run/libvirt,run/lock,log,cache-libvirt}
	chmod 0755 "$SIM_ROOT/shared" "$s"
	echo "$idx" >"$s/index"
	write_configs "$name" "$idx"
	# The QEMU capabilities cache is keyed by binary and libvirt version;
	# a copy of the root daemon's saves each host a probe of QEMU.
	if [ -d /var/cache/libvirt/qemu/capabilities ] && [ ! -d "$s/cache-libvirt/qemu/capabilities" ]; then
		mkdir -p "$s/cache-libvirt/qemu"
		cp -a /var/cache/libvirt/qemu/capabilities "$s/cache-libvirt/qemu/" 2>/dev/null || true
	fi

	ensure_netns "$name" "$idx"
	ensure_mntns "$name"

	if ! daemon_pid "$name" virtlogd >/dev/null; then
		in_host "$name" virtlogd -d </dev/null >>"$s/log/daemons.out" 2>&1
	fi
	if ! daemon_pid "$name" libvirtd >/dev/null; then
		in_host "$name" libvirtd -d </dev/null >>"$s/log/daemons.out" 2>&1
	fi
	local deadline=$((SECONDS + WAIT_SECS))
	until socket_answers "$name"; do
		[ $SECONDS -lt $deadline ] ||
			die "libvirtd of $name did not answer in $WAIT_SECS s (see $s/log/libvirtd.log)"
		sleep 0.1
	done
	echo "$name $(uri_of "$name")"
}

# A zombie counts as gone: its parent (often PID 1, for daemonised QEMU)
# reaps it whenever it likes.
alive() {
	local st
	st=$(sed 's/.*) //; s/ .*//' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ]
}

# kill_wait SIGNAL SECONDS PID...: signals the PIDs and waits for them to go.
kill_wait() {
	local sig=$1 secs=$2 p left
	shift 2
	[ $# -gt 0 ] || return 0
	kill "-$sig" "$@" 2>/dev/null || true
	for _ in $(seq 1 $((secs * 10))); do
		left=0
		for p in "$@"; do alive "$p" && left=1; done
		[ $left -eq 1 ] || return 0
		sleep 0.1
	done
	return 1
}

stop_one() {
	local name=$1 purge=$2 s idx d pids pid
	s=$(state_dir "$name")
	idx=$(cat "$s/index" 2>/dev/null || true)
	if daemon_pid "$name" libvirtd >/dev/null && socket_answers "$name"; then
		for d in $(virsh -q -c "$(uri_of "$name")" list --name 2>/dev/null); do
			virsh -q -c "$(uri_of "$name")" destroy "$d" >/dev/null 2>&1 || true
		done
	fi
	for d in libvirtd virtlogd; do
		if pid=$(daemon_pid "$name" $d); then
			kill_wait TERM 10 "$pid" || kill_wait KILL 5 "$pid" || true
		fi
	done
	# Whatever else still runs in the host (QEMU, agents started by exec).
	pids=$(ns_pids "$name")
	if [ -n "$pids" ]; then
		# shellcheck disable=SC2086
		kill_wait TERM 5 $pids || kill_wait KILL 5 $pids || true
	fi
	if mntns_alive "$name"; then umount "$(mntns_of "$name")"; fi
	rm -f "$(mntns_of "$name")"
	if netns_alive "$name"; then ip netns del "$(netns_of "$name")"; fi
	if [ -n "$idx" ]; then ip link del "kcsv$idx" 2>/dev/null || true; fi
	if [ "$purge" = 1 ]; then rm -rf "$s"; fi
}

# Removes what start added to the root namespace once no host needs it.
cleanup_shared_bits() {
	local f
	for f in "$NS_DIR"/*.mnt /run/netns/kcsim-*; do [ -e "$f" ] && return 0; done
	ip link del "$BRIDGE" 2>/dev/null || true
	if is_mounted "$NS_DIR"; then umount "$NS_DIR"; fi
	rmdir "$NS_DIR" 2>/dev/null || true
	# ip netns add made /run/netns a mount; drop it if nothing else uses it.
	if [ -d /run/netns ] && [ -z "$(ls -A /run/netns)" ]; then
		if is_mounted /run/netns; then umount /run/netns; fi
		rmdir /run/netns 2>/dev/null || true
	fi
}

all_names() {
	local d n
	{
		for d in "$SIM_ROOT"/*/index; do [ -e "$d" ] && basename "$(dirname "$d")"; done
		for d in "$NS_DIR"/*.mnt; do [ -e "$d" ] && n=$(basename "$d" .mnt) && echo "$n"; done
		for d in /run/netns/kcsim-*; do [ -e "$d" ] && echo "${d#/run/netns/kcsim-}"; done
	} | sort -u
}

cmd_stop() {
	local all=0 purge=0 name='' a n
	for a in "$@"; do
		case $a in
		--purge) purge=1 ;;
		--all) all=1 ;;
		*) [ -z "$name" ] || usage; name=$a ;;
		esac
	done
	lock
	if [ $all = 1 ]; then
		[ -z "$name" ] || usage
		for n in $(all_names); do valid_name "$n" && stop_one "$n" $purge; done
	else
		valid_name "$name" || die "bad name '$name'"
		stop_one "$name" $purge
	fi
	cleanup_shared_bits
}

cmd_exec() {
	local name=${1:-}
	valid_name "$name" || die "bad name '$name'"
	shift
	[ $# -gt 0 ] || usage
	mntns_alive "$name" && netns_alive "$name" || die "$name is not running"
	exec nsenter --net="/run/netns/$(netns_of "$name")" --mount="$(mntns_of "$name")" -- "$@"
}

cmd_ovs() {
	local name=${1:-} d
	valid_name "$name" || die "bad name '$name'"
	command -v ovs-vswitchd >/dev/null || die "ovs-vswitchd not found (package openvswitch-switch)"
	mntns_alive "$name" && netns_alive "$name" || die "$name is not running"
	d="$(state_dir "$name")/ovs"
	mkdir -p "$d" "$(state_dir "$name")/run/openvswitch"
	if in_host "$name" ovs-vsctl --timeout=5 show >/dev/null 2>&1; then
		echo "$name ovs running"
		return 0
	fi
	[ -f "$d/conf.db" ] || ovsdb-tool create "$d/conf.db" /usr/share/openvswitch/vswitch.ovsschema
	in_host "$name" ovsdb-server "$d/conf.db" --remote=punix:/run/openvswitch/db.sock \
		--pidfile=/run/openvswitch/ovsdb-server.pid --unixctl=/run/openvswitch/ovsdb-server.ctl \
		--detach --no-chdir -vconsole:off --log-file="$d/ovsdb-server.log"
	in_host "$name" ovs-vsctl --no-wait init
	in_host "$name" ovs-vswitchd unix:/run/openvswitch/db.sock \
		--pidfile=/run/openvswitch/ovs-vswitchd.pid --unixctl=/run/openvswitch/ovs-vswitchd.ctl \
		--detach --no-chdir -vconsole:off --log-file="$d/ovs-vswitchd.log"
	in_host "$name" ovs-vsctl --timeout=10 show >/dev/null || die "$name: ovs-vswitchd does not answer"
	echo "$name ovs started"
}

cmd_list() {
	local n idx state
	for n in $(all_names); do
		idx=$(cat "$(state_dir "$n")/index" 2>/dev/null || echo "?")
		if daemon_pid "$n" libvirtd >/dev/null && socket_answers "$n"; then
			state=running
		elif mntns_alive "$n" || netns_alive "$n"; then
			state=down
		else
			state=stopped
		fi
		echo "$n $idx $NET_PREFIX.$idx $state $(uri_of "$n")"
	done
}

cmd=${1:-}
[ $# -eq 0 ] || shift
case $cmd in
start) [ $# -ge 1 ] && [ $# -le 2 ] || usage; cmd_start "$@" ;;
stop) [ $# -ge 1 ] || usage; cmd_stop "$@" ;;
exec) cmd_exec "$@" ;;
ovs) cmd_ovs "$@" ;;
uri) valid_name "${1:-}" || usage; uri_of "$1" ;;
list) cmd_list ;;
*) usage ;;
esac
