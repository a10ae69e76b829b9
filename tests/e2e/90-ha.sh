#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# High availability (docs/server.md): two servers A and B on one private
# PostgreSQL (scripts/start-postgres.sh), two simulated hosts: H1 joined
# through A (its agent connects to A), H2 through B (connects to B).  Both
# servers use the one cluster CA (kept in the database) and each records
# its peer certificate.  A VM created through A lands on H2, held by B: A
# forwards every call to B (create, show, log, shutdown, start), and the
# job, record and libvirt state agree.  Then kill -9 of B: H2's agent
# fails over to A within seconds and the same actions work through A.  B
# restarted: calls through B reach H2 through A; nothing lost or
# duplicated (VMs, jobs, audit); delete through B.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-simhost.sh"

H=kce2e-ha1
IDX=47
H2=kce2e-ha2
IDX2=48
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
	for f in "$KC_E2E_DATA"/agent-$H.pid "$KC_E2E_DATA"/agent-$H2.pid; do
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
	rm -rf "$PGDIR" "$SA" "$SB" "$KC_E2E_DATA/agent-$H" "$KC_E2E_DATA/agent-$H2"
}
trap ha_cleanup EXIT

"$SIMHOST" stop "$H" --purge >/dev/null 2>&1
"$SIMHOST" stop "$H2" --purge >/dev/null 2>&1
rm -rf "$SA" "$SB" "$KC_E2E_DATA/agent-$H" "$KC_E2E_DATA/agent-$H2"
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

check "each server recorded its own peer certificate" \
	test "$(psqlc 'SELECT count(DISTINCT cert_serial) FROM servers WHERE cert_serial IS NOT NULL')" = 2
if ! sim_start $H2 $IDX2; then not_ok "simulated host 2 starts"; finish; exit 1; fi
ok "simulated host 2 starts"

# agent_join HOST VIA-CLI-FUNCTION: joins HOST through that server and runs its agent.
agent_join() {
	local h=$1 via=$2 d=$KC_E2E_DATA/agent-$1 cmd url tok fp aopts
	mkdir -p "$d/images" "$d/pki" "$d/pool"
	chmod 755 "$d" "$d/images" "$d/pool"
	cp "$KC_IMAGE" "$d/images/kctest.qcow2"
	aopts="-o data.dir=$d -o pki.dir=$d/pki -o storage.dir=$d/pool -o images.dir=$d/images -o accel=tcg -o storage.pool=kce2e"
	cmd=$($via --json host add "$h" | json_get 'd["command"]')
	url=$(echo "$cmd" | awk '{print $3}')
	tok=$(echo "$cmd" | awk '{print $4}')
	fp=$(echo "$cmd" | awk '{print $6}')
	# shellcheck disable=SC2086
	sim_exec "$h" "$KC_AGENT_BIN" $aopts join "$url" "$tok" --ca-sha256 "$fp" || return 1
	# shellcheck disable=SC2086
	sim_exec "$h" bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$KC_E2E_DATA/agent-$h.pid" \
		"$KC_AGENT_BIN" $aopts run >>"$d/agent.log" 2>&1 &
}
d=$KC_E2E_DATA/agent-$H2
check "join $H through A" agent_join $H kc_a
check "join $H2 through B" agent_join $H2 kc_b
check "$H's server.conf lists A's endpoint first" \
	grep -q "^endpoints=$BR:$APA,$BR:$APB\$" "$KC_E2E_DATA/agent-$H/pki/server.conf"
check "$H2's server.conf lists B's endpoint first" \
	grep -q "^endpoints=$BR:$APB,$BR:$APA\$" "$d/pki/server.conf"

# host_state HOST CLI-FUNCTION; wait_up HOST CLI-FUNCTION SECONDS
host_state() { "$2" --json host show "$1" 2>/dev/null | json_get 'd["state"]'; }
wait_up() {
	local i
	for i in $(seq 1 $(($3 * 2))); do
		[ "$(host_state "$1" "$2")" = Up ] && return 0
		sleep 0.5
	done
	return 1
}
holder() { psqlc "SELECT connected_to FROM hosts WHERE name = '$1'"; }
check "$H is Up (through A)" wait_up $H kc_a 60
check "$H2 is Up (through B)" wait_up $H2 kc_b 60
check "A holds $H's link, B holds $H2's" bash -c \
	"[ '$(holder $H)' = '$BR:$APA' ] && [ '$(holder $H2)' = '$BR:$APB' ]"
check "$H2 is Up through A too (shared state)" test "$(host_state $H2 kc_a)" = Up
check "a host check of $H2 through A is forwarded to B" kc_a host check $H2
check "a host check of $H through B is forwarded to A" kc_b host check $H

# ---- A VM on B's host, every action through A ----
job=$(kc_a vm create $VM --image kctest --memory 128 --host $H2 --async 2>>"$SA/cli.err")
if [[ $job =~ ^[0-9a-f-]{36}$ ]]; then ok "create $VM on $H2 through A (job $job)"; else
	not_ok "create $VM on $H2 through A (got '$job')"; sed 's/^/# /' "$SA/cli.err"; fi
check "the create job succeeds" bash -c \
	"for i in \$(seq 1 900); do s=\$(kc_a --json job show $job | json_get 'd[\"state\"]'); [ \"\$s\" = succeeded ] && exit 0; [ \"\$s\" = failed ] && exit 1; sleep 0.2; done; exit 1"
check "the job's result is $VM on $H2" bash -c \
	"kc_a --json job show $job | json_get 'd[\"result\"][\"name\"] + \" \" + d[\"result\"][\"host\"]' | grep -qx '$VM $H2'"
check "the record is on $H2" test "$(psqlc "SELECT host FROM vms WHERE name = '$VM'")" = $H2
on2=$(sim_virsh $H2 list --all --name | grep -cx $VM)
on1=$(sim_virsh $H list --all --name | grep -cx $VM)
check "the domain is in $H2's libvirtd, not $H's" test "$on2 $on1" = "1 0"
check "$VM boots (log followed through A)" bash -c "kc() { kc_a \"\$@\"; }; export -f kc; wait_ready $VM 180"
check "show through A: running on $H2" bash -c \
	"kc_a --json vm show $VM | json_get 'd[\"state\"] + \" \" + d[\"host\"]' | grep -qx 'running $H2'"
check "log through A has the guest's console" bash -c "kc_a vm log $VM | grep -q KVMCLOUD-READY"
check "shutdown through A" kc_a vm shutdown $VM --timeout 30
check "$VM is shutoff (through A)" bash -c "kc() { kc_a \"\$@\"; }; export -f kc; wait_state $VM shutoff 30"
check "$VM is shutoff in $H2's libvirtd" test "$(sim_virsh $H2 domstate $VM)" = "shut off"
check "start through A" kc_a vm start $VM
check "$VM is running (through A)" bash -c "kc() { kc_a \"\$@\"; }; export -f kc; wait_state $VM running 30"
check "the jobs through A succeeded" bash -c \
	"[ \"\$(kc_a --json job list --limit 1000 | json_get 'sum(1 for j in d[\"jobs\"] if j.get(\"state\") == \"failed\")')\" = 0 ]"
check "A reached B over a peer connection" grep -q "peer link: connected to server $BR:$APB" "$SA/server.log"
check "B accepted A as a peer" grep -q "peer link: server $BR:$APA connected from" "$SB/server.log"
check "no flapping: $H2 stays Up over several heartbeats" \
	bash -c "for i in 1 2 3 4 5 6; do [ \"\$(kc_a --json host show $H2 | json_get 'd[\"state\"]')\" = Up ] || exit 1; sleep 1; done"

count() { psqlc "$1"; }
vms_before=$(count "SELECT count(*) FROM vms")
jobs_before=$(count "SELECT count(*) FROM jobs")
audit_max=$(count "SELECT coalesce(max(id), 0) FROM audit_log")
audit_before=$(count "SELECT count(*) FROM audit_log")
diag "before the kill: $vms_before VMs, $jobs_before jobs, $audit_before audit entries"

# ---- kill -9 of B, the server holding the VM's host ----
t0=$(date +%s)
kill -9 $_pid_b
wait $_pid_b 2>/dev/null
_pid_b=
check "$H2's agent reconnects to A within 30 s" sim_wait_log "$d/agent.log" "connected to $BR:$APA" 30
diag "failover took $(($(date +%s) - t0)) s"
check "$H2 is Up through A" wait_up $H2 kc_a 30
check "A holds $H2's link" test "$(holder $H2)" = "$BR:$APA"
check "$VM is listed running through A" bash -c "kc() { kc_a \"\$@\"; }; export -f kc; [ \"\$(vm_state $VM)\" = running ]"
check "shutdown through A" kc_a vm shutdown $VM --timeout 30
check "$VM is shutoff" bash -c "kc() { kc_a \"\$@\"; }; export -f kc; wait_state $VM shutoff 30"
check "$VM is shutoff in $H2's libvirtd" test "$(sim_virsh $H2 domstate $VM)" = "shut off"
check "start through A" kc_a vm start $VM
check "$VM is running" bash -c "kc() { kc_a \"\$@\"; }; export -f kc; wait_state $VM running 30"

# ---- B comes back: its calls reach H2 through A ----
server_run "$SB" $PB $APB
_pid_b=$!
check "server B restarts" wait_api "$URL_B" $_pid_b
check "$H2 is Up through B" test "$(host_state $H2 kc_b)" = Up
check "B shows $VM running (forwarded to A)" bash -c "kc_b --json vm show $VM | json_get 'd[\"state\"]' | grep -qx running"
check "reboot through B (forwarded to A)" kc_b vm reboot $VM
check "log through B" bash -c "kc_b vm log $VM --tail 4096 >/dev/null"
check "$H2 stays Up and with A" bash -c "sleep 5; [ \"\$(kc_b --json host show $H2 | json_get 'd[\"state\"]')\" = Up ] && \
	[ \"\$(psql -X -tA '$DB' -c \"SELECT connected_to FROM hosts WHERE name = '$H2'\")\" = '$BR:$APA' ]"
check "no VM record lost or duplicated" test "$(count "SELECT count(*) FROM vms")" = "$vms_before"
check "exactly one record of $VM" test "$(count "SELECT count(*) FROM vms WHERE name = '$VM'")" = 1
check "no job lost" test "$(count "SELECT count(*) FROM jobs")" -ge "$jobs_before"
check "no audit entry lost" test "$(count "SELECT count(*) FROM audit_log WHERE id <= $audit_max")" = "$audit_before"
check "one libvirt domain for $VM" test "$(sim_virsh $H2 list --all --name | grep -cx $VM)" = 1

check "delete $VM through B (forwarded to A)" bash -c "kc_b vm destroy $VM >/dev/null; kc_b vm delete $VM"
check "the domain is gone from $H2's libvirtd" test "$(sim_virsh $H2 list --all --name | grep -cx $VM)" = 0
check "the record is gone" test "$(count "SELECT count(*) FROM vms WHERE name = '$VM'")" = 0
ha_cleanup
check "no agent process is left" bash -c "! pgrep -f '[k]vmcloud-agent .*agent-kce2e-ha' >/dev/null"
finish
