# SPDX-License-Identifier: Apache-2.0
# Shared helpers for the end-to-end tests: TAP output, a real all-in-one
# server on a private port and data folder, the CLI, and clean-up.
# Needs: KC_BUILD (meson build dir), KC_IMAGE (test image), KC_E2E_DATA.
set -u

: "${KC_BUILD:?}" "${KC_IMAGE:?}" "${KC_E2E_DATA:?}"
KC_SERVER_BIN=$KC_BUILD/src/server/kvmcloud-server
KC_CLI_BIN=$KC_BUILD/src/cli/kvmcloud
KC_AGENT_BIN=$KC_BUILD/src/agent/kvmcloud-agent
KC_PORT=${KC_PORT:-$((18470 + RANDOM % 1000))}
KC_URL=http://127.0.0.1:$KC_PORT
KC_LOG=$KC_E2E_DATA/$(basename "$0" .sh).log
KC_POOL=kce2e
KC_PREFIX=kce2e-
VIRSH="virsh -q -c qemu:///system"
_tap_n=0
_server_pid=

ok() { _tap_n=$((_tap_n + 1)); echo "ok $_tap_n - $*"; }
not_ok() { _tap_n=$((_tap_n + 1)); echo "not ok $_tap_n - $*"; }
diag() { echo "# $*"; }

# check DESC CMD...: passes when CMD exits 0.
check() {
	local desc=$1; shift
	if "$@" >>"$KC_LOG" 2>&1; then ok "$desc"; else not_ok "$desc"; diag "command: $*"; fi
}

# check_err DESC REGEX CMD...: passes when CMD exits non-zero and its
# stderr (one clear line) matches REGEX.
check_err() {
	local desc=$1 re=$2; shift 2
	local out rc
	out=$("$@" 2>&1 >/dev/null); rc=$?
	echo "[$desc] rc=$rc: $out" >>"$KC_LOG"
	if [ $rc -ne 0 ] && printf '%s' "$out" | grep -Eq -- "$re"; then
		ok "$desc"
	else
		not_ok "$desc"; diag "rc=$rc, stderr: $out"; diag "expected: $re"
	fi
}

finish() { echo "1..$_tap_n"; }

kc() { "$KC_CLI_BIN" --server "$KC_URL" --token-file "$KC_E2E_DATA/admin.token" "$@"; }

# json_get EXPR: reads JSON on stdin, prints EXPR evaluated on it as `d`.
json_get() { python3 -c 'import json,sys; d=json.load(sys.stdin); v='"$1"'; print(v if not isinstance(v,bool) else str(v).lower())'; }

# Prepares the image store once and starts a server on KC_PORT.
server_start() {
	mkdir -p "$KC_E2E_DATA/images"
	if ! cmp -s "$KC_IMAGE" "$KC_E2E_DATA/images/kctest.qcow2"; then
		cp "$KC_IMAGE" "$KC_E2E_DATA/images/kctest.qcow2.tmp"
		mv "$KC_E2E_DATA/images/kctest.qcow2.tmp" "$KC_E2E_DATA/images/kctest.qcow2"
	fi
	# KC_E2E_DB=postgresql://...: the same tests on PostgreSQL.
	local db=()
	[ -z "${KC_E2E_DB:-}" ] || db=(--db "$KC_E2E_DB")
	"$KC_SERVER_BIN" --all-in-one --data-dir "$KC_E2E_DATA" --listen "127.0.0.1:$KC_PORT" \
		"${db[@]}" -o storage.pool=$KC_POOL "$@" >>"$KC_E2E_DATA/server.log" 2>&1 &
	_server_pid=$!
	local i
	for i in $(seq 1 300); do
		if curl -fs -o /dev/null "$KC_URL/api/v1/openapi.json"; then return 0; fi
		if ! kill -0 $_server_pid 2>/dev/null; then
			diag "server exited; last log lines:"; tail -5 "$KC_E2E_DATA/server.log" | sed 's/^/# /'
			return 1
		fi
		sleep 0.2
	done
	diag "server did not answer in 60 s"; return 1
}

server_stop() {
	if [ -n "$_server_pid" ]; then
		kill "$_server_pid" 2>/dev/null
		wait "$_server_pid" 2>/dev/null
		_server_pid=
	fi
}

# Removes every libvirt domain with our prefix, whatever state it is in.
cleanup_domains() {
	local d
	for d in $($VIRSH list --all --name 2>/dev/null | grep "^$KC_PREFIX"); do
		$VIRSH destroy "$d" >/dev/null 2>&1
		$VIRSH undefine "$d" --nvram >/dev/null 2>&1 || $VIRSH undefine "$d" >/dev/null 2>&1
	done
}

cleanup_all() { server_stop; cleanup_domains; }
trap cleanup_all EXIT

# wait_ready VM [SECONDS]: waits for the guest's ready line on its console.
wait_ready() {
	kc vm log "$1" --follow --until "KVMCLOUD-READY" --timeout "${2:-120}"
}

# vm_state VM: prints the state the API reports.
vm_state() { kc --json vm show "$1" | json_get 'd["state"]'; }

# wait_state VM STATE [SECONDS]
wait_state() {
	local i
	for i in $(seq 1 $((${3:-60} * 5))); do
		[ "$(vm_state "$1" 2>/dev/null)" = "$2" ] && return 0
		sleep 0.2
	done
	return 1
}

export KC_URL KC_E2E_DATA KC_CLI_BIN KC_SERVER_BIN KC_AGENT_BIN KC_POOL KC_PREFIX VIRSH
export -f kc json_get vm_state wait_state wait_ready
