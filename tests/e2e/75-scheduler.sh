#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The scheduler on two simulated hosts (lib-cluster.sh) in one cluster:
# identical hosts are not flagged; three VMs of one anti-affinity group
# spread over both hosts and the third is refused (two hosts, at most one
# member each: NO_CAPACITY naming the group); maintenance on one host sends
# new VMs to the other and refuses it by name; a domain defined with virsh
# behind kvmcloud's back flags its host "unmanaged_vms: 1" at the agent's
# next hello and is then imported.  VMs are created --no-start: placement
# is what is tested, not booting.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-simhost.sh"
. "$(dirname "$0")/lib-cluster.sh"

H1=kce2e-s1
H2=kce2e-s2
UNM=kce2e-sunm

cluster_init "$H1:47" "$H2:48"
cluster_server_start --cpu-overcommit 4 --mem-overcommit 1
check "zone create" kc zone create kce2e-z
check "cluster create" kc cluster create kce2e-c --zone kce2e-z
for h in $H1 $H2; do
	cluster_join $h --zone kce2e-z --cluster kce2e-c
done
check "host $H1 is Up" wait_host $H1 Up 60
check "host $H2 is Up" wait_host $H2 Up 60
kc host list | sed 's/^/# /'
flags() { kc --json host show "$1" | json_get '"; ".join(d.get("flags", []))'; }
check "host facts carry the CPU features" test "$(kc --json host show $H1 | json_get 'len(d["facts"].get("cpu_features", []))')" -gt 0
check "identical hosts of one cluster are not flagged" test -z "$(flags $H1)$(flags $H2)"

# Anti-affinity: one member per host.
for i in 1 2; do
	check "anti-affinity VM $i is placed" kc vm create kce2e-aa$i --image kctest --memory 64 --no-start \
		--cluster kce2e-c --group kce2e-web --group-policy anti-affinity
done
check "the two members are on different hosts" test "$(vm_host kce2e-aa1)" != "$(vm_host kce2e-aa2)"
check_err "a third member has no host left" "anti-affinity group \"kce2e-web\"" \
	kc vm create kce2e-aa3 --image kctest --memory 64 --no-start --group kce2e-web
check "the refused VM left no record" bash -c "! kc vm show kce2e-aa3 >/dev/null 2>&1"

# Maintenance.
check "maintenance on $H1" kc host maintenance $H1 on
check "$H1 is in Maintenance" test "$(host_state $H1)" = Maintenance
for i in 1 2; do
	check "new VM $i goes to $H2" kc vm create kce2e-mt$i --image kctest --memory 64 --no-start
	check "VM $i is on $H2" test "$(vm_host kce2e-mt$i)" = $H2
done
check_err "$H1 cannot be named while in maintenance" "maintenance" \
	kc vm create kce2e-mt3 --image kctest --memory 64 --no-start --host $H1
check "heartbeats keep Maintenance" bash -c "sleep 5; test \"\$(kc --json host show $H1 | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"state\"])')\" = Maintenance"
check "maintenance off" kc host maintenance $H1 off
check "$H1 is Up again" test "$(host_state $H1)" = Up
check_err "capacity is checked: a VM larger than any host" "not enough memory" \
	kc vm create kce2e-huge --image kctest --memory 1000000 --no-start

# An unmanaged domain, then imported.
xml=$KC_E2E_DATA/unm.xml
cat >"$xml" <<XML
<domain type='qemu'><name>$UNM</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64'>hvm</type></os></domain>
XML
check "a domain defined with virsh on $H2" sim_virsh $H2 define "$xml"
rm -f "$xml"
# The flag comes with the agent's next hello: restart its agent.
p=$(cat "$KC_E2E_DATA/agent-$H2.pid")
kill "$p"; for i in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
agent_run $H2
wait_flag() {
	local i
	for i in $(seq 1 120); do
		[ "$(flags $H2)" = "$1" ] && return 0
		sleep 0.5
	done
	return 1
}
check "$H2 is flagged unmanaged_vms: 1" wait_flag "unmanaged_vms: 1"
kc host list | sed 's/^/# /'
check "the VM list shows the domain unmanaged" \
	test "$(kc --json vm list --live | json_get "[v['managed'] for v in d['vms'] if v['name'] == '$UNM'][0]")" = false
check "vm import" kc vm import $UNM
check "it is managed now, on $H2, owned by admin" \
	test "$(kc --json vm show $UNM | json_get 'str(d["managed"]) + d["host"]')" = "True$H2"
check "$H2's flag is gone" test -z "$(flags $H2)"
check_err "a second import is a conflict" "already managed" kc vm import $UNM

for v in kce2e-aa1 kce2e-aa2 kce2e-mt1 kce2e-mt2 $UNM; do
	check "delete $v" kc vm delete $v
done
sim_virsh $H2 undefine $UNM >/dev/null 2>&1
cluster_cleanup
check "no simulated host is left" test ! -e "$SIM_ROOT/$H1" -a ! -e "$SIM_ROOT/$H2"
finish
