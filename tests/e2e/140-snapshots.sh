#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# VM snapshots through server, agent and CLI against real libvirtd and QEMU
# (TCG): a disk-only snapshot of a stopped VM, one with memory of the
# running VM, the tree, reverts both ways (the guest counts its boots on
# its own disk, so a revert is seen to bring the disk back), delete with
# re-parenting, a VM with snapshots deleted only with --snapshots, bad
# input and another user's VM.
. "$(dirname "$0")/lib.sh"

vm=${KC_PREFIX}snap
# A run killed halfway leaves a domain lib.sh's clean-up cannot undefine
# (it has snapshot metadata).
drop_snapshot_domains() {
	local d
	for d in $($VIRSH list --all --name 2>/dev/null | grep "^${KC_PREFIX}snap"); do
		$VIRSH destroy "$d" >/dev/null 2>&1
		$VIRSH undefine "$d" --snapshots-metadata --nvram >/dev/null 2>&1
	done
}
drop_snapshot_domains
cleanup_domains
trap 'drop_snapshot_domains; cleanup_all' EXIT
server_start || { not_ok "server starts"; finish; exit 1; }
ok "server starts"

TOKEN=$(cat "$KC_E2E_DATA/admin.token")
# api METHOD PATH [BODY]: prints the HTTP status.
api() {
	curl -s -o "$KC_E2E_DATA/snap-answer.json" -w '%{http_code}' -X "$1" \
		-H "Authorization: Bearer ${API_TOKEN:-$TOKEN}" -H 'Content-Type: application/json' \
		${3:+--data "$3"} "$KC_URL$2"
}
# boots: the boot counts the guest printed, one per line.
boots() { kc vm log $vm | sed -n 's/.*KCSNAP-BOOT=\([0-9a-z-]*\).*/\1/p' | tr -d '\r'; }
# wait_boots N: until N boot lines are there.
wait_boots() {
	local i
	for i in $(seq 1 900); do
		[ "$(boots | wc -l)" -ge "$1" ] && return 0
		sleep 0.2
	done
	return 1
}
snap_json() { kc --json snapshot show $vm "$1" | json_get "$2"; }

check "create $vm stopped, with a boot-counting user-data" kc vm create $vm --image kctest \
	--memory 128 --no-start --user-data "$KC_ROOT/tests/e2e/data/snapshot-boots.sh"

# Bad input, straight to the API.
check "bad snapshot name in the body: 400" test "$(api POST /api/v1/vms/$vm/snapshots '{"name":"../x"}')" = 400
check "name with a slash: 400" test "$(api POST /api/v1/vms/$vm/snapshots '{"name":"a/b"}')" = 400
check "unknown key in the body: 400" test "$(api POST /api/v1/vms/$vm/snapshots '{"name":"s1","memory":true}')" = 400
check "control character in the description: 400" \
	test "$(api POST /api/v1/vms/$vm/snapshots '{"name":"s1","description":"a\u0001b"}')" = 400
check "encoded traversal in the path: 400" test "$(api GET /api/v1/vms/$vm/snapshots/..%2Fetc)" = 400
check "unknown snapshot: 404" test "$(api GET /api/v1/vms/$vm/snapshots/nosuch)" = 404
check "revert to an unknown snapshot: 404" test "$(api POST /api/v1/vms/$vm/snapshots/nosuch/revert)" = 404
check "snapshots of an unknown VM: 404" test "$(api GET /api/v1/vms/${KC_PREFIX}nosuch/snapshots)" = 404
check_err "the CLI refuses a bad name itself" "snapshot name" kc snapshot create $vm 'a b'

check "disk-only snapshot of the stopped VM" kc snapshot create $vm s-off --description "before boot"
check "it has no memory, state shutoff" test "$(snap_json s-off '[d["memory"], d["state"]]')" = "[False, 'shutoff']"
check "seed CD-ROM left out, root disk internal" bash -c \
	"kc --json snapshot show $vm s-off | json_get 'sorted(x[\"snapshot\"] for x in d[\"disks\"])' | grep -q \"\\['internal', 'no'\\]\""
check_err "the same name again: conflict" "already has a snapshot" kc snapshot create $vm s-off
check "the same name again is 409 over the API" test "$(api POST /api/v1/vms/$vm/snapshots '{"name":"s-off"}')" = 409

check "start" kc vm start $vm
check "first boot reaches its count line" wait_boots 1
check "first boot printed KCSNAP-BOOT=1" test "$(boots | tail -n 1)" = 1
check "snapshot of the running VM (a job)" kc snapshot create $vm s-run
check "it holds the memory, state running" test "$(snap_json s-run '[d["memory"], d["state"], d["parent"]]')" = "[True, 'running', 's-off']"
check "the saved memory's size is shown" test "$(snap_json s-run 'd["memory_bytes"] > 1000000')" = true
check "the VM still runs" wait_state $vm running 10
check "list shows the tree" bash -c "kc snapshot list $vm | grep -Eq '^  \\+- s-run +'"
check "list --json: current s-run, s-off has child s-run" \
	test "$(kc --json snapshot list $vm | json_get '[d["current"], d["snapshots"][0]["children"]]')" = "['s-run', ['s-run']]"

check "force off and start again" bash -c "kc vm destroy $vm && kc vm start $vm"
check "second boot reaches its count line" wait_boots 2
check "second boot counts 2" test "$(boots | tail -n 1)" = 2
check "revert the running VM to disk-only s-off" kc snapshot revert $vm s-off
check "it is shut off, as s-off recorded" wait_state $vm shutoff 10
check "start after the revert" kc vm start $vm
check "third boot reaches its count line" wait_boots 3
check "the disk was brought back: the boot counts 1 again" test "$(boots | tail -n 1)" = 1
check "revert to s-run (with memory)" kc snapshot revert $vm s-run
check "running again at once" wait_state $vm running 10
sleep 2
check "resumed from memory, not booted: still three boot lines" test "$(boots | wc -l)" = 3
check "the template has no snapshot of its own" \
	bash -c "[ -z \"\$(qemu-img snapshot -l -U '$KC_E2E_DATA/images/kctest.qcow2')\" ]"

# Another user sees neither the VM nor its snapshots.
check "create user" kc user create ${KC_PREFIX}snapu --role user
utok=$(kc --json token create --user ${KC_PREFIX}snapu | json_get 'd["token"]')
check "another user's VM: its snapshots are 404" test "$(API_TOKEN=$utok api GET /api/v1/vms/$vm/snapshots)" = 404
check "another user cannot snapshot it" test "$(API_TOKEN=$utok api POST /api/v1/vms/$vm/snapshots '{"name":"x"}')" = 404

check "force off" kc vm destroy $vm
check_err "delete of a VM with snapshots is refused" "has 2 snapshots" kc vm delete $vm
check "delete s-off alone" kc snapshot delete $vm s-off
check "s-run is re-parented to the root" test "$(snap_json s-run 'd["parent"]')" = None
check "one more snapshot, of the stopped VM" kc snapshot create $vm s-last
check "delete s-run with its children" bash -c "kc snapshot delete $vm s-run --children | grep -q 'and 1 below'"
check "no snapshot left" test "$(kc --json snapshot list $vm | json_get 'len(d["snapshots"])')" = 0
check "a last one" kc snapshot create $vm s-final
disks=$(kc --json vm show $vm | json_get '" ".join(x["path"] for x in d["disks"])')
check "delete the VM with --snapshots" kc vm delete $vm --snapshots
check "libvirt no longer has the domain" bash -c "! $VIRSH dominfo $vm"
check "no disk of the VM is left" bash -c "for p in $disks; do [ ! -e \"\$p\" ] || exit 1; done"
kc --json audit list --limit 500 >"$KC_E2E_DATA/snap-audit.json" 2>>"$KC_LOG"
check "the audit log has the snapshot requests" \
	grep -q 'POST /api/v1/vms/:vm/snapshots"' "$KC_E2E_DATA/snap-audit.json"
check "and the outcome of the snapshot jobs" \
	grep -q 'job vm.snapshot.revert' "$KC_E2E_DATA/snap-audit.json"
kc user delete ${KC_PREFIX}snapu >/dev/null 2>&1
finish
