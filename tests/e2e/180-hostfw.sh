#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The host firewall (docs/networking.md, "Host firewall") on two simulated
# hosts with joined agents and a server on the simulated bridge
# (10.251.0.254): `kvmcloud host fw-apply` on host 1, then `nc` listeners
# inside host 1 probed from the server's address and from host 2 (a peer):
# ssh open to both, VNC only from the server, migration only from the peer
# (the server sends each host the others' link addresses as peers, and
# takes a removed host out again), anything else dropped.  The ruleset survives an agent restart (loaded
# from its file); a policy that cuts the server off is rolled back by the
# agent's timer; another nft table in the host stays untouched.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib-simhost.sh"

. "$(dirname "$0")/lib-cluster.sh"

H1=kce2e-fw1
H2=kce2e-fw2
A1=10.251.0.33
A2=10.251.0.34
SRV=$BR

# Each agent keeps its firewall file in its own folder (not /etc/kvmcloud,
# which the simulated hosts share with the machine).
agent_opts() {
	local d=$KC_E2E_DATA/agent-$1
	echo "-o data.dir=$d -o pki.dir=$d/pki -o storage.dir=$d/pool -o images.dir=$d/images -o accel=tcg -o storage.pool=kce2e -o firewall.file=$d/fw/firewall.nft"
}

cluster_init "$H1:33" "$H2:34"
mkdir -p "$KC_E2E_DATA/agent-$H1/fw" "$KC_E2E_DATA/agent-$H2/fw"
cluster_server_start
for h in $H1 $H2; do
	cluster_join $h
done
check "host $H1 is Up" wait_host $H1 Up 60
check "host $H2 is Up" wait_host $H2 Up 60

# Listeners inside host 1, each recorded for the cleanup.
listen() {
	sim_exec $H1 bash -c 'echo $$ >"$1"; exec nc -lk "$2"' _ "$KC_E2E_DATA/fw-nc-$1.pid" "$1" \
		>/dev/null 2>&1 &
}
stop_listeners() {
	local f
	for f in "$KC_E2E_DATA"/fw-nc-*.pid; do
		[ -e "$f" ] && kill "$(cat "$f")" 2>/dev/null
		rm -f "$f"
	done
}
trap 'stop_listeners; cluster_cleanup' EXIT
for p in 22 5901 49160 12345; do listen $p; done
sleep 0.5
# from_srv PORT / from_peer PORT: can a TCP connection to host 1 be made?
from_srv() { nc -z -w 2 $A1 "$1"; }
from_peer() { sim_exec $H2 nc -z -w 2 $A1 "$1"; }
# Their negations: a connection that times out (dropped, no reset).
not_from_srv() { ! nc -z -w 2 $A1 "$1"; }
not_from_peer() { ! sim_exec $H2 nc -z -w 2 $A1 "$1"; }
# For the `bash -c` checks below.
export SIMHOST
export -f sim_exec

check "before: port 12345 of $H1 answers the peer (the probes work)" from_peer 12345
check "before: and the server's address" from_srv 12345
# Somebody else's table (libvirt's iptables-nft tables look like this).
check "another nft table in $H1" sim_exec $H1 nft -f - <<'EOF'
table ip kce2efw_other {
	chain c {
		type filter hook input priority 10; policy accept;
		counter
	}
}
EOF

# The server records each host's link address at its hello and sends every
# host the others' as its @peers: the policy names no peer.
for h in "$H1 $A1" "$H2 $A2"; do
	set -- $h
	check "$1's address is $2 (its link, at hello)" bash -c \
		"kc --json host show $1 | json_get 'd[\"address\"]' | grep -qx '$2'"
done
cat >"$KC_E2E_DATA/fw-policy.json" <<EOF
{"policy": {"nat_bridges": []}, "confirm_s": 8}
EOF
check "host fw-apply $H1: confirmed" bash -c \
	"kc --json host fw-apply $H1 '$KC_E2E_DATA/fw-policy.json' | grep -q '\"state\": *\"confirmed\"'"
check "table inet kvmcloud_host is loaded in $H1" sim_exec $H1 nft list table inet kvmcloud_host
check "its @servers set holds the server's address (from the link)" bash -c \
	"sim_exec $H1 nft list set inet kvmcloud_host servers | grep -q '$SRV'"
check "its @peers set holds $H2's address (pushed by the server)" bash -c \
	"sim_exec $H1 nft list set inet kvmcloud_host peers | grep -q '$A2'"
check "ssh (22) from the server's address" from_srv 22
check "ssh (22) from the other host" from_peer 22
check "VNC (5901) from the server's address" from_srv 5901
check "no VNC (5901) from the other host" not_from_peer 5901
check "migration (49160) from the peer" from_peer 49160
check "no migration (49160) from the server's address (not a peer)" not_from_srv 49160
check "port 12345 dropped from the peer" not_from_peer 12345
check "port 12345 dropped from the server" not_from_srv 12345
check "the drop counter counted them" bash -c \
	"sim_exec $H1 nft list chain inet kvmcloud_host input | grep -Eq 'counter packets [1-9][0-9]* bytes [0-9]+ drop'"
FW=$KC_E2E_DATA/agent-$H1/fw/firewall.nft
check "the file is written, mode 0600" test "$(stat -c %a "$FW")" = 600
check "the other table is untouched" sim_exec $H1 nft list table ip kce2efw_other
# shellcheck disable=SC2046
check "kvmcloud-agent check lists the firewall as loaded" bash -c \
	"sim_exec $H1 $KC_AGENT_BIN $(agent_opts $H1) check --no-probe | grep -E 'host_firewall.*loaded'"
check "host fw-show: confirmed, with the live table" bash -c \
	"kc host fw-show $H1 | grep -q 'state: *confirmed' && kc host fw-show $H1 | grep -q 'chain input'"

# Restart: the table is loaded from the file before the link is up.
P1=$(cat "$KC_E2E_DATA/agent-$H1.pid")
kill "$P1"
for i in $(seq 1 100); do kill -0 "$P1" 2>/dev/null || break; sleep 0.1; done
check "stopping the agent keeps the table" sim_exec $H1 nft list table inet kvmcloud_host
check "table removed by hand" sim_exec $H1 nft delete table inet kvmcloud_host
check "port 12345 answers again without it" from_peer 12345
agent_run $H1
reconnected() {
	local i
	for i in $(seq 1 120); do
		[ "$(grep -c 'connected to ' "$KC_E2E_DATA/agent-$H1/agent.log")" -ge 2 ] && return 0
		sleep 0.5
	done
	return 1
}
check "the agent connects again" reconnected
check "after the restart the table is back (from the file)" sim_exec $H1 nft list table inet kvmcloud_host
check "port 12345 is dropped again" not_from_peer 12345
check "VNC from the server still works" from_srv 5901

# A policy that denies the server's address: the confirmation cannot
# reach the agent, whose timer puts the previous ruleset back.
cat >"$KC_E2E_DATA/fw-deny.json" <<EOF
{"policy": {"peers": ["$A2"], "nat_bridges": [], "deny": ["$SRV/32"]}, "confirm_s": 6}
EOF
kc host fw-apply $H1 "$KC_E2E_DATA/fw-deny.json" >"$KC_E2E_DATA/fw-deny.out" 2>&1 &
DENY=$!
sleep 2
check "while it is pending, the server's address is cut off" not_from_srv 5901
wait $DENY
DRC=$?
check "the apply fails: not confirmed, rolled back" bash -c \
	"[ $DRC -ne 0 ] && grep -q 'did not confirm' '$KC_E2E_DATA/fw-deny.out'"
check "the agent logged the rollback" grep -q "rolled back (not confirmed in time)" \
	"$KC_E2E_DATA/agent-$H1/agent.log"
check "VNC from the server works again" from_srv 5901
check "and port 12345 is still dropped (the old ruleset, not none)" not_from_peer 12345
check "the file still holds the confirmed policy (no deny entries)" bash -c \
	"grep -q 'set deny {' '$FW' && ! grep -A3 'set deny {' '$FW' | grep -q elements"
check "host fw-show: rolled_back" bash -c \
	"kc --json host fw-show $H1 | json_get 'd[\"state\"]' | grep -qx rolled_back"
check "host $H1 is still Up" wait_host $H1 Up 30
check "the other table is still untouched" sim_exec $H1 nft list table ip kce2efw_other
echo '{"deny": ["10.0.0.1; flush ruleset"]}' >"$KC_E2E_DATA/fw-bad.json"
check_err "a bad policy is refused before it reaches the host" "not an IP address" \
	kc host fw-apply $H1 "$KC_E2E_DATA/fw-bad.json"

# A host that leaves the cluster leaves the others' @peers.
check "host remove $H2" kc host remove $H2
peer_gone() {
	local i
	for i in $(seq 1 50); do
		! sim_exec $H1 nft list set inet kvmcloud_host peers | grep -q "$A2" && return 0
		sleep 0.2
	done
	return 1
}
check "$A2 left $H1's @peers" peer_gone
check "no migration (49160) from $H2 any more" not_from_peer 49160
check "ssh (22) from $H2 still (not a peer rule)" from_peer 22
finish
