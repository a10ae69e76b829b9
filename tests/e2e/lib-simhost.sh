# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# Helpers for end-to-end tests with several simulated KVM hosts on this one
# machine (scripts/simhost.sh; docs/testing.md).  Source after lib.sh:
#   sim_start NAME INDEX   starts a host; sets SIM_URI_<NAME> ('-' -> '_')
#   sim_uri NAME           prints the URI to reach its libvirtd from outside
#   sim_virsh NAME ARGS    virsh against that host
#   sim_exec NAME CMD...   CMD inside the host's namespaces
#   sim_track FILE...      files (in SIM_SHARED, say) sim_stop_all removes
#   sim_stop_all           stops and purges every host this script started,
#                          removes tracked files; runs on EXIT (then lib.sh's
#                          cleanup_all), also after a failure halfway
set -u

SIMHOST=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/scripts/simhost.sh
SIM_ROOT=/var/lib/kvmcloud-sim
SIM_SHARED=$SIM_ROOT/shared
_sim_started=()
_sim_files=()
if [ -e "$SIM_ROOT" ]; then _sim_root_existed=1; else _sim_root_existed=0; fi

sim_uri() { "$SIMHOST" uri "$1"; }

sim_start() {
	local out
	out=$("$SIMHOST" start "$1" "$2") || return 1
	_sim_started+=("$1")
	printf -v "SIM_URI_${1//-/_}" '%s' "${out#* }"
	export "SIM_URI_${1//-/_}"
}

sim_virsh() {
	local name=$1
	shift
	virsh -q -c "$(sim_uri "$name")" "$@"
}

sim_exec() { "$SIMHOST" exec "$@"; }

sim_track() { _sim_files+=("$@"); }

# Safe to call more than once and from a trap: every step ignores errors.
sim_stop_all() {
	local n
	for n in "${_sim_started[@]}"; do
		"$SIMHOST" stop "$n" --purge >/dev/null 2>&1 || true
	done
	_sim_started=()
	[ ${#_sim_files[@]} -eq 0 ] || rm -f -- "${_sim_files[@]}"
	_sim_files=()
	# Leave no trace when this script created the folder and nobody else
	# has a host or a file in it now.
	if [ "$_sim_root_existed" = 0 ] && [ -d "$SIM_ROOT" ] &&
		[ -z "$(ls -A "$SIM_SHARED" 2>/dev/null)" ] &&
		[ -z "$(find "$SIM_ROOT" -mindepth 1 -maxdepth 1 ! -name shared ! -name .lock)" ]; then
		rm -rf "$SIM_ROOT"
	fi
}

# sim_wait_log FILE REGEX [SECONDS]: waits for a line matching REGEX in FILE.
sim_wait_log() {
	local i
	for i in $(seq 1 $((${3:-60} * 10))); do
		grep -Eq -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# sim_console_run NAME DOMAIN LOGFILE COMMAND EXPECT [SECONDS]: types COMMAND
# on the guest's serial console (its pty on host NAME) until EXPECT shows up
# in LOGFILE.  The pty is held open meanwhile: QEMU reads a pty only while
# someone has its other end open, and raw mode keeps the tty from echoing
# the guest's output back into the guest.
sim_console_run() {
	local name=$1 dom=$2 log=$3 cmd=$4 expect=$5 secs=${6:-20} pts fd i rc=1
	pts=$(sim_virsh "$name" ttyconsole "$dom") && [ -c "$pts" ] || return 1
	exec {fd}<>"$pts" || return 1
	stty -F "$pts" raw -echo 2>/dev/null
	for i in $(seq 0 $((secs * 10))); do
		if [ $((i % 30)) -eq 0 ]; then printf '%s\r' "$cmd" >&"$fd"; fi
		if grep -Eq -- "$expect" "$log" 2>/dev/null; then rc=0; break; fi
		sleep 0.1
	done
	exec {fd}>&-
	return $rc
}

_sim_exit() { sim_stop_all; cleanup_all; }
trap _sim_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
