#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# kill -9 of a remote agent (`kvmcloud-agent run` on a simulated host) and of
# that host's libvirtd in the middle of a VM create, at several moments
# picked by what the create has written so far (its intent record, root
# volume, seed, defined domain, running QEMU): after a restart there must be
# either a whole VM (record, domain, disks, the same state everywhere) or
# nothing of it (no record, domain, volume, intent record or seed), and the
# same name can be created again.  Then the agent is killed while VMs run
# (host Disconnected, VMs untouched), VMs are started and stopped behind its
# back with virsh, and the restarted agent reconciles them; an agent started
# while libvirtd is down waits for it instead of exiting.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-simhost.sh"
. "$(dirname "$0")/lib-cluster.sh"

H=kce2e-rc1
H2=kce2e-rc2
IDX=45
IDX2=46
POOLDIR=$KC_E2E_DATA/agent-$H/pool
UDATA=$KC_ROOT/tests/e2e/data/user-data.sh

libvirtd_pid() { cat "$SIM_ROOT/$1/run/libvirtd.pid" 2>/dev/null; }
agent_pid() { cat "$KC_E2E_DATA/agent-$1.pid" 2>/dev/null; }

# kill9 PID: SIGKILL and wait until it is gone (not our child: poll).
kill9() {
	local i
	[ -n "$1" ] || return 1
	kill -9 "$1" 2>/dev/null
	for i in $(seq 1 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.05; done
	return 1
}
stop_agent() {
	local p i
	p=$(agent_pid "$1") && [ -n "$p" ] || return 1
	kill "$p"
	for i in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	rm -f "$KC_E2E_DATA/agent-$1.pid"
	! kill -0 "$p" 2>/dev/null
}
kill_agent() { kill9 "$(agent_pid "$1")"; rm -f "$KC_E2E_DATA/agent-$1.pid"; }
# The agent's pid file is written by the shell that execs it.
start_agent() {
	local i
	agent_run "$1"
	for i in $(seq 1 50); do [ -s "$KC_E2E_DATA/agent-$1.pid" ] && return 0; sleep 0.1; done
	return 1
}
restart_libvirtd() { "$SIMHOST" start "$1" "$2" >/dev/null; }

# A create interrupted by a kill may leave its job running for a moment:
# judge only once no job is left queued or running.
jobs_settled() {
	local i
	for i in $(seq 1 300); do
		kc --json job list --limit 1000 2>/dev/null | python3 -c '
import json, sys
jobs = json.load(sys.stdin)["jobs"]
sys.exit(0 if all(j.get("state") not in ("queued", "running") for j in jobs) else 1)' && return 0
		sleep 0.2
	done
	return 1
}

# api_state VM: "STATE MANAGED" from the API, or "none".
api_state() {
	kc --json vm show "$1" 2>/dev/null | json_get 'd["state"] + " " + str(d.get("managed", True)).lower()' ||
		echo none
}
# dom_state H VM: libvirt's state in the API's words, or "none".
dom_state() {
	local s
	s=$(sim_virsh "$1" domstate "$2" 2>/dev/null) || { echo none; return; }
	[ "$s" = "shut off" ] && s=shutoff
	echo "$s"
}

# whole_or_nothing H VM: prints what it found, succeeds if consistent.
whole_or_nothing() {
	local h=$1 vm=$2 pool=$KC_E2E_DATA/agent-$1/pool dom api vols intent=no
	dom=$(dom_state "$h" "$vm")
	api=$(api_state "$vm")
	vols=$(ls "$pool" 2>/dev/null | grep -c "^$vm-")
	[ -e "$pool/.creating/$vm" ] && intent=yes
	diag "$vm: domain=$dom record=\"$api\" files=$vols intent=$intent"
	[ $intent = no ] || return 1
	if [ "$dom" != none ]; then
		[ "$api" = "$dom true" ] && [ -e "$pool/$vm-root.qcow2" ] && [ -e "$pool/$vm-seed.iso" ]
		return
	fi
	# Nor a QEMU of it that libvirt lost track of.
	[ "$api" = none ] && [ "$vols" -eq 0 ] && ! pgrep -f "guest=$vm," >/dev/null
}

# trigger_file H VM WHAT: the file whose appearance marks that moment.
trigger_file() {
	case $3 in
	intent) echo "$KC_E2E_DATA/agent-$1/pool/.creating/$2" ;;
	root) echo "$KC_E2E_DATA/agent-$1/pool/$2-root.qcow2" ;;
	seed) echo "$KC_E2E_DATA/agent-$1/pool/$2-seed.iso" ;;
	defined) echo "$SIM_ROOT/$1/etc-libvirt/qemu/$2.xml" ;;
	running) echo "$SIM_ROOT/$1/run/libvirt/qemu/$2.pid" ;;
	esac
}
wait_file() {
	local i
	for i in $(seq 1 3000); do [ -e "$1" ] && return 0; sleep 0.01; done
	return 1
}

# cleanup_vm VM: removes it through the API when it is whole.
cleanup_vm() {
	kc vm show "$1" >/dev/null 2>&1 || return 0
	kc vm destroy "$1" >>"$KC_LOG" 2>&1
	kc vm delete "$1" >>"$KC_LOG" 2>&1
}

# crash_round WHO MOMENT N: a create on $H, kill -9 of WHO (agent or
# libvirtd) once MOMENT has come, restart, then judge.
crash_round() {
	local who=$1 moment=$2 vm=${KC_PREFIX}rc$3 cli f
	kc vm create "$vm" --image kctest --memory 128 --host $H --user-data "$UDATA" >>"$KC_LOG" 2>&1 &
	cli=$!
	if [ "$moment" = request ]; then
		sleep 0.15
	else
		f=$(trigger_file $H "$vm" "$moment")
		wait_file "$f" || diag "$vm: $moment never came"
	fi
	if [ "$who" = agent ]; then
		kill_agent $H
		wait $cli 2>/dev/null
		start_agent $H
	else
		# Restarted at once, as a supervisor would: the agent's rollback
		# waits for it (docs/agent.md), and so does the create.
		kill9 "$(libvirtd_pid $H)"
		restart_libvirtd $H $IDX
		wait $cli 2>/dev/null
	fi
	diag "round $3 at $((SECONDS - t0)) s"
	check "$who killed at '$moment': host $H is Up again" wait_host $H Up 60
	check "$who killed at '$moment': every job settles" jobs_settled
	check "$who killed at '$moment': whole VM or nothing" whole_or_nothing $H "$vm"
	cleanup_vm "$vm"
	check "$who killed at '$moment': the same name can be created again" \
		kc vm create "$vm" --image kctest --memory 128 --host $H --no-start
	check "$who killed at '$moment': and deleted, leaving no file" \
		bash -c "kc vm delete $vm >/dev/null && ! ls '$POOLDIR' | grep -q '^$vm-'"
}

cluster_init "$H:$IDX" "$H2:$IDX2"
# The logs outlive the clean-up, for a failure's post-mortem.
keep_logs() {
	cp "$SDATA/server.log" "$KC_E2E_DATA/55-server.log" 2>/dev/null
	cp "$KC_E2E_DATA/agent-$H/agent.log" "$KC_E2E_DATA/55-agent.log" 2>/dev/null
}
trap 'keep_logs; cluster_cleanup' EXIT
cluster_server_start
cluster_join $H
cluster_join $H2
check "host $H is Up" wait_host $H Up 60
check "host $H2 is Up" wait_host $H2 Up 60
# A VM on the other host, which no kill below may disturb.
check "create a VM on $H2" kc vm create ${KC_PREFIX}rcother --image kctest --memory 128 --host $H2

n=0
t0=$SECONDS
for moment in request intent root seed defined running; do
	n=$((n + 1))
	crash_round agent $moment $n
done
for moment in root defined running; do
	n=$((n + 1))
	crash_round libvirtd $moment $n
done
check "the VM on $H2 ran through all of it" test "$(vm_state ${KC_PREFIX}rcother)" = running

diag "crash rounds done at $((SECONDS - t0)) s"
# The agent dies while VMs run; the VMs are changed behind its back.
A=${KC_PREFIX}rcA
B=${KC_PREFIX}rcB
check "create $A (running) on $H" kc vm create $A --image kctest --memory 128 --host $H
check "create $B (stopped) on $H" kc vm create $B --image kctest --memory 128 --host $H --no-start
check "kill -9 of the agent" kill_agent $H
check "the host goes Disconnected" wait_host $H Disconnected 20
check "$A still runs in libvirt" test "$(dom_state $H $A)" = running
check "virsh destroy $A while the agent is down" sim_virsh $H destroy $A
check "virsh start $B while the agent is down" sim_virsh $H start $B
start_agent $H
check "the restarted agent brings the host Up" wait_host $H Up 60
check "$A is shown shutoff" wait_state $A shutoff 20
check "$B is shown running" wait_state $B running 20
check "each VM is listed once, all managed" bash -c "kc --json vm list | python3 -c '
import collections, json, sys
vms = json.load(sys.stdin)[\"vms\"]
names = collections.Counter(v[\"name\"] for v in vms)
sys.exit(0 if max(names.values()) == 1 and all(v.get(\"managed\", True) for v in vms) else 1)'"

# libvirtd dies while VMs run: they keep running, the host stays usable.
check "kill -9 of $H's libvirtd" kill9 "$(libvirtd_pid $H)"
restart_libvirtd $H $IDX
check "the host is Up after libvirtd restarts" wait_host $H Up 30
check "$B still runs after libvirtd restarts" test "$(dom_state $H $B)" = running
check "an action works again through the restarted libvirtd" \
	bash -c "kc vm start $A >/dev/null && wait_state $A running 30"

diag "agent-down part done at $((SECONDS - t0)) s"
# An agent started while libvirtd is down waits for it (docs/agent.md).
check "stop the agent (SIGTERM)" stop_agent $H
check "the host goes Disconnected" wait_host $H Disconnected 20
kill9 "$(libvirtd_pid $H)"
start_agent $H
check "an agent started without libvirtd says it waits" \
	sim_wait_log "$KC_E2E_DATA/agent-$H/agent.log" "libvirt.*not reachable.*retrying" 20
sleep 2
check "and keeps running" kill -0 "$(agent_pid $H)"
check "the host stays Disconnected meanwhile" test "$(host_state $H)" = Disconnected
restart_libvirtd $H $IDX
check "once libvirtd is back the agent connects: host Up" wait_host $H Up 60
check "$A and $B are shown running" bash -c "wait_state $A running 20 && wait_state $B running 20"

for v in $A $B ${KC_PREFIX}rcother; do cleanup_vm $v; done
left=$(kc --json vm list | json_get '" ".join(v["name"] + ":" + v["state"] for v in d["vms"])')
check "no VM record is left" test -z "$left"
[ -z "$left" ] || diag "left: $left"
# Cached template bases (base-IMAGE-SHA.qcow2) are the pool's, not a VM's.
left=$(ls -A "$POOLDIR" "$POOLDIR/.creating" 2>/dev/null | grep "^${KC_PREFIX}rc")
check "no volume, seed or intent record of a VM is left on $H" test -z "$left"
[ -z "$left" ] || diag "left: $(echo $left)"
check "no domain is left on $H" test -z "$(sim_virsh $H list --all --name)"
finish
