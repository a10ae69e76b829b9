#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Crash safety of volumes (docs/storage.md "Crash safety"), all-in-one:
# kill -9 of the server (and so of its embedded agent) during volume
# creates (default pool and a dir pool) and during attach / detach; after a
# restart each volume is either whole ("ready", in the pool) or gone from
# both the database and the pool, and its attachment matches the domain's
# XML.  Then, deterministically: records left in every transitional state
# (written into the database while the server is down) are settled at
# start-up against the pool and the domain; a dead vol.create's intent
# record in a non-default pool leaves no orphan after the restart.
. "$(dirname "$0")/lib.sh"
cleanup_domains

ROOT=/var/tmp/kce2e-vc
rm -rf "$ROOT"
mkdir -p "$ROOT"
P=kce2e-vc-pool
vm=${KC_PREFIX}vc-vm
A=kce2e-vc-att

server_start || { not_ok "server starts"; finish; exit 1; }
ok "server starts"
H=$(kc --json host list | json_get 'd["hosts"][0]["name"]')
PD=$($VIRSH pool-dumpxml $KC_POOL | sed -n 's|.*<path>\(.*\)</path>.*|\1|p' | head -1)
check "a dir pool for the test" kc pool create $P --type dir --host "$H" --path "$ROOT/pool"

# row VOL: "STATE ATTACHED_TO" or "absent".
row() {
	kc --json vol show "$1" 2>/dev/null | json_get 'd["state"] + " " + str(d.get("attached_to"))' ||
		echo absent
}
# in_pool DIR VOL: the file is there.
in_pool() { test -e "$1/$2"; }
# in_xml VM PATH: the domain's persistent XML has the disk.
in_xml() { $VIRSH dumpxml --inactive "$1" 2>/dev/null | grep -q "<source file='$2'"; }

# whole_or_nothing VOL DIR: ready and in the pool, or in neither.
whole_or_nothing() {
	local r f=no
	r=$(row "$1")
	in_pool "$2" "$1" && f=yes
	diag "$1: record=[$r] file=$f"
	case "$r" in
	"ready None") test $f = yes ;;
	absent) test $f = no ;;
	*) return 1 ;;
	esac
}

# matches_xml VOL PATH: ready, attached to $vm exactly when the XML has it.
matches_xml() {
	local r x=no
	r=$(row "$1")
	in_xml $vm "$2" && x=yes
	diag "$1: record=[$r] xml=$x"
	case "$r" in
	"ready $vm") test $x = yes ;;
	"ready None") test $x = no ;;
	*) return 1 ;;
	esac
}

kill_server() {
	kill -9 $_server_pid 2>/dev/null
	wait $_server_pid 2>/dev/null
	_server_pid=
}

# ---- kill -9 during creates ----
i=0
for delay in 0 0.01 0.03 0.06 0.1 0.2; do
	for pool in default $P; do
		i=$((i + 1))
		v=kce2e-vc-c$i
		dir=$PD
		[ $pool = default ] || dir=$ROOT/pool
		kc vol create $v --size 64M --pool $pool >>"$KC_LOG" 2>&1 &
		cli=$!
		sleep $delay
		kill_server
		wait $cli 2>/dev/null
		server_start || { not_ok "server restarts after kill -9 (create $i)"; continue; }
		check "kill -9 ${delay}s into a create in pool $pool: whole volume or nothing" \
			whole_or_nothing $v "$dir"
		kc vol delete $v >/dev/null 2>&1
	done
done

# ---- kill -9 during attach and detach ----
# Shut off: attach and detach change its persistent XML only (a live
# detach would wait for a guest that is still booting).
check "a VM to attach to (shut off)" kc vm create $vm --image kctest --memory 128 --no-start
check "a volume to attach" kc vol create $A --size 16M
for delay in 0 0.02 0.05 0.1 0.2 0.4; do
	if [ "$(row $A)" = "ready None" ]; then
		op=attach
		kc vol attach $A $vm >>"$KC_LOG" 2>&1 &
	else
		op=detach
		kc vol detach $A >>"$KC_LOG" 2>&1 &
	fi
	cli=$!
	sleep $delay
	kill_server
	wait $cli 2>/dev/null
	server_start || { not_ok "server restarts after kill -9 ($op)"; continue; }
	check "kill -9 ${delay}s into a $op: the record matches the domain's XML" \
		matches_xml $A "$PD/$A"
done

# ---- records left half-way, settled at start-up ----
if [ -n "${KC_E2E_DB:-}" ]; then
	ok "stale records settled at start-up # SKIP database edits need the SQLite file"
else
	kc vol detach $A >/dev/null 2>&1
	check "volumes for the stale records" bash -c "kc vol create kce2e-vc-s1 --size 8M &&
		kc vol create kce2e-vc-s3 --size 8M && kc vol create kce2e-vc-s4 --size 8M &&
		kc vol attach kce2e-vc-s4 $vm && kc vol create kce2e-vc-s5 --size 8M --pool $P"
	server_stop
	sql() { sqlite3 "$KC_E2E_DATA/kvmcloud.db" "$@"; }
	now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	# s1 exists but says creating; s2 says creating and does not exist;
	# s3 says attaching but no domain has it; s4 is in the XML but its
	# record lost the attachment (attaching); $A says detaching but the
	# XML has no such disk; s5 stopped in the middle of an upload.
	check "stale records written" sql "
		UPDATE volumes SET state = 'creating' WHERE name = 'kce2e-vc-s1';
		INSERT INTO volumes (name, pool, host, format, capacity_bytes, owner, state, created_at)
			VALUES ('kce2e-vc-s2', 'default', '$H', 'qcow2', 8388608, 'admin', 'creating', '$now');
		UPDATE volumes SET state = 'attaching' WHERE name = 'kce2e-vc-s3';
		UPDATE volumes SET state = 'attaching', attached_to = NULL, target = NULL
			WHERE name = 'kce2e-vc-s4';
		UPDATE volumes SET state = 'detaching', attached_to = '$vm', target = 'vdz'
			WHERE name = '$A';
		UPDATE volumes SET state = 'uploading', upload_bytes = 4096, received_bytes = 1024
			WHERE name = 'kce2e-vc-s5';"
	server_start || { not_ok "server restarts"; finish; exit 1; }
	check "creating + in the pool: ready" test "$(row kce2e-vc-s1)" = "ready None"
	check "creating + not in the pool: record removed" test "$(row kce2e-vc-s2)" = absent
	check "attaching + not in the XML: ready, detached" test "$(row kce2e-vc-s3)" = "ready None"
	check "attaching + in the XML: attached to the VM" test "$(row kce2e-vc-s4)" = "ready $vm"
	check "its target is the XML's" test "$(kc --json vol show kce2e-vc-s4 | json_get 'd["target"]')" = \
		"$($VIRSH domblklist $vm | awk -v p="$PD/kce2e-vc-s4" '$2 == p {print $1}')"
	check "detaching + not in the XML: detached" test "$(row $A)" = "ready None"
	check "uploading: ready, the upload shown as partial" \
		test "$(kc --json vol show kce2e-vc-s5 | json_get '(d["state"], d["upload"]["received_bytes"])')" = "('ready', 1024)"
	check "the server log names the settlements" grep -q "volume reconcile: volume kce2e-vc-s2 was creating" \
		"$KC_E2E_DATA/server.log"
	kc vol detach kce2e-vc-s4 >/dev/null 2>&1
fi

# ---- a vol.create that died in a non-default pool: no orphan ----
server_stop
mkdir -p "$KC_E2E_DATA/pool/.creating"
qemu-img create -q -f qcow2 "$ROOT/pool/kce2e-vc-orphan" 16M
printf '999999\n{"pool":{"name":"%s","type":"dir","path":"%s","overcommit":1.0},"vol":"kce2e-vc-orphan"}' \
	"$P" "$ROOT/pool" >"$KC_E2E_DATA/pool/.creating/$P@kce2e-vc-orphan"
server_start || { not_ok "server restarts"; finish; exit 1; }
check "the dead create's volume was removed" test ! -e "$ROOT/pool/kce2e-vc-orphan"
check "and its record" test ! -e "$KC_E2E_DATA/pool/.creating/$P@kce2e-vc-orphan"
check "libvirt's pool forgot it" bash -c "! $VIRSH vol-list kc-$P | grep -q kce2e-vc-orphan"
check "no record is left in a transitional state" \
	test "$(kc --json vol list | json_get '[v["name"] for v in d["volumes"] if v["state"] != "ready"]')" = "[]"

# ---- clean up ----
for v in $(kc --json vol list | json_get '" ".join(v["name"] for v in d["volumes"] if v["name"].startswith("kce2e-vc"))'); do
	kc vol detach $v >/dev/null 2>&1
	kc vol delete $v >/dev/null 2>&1
done
kc vm destroy $vm >/dev/null 2>&1
kc vm delete $vm >/dev/null 2>&1
check "the test's volumes are gone" bash -c "! kc vol list | grep -q kce2e-vc"
check "the test pool is removed" kc pool delete $P
server_stop
rm -rf "$ROOT"
finish
