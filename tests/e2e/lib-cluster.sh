# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# A cluster on this machine for end-to-end tests: simulated hosts
# (lib-simhost.sh), a server with no embedded agent on the simulated
# bridge, and a joined agent per host.  Source after lib.sh and
# lib-simhost.sh; used by 70-cluster.sh and 75-scheduler.sh.
#   cluster_init H:I...        purge leftovers, start the simulated hosts
#                              (name:index), trap cleanup on EXIT
#   cluster_server_start ARGS  the server (extra server options in ARGS)
#   cluster_join H [ADD-ARGS]  host add (e.g. --zone Z --cluster C), join
#                              with its one-time token, run the agent
#   wait_host H STATE [S]      waits for the host's state
#   cluster_cleanup            agents, server, hosts, files
set -u

BR=10.251.0.254
APORT=$((KC_PORT + 1000))
SDATA=$KC_E2E_DATA/cluster-server
KC_URL=https://$BR:$KC_PORT
export KVMCLOUD_CA=$SDATA/pki/ca.crt
_cluster_hosts=()

kc() { "$KC_CLI_BIN" --server "$KC_URL" --token-file "$SDATA/admin.token" "$@"; }
export -f kc
export KC_URL SDATA

stop_agents() {
	local f p i
	for f in "$KC_E2E_DATA"/agent-*.pid; do
		[ -e "$f" ] || continue
		p=$(cat "$f")
		kill "$p" 2>/dev/null
		for i in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		rm -f "$f"
	done
}

cluster_cleanup() {
	stop_agents
	server_stop
	sim_stop_all
	rm -rf "$SDATA" "$KC_E2E_DATA"/agent-*
}

cluster_init() {
	local h
	trap cluster_cleanup EXIT
	# Leftovers of a killed run.
	for h in "$@"; do "$SIMHOST" stop "${h%%:*}" --purge >/dev/null 2>&1; done
	rm -rf "$SDATA" "$KC_E2E_DATA"/agent-*
	for h in "$@"; do
		if ! sim_start "${h%%:*}" "${h##*:}"; then
			not_ok "simulated host ${h%%:*} starts"
			finish
			exit 1
		fi
		_cluster_hosts+=("${h%%:*}")
	done
	ok "$# simulated hosts start"
}

# The server: no embedded agent; API and agent listener on the bridge.
cluster_server_start() {
	local up=0 i
	mkdir -p "$SDATA"
	"$KC_SERVER_BIN" --data-dir "$SDATA" --listen "$BR:$KC_PORT" --agent-listen "$BR:$APORT" \
		--heartbeat 2 "$@" >>"$SDATA/server.log" 2>&1 &
	_server_pid=$!
	for i in $(seq 1 150); do
		if [ -e "$KVMCLOUD_CA" ] && curl -fs --cacert "$KVMCLOUD_CA" -o /dev/null "$KC_URL/api/v1/ca"; then
			up=1
			break
		fi
		sleep 0.2
	done
	if [ $up = 1 ]; then ok "server starts (HTTPS with the cluster CA's certificate)"; else
		not_ok "server starts"; tail -5 "$SDATA/server.log" | sed 's/^/# /'; finish; exit 1
	fi
	check "the start-up lines name the agent listener" grep -q "agents: listening on $BR:$APORT" "$SDATA/server.log"
}

# agent_setup NAME: its data.dir, pki.dir, storage and the test image.
agent_setup() {
	local d=$KC_E2E_DATA/agent-$1
	mkdir -p "$d/images" "$d/pki" "$d/pool"
	chmod 755 "$d" "$d/images" "$d/pool"
	cp "$KC_IMAGE" "$d/images/kctest.qcow2"
}
agent_opts() {
	local d=$KC_E2E_DATA/agent-$1
	echo "-o data.dir=$d -o pki.dir=$d/pki -o storage.dir=$d/pool -o images.dir=$d/images -o accel=tcg -o storage.pool=kce2e"
}
agent_run() {
	local d=$KC_E2E_DATA/agent-$1
	# shellcheck disable=SC2046
	sim_exec "$1" bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$KC_E2E_DATA/agent-$1.pid" \
		"$KC_AGENT_BIN" $(agent_opts "$1") run >>"$d/agent.log" 2>&1 &
}

cluster_join() {
	local h=$1 cmd url tok fp
	shift
	agent_setup "$h"
	cmd=$(kc --json host add "$h" "$@" | json_get 'd["command"]')
	check "host add $h prints a join command" test -n "$cmd"
	diag "$(echo "$cmd" | sed 's/join \(https[^ ]*\) [0-9a-f]*/join \1 TOKEN/')"
	url=$(echo "$cmd" | awk '{print $3}')
	tok=$(echo "$cmd" | awk '{print $4}')
	fp=$(echo "$cmd" | awk '{print $6}')
	# shellcheck disable=SC2046
	check "kvmcloud-agent join on $h" sim_exec "$h" "$KC_AGENT_BIN" $(agent_opts "$h") join "$url" "$tok" --ca-sha256 "$fp"
	# shellcheck disable=SC2046
	check_err "the token works only once" "invalid, used or expired" \
		sim_exec "$h" "$KC_AGENT_BIN" -o pki.dir="$KC_E2E_DATA/agent-$h/pki2" join "$url" "$tok" --ca-sha256 "$fp"
	agent_run "$h"
}

host_state() { kc --json host show "$1" 2>/dev/null | json_get 'd["state"]'; }
wait_host() {
	local i
	for i in $(seq 1 $((${3:-60} * 2))); do
		[ "$(host_state "$1")" = "$2" ] && return 0
		sleep 0.5
	done
	return 1
}
vm_host() { kc --json vm list | json_get "[v['host'] for v in d['vms'] if v['name'] == '$1'][0]"; }

# log_of HOST VM: the guest's serial log, as the host's agent writes it.
log_of() { echo "$KC_E2E_DATA/agent-$1/console/$2.log"; }
# gexec HOST VM COMMAND TAG: runs COMMAND on the guest's console, then
# "echo TAG rc=$?"; succeeds when the guest printed "TAG rc=0".  Only a
# printed digit counts, never the echoed command line.
gexec() {
	local log
	log=$(log_of "$1" "$2")
	sim_console_run "$1" "$2" "$log" "$3; echo $4 rc=\$?" "$4 rc=[0-9]" 30 || return 1
	grep -aq "$4 rc=0" "$log"
}
# gexec_fails HOST VM COMMAND TAG: the guest printed "TAG rc=N", N not 0.
gexec_fails() {
	local log
	log=$(log_of "$1" "$2")
	sim_console_run "$1" "$2" "$log" "$3; echo $4 rc=\$?" "$4 rc=[0-9]" 30 || return 1
	! grep -aq "$4 rc=0" "$log"
}
