#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Network storage pools against real userspace servers this test starts:
# NFS through nfs-ganesha (scripts/start-ganesha.sh) with no kernel mount
# (the agent uses libnfs, QEMU its nfs:// driver), and iSCSI through tgtd
# (scripts/start-tgt.sh) with libvirt's iscsi-direct pool (libiscsi).
# Each pool is created through the API of an all-in-one server and shown
# with live figures; an NFS volume is made through the pool table and QEMU
# opens it by the disk source the pool gives (qemu-img, format forced),
# the kctest image is written into it and read back identical; the iSCSI
# LUN is listed as a volume and opened by QEMU as the pool describes it.
. "$(dirname "$0")/lib.sh"

ROOT=/var/tmp/kce2e-net
EXPORT=$ROOT/export
IQN=iqn.2026-11.test.kvmcloud:kce2e
INI=iqn.2026-11.test.kvmcloud:kce2e-host
SCRIPTS=$(cd "$(dirname "$0")/../.." && pwd)/scripts
PT="$KC_BUILD/tests/agent/kc-pooltool --data $ROOT/pooltool --storage-pool kce2e-pooltool-105"

lv_cleanup() {
	local p
	for p in $($VIRSH pool-list --all --name 2>/dev/null | grep -E '^(kc-kce2e-|kce2e-pooltool)'); do
		$VIRSH pool-destroy "$p" >/dev/null 2>&1
		$VIRSH pool-undefine "$p" >/dev/null 2>&1
	done
}
net_cleanup() {
	cleanup_all
	lv_cleanup
	"$SCRIPTS/start-ganesha.sh" stop >/dev/null 2>&1
	"$SCRIPTS/start-tgt.sh" stop >/dev/null 2>&1
	rm -rf "$ROOT"
}
trap net_cleanup EXIT
net_cleanup
mkdir -p "$ROOT"

server_start || { not_ok "server starts"; finish; exit 1; }
ok "server starts"
H=$(kc --json host list | json_get 'd["hosts"][0]["name"]')

# ---- NFS ----
if url=$("$SCRIPTS/start-ganesha.sh" start "$EXPORT" 2>>"$KC_LOG"); then
	ok "nfs-ganesha exports $EXPORT ($url)"
	N="{\"name\":\"kce2e-nfs\",\"type\":\"nfs\",\"server\":\"127.0.0.1\",\"export\":\"$EXPORT\"}"
	check "NFS pool create (the agent mounts it through libnfs)" \
		kc pool create kce2e-nfs --type nfs --host "$H" --server 127.0.0.1 --export "$EXPORT"
	check "no kernel NFS mount was made" bash -c "! grep -q ' nfs' /proc/mounts"
	check "pool show: NFS capacity from the server" \
		test "$(kc --json pool show kce2e-nfs | json_get 'd["hosts"][0]["capacity"] > 0')" = true
	check "a qcow2 volume on NFS" $PT "$N" vol-create kce2e-nv1 qcow2 1073741824
	check "a raw volume on NFS" $PT "$N" vol-create kce2e-nv2 raw 268435456
	check "the server's folder holds both" test -f "$EXPORT/kce2e-nv1" -a -f "$EXPORT/kce2e-nv2"
	check "pool show counts them" \
		test "$(kc --json pool show kce2e-nfs | json_get '(d["hosts"][0]["volumes"], d["hosts"][0]["virtual"])')" = "(2, 1342177280)"
	src=$($PT "$N" disk kce2e-nv1 qcow2)
	check "the disk source is a network nfs disk" \
		test "$(echo "$src" | json_get '(d["type"], d["protocol"], d["host"], d["name"])')" = "('network', 'nfs', '127.0.0.1', '$EXPORT/kce2e-nv1')"
	nurl="nfs://$(echo "$src" | json_get 'd["host"] + d["name"]')"
	check "QEMU opens it as qcow2 over nfs:// (qemu-img info -f qcow2)" \
		bash -c "qemu-img info -f qcow2 --output=json '$nurl' | grep -q '\"virtual-size\": 1073741824'"
	check "QEMU opens the raw one (qemu-img info -f raw)" \
		bash -c "qemu-img info -f raw --output=json 'nfs://127.0.0.1$EXPORT/kce2e-nv2' | grep -q '\"virtual-size\": 268435456'"
	check "the kctest image written into the raw volume over nfs://" \
		qemu-img convert -f qcow2 -O raw -n "$KC_IMAGE" "nfs://127.0.0.1$EXPORT/kce2e-nv2"
	check "... reads back identical over nfs://" \
		qemu-img compare -f qcow2 -F raw "$KC_IMAGE" "nfs://127.0.0.1$EXPORT/kce2e-nv2"
	check_err "a volume beyond the NFS capacity is refused" "no_capacity: pool \"kce2e-nfs\" is full" \
		$PT "$N" vol-create kce2e-huge raw 70368744177664
	check_err "delete with volumes is refused" "volume\\(s\\)" kc pool delete kce2e-nfs
	check "volumes deleted through libnfs" bash -c "$PT '$N' vol-delete kce2e-nv1 && $PT '$N' vol-delete kce2e-nv2"
	# A VM whose disks live on the export: linked root (base copy + qcow2
	# overlay with an explicit nfs:// backing) and a data disk.
	V=${KC_PREFIX}nfsvm
	check "a linked-clone VM in the NFS pool" kc vm create $V --image kctest --memory 128 \
		--pool kce2e-nfs --data-disk 1
	check "it boots from NFS to KVMCLOUD-READY" wait_ready $V 180
	check "its root and data disks and the base are files on the export" \
		bash -c "test -f '$EXPORT/$V-root.qcow2' -a -f '$EXPORT/$V-data1.qcow2' && ls '$EXPORT' | grep -q '^base-kctest-'"
	check "the domain opens them over nfs:// with the backing stated" \
		bash -c "$VIRSH dumpxml $V | grep -q \"protocol=.nfs. name=.$EXPORT/$V-root.qcow2\" && $VIRSH dumpxml $V | grep -q '<backingStore type=.network.'"
	check "still no kernel NFS mount" bash -c "! grep -q ' nfs' /proc/mounts"
	check "force it off" kc vm destroy $V
	check "delete it with its disks" kc vm delete $V
	check "its disks are gone from the export" \
		bash -c "! ls '$EXPORT' | grep -q '^$V-'"
	F=${KC_PREFIX}nfsfull
	check "a full-clone VM in the NFS pool (not started)" kc vm create $F --image kctest --memory 128 \
		--pool kce2e-nfs --full-clone --no-start
	check "... its root disk is a standalone qcow2 on the export" \
		bash -c "qemu-img info -f qcow2 --output=json 'nfs://127.0.0.1$EXPORT/$F-root.qcow2' | grep -q '\"virtual-size\"' && ! qemu-img info -f qcow2 'nfs://127.0.0.1$EXPORT/$F-root.qcow2' | grep -q 'backing file'"
	check "delete it with its disks" kc vm delete $F
	base=$(ls "$EXPORT" | grep '^base-kctest-' | head -1)
	check "the cached base is a pool volume and deletes through libnfs" $PT "$N" vol-delete "$base"
	check "nothing is left on the export" test -z "$(ls -A "$EXPORT")"
	check "delete the NFS pool" kc pool delete kce2e-nfs
	check_err "an unreachable NFS server is refused at create" "NFS pool" \
		kc pool create kce2e-nfs2 --type nfs --host "$H" --server 127.0.0.1 --export /var/tmp/kce2e-not-exported
	check "... and left no record" bash -c "! kc pool show kce2e-nfs2 >/dev/null 2>&1"
	"$SCRIPTS/start-ganesha.sh" stop >>"$KC_LOG" 2>&1
else
	not_ok "nfs-ganesha starts"
	diag "$(tail -3 /var/tmp/kvmcloud-ganesha/ganesha.log 2>/dev/null)"
fi

# ---- iSCSI ----
if ! $VIRSH pool-capabilities 2>/dev/null | grep -q "type='iscsi-direct' supported='yes'"; then
	not_ok "libvirtd supports iscsi-direct pools"
	diag "install libvirt-daemon-driver-storage-iscsi-direct and restart libvirtd"
elif url=$("$SCRIPTS/start-tgt.sh" start "$IQN" "$ROOT/lun1.img" 512M 2>>"$KC_LOG"); then
	ok "tgtd serves $url"
	I="{\"name\":\"kce2e-iscsi\",\"type\":\"iscsi\",\"portal\":\"127.0.0.1:13260\",\"target\":\"$IQN\",\"initiator\":\"$INI\"}"
	check "iSCSI pool create (libvirt iscsi-direct)" kc pool create kce2e-iscsi --type iscsi --host "$H" \
		--portal 127.0.0.1:13260 --target "$IQN" --initiator "$INI"
	check "libvirt pool kc-kce2e-iscsi runs" bash -c "$VIRSH pool-info kc-kce2e-iscsi | grep -q 'State:.*running'"
	# (libvirt 9.0's iscsi-direct counts one 512-byte block less than the LUN has.)
	check "pool show: the LUN's 512 MiB, one volume" \
		test "$(kc --json pool show kce2e-iscsi | json_get '(536870912 - 512 <= d["hosts"][0]["capacity"] <= 536870912, d["hosts"][0]["volumes"])')" = "(True, 1)"
	check "the LUN is volume lun-1, raw" \
		test "$($PT "$I" volumes | json_get '[(v["name"], v["format"]) for v in d["volumes"]]')" = "[('lun-1', 'raw')]"
	check_err "iSCSI volumes are the target's: create is refused" "cannot create volumes" \
		$PT "$I" vol-create kce2e-x raw 1024
	src=$($PT "$I" disk lun-1 raw)
	check "the disk source is a network iscsi disk with our initiator" \
		test "$(echo "$src" | json_get '(d["protocol"], d["host"], d["port"], d["name"], d["initiator"])')" = "('iscsi', '127.0.0.1', 13260, '$IQN/1', '$INI')"
	iurl="iscsi://127.0.0.1:13260/$IQN/1"
	check "the kctest image written to the LUN over iscsi:// (libiscsi)" \
		qemu-img convert -f qcow2 -O raw -n "$KC_IMAGE" "$iurl"
	check "QEMU reads it back identical (qemu-img compare -F raw)" \
		qemu-img compare -f qcow2 -F raw "$KC_IMAGE" "$iurl"
	check "delete the iSCSI pool (the LUN is the target's and stays)" kc pool delete kce2e-iscsi
	check "libvirt pool kc-kce2e-iscsi is gone" bash -c "! $VIRSH pool-info kc-kce2e-iscsi >/dev/null 2>&1"
	check "the LUN's data is still there" qemu-img compare -f qcow2 -F raw "$KC_IMAGE" "$iurl"
	check_err "a bad initiator name is refused" "initiator" kc pool create kce2e-i2 --type iscsi --host "$H" \
		--portal 127.0.0.1:13260 --target "$IQN" --initiator "BAD NAME"
else
	not_ok "tgtd starts"
	diag "$(tail -3 /var/tmp/kvmcloud-tgt/tgtd.log 2>/dev/null)"
fi
finish
