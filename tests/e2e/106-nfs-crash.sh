#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# NFS pools (nfs-ganesha, scripts/start-ganesha.sh; no kernel mount) past
# the happy path of 105: kill -9 of the agent (the all-in-one server that
# embeds it) in the middle of a create whose disks live on the export, at
# moments picked by what the create has written so far (its intent record,
# the base's temporary copy, the root and data volumes on the export, the
# defined domain).  After the restart no file the dead create made may be
# left (by name, inode and change time) unless its domain was defined: the
# agent's reaper removes them through libnfs.  The restarted server queues
# the interrupted create again (docs/api.md, Jobs), so the VM is then
# whole (deleted through the API) or absent; either way nothing of it stays
# afterwards: no record, domain, intent record, file or temporary copy on
# the export (its folder and the pool's own listing), and a base there is
# whole (the template byte for byte, read-only).  Then volumes of the NFS pool: resize offline and
# live, an 8 MiB upload and download byte-identical, refused uploads.
. "$(dirname "$0")/lib.sh"

ROOT=/var/tmp/kce2e-nf
EXPORT=$ROOT/export
P=kce2e-nfpool
SCRIPTS=$(cd "$(dirname "$0")/../.." && pwd)/scripts
PT="$KC_BUILD/tests/agent/kc-pooltool --data $ROOT/pooltool --storage-pool kce2e-nfpooltool"
N="{\"name\":\"$P\",\"type\":\"nfs\",\"server\":\"127.0.0.1\",\"export\":\"$EXPORT\"}"

nf_cleanup() {
	cleanup_all
	$VIRSH pool-destroy kce2e-nfpooltool >/dev/null 2>&1
	$VIRSH pool-undefine kce2e-nfpooltool >/dev/null 2>&1
	"$SCRIPTS/start-ganesha.sh" stop >/dev/null 2>&1
	rm -rf "$ROOT"
}
trap nf_cleanup EXIT
nf_cleanup
mkdir -p "$ROOT"

if ! url=$("$SCRIPTS/start-ganesha.sh" start "$EXPORT" 2>>"$KC_LOG"); then
	not_ok "nfs-ganesha starts"
	diag "$(tail -3 /var/tmp/kvmcloud-ganesha/ganesha.log 2>/dev/null)"
	finish
	exit 1
fi
ok "nfs-ganesha exports $EXPORT ($url)"
server_start || { not_ok "server starts"; finish; exit 1; }
ok "server starts"
H=$(kc --json host list | json_get 'd["hosts"][0]["name"]')
check "NFS pool create" kc pool create $P --type nfs --host "$H" --server 127.0.0.1 --export "$EXPORT"

# ---- kill -9 mid-create ----
wait_match() { # wait_match CMD...: polls CMD for up to 30 s
	local i
	for i in $(seq 1 3000); do "$@" && return 0; sleep 0.01; done
	return 1
}
on_export() { ls -A "$EXPORT" 2>/dev/null | grep -q -- "$1"; }
# moment_seen VM WHAT: has the create come that far?
moment_seen() {
	case $2 in
	intent) test -e "$KC_E2E_DATA/pool/.creating/$1" ;;
	part) on_export '^kcpart-.*\.part$' ;;
	root) on_export "^$1-root\\.qcow2\$" ;;
	data) on_export "^$1-data1\\.qcow2\$" ;;
	defined) $VIRSH dominfo "$1" >/dev/null 2>&1 ;;
	esac
}
# ids: each file on the export as NAME:INODE:CTIME.
ids() { (cd "$EXPORT" && stat -c '%n:%i:%.9Z' -- * 2>/dev/null); }
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
# What the pool lists through libnfs, one name a line.
pool_names() { $PT "$N" volumes | json_get '"\n".join(sorted(v["name"] for v in d["volumes"]))'; }
# nothing_left VM: no record, domain, intent record, volume or temporary
# copy; only whole bases may stay on the export.
nothing_left() {
	local vm=$1 rec=no dom=no intent=no files names
	kc vm show "$vm" >/dev/null 2>&1 && rec=yes
	$VIRSH dominfo "$vm" >/dev/null 2>&1 && dom=yes
	[ -e "$KC_E2E_DATA/pool/.creating/$vm" ] && intent=yes
	files=$(ls -A "$EXPORT" | grep -v '^base-kctest-[0-9a-f]*\.qcow2$' | tr '\n' ' ')
	names=$(pool_names | grep -v '^base-kctest-' | tr '\n' ' ')
	diag "$vm: record=$rec domain=$dom intent=$intent export=[$files] pool lists=[$names]"
	[ $rec = no ] && [ $dom = no ] && [ $intent = no ] && [ -z "$files" ] && [ -z "$names" ] &&
		! pgrep -f "guest=$vm," >/dev/null
}
# whole_vm VM: a whole VM instead: the restarted server queues an
# interrupted create again (docs/api.md, Jobs), and that create succeeds
# only if the reaper removed the dead one's files (an existing volume is a
# conflict).  Record, domain and both disks on the export.
whole_vm() {
	kc vm show "$1" >/dev/null 2>&1 && $VIRSH dominfo "$1" >/dev/null 2>&1 &&
		[ ! -e "$KC_E2E_DATA/pool/.creating/$1" ] &&
		[ -f "$EXPORT/$1-root.qcow2" ] && [ -f "$EXPORT/$1-data1.qcow2" ]
}
# bases_whole: every base on the export is the template, byte for byte,
# read-only.
bases_whole() {
	local b
	for b in $(ls "$EXPORT" | grep '^base-kctest-'); do
		cmp -s "$KC_IMAGE" "$EXPORT/$b" || return 1
		[ "$(stat -c %a "$EXPORT/$b")" = 444 ] || return 1
	done
}

n=0
for moment in part intent root data defined; do
	n=$((n + 1))
	vm=kce2e-nfc$n
	kc vm create $vm --image kctest --memory 128 --pool $P --data-disk 1 --no-start >>"$KC_LOG" 2>&1 &
	cli=$!
	wait_match moment_seen $vm $moment || diag "$vm: '$moment' never came"
	# The dead create's files, by name, inode and change time (an inode
	# may be reused): none may survive the restart.
	dead=$(ids | grep -E "^($vm-|kcpart-)")
	diag "$vm: on the export at the kill: $(echo $dead)"
	kill -9 "$_server_pid" 2>/dev/null
	# The CLI would retry the create once the server is back (its
	# idempotency key): then a new create, not the reaper, decides.
	kill -9 $cli 2>/dev/null
	# A domain defined before the kill keeps its files: a whole VM.
	defined=no
	$VIRSH dominfo $vm >/dev/null 2>&1 && defined=yes
	wait "$_server_pid" 2>/dev/null
	_server_pid=
	wait $cli 2>/dev/null
	check "killed at '$moment': server and agent restart" server_start
	check "killed at '$moment': every job settles" jobs_settled
	[ $defined = yes ] && diag "$vm: its domain was defined before the kill"
	[ $defined = yes ] || check "killed at '$moment': the dead create's files are gone (reaped)" \
		bash -c "now=\$(cd '$EXPORT' && stat -c '%n:%i:%.9Z' * 2>/dev/null); for f in $(echo $dead); do echo \"\$now\" | grep -qxF \"\$f\" && exit 1; done; exit 0"
	if whole_vm $vm; then
		diag "$vm: whole after the restart"
		check "killed at '$moment': a whole VM, deleted with its disks" kc vm delete $vm
	fi
	check "killed at '$moment': nothing of $vm is left (record, domain, intent, export)" \
		nothing_left $vm
	check "killed at '$moment': any base on the export is whole" bases_whole
done
check "the base copy is made once more after the kills" \
	kc vm create kce2e-nfok --image kctest --memory 128 --pool $P --data-disk 1 --no-start
check "... one whole read-only base, no temporary copy" \
	bash -c "test \$(ls '$EXPORT' | grep -c '^base-kctest-') = 1 && ! ls -A '$EXPORT' | grep -q part"
check "... which is the template byte for byte" bases_whole
check "delete it with its disks" kc vm delete kce2e-nfok
check "only the base is left" nothing_left kce2e-nfok

# ---- volumes: resize, upload, download ----
V=kce2e-nfvol
Q=kce2e-nfq
check "a raw volume in the NFS pool" kc vol create $V --size 4M --format raw --pool $P
check "grow it to 8 MiB (qemu-img resize -f raw over nfs://)" kc vol resize $V 8M
check "... the export's file is 8 MiB" test "$(stat -c %s "$EXPORT/$V")" = 8388608
check "... and the API says so" test "$(kc --json vol show $V | json_get 'd["capacity_bytes"]')" = 8388608
check_err "shrinking is refused" "only grow" kc vol resize $V 4M
head -c 4194304 /dev/urandom >"$ROOT/raw.img"
head -c 4194304 /dev/zero >>"$ROOT/raw.img"
check "upload an 8 MiB raw image" kc vol upload $V "$ROOT/raw.img"
check "the export's file is the image" cmp "$ROOT/raw.img" "$EXPORT/$V"
check "download it back" kc vol download $V "$ROOT/back.img"
check "byte-identical (8 MiB round trip)" cmp "$ROOT/raw.img" "$ROOT/back.img"
qemu-img create -q -f qcow2 "$ROOT/lying.qcow2" 4M
check_err "a qcow2 file uploaded as raw (a lying header) is refused" "qcow2|header" \
	kc vol upload $V "$ROOT/lying.qcow2"
check "... and the volume is unchanged" cmp "$ROOT/raw.img" "$EXPORT/$V"
check "a qcow2 volume in the NFS pool" kc vol create $Q --size 16M --format qcow2 --pool $P
qemu-img create -q -f qcow2 "$ROOT/base.qcow2" 8M
qemu-img create -q -f qcow2 -F qcow2 -b "$ROOT/base.qcow2" "$ROOT/overlay.qcow2"
check_err "a qcow2 with a backing file is refused" "backing" kc vol upload $Q "$ROOT/overlay.qcow2"
qemu-img create -q -f qcow2 "$ROOT/good.qcow2" 8M
qemu-io -f qcow2 -c 'write -P 0x5a 1M 2M' "$ROOT/good.qcow2" >/dev/null
check "a plain qcow2 image uploads into it" kc vol upload $Q "$ROOT/good.qcow2"
check "... checked whole by qemu-img over nfs://, grown to the volume's 16 MiB" \
	bash -c "qemu-img info -f qcow2 --output=json 'nfs://127.0.0.1$EXPORT/$Q' | grep -q '\"virtual-size\": 16777216'"
check "... the guest's data is the image's" \
	bash -c "qemu-io -f qcow2 -c 'read -P 0x5a 1M 2M' 'nfs://127.0.0.1$EXPORT/$Q' | grep -q 'read 2097152'"
check "download the qcow2 file" kc vol download $Q "$ROOT/q.qcow2"
check "... the same bytes as on the export" cmp "$ROOT/q.qcow2" "$EXPORT/$Q"
check "grow the qcow2 volume to 32 MiB offline" kc vol resize $Q 32M
check "... its header says 32 MiB" \
	bash -c "qemu-img info -f qcow2 --output=json 'nfs://127.0.0.1$EXPORT/$Q' | grep -q '\"virtual-size\": 33554432'"
# Hot-plugged into a running VM (the VM's own disks in the default pool):
# QEMU opens the export's 0600 file as root (<identity>), and a live
# resize goes through virDomainBlockResize.
HV=kce2e-nfhot
check "a running VM that prints its disks" kc vm create $HV --image kctest --memory 128 \
	--user-data "$KC_ROOT/tests/e2e/data/volume-watch.sh"
check "... ready" wait_ready $HV 180
check "... its watcher runs" kc vm log $HV --follow --until 'kce2e-disks: vda:' --timeout 30
check "attach the NFS qcow2 volume to it" kc vol attach $Q $HV
check "... the live XML has it as an nfs:// network disk" \
	bash -c "$VIRSH dumpxml $HV | grep -q \"protocol='nfs' name='$EXPORT/$Q'\""
check "the guest sees it, 32 MiB" kc vm log $HV --follow --until "vdc:65536:$Q" --timeout 60
check "live resize to 40 MiB" bash -c "kc vol resize $Q 40M | grep -q 'running VM sees it'"
check "the guest sees 40 MiB" kc vm log $HV --follow --until "vdc:81920:$Q" --timeout 60
check "detach it" kc vol detach $Q
check "delete the VM" bash -c "kc vm destroy $HV >/dev/null; kc vm delete $HV"
check "delete the volumes" bash -c "kc vol delete $V && kc vol delete $Q"
b=$(ls "$EXPORT" | grep '^base-kctest-' | head -1)
[ -z "$b" ] || $PT "$N" vol-delete "$b" >>"$KC_LOG" 2>&1
check "nothing is left on the export" test -z "$(ls -A "$EXPORT")"
check "delete the NFS pool" kc pool delete $P
finish
