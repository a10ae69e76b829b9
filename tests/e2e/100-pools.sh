#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Storage pools (docs/storage.md, "Pools").
# Part 1, all-in-one server: a dir pool is created, shown with live figures
# (capacity, allocation, available, sum of volume sizes), becomes libvirt
# pool kc-<name>; volumes made through the pool table (kc-pooltool, until
# volumes have their own API) show up in it; a volume beyond capacity x
# overcommit is refused naming the figures; a pool with volumes cannot be
# deleted (409); bad names and paths are refused and leave nothing behind;
# a user (not admin) gets 403.
# Part 2, two simulated hosts of one cluster: a mountpoint pool on a folder
# both see is made on both, a volume one host makes is seen by the other,
# and delete removes the libvirt pool from both.
. "$(dirname "$0")/lib.sh"

ROOT=/var/tmp/kce2e-pools
PT="$KC_BUILD/tests/agent/kc-pooltool --data $ROOT/pooltool --storage-pool kce2e-pooltool-100"
SHARED=/var/lib/kvmcloud-sim/shared/kce2e-mp

lv_cleanup() {
	local p
	for p in $($VIRSH pool-list --all --name 2>/dev/null | grep -E '^(kc-kce2e-|kce2e-pooltool)'); do
		$VIRSH pool-destroy "$p" >/dev/null 2>&1
		$VIRSH pool-undefine "$p" >/dev/null 2>&1
	done
}
lv_cleanup
rm -rf "$ROOT" "$SHARED"
mkdir -p "$ROOT"

server_start || { not_ok "server starts"; finish; exit 1; }
ok "server starts"
H=$(kc --json host list | json_get 'd["hosts"][0]["name"]')
P1=kce2e-dir1
D1="{\"name\":\"$P1\",\"type\":\"dir\",\"path\":\"$ROOT/dir1\",\"overcommit\":1.5}"
code() { curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(cat "$KC_E2E_DATA/admin.token")" "$@"; }

check "pool list shows the implicit default pool" \
	test "$(kc --json pool list | json_get '[p["name"] for p in d["pools"] if p.get("implicit")]')" = "['default']"
check "pool show default reports this host's figures" \
	test "$(kc --json pool show default | json_get 'd["hosts"][0]["capacity"] > 0')" = true
check "dir pool create" kc pool create $P1 --type dir --host "$H" --path "$ROOT/dir1" --overcommit 1.5
check "the libvirt pool kc-$P1 exists and runs" bash -c "$VIRSH pool-info kc-$P1 | grep -q 'State:.*running'"
check "its folder was made" test -d "$ROOT/dir1"
check "pool list shows it" bash -c "kc pool list | grep -q '^$P1 .*dir .*host .*$H .*1.50 .*$ROOT/dir1'"
show() { kc --json pool show $P1 | json_get "$1"; }
check "pool show: capacity, allocation, available are live figures" \
	test "$(show 'd["hosts"][0]["capacity"] > 0 and d["hosts"][0]["available"] > 0 and "allocation" in d["hosts"][0]')" = true
check "pool show: no volumes yet" test "$(show 'd["hosts"][0]["volumes"]')" = 0
check_err "a second create of the name is a conflict" "already exists" \
	kc pool create $P1 --type dir --host "$H" --path "$ROOT/other"
test "$(code -X POST -d "{\"name\":\"$P1\",\"type\":\"dir\",\"host\":\"$H\",\"path\":\"$ROOT/other\"}" "$KC_URL/api/v1/pools")" = 409 &&
	ok "... answered 409" || not_ok "... answered 409"

# Volumes through the pool table.
check "a 2 GiB qcow2 volume" $PT "$D1" vol-create kce2e-v1 qcow2 2147483648
check "a 1 GiB raw volume" $PT "$D1" vol-create kce2e-v2 raw 1073741824
check "qcow2 volume has a qcow2 header" bash -c "qemu-img info -f qcow2 --output=json '$ROOT/dir1/kce2e-v1' | grep -q '\"virtual-size\": 2147483648'"
check "pool show counts 2 volumes of 3 GiB" \
	test "$(show '(d["hosts"][0]["volumes"], d["hosts"][0]["virtual"])')" = "(2, 3221225472)"
cap=$(show 'd["hosts"][0]["capacity"]')
over=$((cap * 3 / 2 - 3221225472 + 1))
check_err "a volume beyond capacity x 1.5 is refused with the figures" \
	"no_capacity: pool \"$P1\" is full: its volumes hold 3.00 GiB of .* GiB capacity x 1.50 overcommit" \
	$PT "$D1" vol-create kce2e-big raw $over
check "the refused volume was not made" test ! -e "$ROOT/dir1/kce2e-big"
check "a volume exactly at the limit fits" $PT "$D1" vol-create kce2e-edge raw $((over - 1))
check "... and is sparse" test "$(du -k "$ROOT/dir1/kce2e-edge" | cut -f1)" -lt 1024
check "a disk source for the volume" bash -c "$PT '$D1' disk kce2e-v1 qcow2 | grep -q '\"type\":\"file\",\"format\":\"qcow2\",\"path\":\"$ROOT/dir1/kce2e-v1\"'"
check_err "a volume name with .. is refused" "volume name" $PT "$D1" vol-create ../x raw 1024
check_err "a volume of size 0 is refused" "volume size" $PT "$D1" vol-create kce2e-zero raw 0
check_err "delete with volumes is refused" "has 3 volume\\(s\\) on host" kc pool delete $P1
test "$(code -X DELETE "$KC_URL/api/v1/pools/$P1")" = 409 && ok "... answered 409" || not_ok "... answered 409"
check "the pool is still there" kc pool show $P1

# Bad input: one clear error each, nothing made.
before=$(kc --json pool list; $VIRSH pool-list --all --name | sort)
check_err "name with /" "no such route|pool name|404" kc pool create 'kce2e-a/b' --type dir --host "$H" --path "$ROOT/x"
check_err "name with .." "pool name" kc pool create 'kce2e..x' --type dir --host "$H" --path "$ROOT/x"
check_err "the name default" "reserved" kc pool create default --type dir --host "$H" --path "$ROOT/x"
check_err "a relative path" "absolute path" kc pool create kce2e-x --type dir --host "$H" --path relative/x
check_err "a path with .." "plain path" kc pool create kce2e-x --type dir --host "$H" --path "$ROOT/../../etc"
check_err "a system folder" "system folder" kc pool create kce2e-x --type dir --host "$H" --path /etc/kce2e
check_err "the root folder" "may not be / itself" kc pool create kce2e-x --type dir --host "$H" --path /
check_err "XML metacharacters in a path" "only letters" kc pool create kce2e-x --type dir --host "$H" --path "$ROOT/<x>"
check_err "a path inside the agent's own folders" "agent's own folder" kc pool create kce2e-x --type dir --host "$H" --path "$KC_E2E_DATA/pool/x"
check_err "an unknown host" "host \"kce2e-nohost\" not found" kc pool create kce2e-x --type dir --host kce2e-nohost --path "$ROOT/x"
check_err "an unknown type" "pool type" kc pool create kce2e-x --type zfs --host "$H" --path "$ROOT/x"
check_err "a key of another type" "takes no \"server\"" kc pool create kce2e-x --type dir --host "$H" --path "$ROOT/x" --server h
check_err "overcommit below 1" "overcommit" kc pool create kce2e-x --type dir --host "$H" --path "$ROOT/x" --overcommit 0.5
check_err "a mount point that is not there" "not a folder on host" kc pool create kce2e-x --type mountpoint --host "$H" --path "$ROOT/nomount"
check_err "neither host nor cluster" "either" kc pool create kce2e-x --type dir --path "$ROOT/x"
check "nothing was made by the bad requests" test "$(kc --json pool list; $VIRSH pool-list --all --name | sort)" = "$before"
check "no folder was made" test ! -e "$ROOT/x" -a ! -e "$ROOT/nomount"
check_err "the default pool cannot be deleted" "cannot be deleted" kc pool delete default
check_err "an unknown pool" "not found" kc pool show kce2e-nope

# Users may not touch pools.
kc user create kce2e-pu --role user >>"$KC_LOG" 2>&1
ut=$(kc --json token create --user kce2e-pu | json_get 'd["token"]')
st=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ut" "$KC_URL/api/v1/pools")
check "a user's GET /pools is 403" test "$st" = 403
kc user delete kce2e-pu >>"$KC_LOG" 2>&1

# Empty it, then delete: the libvirt pool goes, the folder stays.
for v in kce2e-v1 kce2e-v2 kce2e-edge; do $PT "$D1" vol-delete $v >>"$KC_LOG" 2>&1; done
check_err "deleting a missing volume is not_found" "not_found" $PT "$D1" vol-delete kce2e-v1
check "delete the empty pool" kc pool delete $P1
check "libvirt pool kc-$P1 is gone" bash -c "! $VIRSH pool-info kc-$P1 >/dev/null 2>&1"
check "its folder stays (pools never delete data)" test -d "$ROOT/dir1"
check_err "it is gone from the API" "not found" kc pool show $P1
server_stop

# ---- part 2: a shared mount point on two simulated hosts ----
. "$(dirname "$0")/lib-simhost.sh"
. "$(dirname "$0")/lib-cluster.sh"
H1=kce2e-p1
H2=kce2e-p2
cluster_init "$H1:45" "$H2:46"
trap 'cluster_cleanup; lv_cleanup; rm -rf "$ROOT" "$SHARED"' EXIT
cluster_server_start
check "zone and cluster" bash -c "kc zone create kce2e-pz && kc cluster create kce2e-pc --zone kce2e-pz"
for h in $H1 $H2; do cluster_join $h --zone kce2e-pz --cluster kce2e-pc; done
check "host $H1 is Up" wait_host $H1 Up 60
check "host $H2 is Up" wait_host $H2 Up 60
mkdir -p "$SHARED"
MP="{\"name\":\"kce2e-mp\",\"type\":\"mountpoint\",\"path\":\"$SHARED\"}"
check_err "a dir pool cannot span a cluster" "one host's own storage" \
	kc pool create kce2e-mpx --type dir --cluster kce2e-pc --path "$SHARED"
check "mountpoint pool for the cluster" kc pool create kce2e-mp --type mountpoint --cluster kce2e-pc --path "$SHARED"
sim_pool_runs() { sim_virsh "$1" pool-info kc-kce2e-mp 2>/dev/null | grep -q 'State:.*running'; }
sim_pool_gone() { ! sim_virsh "$1" pool-info kc-kce2e-mp >/dev/null 2>&1; }
for h in $H1 $H2; do
	check "libvirt pool kc-kce2e-mp runs on $h" sim_pool_runs $h
done
check "pool show has figures from both hosts" \
	test "$(kc --json pool show kce2e-mp | json_get 'sorted(h["host"] for h in d["hosts"] if h.get("capacity", 0) > 0)')" = "['$H1', '$H2']"
check "a volume made on $H1" $PT --uri "$(sim_uri $H1)" "$MP" vol-create kce2e-sv qcow2 1073741824
check "$H2 sees it" bash -c "$PT --uri '$(sim_uri $H2)' '$MP' volumes | grep -q '\"name\":\"kce2e-sv\"'"
check "pool show counts it on both hosts" \
	test "$(kc --json pool show kce2e-mp | json_get '[h["volumes"] for h in d["hosts"]]')" = "[1, 1]"
check_err "delete with the volume is refused" "volume\\(s\\) on host" kc pool delete kce2e-mp
check "$H2 deletes the volume" $PT --uri "$(sim_uri $H2)" "$MP" vol-delete kce2e-sv
check "delete the pool" kc pool delete kce2e-mp
for h in $H1 $H2; do
	check "kc-kce2e-mp is gone from $h" sim_pool_gone $h
done
finish
