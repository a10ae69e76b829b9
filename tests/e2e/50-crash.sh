#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# kill -9 of the all-in-one server (and so of its embedded agent) in the
# middle of a VM create, at several moments: after a restart there must be
# either a whole VM (domain, disks and record) or nothing of it at all.
. "$(dirname "$0")/lib.sh"
cleanup_domains

# whole_or_nothing VM: prints what it found and succeeds if consistent.
whole_or_nothing() {
	local vm=$1 dom=no rec=no vols
	$VIRSH dominfo "$vm" >/dev/null 2>&1 && dom=yes
	kc --json vm show "$vm" 2>/dev/null | grep -q '"state": *"\(running\|shutoff\|paused\)"' && rec=yes
	vols=$(ls "$KC_E2E_DATA/pool" 2>/dev/null | grep -c "^$vm-")
	diag "$vm: domain=$dom record=$rec volumes=$vols"
	if [ $dom = yes ] && [ $rec = yes ] && [ "$vols" -ge 1 ]; then return 0; fi
	if [ $dom = no ] && [ $rec = no ] && [ "$vols" -eq 0 ] && ! kc vm show "$vm" >/dev/null 2>&1; then return 0; fi
	return 1
}

# A create interrupted by the kill may be queued again by the restarted
# server (see docs/api.md, Jobs): judge only once no job is left to run.
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

i=0
for delay in 0.01 0.05 0.1 0.15 0.2 0.3 0.5 1.0; do
	i=$((i + 1))
	vm=${KC_PREFIX}crash$i
	server_start || { not_ok "server starts (round $i)"; continue; }
	kc vm create $vm --image kctest --memory 128 --user-data "$KC_ROOT/tests/e2e/data/user-data.sh" >>"$KC_LOG" 2>&1 &
	cli=$!
	sleep $delay
	kill -9 $_server_pid 2>/dev/null
	wait $_server_pid 2>/dev/null
	_server_pid=
	wait $cli 2>/dev/null
	server_start || { not_ok "server restarts after kill -9 (round $i)"; continue; }
	check "round $i: the restarted server settles every job" jobs_settled
	check "kill -9 after ${delay}s of a create: whole VM or nothing" whole_or_nothing $vm
	# Clean up whatever was left, through the API when it is whole.
	if kc vm show $vm >/dev/null 2>&1; then
		kc vm destroy $vm >/dev/null 2>&1
		kc vm delete $vm >/dev/null 2>&1
	fi
	server_stop
done
server_start && check "after all rounds, the pool holds no crash leftovers" \
	bash -c "! ls '$KC_E2E_DATA/pool' | grep -q '^${KC_PREFIX}crash'"
finish
