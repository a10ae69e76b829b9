#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# High availability (docs/server.md): two servers A and B on one private
# PostgreSQL (scripts/start-postgres.sh), one simulated host joined through
# A, a VM running on it.  Both servers use the one cluster CA (kept in the
# database); the join hands the agent both agent endpoints.  Then kill -9
# of A: the agent fails over to B within seconds, the host stays Up through
# B's API, the VM is listed running and can be shut down and started
# through B; a call through a server without the host's link names the one
# with it.  A restarted: nothing lost or duplicated (VMs, jobs, audit).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-simhost.sh"

H=kce2e-ha1
IDX=47
VM=kce2e-ha
BR=10.251.0.254
PA=$((KC_PORT + 1500))
PB=$((PA + 1))
APA=$((PA + 2))
APB=$((PA + 3))
SA=$KC_E2E_DATA/ha-a
SB=$KC_E2E_DATA/ha-b
URL_A=https://$BR:$PA
URL_B=https://$BR:$PB
PGDIR=$(mktemp -d /var/tmp/kce2e-hapg.XXXXXX)
export KVMCLOUD_CA=$SA/pki/ca.crt
_pid_a=
_pid_b=

# The admin token lives in the database; A (first) wrote its file.
kc_a() { "$KC_CLI_BIN" --server "$URL_A" --token-file "$SA/admin.token" "$@"; }
kc_b() { "$KC_CLI_BIN" --server "$URL_B" --token-file "$SA/admin.token" "$@"; }
kc() { kc_b "$@"; }
export -f kc kc_a kc_b
export URL_A URL_B SA

ha_cleanup() {
	local f p i
	for f in "$KC_E2E_DATA"/agent-$H.pid; do
		[ -e "$f" ] || continue
		p=$(cat "$f")
		kill "$p" 2>/dev/null
		for i in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		rm -f "$f"
	done
	for p in $_pid_a $_pid_b; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	_pid_a= _pid_b=
	sim_stop_all
	"$(dirname "$0")/../../scripts/start-postgres.sh" stop "$PGDIR" >/dev/null 2>&1
	rm -rf "$PGDIR" "$SA" "$SB" "$KC_E2E_DATA/agent-$H"
}
trap ha_cleanup EXIT

"$SIMHOST" stop "$H" --purge >/dev/null 2>&1
rm -rf "$SA" "$SB" "$KC_E2E_DATA/agent-$H"
mkdir -p "$SA" "$SB"

if ! DB=$("$(dirname "$0")/../../scripts/start-postgres.sh" "$PGDIR" $((26432 + RANDOM % 1000)) 2>"$SA/pg.err"); then
	not_ok "PostgreSQL starts"; sed 's/^/# /' "$SA/pg.err"; finish; exit 1
fi
ok "PostgreSQL starts"
psqlc() { psql -X -q -tA "$DB" -c "$1"; }

# server_run DIR PORT APORT: a server without embedded agent on the bridge.
server_run() {
	"$KC_SERVER_BIN" --data-dir "$1" --db "$DB" --listen "$BR:$2" --agent-listen "$BR:$3" \
		--heartbeat 2 >>"$1/server.log" 2>&1 &
}
# wait_api URL [PID]: until the API answers, or PID has exited.
wait_api() {
	local i
	for i in $(seq 1 150); do
		curl -fs --cacert "$KVMCLOUD_CA" -o /dev/null "$1/api/v1/ca" && return 0
		[ -z "${2:-}" ] || kill -0 "$2" 2>/dev/null || return 1
		sleep 0.2
	done
	return 1
}

# The host first: it brings up the bridge the servers listen on.
if ! sim_start $H $IDX; then not_ok "simulated host starts"; finish; exit 1; fi
ok "simulated host starts"
server_run "$SA" $PA $APA
_pid_a=$!
if wait_api "$URL_A" $_pid_a; then ok "server A starts on PostgreSQL"; else
	not_ok "server A starts"; tail -5 "$SA/server.log" | sed 's/^/# /'; finish; exit 1
fi
server_run "$SB" $PB $APB
_pid_b=$!
if wait_api "$URL_B" $_pid_b; then ok "server B starts on the same database"; else
	not_ok "server B starts"; tail -5 "$SB/server.log" | sed 's/^/# /'; finish; exit 1
fi
check "both servers use the one cluster CA (from the database)" cmp "$SA/pki/ca.crt" "$SB/pki/ca.crt"
check "each has its own server certificate" bash -c "! cmp -s '$SA/pki/server.crt' '$SB/pki/server.crt'"
check "both servers are registered" test "$(psqlc 'SELECT count(*) FROM servers')" = 2

d=$KC_E2E_DATA/agent-$H
mkdir -p "$d/images" "$d/pki" "$d/pool"
chmod 755 "$d" "$d/images" "$d/pool"
cp "$KC_IMAGE" "$d/images/kctest.qcow2"
aopts="-o data.dir=$d -o pki.dir=$d/pki -o storage.dir=$d/pool -o images.dir=$d/images -o accel=tcg -o storage.pool=kce2e"

cmd=$(kc_a --json host add $H | json_get 'd["command"]')
url=$(echo "$cmd" | awk '{print $3}')
tok=$(echo "$cmd" | awk '{print $4}')
fp=$(echo "$cmd" | awk '{print $6}')
# shellcheck disable=SC2086
check "join through A" sim_exec $H "$KC_AGENT_BIN" $aopts join "$url" "$tok" --ca-sha256 "$fp"
check "server.conf lists both agent endpoints" \
	grep -q "^endpoints=$BR:$APA,$BR:$APB\$" "$d/pki/server.conf"
# shellcheck disable=SC2086
sim_exec $H bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$KC_E2E_DATA/agent-$H.pid" \
	"$KC_AGENT_BIN" $aopts run >>"$d/agent.log" 2>&1 &

host_state() { "$@" --json host show $H 2>/dev/null | json_get 'd["state"]'; }
wait_up() {
	local i
	for i in $(seq 1 $(($2 * 2))); do
		[ "$(host_state "$1")" = Up ] && return 0
		sleep 0.5
	done
	return 1
}
check "host is Up (through A)" wait_up kc_a 60
check "host is Up through B too (shared state)" test "$(host_state kc_b)" = Up
check "create $VM through A" kc_a vm create $VM --image kctest --memory 128 --host $H
check "$VM boots" bash -c "KC_URL=$URL_A; kc() { kc_a \"\$@\"; }; export -f kc; wait_ready $VM 180"
check "no flapping: the host stays Up over several heartbeats" \
	bash -c "for i in 1 2 3 4 5 6; do [ \"\$(kc_b --json host show $H | json_get 'd[\"state\"]')\" = Up ] || exit 1; sleep 1; done"

count() { psqlc "$1"; }
vms_before=$(count "SELECT count(*) FROM vms")
jobs_before=$(count "SELECT count(*) FROM jobs")
audit_max=$(count "SELECT coalesce(max(id), 0) FROM audit_log")
audit_before=$(count "SELECT count(*) FROM audit_log")
diag "before the kill: $vms_before VMs, $jobs_before jobs, $audit_before audit entries"

# ---- kill -9 of A ----
t0=$(date +%s)
kill -9 $_pid_a
wait $_pid_a 2>/dev/null
_pid_a=
check "the agent reconnects to B within 30 s" sim_wait_log "$d/agent.log" "connected to $BR:$APB" 30
diag "failover took $(($(date +%s) - t0)) s"
check "host is Up through B" wait_up kc_b 30
check "B holds the host's link" test "$(psqlc "SELECT connected_to FROM hosts WHERE name = '$H'")" = "$BR:$APB"
check "$VM is listed running through B" test "$(vm_state $VM)" = running
check "shutdown through B" kc_b vm shutdown $VM --timeout 30
check "$VM is shutoff" wait_state $VM shutoff 30
check "$VM is shutoff in the host's libvirtd" test "$(sim_virsh $H domstate $VM)" = "shut off"
check "start through B" kc_b vm start $VM
check "$VM is running" wait_state $VM running 30

# ---- A comes back ----
server_run "$SA" $PA $APA
_pid_a=$!
check "server A restarts" wait_api "$URL_A" $_pid_a
check "host is Up through A" test "$(host_state kc_a)" = Up
check "A lists $VM running" bash -c "kc_a --json vm show $VM | json_get 'd[\"state\"]' | grep -qx running"
check_err "a VM call through A (no link) names the server with it" "connected to another server" \
	kc_a vm reboot $VM
check "the host stays Up and with B" bash -c "sleep 5; [ \"\$(kc_a --json host show $H | json_get 'd[\"state\"]')\" = Up ] && \
	[ \"\$(psql -X -tA '$DB' -c \"SELECT connected_to FROM hosts WHERE name = '$H'\")\" = '$BR:$APB' ]"
check "no VM record lost or duplicated" test "$(count "SELECT count(*) FROM vms")" = "$vms_before"
check "exactly one record of $VM" test "$(count "SELECT count(*) FROM vms WHERE name = '$VM'")" = 1
check "no job lost" test "$(count "SELECT count(*) FROM jobs")" -ge "$jobs_before"
check "no audit entry lost" test "$(count "SELECT count(*) FROM audit_log WHERE id <= $audit_max")" = "$audit_before"
check "one libvirt domain for $VM" test "$(sim_virsh $H list --all --name | grep -cx $VM)" = 1

check "delete $VM through B" bash -c "kc_b vm destroy $VM >/dev/null; kc_b vm delete $VM"
ha_cleanup
check "no agent process is left" bash -c "! pgrep -f '[k]vmcloud-agent .*agent-$H' >/dev/null"
finish
