#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A cluster of two simulated hosts (scripts/simhost.sh) and one server with
# no embedded agent: `host add`, `kvmcloud-agent join` and `run` inside each
# host, a VM created on each through the API boots (ready line read through
# the API), then `host remove` of one host: its live link is closed, its
# agent cannot reconnect (refused at the handshake), the other host stays
# Up.  Everything is cleaned up: agents, hosts, server.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-simhost.sh"

H1=kce2e-c1
H2=kce2e-c2
I1=43
I2=44
VM1=kce2e-cl1
VM2=kce2e-cl2
BR=10.251.0.254
APORT=$((KC_PORT + 1000))
SDATA=$KC_E2E_DATA/cluster-server
KC_URL=https://$BR:$KC_PORT
export KVMCLOUD_CA=$SDATA/pki/ca.crt
_agent_pids=()

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
trap cluster_cleanup EXIT

# Leftovers of a killed run.
"$SIMHOST" stop "$H1" --purge >/dev/null 2>&1
"$SIMHOST" stop "$H2" --purge >/dev/null 2>&1
rm -rf "$SDATA" "$KC_E2E_DATA"/agent-*

for h in "$H1:$I1" "$H2:$I2"; do
	if ! sim_start "${h%%:*}" "${h##*:}"; then not_ok "simulated host ${h%%:*} starts"; finish; exit 1; fi
done
ok "two simulated hosts start"

# The server: no embedded agent; API and agent listener on the bridge.
mkdir -p "$SDATA"
"$KC_SERVER_BIN" --data-dir "$SDATA" --listen "$BR:$KC_PORT" --agent-listen "$BR:$APORT" \
	--heartbeat 2 >>"$SDATA/server.log" 2>&1 &
_server_pid=$!
up=0
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

# agent_dir NAME: its data.dir, pki.dir, storage and the test image.
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

for h in $H1 $H2; do
	agent_setup $h
	cmd=$(kc --json host add $h | json_get 'd["command"]')
	check "host add $h prints a join command" test -n "$cmd"
	diag "$(echo "$cmd" | sed 's/join \(https[^ ]*\) [0-9a-f]*/join \1 TOKEN/')"
	url=$(echo "$cmd" | awk '{print $3}')
	tok=$(echo "$cmd" | awk '{print $4}')
	fp=$(echo "$cmd" | awk '{print $6}')
	# shellcheck disable=SC2046
	check "kvmcloud-agent join on $h" sim_exec $h "$KC_AGENT_BIN" $(agent_opts $h) join "$url" "$tok" --ca-sha256 "$fp"
	# shellcheck disable=SC2046
	check_err "the token works only once" "invalid, used or expired" \
		sim_exec $h "$KC_AGENT_BIN" -o pki.dir=$KC_E2E_DATA/agent-$h/pki2 join "$url" "$tok" --ca-sha256 "$fp"
	agent_run $h
done

host_state() { kc --json host show "$1" 2>/dev/null | json_get 'd["state"]'; }
wait_host() {
	local i
	for i in $(seq 1 $((${3:-60} * 2))); do
		[ "$(host_state "$1")" = "$2" ] && return 0
		sleep 0.5
	done
	return 1
}
check "host $H1 is Up" wait_host $H1 Up 60
check "host $H2 is Up" wait_host $H2 Up 60
kc host list | sed 's/^/# /'

check "create $VM1 on $H1" kc vm create $VM1 --image kctest --memory 128 --host $H1
check "create $VM2 on $H2" kc vm create $VM2 --image kctest --memory 128 --host $H2
check "$VM1 boots (ready line through the API)" wait_ready $VM1 180
check "$VM2 boots (ready line through the API)" wait_ready $VM2 180
check "$VM1 runs in $H1's libvirtd" test "$(sim_virsh $H1 domstate $VM1)" = running
check "$VM2 runs in $H2's libvirtd" test "$(sim_virsh $H2 domstate $VM2)" = running
vm_host() { kc --json vm list | json_get "[v['host'] for v in d['vms'] if v['name'] == '$1'][0]"; }
check "the VM list shows each on its host" test "$(vm_host $VM1) $(vm_host $VM2)" = "$H1 $H2"
check "a state change reaches the server" bash -c "kc vm destroy $VM2 >/dev/null && wait_state $VM2 shutoff 30"

# Remove host 2: its VM record first, then the host.
check_err "a host with VMs cannot be removed" "still has" kc host remove $H2
check "delete $VM2" kc vm delete $VM2
check "host remove $H2" kc host remove $H2
check "its link is closed and its agent is refused when it reconnects" \
	sim_wait_log "$SDATA/server.log" "handshake refused: certificate of \"$H2\".*is revoked" 90
kc host list | sed 's/^/# /'
check_err "$H2 is gone from the inventory" "not found" kc host show $H2
check "$H1 is still Up" test "$(host_state $H1)" = Up
check "$VM1 still answers through $H1" test "$(vm_state $VM1)" = running
check "delete $VM1" bash -c "kc vm destroy $VM1 >/dev/null; kc vm delete $VM1"

cluster_cleanup
check "no agent process is left" bash -c "! pgrep -f '[k]vmcloud-agent .*agent-kce2e-c' >/dev/null"
check "no simulated host is left" test ! -e "$SIM_ROOT/$H1" -a ! -e "$SIM_ROOT/$H2"
finish
