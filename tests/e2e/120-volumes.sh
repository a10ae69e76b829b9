#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Volumes (docs/storage.md, "Volumes"), all-in-one server, default pool:
# create (qcow2, raw), list, show; resize (grow only); attach to a running
# VM and see the guest notice it (its user-data prints its virtio disks on
# the console: the new disk with the volume's name as serial, then its new
# size after a live resize), detach (gone from the live and config XML);
# delete refused while attached; a raw image uploaded and downloaded back
# byte-identical; refused uploads (a qcow2 with a backing file, a raw
# file with a qcow2 header) and bad names, sizes, formats change nothing;
# another user sees none of it; a user's volumes count against the disk
# quota.
. "$(dirname "$0")/lib.sh"

ROOT=/var/tmp/kce2e-volumes
rm -rf "$ROOT"
mkdir -p "$ROOT"
server_start || { not_ok "server starts"; finish; exit 1; }
ok "server starts"
PD=$($VIRSH pool-dumpxml $KC_POOL | sed -n 's|.*<path>\(.*\)</path>.*|\1|p' | head -1)
vm=${KC_PREFIX}vol-vm
V1=kce2e-v1
V2=kce2e-v2
code() { curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(cat "$KC_E2E_DATA/admin.token")" "$@"; }
vols() { kc --json vol list | json_get "sorted(v['name'] for v in d['volumes'])"; }
poolvols() { $VIRSH vol-list $KC_POOL 2>/dev/null | awk '{print $1}' | grep '^kce2e-v' | sort | tr '\n' ' '; }
field() { kc --json vol show "$1" | json_get "d.get('$2')"; }

# ---- create, list, show ----
check "create a 64 MiB qcow2 volume" kc vol create $V1 --size 64M --format qcow2
check "create a 4 MiB raw volume" kc vol create $V2 --size 4M --format raw
check "both are in the pool on the host" test "$(poolvols)" = "$V1 $V2 "
check "qcow2 volume's header says 64 MiB" bash -c "qemu-img info -f qcow2 --output=json $PD/$V1 | grep -q '\"virtual-size\": 67108864'"
check "list shows both" test "$(vols)" = "['$V1', '$V2']"
check "show: format, capacity, state" \
	test "$(kc --json vol show $V1 | json_get '(d["format"], d["capacity_bytes"], d["state"], d["pool"])')" = "('qcow2', 67108864, 'ready', 'default')"

# ---- bad input: refused, nothing changes ----
before=$(poolvols)
check_err "a name with '/' is refused" "volume name" kc vol create 'a/b' --size 1M
test "$(code -X POST -d '{"name":"..","size_bytes":1048576}' "$KC_URL/api/v1/volumes")" = 400 &&
	ok "a name '..' is 400" || not_ok "a name '..' is 400"
test "$(code -X POST -d '{"name":"x..y","size_bytes":1048576}' "$KC_URL/api/v1/volumes")" = 400 &&
	ok "a name with '..' is 400" || not_ok "a name with '..' is 400"
test "$(code "$KC_URL/api/v1/volumes/..%2Fetc")" = 400 &&
	ok "a path name '../etc' is 400" || not_ok "a path name '../etc' is 400"
long=$(printf 'v%.0s' $(seq 1 65))
check_err "a 65-character name is refused" "volume name" kc vol create "$long" --size 1M
check_err "size zero is refused" "from 1 byte" kc vol create kce2e-zero --size 0
check_err "a size beyond the pool is refused" "available" kc vol create kce2e-huge --size 60T
check_err "beyond 64 TiB is refused" "64 TiB" kc vol create kce2e-huge --size 65T
check_err "an unknown format is refused" "format" kc vol create kce2e-vmdk --size 1M --format vmdk
check_err "a name taken is a conflict" "already exists" kc vol create $V1 --size 1M
check_err "a VM disk's name in the default pool is refused" "reserved" \
	kc vol create kce2e-x-root.qcow2 --size 1M
check_err "a clone base's name is refused" "reserved" kc vol create base-kce2e-x --size 1M
check_err "an unknown pool is refused" "pool \"nosuch\" not found" kc vol create kce2e-p --size 1M --pool nosuch
check "nothing changed in the pool" test "$(poolvols)" = "$before"
check "nothing changed in the list" test "$(vols)" = "['$V1', '$V2']"

# ---- resize ----
check_err "shrinking is refused" "only grow" kc vol resize $V1 32M
check "grow the qcow2 volume to 96 MiB" kc vol resize $V1 96M
check "qcow2 header says 96 MiB" bash -c "qemu-img info -f qcow2 --output=json $PD/$V1 | grep -q '\"virtual-size\": 100663296'"
check "grow the raw volume to 8 MiB" kc vol resize $V2 8M
check "raw file is 8 MiB" test "$(stat -c %s $PD/$V2)" = 8388608
check_err "resize beyond the pool is refused" "available" kc vol resize $V1 60T
check "the record kept 96 MiB" test "$(field $V1 capacity_bytes)" = 100663296

# ---- hotplug into a running VM ----
check "create a running VM whose user-data prints its disks" kc vm create $vm --image kctest \
	--memory 128 --user-data "$KC_ROOT/tests/e2e/data/volume-watch.sh"
check "the guest is ready" wait_ready $vm 180
# The watcher prints from the background: its first line may follow the ready line.
check "the guest's watcher runs" kc vm log $vm --follow --until 'kce2e-disks: vda:' --timeout 30
check "attach $V1 to the running VM" kc vol attach $V1 $vm
# The seed disk of the user-data is vdb: the volume takes the first free one.
T=$(field $V1 target)
check "the record says $T (vdc: after the root and seed disks)" test "$T/$(field $V1 attached_to)" = "vdc/$vm"
check "the live XML has it" bash -c "$VIRSH dumpxml $vm | grep -q \"<source file='$PD/$V1'\""
check "the config XML has it" bash -c "$VIRSH dumpxml --inactive $vm | grep -q \"<source file='$PD/$V1'\""
check "the guest sees $T, 96 MiB, serial $V1" \
	kc vm log $vm --follow --until "$T:196608:$V1" --timeout 60
check_err "delete of an attached volume is refused" "attached to VM" kc vol delete $V1
test "$(code -X DELETE "$KC_URL/api/v1/volumes/$V1")" = 409 && ok "... answered 409" || not_ok "... answered 409"
check_err "attaching it again is a conflict" "attached" kc vol attach $V1 $vm
check_err "a VM with volumes attached is not deleted" "detach them first" kc vm delete $vm
check_err "upload to an attached volume is refused" "detach it first" kc vol upload $V1 /etc/hostname
check "live resize to 128 MiB" bash -c "kc vol resize $V1 128M | grep -q 'running VM sees it'"
check "the guest sees the new size" kc vm log $vm --follow --until "$T:262144:$V1" --timeout 60
check "detach" kc vol detach $V1
check "gone from the config XML" bash -c "! $VIRSH dumpxml --inactive $vm | grep -q '$V1'"
gone=0
for i in $(seq 1 60); do
	$VIRSH dumpxml $vm | grep -q "$V1" || { gone=1; break; }
	sleep 0.5
done
[ $gone = 1 ] && ok "gone from the live XML (the guest released it)" || not_ok "gone from the live XML"
check "the record is detached" test "$(field $V1 attached_to)" = None
check "a second attach takes $T again" bash -c "kc vol attach $V2 $vm | grep -q 'as $T'"
check "and detach" kc vol detach $V2
check "destroy the VM" kc vm destroy $vm

# ---- upload, download ----
head -c 4194304 /dev/urandom >"$ROOT/raw.img"
head -c 4194304 /dev/zero >>"$ROOT/raw.img"
check "upload an 8 MiB raw image" kc vol upload $V2 "$ROOT/raw.img"
check "the volume file is the image" cmp "$ROOT/raw.img" "$PD/$V2"
check "download it back" kc vol download $V2 "$ROOT/back.img"
check "byte-identical" cmp "$ROOT/raw.img" "$ROOT/back.img"
check "the GET gives Content-Length" bash -c "curl -sD - -o /dev/null -H 'Authorization: Bearer $(cat "$KC_E2E_DATA/admin.token")' $KC_URL/api/v1/volumes/$V2/data | grep -qi '^content-length: 8388608'"
check_err "download never overwrites a file" "cannot create" kc vol download $V2 "$ROOT/back.img"
qemu-img create -q -f qcow2 "$ROOT/base.qcow2" 16M
qemu-img create -q -f qcow2 -F qcow2 -b "$ROOT/base.qcow2" "$ROOT/overlay.qcow2"
sum=$(sha256sum <"$PD/$V1")
check_err "a qcow2 with a backing file is refused" "backing" kc vol upload $V1 "$ROOT/overlay.qcow2"
check "... and the volume is unchanged" test "$(sha256sum <"$PD/$V1")" = "$sum"
qemu-img create -q -f qcow2 "$ROOT/lying.qcow2" 4M
sum=$(sha256sum <"$PD/$V2")
check_err "a qcow2 file uploaded as raw (a lying header) is refused" "qcow2|header|magic" \
	kc vol upload $V2 "$ROOT/lying.qcow2"
check "... and the raw volume is unchanged" test "$(sha256sum <"$PD/$V2")" = "$sum"
head -c 9437184 /dev/urandom >"$ROOT/big.img"
check_err "a raw file larger than the volume is refused" "do not fit" kc vol upload $V2 "$ROOT/big.img"
qemu-img create -q -f qcow2 "$ROOT/good.qcow2" 32M
check "a plain qcow2 image uploads into the qcow2 volume" kc vol upload $V1 "$ROOT/good.qcow2"
check "... which keeps the volume's 128 MiB" bash -c "qemu-img info -f qcow2 --output=json $PD/$V1 | grep -q '\"virtual-size\": 134217728'"
check "... and has no backing file" bash -c "! qemu-img info -f qcow2 $PD/$V1 | grep -q backing"

# ---- users ----
u=kce2e-voluser
tu="$KC_E2E_DATA/voluser.token"
check "create a user" kc user create $u --role user
check "token for the user" bash -c "kc --json token create --user $u | json_get 'd[\"token\"]' >'$tu'"
as_u() { "$KC_CLI_BIN" --server "$KC_URL" --token-file "$tu" "$@"; }
check "the user's list is empty" test "$(as_u --json vol list | json_get 'len(d["volumes"])')" = 0
check_err "the admin's volume is not found for the user" "not found" as_u vol show $V1
check_err "nor can the user delete it" "not found" as_u vol delete $V1
check "quota: 1 GiB of disk" kc user quota $u --disk 1
check "the user creates a 1 GiB volume" as_u vol create kce2e-uvol --size 1G --format raw
check "it is the user's" test "$(field kce2e-uvol owner)" = $u
check_err "a second is over the quota" "quota exceeded" as_u vol create kce2e-uvol2 --size 1M
check_err "growing it is over the quota" "quota exceeded" as_u vol resize kce2e-uvol 2G
check_err "the user cannot attach it to the admin's VM" "not found" as_u vol attach kce2e-uvol $vm
check "the user deletes it" as_u vol delete kce2e-uvol

# ---- delete ----
check "delete the VM" kc vm delete $vm
check "delete $V1" kc vol delete $V1
check "delete $V2" kc vol delete $V2
check "the pool has none left" test -z "$(poolvols)"
check "the list is empty" test "$(vols)" = "[]"
check_err "delete of a missing volume is not found" "not found" kc vol delete $V1

rm -rf "$ROOT"
finish
