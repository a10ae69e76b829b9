#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# VMs from templates (docs/storage.md, "Clones").
# Part 1, all-in-one server: a linked clone in the default pool boots, its
# root disk an overlay on a read-only base volume (the template copied once
# into the pool); a full clone in a dir pool boots and has no backing file,
# and boots again with the template moved away; 20 linked clones of one
# template created at once in a fresh pool: all defined, one base, intact
# (qemu-img check), no temporary or lock file left; a stopped VM becomes a
# template (its disk flattened, carried back, checked and registered) and a
# VM made from it boots with the first VM's changes on its disk; bad input.
# Part 2, two simulated hosts of one cluster sharing a mountpoint pool:
# clones made on both hosts at once share one base volume, a VM boots on
# each host, and a VM on one host becomes a template (its bytes travel back
# to the server) from which a VM boots on the other.
. "$(dirname "$0")/lib.sh"

ROOT=/var/tmp/kce2e-clones
SHARED=/var/lib/kvmcloud-sim/shared/kce2e-clones
BOOTS=$KC_ROOT/tests/e2e/data/snapshot-boots.sh
N_PAR=${KC_E2E_CLONES:-20}

lv_cleanup() {
	local p
	for p in $($VIRSH pool-list --all --name 2>/dev/null | grep -E '^kc-kce2e-cl'); do
		$VIRSH pool-destroy "$p" >/dev/null 2>&1
		$VIRSH pool-undefine "$p" >/dev/null 2>&1
	done
}
all_cleanup() {
	cleanup_all
	lv_cleanup
	rm -f "$KC_E2E_DATA/images/kce2e-tpl.qcow2" "$KC_E2E_DATA/images/.kce2e-tpl.qcow2."*
	rm -f "$KC_E2E_DATA/pool/base-kctest-"* "$KC_E2E_DATA/pool/base-kce2e-tpl-"*
	rm -rf "$ROOT"
}
cleanup_domains
lv_cleanup
rm -rf "$ROOT" "$SHARED"
mkdir -p "$ROOT"
trap all_cleanup EXIT
# Each run starts without a cached base: the first create copies it.
rm -f "$KC_E2E_DATA/pool/base-kctest-"*

# Room for 20+ one-vCPU VMs on a two-CPU machine.
server_start --cpu-overcommit 16 || { not_ok "server starts"; finish; exit 1; }
ok "server starts"
# Pool records a killed run left (their folders are gone: nothing in them).
for p in kce2e-clp kce2e-cl20; do kc pool delete $p >/dev/null 2>&1; done
H=$(kc --json host list | json_get 'd["hosts"][0]["name"]')
TOKEN=$(cat "$KC_E2E_DATA/admin.token")
# api METHOD PATH [BODY]: prints the HTTP status; the answer is in $ANSWER.
ANSWER=$KC_E2E_DATA/clones-answer.json
api() {
	curl -s -o "$ANSWER" -w '%{http_code}' -X "$1" -H "Authorization: Bearer $TOKEN" \
		-H 'Content-Type: application/json' ${3:+--data "$3"} "$KC_URL$2"
}
# info FILE EXPR: EXPR on qemu-img info's JSON of a qcow2 file (format forced).
info() { qemu-img info -f qcow2 -U --output=json "$1" | json_get "$2"; }
# ready_count VM: how many times the guest reached its ready line.
ready_count() { kc vm log "$1" | grep -c KVMCLOUD-READY; }
wait_ready_n() {
	local i
	for i in $(seq 1 $((${3:-120} * 2))); do
		[ "$(ready_count "$1")" -ge "$2" ] && return 0
		sleep 0.5
	done
	return 1
}
boots() { kc vm log "$1" | sed -n 's/.*KCSNAP-BOOT=\([0-9a-z-]*\).*/\1/p' | tr -d '\r'; }
wait_boot_line() {
	local i
	for i in $(seq 1 240); do
		[ -n "$(boots "$1")" ] && return 0
		sleep 0.5
	done
	return 1
}
export -f ready_count wait_ready_n boots wait_boot_line
SHA=$(sha256sum "$KC_E2E_DATA/images/kctest.qcow2" | cut -c1-16)
BASE=base-kctest-$SHA.qcow2

# ---- a linked clone in the default pool ----
L1=${KC_PREFIX}cl-linked
check "linked clone (the default) in the default pool" kc vm create $L1 --image kctest --memory 128 \
	--user-data "$BOOTS"
check "it boots" wait_ready $L1 120
check "the template was copied once into the pool as $BASE" test -f "$KC_E2E_DATA/pool/$BASE"
check "the base volume is read-only (0444)" test "$(stat -c %a "$KC_E2E_DATA/pool/$BASE")" = 444
check "the root disk is an overlay on the base" \
	test "$(info "$KC_E2E_DATA/pool/$L1-root.qcow2" 'd.get("backing-filename")')" = "$KC_E2E_DATA/pool/$BASE"
check "... with its backing format stated" \
	test "$(info "$KC_E2E_DATA/pool/$L1-root.qcow2" 'd.get("backing-filename-format")')" = qcow2
check "the base is the template byte for byte" \
	test "$(sha256sum "$KC_E2E_DATA/pool/$BASE" | cut -c1-16)" = "$SHA"
check "the base itself has no backing file" \
	test "$(info "$KC_E2E_DATA/pool/$BASE" '"backing-filename" in d')" = false
check "libvirt lists the base in the pool" bash -c "$VIRSH vol-list $KC_POOL | grep -q '$BASE'"

# ---- a full clone in a dir pool ----
P=kce2e-clp
check "a dir pool" kc pool create $P --type dir --host "$H" --path "$ROOT/dirpool"
F1=${KC_PREFIX}cl-full
check "full clone in the dir pool" kc vm create $F1 --image kctest --memory 128 --pool $P --full-clone
check "it boots" wait_ready $F1 120
check "its root disk is in the dir pool" test -f "$ROOT/dirpool/$F1-root.qcow2"
check "a full clone has no backing file" \
	test "$(info "$ROOT/dirpool/$F1-root.qcow2" '"backing-filename" in d')" = false
check "no base was made for it" bash -c "! ls '$ROOT/dirpool' | grep -q '^base-'"
# A larger template (3 GiB of data) so that the copy lasts long enough to
# be watched (about a second here): the job's progress moves between 30
# and 90 while it runs.
BIG=$KC_E2E_DATA/images/kce2e-big.qcow2
qemu-img create -f qcow2 "$BIG.tmp" 4G >>"$KC_LOG" 2>&1 &&
	for g in 0 1 2; do qemu-io -f qcow2 -c "write -P 0x5a ${g}G 1G" "$BIG.tmp" >>"$KC_LOG" 2>&1; done &&
	mv "$BIG.tmp" "$BIG"
job=$(kc --json vm create ${KC_PREFIX}cl-big --image kce2e-big --memory 64 --pool $P --full-clone \
	--no-start --async | json_get 'd["id"]' 2>>"$KC_LOG")
seen=""
for i in $(seq 1 600); do
	j=$(kc --json job show "$job" 2>/dev/null) || break
	seen="$seen $(echo "$j" | json_get 'd["progress"]')"
	[ "$(echo "$j" | json_get 'd["state"]')" = succeeded ] && break
	[ "$(echo "$j" | json_get 'd["state"]')" = failed ] && break
	sleep 0.05
done
diag "full clone job progress seen:$(echo $seen | tr ' ' '\n' | uniq | tr '\n' ' ')"
check "the full clone job succeeded" test "$(kc --json job show "$job" | json_get 'd["state"]')" = succeeded
check "its progress moved while qemu-img copied (a value between 30 and 90)" \
	bash -c "for p in $seen; do [ \$p -gt 30 ] && [ \$p -lt 90 ] && exit 0; done; exit 1"
check "the copy is whole (qemu-img compare with the template)" \
	qemu-img compare -f qcow2 -F qcow2 -U "$BIG" "$ROOT/dirpool/${KC_PREFIX}cl-big-root.qcow2"
kc vm delete ${KC_PREFIX}cl-big >>"$KC_LOG" 2>&1
rm -f "$BIG" "$KC_E2E_DATA/images/.kce2e-big.qcow2."*
check "stop it" kc vm destroy $F1
mv "$KC_E2E_DATA/images/kctest.qcow2" "$ROOT/kctest.away"
check "with the template moved away it boots again" bash -c "kc vm start $F1 && wait_ready_n $F1 2 120"
mv "$ROOT/kctest.away" "$KC_E2E_DATA/images/kctest.qcow2"
check "a linked clone in the dir pool gets that pool's own base" \
	kc vm create ${KC_PREFIX}cl-dirlinked --image kctest --memory 64 --pool $P --no-start
check "... $BASE in the dir pool" \
	test "$(info "$ROOT/dirpool/${KC_PREFIX}cl-dirlinked-root.qcow2" 'd.get("backing-filename")')" = "$ROOT/dirpool/$BASE"
check "the VM record remembers pool and clone mode" \
	test "$(kc --json vm show $F1 | json_get '(d.get("pool"), d.get("clone"))')" = "('$P', 'full')"

# ---- N linked clones of one template at once, into a fresh pool ----
P20=kce2e-cl20
check "a fresh dir pool for the parallel clones" kc pool create $P20 --type dir --host "$H" --path "$ROOT/par"
t0=$(date +%s.%N)
pids=()
for i in $(seq 1 $N_PAR); do
	kc vm create ${KC_PREFIX}cl-p$i --image kctest --memory 128 --pool $P20 --no-start \
		>"$ROOT/par-$i.out" 2>&1 &
	pids+=($!)
done
fails=0
for p in "${pids[@]}"; do wait "$p" || fails=$((fails + 1)); done
t1=$(date +%s.%N)
diag "$N_PAR linked clones at once: $(echo "$t1 - $t0" | bc) s"
check "all $N_PAR creates succeeded (no lock time-out)" test $fails = 0
[ $fails = 0 ] || cat "$ROOT"/par-*.out | sort | uniq -c | sed 's/^/# /' | head -5
check "all $N_PAR domains are defined" \
	test "$($VIRSH list --all --name | grep -c "^${KC_PREFIX}cl-p")" = $N_PAR
check "exactly one base volume in the pool" test "$(ls "$ROOT/par" | grep -c '^base-')" = 1
check "no temporary copy or lock file is left" bash -c "! ls -a '$ROOT/par' | grep -E '\\.(part|lock)\$'"
check "every root disk is an overlay on that base" bash -c "
	for i in \$(seq 1 $N_PAR); do
		b=\$(qemu-img info -f qcow2 -U --output=json '$ROOT/par/${KC_PREFIX}cl-p'\$i-root.qcow2 |
			python3 -c 'import json,sys; print(json.load(sys.stdin).get(\"backing-filename\"))')
		[ \"\$b\" = '$ROOT/par/$BASE' ] || exit 1
	done"
check "qemu-img check finds the base intact" qemu-img check -f qcow2 -U "$ROOT/par/$BASE"
check "the base holds the template's data (qemu-img compare)" \
	qemu-img compare -f qcow2 -F qcow2 -U "$KC_E2E_DATA/images/kctest.qcow2" "$ROOT/par/$BASE"
check "one of them boots" bash -c "kc vm start ${KC_PREFIX}cl-p$N_PAR && wait_ready ${KC_PREFIX}cl-p$N_PAR 120"
for i in $(seq 1 $N_PAR); do
	kc vm destroy ${KC_PREFIX}cl-p$i >/dev/null 2>&1
	kc vm delete ${KC_PREFIX}cl-p$i >>"$KC_LOG" 2>&1
done
check "deleting the clones keeps the base (left alone, docs/storage.md)" test -f "$ROOT/par/$BASE"
check "... and deletes their overlays" bash -c "! ls '$ROOT/par' | grep -q -- '-root.qcow2'"

# ---- a stopped VM becomes a template ----
check "first boot of $L1 counted 1 on its disk" bash -c "wait_boot_line $L1 && test \"\$(boots $L1 | tail -n1)\" = 1"
st=$(api POST /api/v1/vms/$L1/template '{"image":"kce2e-tpl"}')
check "template of a running VM is 409" test "$st" = 409
check "... saying so" grep -q running "$ANSWER"
check "stop $L1" kc vm shutdown $L1 --timeout 30
check "vm template $L1 kce2e-tpl" kc vm template $L1 kce2e-tpl --os-type linux
check "the image is ready in the library" \
	test "$(kc --json image show kce2e-tpl | json_get '(d["state"], d["kind"], d["format"], d["os_type"], d["source"])')" = \
	"('ready', 'template', 'qcow2', 'linux', 'vm:$L1')"
check "the stored template has no backing file" \
	test "$(info "$KC_E2E_DATA/images/kce2e-tpl.qcow2" '"backing-filename" in d')" = false
check "its sha256 is the file's" test "$(kc --json image show kce2e-tpl | json_get 'd["sha256"]')" = \
	"$(sha256sum "$KC_E2E_DATA/images/kce2e-tpl.qcow2" | cut -d' ' -f1)"
check "no flattening folder is left on the host" bash -c "! ls '$KC_E2E_DATA' | grep -q '^template-'"
T1=${KC_PREFIX}cl-fromtpl
check "a VM from the new template" kc vm create $T1 --image kce2e-tpl --memory 128 --user-data "$BOOTS"
check "it boots" wait_ready $T1 120
check "its disk came from $L1: the boot count goes on (2)" \
	bash -c "wait_boot_line $T1 && test \"\$(boots $T1 | tail -n1)\" = 2"
st=$(api POST /api/v1/vms/$L1/template '{"image":"kce2e-tpl"}')
check "a template name taken is 409" test "$st" = 409

# ---- bad input ----
check_err "an unknown pool" "pool \"kce2e-nopool\" not found" \
	kc vm create ${KC_PREFIX}cl-bad --image kctest --memory 64 --pool kce2e-nopool
st=$(api POST /api/v1/vms '{"name":"kce2e-cl-bad","image":"kctest","memory_mib":64,"clone":"deep"}')
check "an unknown clone mode is 400" test "$st" = 400
check "... naming the modes" grep -q "linked or full" "$ANSWER"
st=$(api POST /api/v1/vms '{"name":"kce2e-cl-bad","iso":"x","disk_gib":1,"memory_mib":64,"clone":"full"}')
check "a clone mode without an image is 400" test "$st" = 400
st=$(api POST /api/v1/vms '{"name":"kce2e-cl-bad","image":"kctest","memory_mib":64,"pool":"../x"}')
check "a pool name with .. is 400" test "$st" = 400
check_err "a pool not on the named host" "not on host" \
	kc vm create ${KC_PREFIX}cl-bad --image kctest --memory 64 --pool $P --host kce2e-nohost
st=$(api POST /api/v1/vms/$T1/template '{"image":"../etc"}')
check "a template image name with .. is 400" test "$st" = 400
st=$(api POST /api/v1/vms/$T1/template '{"image":"kce2e-x","format":"raw"}')
check "an unknown template key is 400" test "$st" = 400
st=$(api POST /api/v1/vms/kce2e-nosuchvm/template '{"image":"kce2e-x"}')
check "template of an unknown VM is 404" test "$st" = 404
check "nothing was made by the bad requests" bash -c "! $VIRSH list --all --name | grep -q cl-bad && ! kc image show kce2e-x >/dev/null 2>&1"

for v in $L1 $F1 ${KC_PREFIX}cl-dirlinked $T1; do
	kc vm destroy $v >/dev/null 2>&1
	kc vm delete $v >>"$KC_LOG" 2>&1
done
check "the template can be deleted once no VM uses it" kc image delete kce2e-tpl
# Base volumes are left alone (docs/storage.md): an admin removes them.
rm -f "$ROOT/dirpool/base-"* "$ROOT/par/base-"*
check "the pools can be deleted once their bases are removed" kc pool delete $P
kc pool delete $P20 >>"$KC_LOG" 2>&1
server_stop

# ---- part 2: two simulated hosts sharing a mountpoint pool ----
. "$(dirname "$0")/lib-simhost.sh"
. "$(dirname "$0")/lib-cluster.sh"
H1=kce2e-c1
H2=kce2e-c2
cluster_init "$H1:47" "$H2:48"
trap 'cluster_cleanup; all_cleanup; rm -rf "$SHARED"' EXIT
cluster_server_start
check "zone and cluster" bash -c "kc zone create kce2e-clz && kc cluster create kce2e-clc --zone kce2e-clz"
for h in $H1 $H2; do cluster_join $h --zone kce2e-clz --cluster kce2e-clc; done
check "host $H1 is Up" wait_host $H1 Up 60
check "host $H2 is Up" wait_host $H2 Up 60
mkdir -p "$SHARED"
check "a mountpoint pool for the cluster" kc pool create kce2e-clmp --type mountpoint --cluster kce2e-clc --path "$SHARED"
pids=()
mkdir -p "$ROOT"
for i in 1 2 3; do
	for h in $H1 $H2; do
		kc vm create ${KC_PREFIX}cm-$h-$i --image kctest --memory 128 --pool kce2e-clmp --host $h \
			--no-start >"$ROOT/mp-$h-$i.out" 2>&1 &
		pids+=($!)
	done
done
fails=0
for p in "${pids[@]}"; do wait "$p" || fails=$((fails + 1)); done
check "6 linked clones on both hosts at once" test $fails = 0
check "one base volume in the shared folder" test "$(ls "$SHARED" | grep -c '^base-')" = 1
check "no temporary copy or lock file is left" bash -c "! ls -a '$SHARED' | grep -E '\\.(part|lock)\$'"
check "every overlay on both hosts uses it" bash -c "
	for f in '$SHARED'/${KC_PREFIX}cm-*-root.qcow2; do
		b=\$(qemu-img info -f qcow2 -U --output=json \"\$f\" |
			python3 -c 'import json,sys; print(json.load(sys.stdin).get(\"backing-filename\"))')
		[ \"\$b\" = '$SHARED/$BASE' ] || exit 1
	done"
check "qemu-img check finds the shared base intact" qemu-img check -f qcow2 -U "$SHARED/$BASE"
M1=${KC_PREFIX}cm-$H1-1
M2=${KC_PREFIX}cm-$H2-1
check "$M1 boots on $H1" bash -c "kc vm start $M1 && wait_ready $M1 180"
check "$M2 boots on $H2" bash -c "kc vm start $M2 && wait_ready $M2 180"
check "stop $M1" kc vm destroy $M1
check "template of $M1 (its disk travels from $H1 to the server)" kc vm template $M1 kce2e-cltpl
check "the server's store has it" test -s "$SDATA/images/kce2e-cltpl.qcow2"
check "a VM from it on $H2 (copied there by the library)" \
	kc vm create ${KC_PREFIX}cm-tpl --image kce2e-cltpl --memory 128 --pool kce2e-clmp --host $H2
check "it boots on $H2" wait_ready ${KC_PREFIX}cm-tpl 180
check "its base is the new template's, in the shared pool" \
	bash -c "ls '$SHARED' | grep -q '^base-kce2e-cltpl-'"
finish
